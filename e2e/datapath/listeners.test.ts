// The sidecar's agent-facing listeners serve the pod only. A second host (the test's own network
// namespace, on the other end of the pod's veth) reaching the pod IP on the transparent, explicit
// proxy or DNS port is refused — by the interception rules in the kernel, and by the sidecar
// itself (refused and recorded) where those rules are missing — while the agent in the pod keeps
// working, on IPv4 and IPv6. Also: a sidecar that dies from a signal fails stop(), not hangs it.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { AGENT_UID, AgentNetns, canCreateNetns } from '../support/netns/agent-netns.ts';
import { PORTS, startNetnsSidecar } from '../support/netns/netns-sidecar.ts';
import type { NetnsSidecar } from '../support/netns/netns-sidecar.ts';
import { createTestCa, startHttpUpstream, startHttpsUpstream } from '../../testkit/sidecar/upstreams.ts';
import type { TestUpstream } from '../../testkit/sidecar/upstreams.ts';
import { repoRoot } from '../../testkit/sidecar/test-sidecar.ts';

const support = canCreateNetns();
const describeNetns = support.ok ? describe : describe.skip;
if (!support.ok) console.warn(`listeners e2e skipped: ${support.reason}`);

let ns: AgentNetns;
let sidecar: NetnsSidecar | undefined;
let plain: TestUpstream;
let api: TestUpstream;

beforeAll(async () => {
  if (!support.ok) return;
  ns = new AgentNetns(repoRoot);
  const ca = await createTestCa();
  plain = await startHttpUpstream(undefined, ns.hostAddr4);
  api = await startHttpsUpstream(ca, ['registry.npmjs.org'], undefined, ns.hostAddr4);
  sidecar = await startNetnsSidecar(ns, {
    resolve: { 'github.com:80': plain.dial, 'registry.npmjs.org:443': api.dial },
    extraRootsFiles: [ca.caFile],
  });
}, 120_000);

afterAll(async () => {
  await sidecar?.stop().catch(() => undefined); // the last test kills it on purpose
  for (const u of [plain, api]) await u?.close();
  ns?.destroy();
});

interface Attempt {
  connected: boolean;
  error?: string;
  answer: string;
}

/** From this (the host's) namespace: connect, send a request, read whatever comes back. */
function fromOutside(host: string, port: number, request: string): Promise<Attempt> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    let connected = false;
    let answer = '';
    s.setTimeout(5000, () => s.destroy(new Error('timeout')));
    s.on('connect', () => {
      connected = true;
      s.write(request);
    });
    s.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    s.on('error', (err: Error & { code?: string }) => resolve({ connected, error: err.code ?? err.message, answer }));
    s.on('close', () => resolve({ connected, answer }));
  });
}

const proxyRequest = 'GET http://github.com/from-outside HTTP/1.1\r\nHost: github.com\r\n\r\n';
const plainRequest = 'GET /from-outside HTTP/1.1\r\nHost: github.com\r\n\r\n';

async function curl(args: string[]) {
  const r = await ns.run('curl', ['-sS', '--max-time', '20', '-o', '/dev/null', '-w', '%{http_code}', ...args], { uid: AGENT_UID, env: sidecar!.agentEnv });
  return { status: Number(r.stdout), stderr: r.stderr };
}

async function metric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${sidecar!.adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** Audit events in the sidecar's spool that mention `text` (bounded wait: the write is async). */
async function spooled(text: string, atLeast: number): Promise<number> {
  const dir = join(ns.shared, 'sidecar', 'spool');
  let n = 0;
  for (let i = 0; i < 50; i++) {
    n = 0;
    for (const f of readdirSync(dir, { recursive: true }) as string[]) {
      try {
        n += readFileSync(join(dir, f), 'utf8').split('\n').filter((l) => l.includes(text)).length;
      } catch {
        // a directory, or a segment rotated away meanwhile
      }
    }
    if (n >= atLeast) return n;
    await new Promise((r) => setTimeout(r, 100));
  }
  return n;
}

function iptables(v6: boolean, args: string[]) {
  return ns.run(v6 ? 'ip6tables' : 'iptables', args, { uid: 0 });
}

describeNetns('listeners only for the pod', () => {
  test('from another host, the explicit proxy and transparent ports refuse (IPv4 and IPv6) and nothing is forwarded', async () => {
    const before = plain.requests.length;
    for (const host of [ns.nsAddr4, ns.nsAddr6]) {
      for (const [port, request] of [
        [PORTS.proxy, proxyRequest],
        [PORTS.transparent, plainRequest],
      ] as const) {
        const r = await fromOutside(host, port, request);
        expect({ host, port, connected: r.connected, answer: r.answer }).toEqual({ host, port, connected: false, answer: '' });
      }
    }
    expect(plain.requests.length).toBe(before);
  });

  test('from another host, the DNS port answers nothing (UDP and TCP)', async () => {
    const tcp = await fromOutside(ns.nsAddr4, PORTS.dns, '\x00\x1d');
    expect(tcp.connected).toBe(false);
    const udp = createSocket('udp4');
    const answers: Buffer[] = [];
    udp.on('message', (m) => answers.push(m));
    const refused = once(udp, 'error').then(([e]) => (e as { code?: string }).code);
    udp.connect(PORTS.dns, ns.nsAddr4);
    await once(udp, 'connect');
    // A query for example.com (A); the port-unreachable ICMP comes back as ECONNREFUSED.
    udp.send(Buffer.from('abcd01000001000000000000076578616d706c6503636f6d0000010001', 'hex'));
    expect(await refused).toBe('ECONNREFUSED');
    expect(answers).toHaveLength(0);
    udp.close();
  });

  test('the agent in the pod still works through both ports, also when it names the pod IP (IPv4 and IPv6)', async () => {
    expect((await curl(['http://github.com/transparent'])).status).toBe(200);
    expect((await curl(['https://registry.npmjs.org/transparent'])).status).toBe(200);
    for (const proxy of ['http://127.0.0.1:15080', 'http://[::1]:15080', `http://${ns.nsAddr4}:15080`, `http://[${ns.nsAddr6}]:15080`]) {
      const r = await curl(['-x', proxy, 'https://registry.npmjs.org/via-proxy']);
      expect({ proxy, status: r.status }).toEqual({ proxy, status: 200 });
    }
  });

  test('without the kernel rule the sidecar itself refuses another host, and records and counts it', async () => {
    for (const v6 of [false, true]) expect((await iptables(v6, ['-D', 'INPUT', '-j', 'SLUICE_IN'])).code).toBe(0);
    try {
      const before = await metric('sluice_refusals_total', 'code="net.outside_pod"');
      const forwarded = plain.requests.length;
      let attempts = 0;
      for (const host of [ns.nsAddr4, ns.nsAddr6]) {
        for (const [port, request] of [
          [PORTS.proxy, proxyRequest],
          [PORTS.transparent, plainRequest],
        ] as const) {
          const r = await fromOutside(host, port, request);
          attempts++;
          // It reaches the listener now, and gets nothing back but a closed connection.
          expect({ host, port, answer: r.answer }).toEqual({ host, port, answer: '' });
        }
      }
      expect(plain.requests.length).toBe(forwarded);
      expect(await metric('sluice_refusals_total', 'code="net.outside_pod"')).toBe(before + attempts);
      expect(await spooled('net.outside_pod', attempts)).toBeGreaterThanOrEqual(attempts);
      // The pod's own traffic is untouched by the check.
      expect((await curl(['-x', `http://${ns.nsAddr4}:15080`, 'http://github.com/inside'])).status).toBe(200);
    } finally {
      for (const v6 of [false, true]) await iptables(v6, ['-I', 'INPUT', '1', '-j', 'SLUICE_IN']);
    }
  });

  test('a sidecar that died from a signal makes stop() fail instead of hanging', async () => {
    const child = sidecar!.process;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
    expect(child.exitCode).toBeNull();
    await expect(sidecar!.stop()).rejects.toThrow(/died before stop\(\) \(signal SIGKILL\)/);
    sidecar = undefined;
  });
});
