// The CNI plugin as the runtime runs it (a process: env + stdin → stdout + exit code), talking to
// the real node agent over its Unix socket, which installs the real rules in a real network
// namespace; then the CNI-mode check (`check-network`, as a non-root UID in that namespace) passes
// only where the rules are. Needs root (network namespaces), like e2e/support/netns.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ANNOTATION_STATUS, LABEL_INJECTED, SIDECAR_CONTAINER } from '../../api/src/index.ts';
import { AgentNetns, canCreateNetns } from '../../e2e/support/netns/agent-netns.ts';
import { serve } from '../src/agent.ts';
import type { KubeGet } from '../src/kube.ts';

const REPO = join(import.meta.dirname, '..', '..');
const PLUGIN = join(REPO, 'cni', 'src', 'plugin.ts');
const can = canCreateNetns();
const d = can.ok ? describe : describe.skip;

const sidecarEnv = [
  { name: 'SLUICE_PROXY_UID', value: '1337' },
  { name: 'SLUICE_TRANSPARENT_PORT', value: '15001' },
  { name: 'SLUICE_PROXY_PORT', value: '15080' },
  { name: 'SLUICE_DNS_PORT', value: '15053' },
  { name: 'SLUICE_ADMIN_PORT', value: '15090' },
  { name: 'SLUICE_POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
  { name: 'SLUICE_CONFIG_FILE', value: '/etc/sluice/config/sidecar.yaml' },
];
function pod(name: string, injected: boolean, extra: Record<string, string> = {}): Record<string, unknown> {
  return {
    metadata: {
      name,
      namespace: 'agents',
      uid: `uid-${name}`,
      labels: injected ? { [LABEL_INJECTED]: 'true' } : { 'sluice.io/inject': 'true', ...extra },
      annotations: injected ? { [ANNOTATION_STATUS]: '{"version":"test"}' } : {},
    },
    spec: {
      initContainers: injected ? [{ name: SIDECAR_CONTAINER, env: sidecarEnv }] : [],
      volumes: injected ? [{ name: 'sluice-config', configMap: { name: 'sluice-sidecar', items: [{ key: 'sidecar.yaml', path: 'sidecar.yaml' }] } }] : [],
    },
  };
}

// Stands in for the API server's GET only (the node e2e reads a real one): the objects are what
// the webhook stores for an injected pod and a plain one.
const objects = new Map<string, Record<string, unknown>>([
  ['/api/v1/namespaces/agents/pods/coder', pod('coder', true)],
  ['/api/v1/namespaces/agents/pods/plain', pod('plain', false)],
  ['/api/v1/namespaces/agents/pods/orphan', { ...pod('orphan', true), spec: { initContainers: [{ name: SIDECAR_CONTAINER, env: sidecarEnv }], volumes: [{ name: 'sluice-config', configMap: { name: 'missing' } }] } }],
  ['/api/v1/namespaces/agents/configmaps/sluice-sidecar', { data: { 'sidecar.yaml': 'dns:\n  ipv4Cidr: 198.20.0.0/16\n' } }],
]);
const kube: KubeGet = { get: (path) => Promise.resolve(objects.get(path)) };
const logs: { msg: string; obj: object }[] = [];
const log = { info: (obj: object, msg: string) => logs.push({ obj, msg }), warn: (obj: object, msg: string) => logs.push({ obj, msg }) };

interface Run {
  code: number | null;
  stdout: string;
}
function runPlugin(socket: string, ns: AgentNetns, podName: string, namespace = 'agents', command = 'ADD'): Promise<Run> {
  const conf = { cniVersion: '1.0.0', name: 'test-net', type: 'sluice-cni', agentSocket: socket, exemptNamespaces: ['kube-system'], timeoutMs: 5000, prevResult: { cniVersion: '1.0.0', ips: [{ address: `${ns.nsAddr4}/30` }] } };
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--no-warnings', PLUGIN], {
      env: { CNI_COMMAND: command, CNI_CONTAINERID: 'abc123', CNI_NETNS: `/var/run/netns/${ns.name}`, CNI_IFNAME: 'eth0', CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${podName};K8S_POD_UID=uid-${podName}`, CNI_PATH: '/opt/cni/bin' },
    });
    let stdout = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stdin.end(JSON.stringify(conf));
    child.on('exit', (code) => resolve({ code, stdout }));
  });
}
const natRules = (ns: AgentNetns) => spawnSync('ip', ['netns', 'exec', ns.name, 'iptables', '-t', 'nat', '-S'], { encoding: 'utf8' }).stdout;
const check = (ns: AgentNetns) =>
  ns.run(ns.node, ['--no-warnings', join(ns.repo, 'sidecar', 'src', 'main.ts'), 'check-network'], {
    uid: 1000,
    env: Object.fromEntries(sidecarEnv.filter((e) => e.value && e.name !== 'SLUICE_CONFIG_FILE').map((e) => [e.name, e.value!]).concat([['SLUICE_CONFIG_FILE', ''], ['NODE_NO_WARNINGS', '1']])),
    timeoutMs: 30_000,
  });

d('sluice CNI plugin + node agent in a real network namespace', () => {
  let dir: string;
  let socket: string;
  let server: Server;
  const spaces: AgentNetns[] = [];
  const netns = () => {
    const ns = new AgentNetns(REPO);
    spaces.push(ns);
    return ns;
  };
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-cni-agent-'));
    socket = join(dir, 'agent.sock');
    server = await serve(socket, { kube, log });
  });
  afterAll(() => {
    server?.close();
    for (const ns of spaces) ns.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test('an injected pod: ADD installs the rules the init container would (its settings file included), passes prevResult on, and the check passes', async () => {
    const ns = netns();
    const r = await runPlugin(socket, ns, 'coder');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ cniVersion: '1.0.0', ips: [{ address: `${ns.nsAddr4}/30` }] });
    const nat = natRules(ns);
    expect(nat).toContain('-A SLUICE_NAT -m owner --uid-owner 1337 -j RETURN');
    expect(nat).toContain('-A SLUICE_NAT -p tcp -j REDIRECT --to-ports 15001');
    // dns.ipv4Cidr from the namespace's settings ConfigMap, as `init-network` reads it.
    expect(nat).toContain('-A SLUICE_NAT -d 198.20.0.0/16 -p tcp -j DNAT --to-destination :15001');
    const c = await check(ns);
    expect(c.stderr + c.stdout).toContain('interception rules verified');
    expect(c.code).toBe(0);
  }, 60_000);

  test('a pod sluice did not inject (even one labelled sluice.io/inject) is left alone, and the check refuses its namespace', async () => {
    const ns = netns();
    const r = await runPlugin(socket, ns, 'plain');
    expect(r.code).toBe(0);
    expect(natRules(ns)).not.toContain('SLUICE');
    const c = await check(ns);
    expect(c.code).not.toBe(0);
    expect(c.stdout + c.stderr).toContain('interception.not_in_place');
  }, 60_000);

  test('an injected pod whose rules cannot be installed fails the ADD with a CNI error that says why', async () => {
    const ns = netns();
    const r = await runPlugin(socket, ns, 'orphan');
    expect(r.code).toBe(1);
    const err = JSON.parse(r.stdout) as { code: number; msg: string };
    expect(err.code).toBe(999);
    expect(err.msg).toContain('settings ConfigMap agents/missing does not exist');
    const unknown = await runPlugin(socket, ns, 'ghost');
    expect(JSON.parse(unknown.stdout).msg).toContain('not found');
  }, 60_000);

  test('with the agent down, ADD fails closed (exempt namespaces pass through); DEL always passes', async () => {
    const ns = netns();
    const gone = join(dir, 'nobody.sock');
    const r = await runPlugin(gone, ns, 'coder');
    expect(r.code).toBe(1);
    const err = JSON.parse(r.stdout) as { code: number; msg: string };
    expect(err.code).toBe(11);
    expect(err.msg).toMatch(/not started: the sluice node agent is unreachable/);
    expect(natRules(ns)).not.toContain('SLUICE');
    expect((await runPlugin(gone, ns, 'dns', 'kube-system')).code).toBe(0);
    expect((await runPlugin(gone, ns, 'coder', 'agents', 'DEL')).code).toBe(0);
  }, 60_000);
});
