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
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
