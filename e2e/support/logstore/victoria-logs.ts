// The real audit store for tests: VictoriaLogs (Apache-2.0, built unmodified from its Go module
// by tools/install.sh) on a free loopback port with its data in a temp directory; started, polled
// until /health answers, and stopped. It can restart on the same port and data (a store that goes
// away and comes back). It accepts the Loki push API sluice speaks at /insert/loki/api/v1/push,
// so `pushUrl` is what a recorder's `loki.url` points at; sessions are read back with LogsQL
// through the same reader `kubectl sluice replay` uses. It listens on 127.0.0.1 (or the address a
// test gives it, e2e/cluster's bridge) and talks to nothing else.
//
// Loki itself is AGPL and the Go module proxy here marks it not to be used, so it is not built;
// the Loki query side is tested against recorded responses in its documented format instead.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import type { AuditEvent } from '../../../api/src/index.ts';
import { collectSession } from '../../../lib/src/audit/session-source.ts';
import type { StoreSource, StoredItem } from '../../../lib/src/audit/session-source.ts';
import { freePort } from '../kube/cluster.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');

export class LogStoreHarnessError extends Error {
  readonly code: 'SLUICE_LOGSTORE_BINARY_MISSING' | 'SLUICE_LOGSTORE_NOT_READY' | 'SLUICE_LOGSTORE_EXITED';
  constructor(code: LogStoreHarnessError['code'], message: string) {
    super(message);
    this.name = 'LogStoreHarnessError';
    this.code = code;
  }
}

export function victoriaLogsBinary(): string {
  const path = process.env.SLUICE_VICTORIALOGS_BIN ?? join(ROOT, '.tools', 'bin', 'victoria-logs');
  if (!existsSync(path)) throw new LogStoreHarnessError('SLUICE_LOGSTORE_BINARY_MISSING', `${path} is missing: run \`make tools\` (tools/install.sh builds victoria-logs)`);
  return path;
}

export interface LogStoreOptions {
  /** Use this HTTP port (e.g. one a recorder was already pointed at while the store was down). */
  httpPort?: number;
  readyTimeoutMs?: number;
  /** Address to listen on (default 127.0.0.1; e2e/cluster binds its node's bridge address so pods reach it). */
  host?: string;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export class VictoriaLogsServer {
  readonly dir: string;
  readonly httpPort: number;
  /** Base of the query API (`kubectl sluice replay --victorialogs <url>`). */
  readonly url: string;
  /** What a recorder's `loki.url` points at: the push path is appended to it. */
  readonly pushUrl: string;
  private child: ChildProcess | undefined;
  private readonly logFile: string;

  readonly host: string;

  private constructor(dir: string, httpPort: number, host = '127.0.0.1') {
    this.dir = dir;
    this.httpPort = httpPort;
    this.host = host;
    this.url = `http://${host}:${httpPort}`;
    this.pushUrl = `${this.url}/insert`;
    this.logFile = join(dir, 'victoria-logs.log');
  }

  /** Picks a port and a data directory without starting: for a store that is down at first. */
  static async prepare(opts: LogStoreOptions = {}): Promise<VictoriaLogsServer> {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-vlogs-'));
    return new VictoriaLogsServer(dir, opts.httpPort ?? (await freePort()), opts.host);
  }

  static async start(opts: LogStoreOptions = {}): Promise<VictoriaLogsServer> {
    const server = await VictoriaLogsServer.prepare(opts);
    await server.up(opts.readyTimeoutMs);
    return server;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts (or restarts) the store on its port and data; resolves when /health answers 200. */
  async up(readyTimeoutMs = 30_000): Promise<void> {
    if (this.running) return;
    const log = createWriteStream(this.logFile, { flags: 'a' });
    const args = [
      `-httpListenAddr=${this.host}:${this.httpPort}`,
      `-storageDataPath=${join(this.dir, 'data')}`,
      // Keep each pushed line byte for byte in _msg: the hash chain is over those bytes.
      '-loki.disableMessageParsing',
      '-retentionPeriod=30d',
      '-loggerLevel=WARN',
    ];
    const child = spawn(victoriaLogsBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pipe(log);
    child.stderr.pipe(log);
    live.add(child);
    child.once('exit', () => live.delete(child));
    this.child = child;
    const deadline = Date.now() + readyTimeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) throw new LogStoreHarnessError('SLUICE_LOGSTORE_EXITED', `victoria-logs exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${this.logTail()}`);
      const ready = await request(`${this.url}/health`)
        .then(async (res) => {
          await res.body.dump();
          return res.statusCode === 200;
        })
        .catch(() => false);
      if (ready) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new LogStoreHarnessError('SLUICE_LOGSTORE_NOT_READY', `victoria-logs not ready after ${readyTimeoutMs} ms:\n${this.logTail()}`);
  }

  /** Stops the store, keeping its data for a later up(). */
  async down(graceMs = 10_000): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }

  /** Stops the store and deletes its data. */
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

  /** The reader's source for this store (tenant: `AccountID[:ProjectID]`). */
  source(tenant?: string): StoreSource {
    return { kind: 'victorialogs', url: this.url, tenant };
  }

  /**
   * Makes everything ingested so far searchable. VictoriaLogs buffers new rows for about a second
   * before queries see them; its /internal/force_flush ends that wait deterministically.
   */
  async flush(): Promise<void> {
    const res = await request(`${this.url}/internal/force_flush`);
    await res.body.dump();
    if (res.statusCode !== 200) throw new Error(`victoria-logs force_flush answered ${res.statusCode}`);
  }

  /** Everything the store holds for a session, in timestamp order. */
  async session(session: string, tenant?: string): Promise<StoredItem[]> {
    await this.flush();
    return collectSession(this.source(tenant), { session, lookbackMs: 24 * 3600 * 1000 });
  }

  /** The session's events as parsed objects (fails on a line that is not JSON). */
  async sessionEvents(session: string, tenant?: string): Promise<AuditEvent[]> {
    return toEvents(await this.session(session, tenant));
  }
}

export function toEvents(items: StoredItem[]): AuditEvent[] {
  return items.map((i) => {
    if (typeof i.value !== 'object') throw new Error(`store holds a line that is not JSON: ${i.line.slice(0, 100)}`);
    return i.value as AuditEvent;
  });
}
