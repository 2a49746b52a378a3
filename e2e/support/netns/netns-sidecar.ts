// Runs the real sidecar inside an AgentNetns as its own UID, after installing the real
// interception rules with the init-network command — the same two commands the pod runs.
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { AgentNetns} from './agent-netns.ts';
import { SIDECAR_UID } from './agent-netns.ts';

export interface NetnsSidecarOptions {
  resolve: Record<string, string>;
  extraRootsFiles?: string[];
  /** policy bundle path relative to the repo (default: the built default bundle) */
  bundle?: string;
  extraConfig?: Record<string, unknown>;
}

export interface NetnsSidecar {
  process: ChildProcess;
  trustDir: string;
  caFile: string;
  bundleFile: string;
  adminUrl: string;
  logFile: string;
  /** Env that makes common clients trust the pod CA (what the webhook sets). */
  agentEnv: Record<string, string>;
  stop(): Promise<void>;
}

export const PORTS = { transparent: 15001, proxy: 15080, dns: 15053, admin: 15090 };

export async function startNetnsSidecar(ns: AgentNetns, o: NetnsSidecarOptions): Promise<NetnsSidecar> {
  const work = ns.dirFor(SIDECAR_UID, 'sidecar');
  const trustDir = ns.dirFor(SIDECAR_UID, 'trust');
  // Copies the sidecar's UID can read wherever the originals live.
  const roots = (o.extraRootsFiles ?? []).map((from, i) => {
    const to = join(work, `extra-root-${i}.pem`);
    writeFileSync(to, readFileSync(from));
    return { from, to };
  });
  const config = {
    pod: { namespace: 'agents', name: 'coder-0', serviceAccount: 'coder' },
    policy: { path: join(ns.repo, o.bundle ?? 'policies/build/bundle.tar.gz'), pollIntervalMs: 1000 },
    trustDir,
    ports: PORTS,
    upstream: { resolve: o.resolve, extraRootsFiles: roots.map((r) => r.to) },
    audit: { spoolDir: join(work, 'spool') },
    ...o.extraConfig,
  };
  const configFile = join(work, 'config.yaml');
  writeFileSync(configFile, stringify(config));
  const env = { SLUICE_CONFIG_FILE: configFile };
  const init = await ns.run(ns.node, [join(ns.repo, 'sidecar/src/main.ts'), 'init-network'], { uid: 0, env });
  if (init.code !== 0) throw new Error(`init-network failed: ${init.stderr}${init.stdout}`);
  const logFile = join(work, 'sidecar.log');
  const child = ns.spawn(ns.node, [join(ns.repo, 'sidecar/src/main.ts'), 'proxy'], { uid: SIDECAR_UID, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(logFile);
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const adminUrl = `http://${ns.nsAddr4}:${PORTS.admin}`;
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`sidecar exited (${code}); see ${logFile}`))));
  // Bounded readiness poll of an external process: the startupProbe's job in a pod.
  const ready = (async () => {
    for (let i = 0; i < 300; i++) {
      try {
        const res = await fetch(`${adminUrl}/readyz`);
        if (res.status === 200) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`sidecar not ready after 30 s; see ${logFile}`);
  })();
  await Promise.race([ready, exited]);
  exited.catch(() => undefined);
  const caFile = join(trustDir, 'ca.crt');
  const bundleFile = join(trustDir, 'ca-bundle.crt');
  return {
    process: child,
    trustDir,
    caFile,
    bundleFile,
    adminUrl,
    logFile,
    agentEnv: {
      SSL_CERT_FILE: bundleFile,
      CURL_CA_BUNDLE: bundleFile,
      REQUESTS_CA_BUNDLE: bundleFile,
      GIT_SSL_CAINFO: bundleFile,
      AWS_CA_BUNDLE: bundleFile,
      NODE_EXTRA_CA_CERTS: caFile,
    },
    stop: () => stopSidecar(child, logFile),
  };
}

/** How long a sidecar may take to stop after SIGTERM before it is killed and the test fails. */
const STOP_GRACE_MS = 10_000;

/**
 * Stops the sidecar and fails (rejects) when it did not stop cleanly: when it had already died
 * (a crash: a non-zero exit code or a signal such as SIGSEGV/SIGKILL — `exitCode` stays null
 * then, `signalCode` is set) or when it does not exit on SIGTERM in time. Never waits unbounded.
 */
export function stopSidecar(child: ChildProcess, logFile: string): Promise<void> {
  const describe = (code: number | null, signal: NodeJS.Signals | null) => (signal ? `signal ${signal}` : `exit code ${code}`);
  if (child.exitCode !== null || child.signalCode !== null) {
    if (child.exitCode === 0) return Promise.resolve();
    return Promise.reject(new Error(`the sidecar had died before stop() (${describe(child.exitCode, child.signalCode)}); see ${logFile}`));
  }
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the sidecar did not stop within ${STOP_GRACE_MS} ms of SIGTERM; killed; see ${logFile}`));
    }, STOP_GRACE_MS);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      // `ip netns exec` relays the sidecar's own exit status; SIGTERM handled is exit 0.
      if (code === 0) resolve();
      else reject(new Error(`the sidecar stopped uncleanly (${describe(code, signal)}); see ${logFile}`));
    });
    child.kill('SIGTERM');
  });
}
