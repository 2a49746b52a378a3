// A real Prometheus (tools/install.sh builds it from its Go module, with Kubernetes discovery) for
// tests, on a free loopback port with a temporary TSDB. Targets come from a file_sd file the test rewrites (`setTargets`),
// so one Prometheus per test file serves every component it starts. Queries go through the HTTP
// API; a query Prometheus refuses (parse error, bad function) rejects with PromQLError carrying
// Prometheus' own message. Only ever listens on 127.0.0.1, and scrapes 127.0.0.1 unless the caller's
// own scrape configs say otherwise (e2e/cluster/prometheus.ts: pod IPs on its node's bridge).
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify as toYaml } from 'yaml';
import { freePort, startProcess, stopProcess, waitReady } from '../kube/cluster.ts';

export const PROMETHEUS = process.env.SLUICE_PROMETHEUS ?? join(import.meta.dirname, '..', '..', '..', '.tools', 'bin', 'prometheus');

export interface ScrapeTarget {
  /** host:port on loopback */
  address: string;
  /** labels every scraped series gets (namespace, pod, container, as the Operator adds them) */
  labels: Record<string, string>;
}

export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

export class PromQLError extends Error {
  readonly code = 'SLUICE_PROMQL_REFUSED';
  readonly errorType: string;
  constructor(errorType: string, message: string) {
    super(message);
    this.name = 'PromQLError';
    this.errorType = errorType;
  }
}

export interface PrometheusOptions {
  /** scrape and rule evaluation interval, e.g. '1s' */
  interval?: string;
  readyTimeoutMs?: number;
  /** the executable (default PROMETHEUS) */
  binary?: string;
  /** scrape configs replacing the file_sd job (setTargets then does nothing): e2e/cluster/prometheus.ts */
  scrapeConfigs?: Record<string, unknown>[];
}

export class PrometheusServer {
  readonly url: string;
  readonly dir: string;
  readonly logFile: string;
  private readonly child: ChildProcess;

  private constructor(url: string, dir: string, child: ChildProcess, logFile: string) {
    this.url = url;
    this.dir = dir;
    this.child = child;
    this.logFile = logFile;
  }

  static async start(o: PrometheusOptions = {}): Promise<PrometheusServer> {
    const binary = o.binary ?? PROMETHEUS;
    if (!existsSync(binary)) throw new Error(`${binary} is missing: run \`make tools\` (tools/install.sh builds prometheus)`);
    const dir = mkdtempSync(join(tmpdir(), 'sluice-prometheus-'));
    const interval = o.interval ?? '1s';
    const config = {
      global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
      scrape_configs: o.scrapeConfigs ?? [{ job_name: 'sluice', file_sd_configs: [{ files: [join(dir, 'targets.json')], refresh_interval: '1s' }] }],
    };
    writeFileSync(join(dir, 'prometheus.yml'), toYaml(config));
    writeFileSync(join(dir, 'targets.json'), '[]');
    const port = await freePort();
    const logFile = join(dir, 'prometheus.log');
    const child = startProcess(
      binary,
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--storage.tsdb.retention.time=1h',
        '--query.lookback-delta=1m',
      ],
      logFile,
    );
    const server = new PrometheusServer(`http://127.0.0.1:${port}`, dir, child, logFile);
    await waitReady('prometheus', child, logFile, o.readyTimeoutMs ?? 30_000, async () => {
      const res = await request(`${server.url}/-/ready`);
      await res.body.dump();
      return res.statusCode === 200;
    });
    return server;
  }

  /** Replaces the scrape targets (atomically: Prometheus watches the file). */
  setTargets(targets: ScrapeTarget[]): void {
    const path = join(this.dir, 'targets.json');
    writeFileSync(`${path}.tmp`, JSON.stringify(targets.map((t) => ({ targets: [t.address], labels: t.labels }))));
    renameSync(`${path}.tmp`, path);
  }

  async #api<T>(path: string, params: Record<string, string>): Promise<T> {
    const query = new URLSearchParams(params).toString();
    const res = await request(`${this.url}${path}${query ? `?${query}` : ''}`);
    const body = (await res.body.json()) as { status: string; data?: T; errorType?: string; error?: string };
    if (body.status !== 'success') throw new PromQLError(body.errorType ?? String(res.statusCode), body.error ?? `HTTP ${res.statusCode}`);
    return body.data as T;
  }

  /** Instant query; vector results only (scalars come back as one unlabelled sample). */
  async query(expr: string, timeSeconds?: number): Promise<Sample[]> {
    const data = await this.#api<{ resultType: string; result: unknown }>('/api/v1/query', { query: expr, ...(timeSeconds ? { time: String(timeSeconds) } : {}) });
    if (data.resultType === 'scalar' || data.resultType === 'string') return [{ metric: {}, value: data.result as [number, string] }];
    return data.result as Sample[];
  }

  /** Every metric name Prometheus holds series for. */
  async metricNames(): Promise<string[]> {
    return this.#api<string[]>('/api/v1/label/__name__/values', {});
  }

  /** Scrape health of every target. */
  async targets(): Promise<{ scrapeUrl: string; health: string; lastError: string; labels: Record<string, string> }[]> {
    const res = await request(`${this.url}/api/v1/targets`);
    const body = (await res.body.json()) as { data: { activeTargets: { scrapeUrl: string; health: string; lastError: string; labels: Record<string, string> }[] } };
    return body.data.activeTargets;
  }

  /** Polls an instant query until `accept` holds (bounded: external process catching up). */
  async waitFor(expr: string, accept: (samples: Sample[]) => boolean, timeoutMs = 20_000): Promise<Sample[]> {
    const deadline = Date.now() + timeoutMs;
    let last: Sample[] = [];
    while (Date.now() < deadline) {
      last = await this.query(expr).catch(() => []);
      if (accept(last)) return last;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`prometheus: "${expr}" not satisfied after ${timeoutMs} ms; last result ${JSON.stringify(last)}`);
  }

  async stop(): Promise<void> {
    await stopProcess(this.child);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
