// The Node load generator for the HTTPS cases wrk cannot express (a CONNECT tunnel with TLS inside,
// and TLS with a chosen SNI to an address). A closed loop: `concurrency` workers, each sending GET
// after GET on its own keep-alive connection for a bounded time; warm-up requests (which open the
// connections and do the TLS handshakes) are not recorded. Runs in its own process, pinned by the
// caller, and stays up between runs (no start-up per phase): each LoadSpec read as a JSON line on
// stdin is run on fresh connections and answered with one JSON line (count, latency percentiles ms).
//   node bench/proxy/load.ts    < one LoadSpec per line
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Pool, ProxyAgent } from 'undici';
import type { Dispatcher } from 'undici';
import { percentile, sortedCopy } from '../lib/stats.ts';

export interface LoadSpec {
  /** https://name — the origin the agent asks for (Host and SNI) */
  origin: string;
  path: string;
  /** direct TLS to this address:port with SNI = the origin's name (no proxy, or a transparent port) */
  dial?: string;
  /** explicit proxy URL: CONNECT origin's host:443 through it, TLS inside the tunnel */
  proxy?: string;
  /** PEM files the client trusts (the upstream CA, or the intercepting proxy's CA) */
  caFiles: string[];
  /** offer h2 in ALPN (direct dial only): the workers' requests share multiplexed connections */
  h2?: boolean;
  concurrency: number;
  warmupMs: number;
  durationMs: number;
}

export interface LoadResult {
  requests: number;
  errors: number;
  firstError?: string;
  seconds: number;
  p50ms: number;
  p90ms: number;
  p99ms: number;
  maxms: number;
}

function dispatcherFor(spec: LoadSpec): Dispatcher {
  const ca = spec.caFiles.map((f) => readFileSync(f, 'utf8'));
  const name = new URL(spec.origin).hostname;
  if (spec.proxy) return new ProxyAgent({ uri: spec.proxy, requestTls: { ca, servername: name } });
  if (!spec.dial) throw new Error('a load spec needs dial or proxy');
  // Dial the address, but present and verify the benchmark name (SNI + certificate check).
  return new Pool(`https://${spec.dial}`, { connections: spec.concurrency, connect: { ca, servername: name }, ...(spec.h2 ? { allowH2: true } : {}) });
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const dispatcher = dispatcherFor(spec);
  const host = new URL(spec.origin).host;
  // Room for every request a worker can make; a worker stops recording when full.
  const samples = new Float64Array(2_000_000);
  let recorded = 0;
  let errors = 0;
  let firstError: string | undefined;
  let recording = false;
  let stop = false;
  const one = async (): Promise<void> => {
    const t0 = process.hrtime.bigint();
    try {
      const res = await dispatcher.request({ origin: spec.origin, path: spec.path, method: 'GET', headers: { host } });
      await res.body.dump();
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
      if (recording && recorded < samples.length) samples[recorded++] = Number(process.hrtime.bigint() - t0) / 1e6;
    } catch (err) {
      if (recording) errors++;
      firstError ??= (err as Error).message;
    }
  };
  const worker = async (): Promise<void> => {
    while (!stop) await one();
  };
  const workers = Array.from({ length: spec.concurrency }, worker);
  await new Promise((resolve) => setTimeout(resolve, spec.warmupMs));
  recording = true;
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, spec.durationMs));
  recording = false;
  const seconds = (performance.now() - started) / 1000;
  stop = true;
  await Promise.all(workers);
  await dispatcher.close();
  const sorted = sortedCopy(samples.subarray(0, recorded));
  return {
    requests: recorded,
    errors,
    firstError,
    seconds,
    p50ms: percentile(sorted, 50),
    p90ms: percentile(sorted, 90),
    p99ms: percentile(sorted, 99),
    maxms: sorted.length ? sorted[sorted.length - 1]! : NaN,
  };
}

if (import.meta.main) {
  // One run at a time, in order: the caller waits for each answer before sending the next spec.
  for await (const line of createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    process.stdout.write(`${JSON.stringify(await runLoad(JSON.parse(line) as LoadSpec))}\n`);
  }
}
