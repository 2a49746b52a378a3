// The real Loki (built unmodified from its Go module by tools/install.sh; AGPL, so it only ever
// runs as a separate process) as a test service: a single-binary config on free loopback ports
// with filesystem storage in a temp directory, started, polled until /ready, and stopped. It can
// restart on the same ports and data (a store that goes away and comes back). Plus a reader of
// everything a session has in the store. It never talks to anything but 127.0.0.1.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify as toYaml } from 'yaml';
import type { AuditEvent } from '../../../api/src/index.ts';
import { collectSession } from '../../../sidecar/src/audit/session-source.ts';
import type { StoredItem } from '../../../sidecar/src/audit/session-source.ts';
import { freePort } from '../kube/cluster.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');

export class LokiHarnessError extends Error {
  readonly code: 'SLUICE_LOKI_BINARY_MISSING' | 'SLUICE_LOKI_NOT_READY' | 'SLUICE_LOKI_EXITED';
  constructor(code: LokiHarnessError['code'], message: string) {
    super(message);
    this.name = 'LokiHarnessError';
    this.code = code;
  }
}

export function lokiBinary(): string {
  const path = process.env.SLUICE_LOKI_BIN ?? join(ROOT, '.tools', 'bin', 'loki');
  if (!existsSync(path)) throw new LokiHarnessError('SLUICE_LOKI_BINARY_MISSING', `${path} is missing: run \`make tools\` (tools/install.sh builds loki)`);
  return path;
}

export interface LokiOptions {
  /** Require X-Scope-OrgID on every request (multi-tenant mode). */
  authEnabled?: boolean;
  /** Use this HTTP port (e.g. one a recorder was already pointed at while Loki was down). */
  httpPort?: number;
  readyTimeoutMs?: number;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Loki's single-binary configuration for one test instance. */
export function lokiConfig(dir: string, httpPort: number, grpcPort: number, authEnabled: boolean): Record<string, unknown> {
  return {
    auth_enabled: authEnabled,
    server: {
      http_listen_address: '127.0.0.1',
      http_listen_port: httpPort,
      grpc_listen_address: '127.0.0.1',
      grpc_listen_port: grpcPort,
      log_level: 'warn',
    },
    common: {
      instance_addr: '127.0.0.1',
      path_prefix: dir,
      storage: { filesystem: { chunks_directory: join(dir, 'chunks'), rules_directory: join(dir, 'rules') } },
      replication_factor: 1,
      ring: { kvstore: { store: 'inmemory' } },
    },
    ingester: { lifecycler: { min_ready_duration: '0s', final_sleep: '0s' } },
    schema_config: {
      configs: [{ from: '2020-10-24', store: 'tsdb', object_store: 'filesystem', schema: 'v13', index: { prefix: 'index_', period: '24h' } }],
    },
    // One audit stream per pod carries every event: the default per-stream limit (3 MB/s) is far
    // below a benchmark's rate. Production values are the operator's (docs/audit.md).
    limits_config: {
      ingestion_rate_mb: 512,
      ingestion_burst_size_mb: 1024,
      per_stream_rate_limit: '512MB',
      per_stream_rate_limit_burst: '1024MB',
      max_entries_limit_per_query: 5000,
    },
    analytics: { reporting_enabled: false },
  };
}

export class LokiServer {
  readonly dir: string;
  readonly httpPort: number;
  readonly grpcPort: number;
  readonly url: string;
  readonly authEnabled: boolean;
  private child: ChildProcess | undefined;
  private readonly logFile: string;

  private constructor(dir: string, httpPort: number, grpcPort: number, authEnabled: boolean) {
    this.dir = dir;
    this.httpPort = httpPort;
    this.grpcPort = grpcPort;
    this.authEnabled = authEnabled;
    this.url = `http://127.0.0.1:${httpPort}`;
    this.logFile = join(dir, 'loki.log');
  }

  /** Picks ports and writes the config without starting: for a store that is down at first. */
  static async prepare(opts: LokiOptions = {}): Promise<LokiServer> {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-loki-'));
    const server = new LokiServer(dir, opts.httpPort ?? (await freePort()), await freePort(), opts.authEnabled ?? false);
    writeFileSync(join(dir, 'loki.yaml'), toYaml(lokiConfig(dir, server.httpPort, server.grpcPort, server.authEnabled)));
    return server;
  }

  static async start(opts: LokiOptions = {}): Promise<LokiServer> {
    const server = await LokiServer.prepare(opts);
    await server.up(opts.readyTimeoutMs);
    return server;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts (or restarts) Loki on its ports and data directory; resolves when /ready answers 200. */
  async up(readyTimeoutMs = 60_000): Promise<void> {
    if (this.running) return;
    const log = createWriteStream(this.logFile, { flags: 'a' });
    const child = spawn(lokiBinary(), [`-config.file=${join(this.dir, 'loki.yaml')}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pipe(log);
    child.stderr.pipe(log);
    live.add(child);
    child.once('exit', () => live.delete(child));
    this.child = child;
    const deadline = Date.now() + readyTimeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) throw new LokiHarnessError('SLUICE_LOKI_EXITED', `loki exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${this.logTail()}`);
      const ready = await request(`${this.url}/ready`)
        .then(async (res) => {
          await res.body.dump();
          return res.statusCode === 200;
        })
        .catch(() => false);
      if (ready) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new LokiHarnessError('SLUICE_LOKI_NOT_READY', `loki not ready after ${readyTimeoutMs} ms:\n${this.logTail()}`);
  }

  /** Stops Loki, keeping its data for a later up(). */
  async down(graceMs = 10_000): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }

  /** Stops Loki and deletes its data. */
  async stop(): Promise<void> {
    await this.down();
    rmSync(this.dir, { recursive: true, force: true });
  }

  logTail(lines = 30): string {
    try {
      return readFileSync(this.logFile, 'utf8').trim().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** Everything the store holds for a session, in the store's order (query_range, paged). */
  async session(session: string, tenant?: string): Promise<StoredItem[]> {
    return collectSession({ kind: 'loki', url: this.url, tenant }, { session, lookbackMs: 24 * 3600 * 1000 });
  }

  /** The session's events as parsed objects (fails on a line that is not JSON). */
  async sessionEvents(session: string, tenant?: string): Promise<AuditEvent[]> {
    return (await this.session(session, tenant)).map((i) => {
      if (typeof i.value !== 'object') throw new Error(`store holds a line that is not JSON: ${i.line.slice(0, 100)}`);
      return i.value as AuditEvent;
    });
  }
}
