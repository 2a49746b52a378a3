// The proxies bench/proxy compares, each started as its own process pinned to the proxy CPU with
// a configuration written here: sluice (the real sidecar entry point), tinyproxy and squid
// (explicit HTTP proxies), mitmproxy (intercepting, the closest peer) and smokescreen (CONNECT
// proxy with a hostname ACL). Peers that resolve names themselves see a private /etc/hosts that
// sends the benchmark host to the local upstream; sluice gets the same through its resolve map.
// Every peer is configured to keep connections alive on both sides and to log nothing per request
// except where the peer cannot turn it off (noted on the peer).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { SIDECAR_NODE_OPTIONS } from '../../charts/images/image-spec.ts';
import { spawnPinned, processTree, stopProcess, waitForPort } from './processes.ts';

export interface BenchNet {
  /** the name the agent asks for (allowed by sluice's default policy) */
  name: string;
  /** the upstream's address; it listens on :80 and :443 */
  upstreamIp: string;
  /** sluice's transparent listener address (port 443), standing in for redirected traffic */
  sluiceTransparentIp: string;
  /** /etc/hosts for peers and wrk: name → upstream */
  hostsToUpstream: string;
  upstreamCaFile: string;
  proxyCpu: number;
  /** niceness for every bench process (0: as the machine's other work) */
  nice: number;
  work: string;
  root: string;
  node: string;
  tools: string;
}

export interface RunningPeer {
  name: string;
  child: ChildProcess;
  pids(): number[];
  /** explicit proxy URL (absolute-form HTTP and CONNECT) */
  proxyUrl?: string;
  /** an intercepting peer's CA; a tunnelling peer leaves the agent trusting the upstream */
  caFile?: string;
  transparent?: { ip: string; port: number };
  /** sluice's admin port (metrics) */
  adminUrl?: string;
  stop(): Promise<void>;
}

function peer(name: string, child: ChildProcess, extra: Partial<RunningPeer>): RunningPeer {
  const pid = child.pid!;
  return { name, child, pids: () => processTree(pid), stop: () => stopProcess(child), ...extra };
}

export async function startSluice(
  net: BenchNet,
  proxyPort: number,
  o: { nodeFlags?: string[]; tag?: string; unrecorded?: boolean } = {},
): Promise<RunningPeer> {
  const dir = join(net.work, `sluice${o.tag ?? ''}`);
  mkdirSync(dir, { recursive: true });
  const config = {
    pod: { namespace: 'bench', name: 'bench-agent-0', serviceAccount: 'bench-agent' },
    policy: { path: join(net.root, 'policies', 'build', 'bundle.tar.gz') },
    trustDir: join(dir, 'trust'),
    // The production default: every request and response durably spooled (fsync) before it
    // completes. No Loki here, so nothing is trimmed: a spool large enough for the whole run.
    // `unrecorded` turns the audit trail off: the row that prices recording.
    audit: { enabled: !o.unrecorded, spoolDir: join(dir, 'spool'), spool: { maxBytes: 8 * 1024 ** 3, segmentBytes: 64 * 1024 ** 2 } },
    ports: { transparent: 443, proxy: proxyPort, dns: 0, admin: 0 },
    bind: { transparent: net.sluiceTransparentIp, proxy: '127.0.0.1', dns: ['127.0.0.1'], admin: '127.0.0.1' },
    upstream: {
      resolve: { [`${net.name}:80`]: `${net.upstreamIp}:80`, [`${net.name}:443`]: `${net.upstreamIp}:443` },
      extraRootsFiles: [net.upstreamCaFile],
    },
  };
  const file = join(dir, 'sidecar.yaml');
  // JSON is YAML: no hand-written YAML quoting.
  writeFileSync(file, JSON.stringify(config, null, 2));
  const child = spawnPinned(net.node, [...(o.nodeFlags ?? []), join(net.root, 'sidecar', 'src', 'main.ts'), 'proxy'], {
    cpu: net.proxyCpu,
    nice: net.nice,
    // As the image runs it (its V8 flags: a 2 MiB young generation, which also costs less CPU per request under load).
    env: { ...process.env, NODE_OPTIONS: SIDECAR_NODE_OPTIONS, SLUICE_CONFIG_FILE: file },
    cwd: dir,
    stdio: 'pipe',
  });
  child.stderr!.resume();
  const adminPort = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`sluice exited with ${code} before it was ready`)));
    // pino writes one JSON line per event; the ready line comes once every listener is up.
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.includes('"sidecar ready"')) resolve((JSON.parse(line) as { admin: { port: number } }).admin.port);
      else if (line.includes('"level":60')) reject(new Error(`sluice failed to start: ${line}`));
    });
  });
  return peer('sluice', child, {
    proxyUrl: `http://127.0.0.1:${proxyPort}`,
    caFile: join(dir, 'trust', 'ca.crt'),
    transparent: { ip: net.sluiceTransparentIp, port: 443 },
    adminUrl: `http://127.0.0.1:${adminPort}`,
  });
}

export async function startNodeFloor(net: BenchNet, port: number): Promise<RunningPeer> {
  const child = spawnPinned(net.node, [join(net.root, 'bench', 'proxy', 'node-floor.ts'), String(port), net.upstreamIp], { cpu: net.proxyCpu, nice: net.nice });
  await waitForPort('node floor', '127.0.0.1', port, child);
  return peer('node floor', child, { proxyUrl: `http://127.0.0.1:${port}` });
}

export async function startTinyproxy(net: BenchNet, port: number): Promise<RunningPeer> {
  const dir = join(net.work, 'tinyproxy');
  mkdirSync(dir, { recursive: true });
  const conf = join(dir, 'tinyproxy.conf');
  writeFileSync(
    conf,
    [
      `Port ${port}`,
      'Listen 127.0.0.1',
      'User nobody',
      'Group nogroup',
      'Timeout 600',
      'MaxClients 1024',
      'Allow 127.0.0.1',
      'DisableViaHeader Yes',
      'LogLevel Critical',
      `LogFile "${join(dir, 'tinyproxy.log')}"`,
      '',
    ].join('\n'),
  );
  const child = spawnPinned('tinyproxy', ['-d', '-c', conf], { cpu: net.proxyCpu, nice: net.nice, hostsFile: net.hostsToUpstream });
  await waitForPort('tinyproxy', '127.0.0.1', port, child);
  return peer('tinyproxy', child, { proxyUrl: `http://127.0.0.1:${port}` });
}

export async function startSquid(net: BenchNet, port: number): Promise<RunningPeer> {
  const dir = join(net.work, 'squid');
  mkdirSync(dir, { recursive: true, mode: 0o777 });
  const conf = join(dir, 'squid.conf');
  writeFileSync(
    conf,
    [
      `http_port 127.0.0.1:${port}`,
      'http_access allow localhost',
      'http_access deny all',
      // A forwarding proxy here, as sluice is: no cache, no logs, keep-alive both ways.
      'cache deny all',
      'cache_mem 8 MB',
      'access_log none',
      `cache_log ${join(dir, 'cache.log')}`,
      `pid_filename ${join(dir, 'squid.pid')}`,
      `coredump_dir ${dir}`,
      `hosts_file ${net.hostsToUpstream}`,
      'netdb_filename none',
      'pinger_enable off',
      'client_persistent_connections on',
      'server_persistent_connections on',
      'via off',
      'forwarded_for delete',
      'shutdown_lifetime 0 seconds',
      '',
    ].join('\n'),
  );
  // -N: no daemon and no SMP kids; the one process is the worker.
  const child = spawnPinned('squid', ['-N', '-f', conf], { cpu: net.proxyCpu, nice: net.nice, hostsFile: net.hostsToUpstream });
  await waitForPort('squid', '127.0.0.1', port, child);
  return peer('squid', child, { proxyUrl: `http://127.0.0.1:${port}` });
}

export async function startMitmproxy(net: BenchNet, port: number): Promise<RunningPeer> {
  const confdir = join(net.work, 'mitmproxy');
  mkdirSync(confdir, { recursive: true });
  // mitmdump with its default addons but quiet (no per-flow output), verifying the upstream.
  const args = ['-q', '--listen-host', '127.0.0.1', '--listen-port', String(port), '--set', `confdir=${confdir}`, '--set', `ssl_verify_upstream_trusted_ca=${net.upstreamCaFile}`];
  const child = spawnPinned(join(net.tools, 'mitmdump'), args, { cpu: net.proxyCpu, nice: net.nice, hostsFile: net.hostsToUpstream });
  await waitForPort('mitmproxy', '127.0.0.1', port, child, 60_000);
  const caFile = join(confdir, 'mitmproxy-ca-cert.pem');
  if (!existsSync(caFile)) throw new Error(`mitmproxy wrote no CA at ${caFile}`);
  return peer('mitmproxy', child, { proxyUrl: `http://127.0.0.1:${port}`, caFile });
}

export async function startSmokescreen(net: BenchNet, port: number): Promise<RunningPeer> {
  const dir = join(net.work, 'smokescreen');
  mkdirSync(dir, { recursive: true });
  const acl = join(dir, 'acl.yaml');
  // The same rule sluice's policy applies to this name: an allow-list that is enforced.
  writeFileSync(acl, ['---', 'version: v1', 'services: []', 'default:', '  name: bench-agent', '  project: bench', '  action: enforce', '  allowed_domains:', `    - ${net.name}`, ''].join('\n'));
  const conf = join(dir, 'smokescreen.yaml');
  writeFileSync(
    conf,
    [
      '---',
      'ip: 127.0.0.1',
      `port: ${port}`,
      `acl_file: ${acl}`,
      // No client certificates here, so every client gets the default ACL entry above.
      'allow_missing_role: true',
      // The upstream is on loopback, which smokescreen refuses unless allowed.
      `allow_ranges: ["${net.upstreamIp}/32"]`,
      // Go's default keeps 2 idle upstream connections per host; the load has more in flight.
      'transport_max_idle_conns: 256',
      'transport_max_idle_conns_per_host: 256',
      '',
    ].join('\n'),
  );
  // smokescreen logs every request as a JSON line (its audit trail); it goes to /dev/null here.
  const child = spawnPinned(join(net.tools, 'smokescreen'), ['--config-file', conf], { cpu: net.proxyCpu, nice: net.nice, hostsFile: net.hostsToUpstream });
  await waitForPort('smokescreen', '127.0.0.1', port, child);
  return peer('smokescreen', child, { proxyUrl: `http://127.0.0.1:${port}` });
}
