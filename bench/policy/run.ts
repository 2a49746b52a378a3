// bench/policy: sluice's decision engine side by side, in one process and interleaved round by
// round so machine load falls on every peer alike. Two input streams:
//  - a modelled agent session (agent-trace.ts): what varies in real traffic varies (growing LLM
//    prompts, new tarballs, trace ids), every input has a new session seq. The engine as it runs
//    (decision cache on: an input identical in every part the policy reads is answered from it),
//    the engine with the cache off (the WASM runs for every input) and the WASM floor (opa_eval
//    alone on pre-encoded bytes of the same inputs: what this policy costs in V8, no JavaScript).
//  - the 8-input golden mix, each evaluation with a new session seq: the engine with the cache off,
//    the engine with it on (every input repeats in what the policy reads: the hit path alone), the
//    path the engine replaced (SDK evaluate + schema on every result), the WASM floor, and
//    `opa bench` on the same policy and inputs (OPA's Go evaluator, topdown).
// One core each (GOMAXPROCS=1, one JS thread). opa's own WASM target needs a cgo build with
// wasmtime, which the pinned static opa is not.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadPolicy } from '@open-policy-agent/opa-wasm';
import { POLICY_ENTRYPOINT } from '../../api/src/index.ts';
import type { PolicyInput } from '../../api/src/index.ts';
import { loadDecisionCases } from '../../policies/cases/cases.ts';
import { readBundle } from '../../lib/src/policy/bundle.ts';
import { PolicyEngine } from '../../lib/src/policy/engine.ts';
import { percentile, sortedCopy, table } from '../lib/stats.ts';
import { TRACE_KINDS, agentTrace } from './agent-trace.ts';
import { SdkPathEngine } from './sdk-path.ts';

const root = join(import.meta.dirname, '..', '..');
const opa = join(root, '.tools', 'bin', 'opa');
const bundlePath = join(root, 'policies', 'build', 'bundle.tar.gz');
const scratch = join(root, 'bench', 'results', 'policy-inputs');

// The golden mix: what an agent's traffic looks like (mostly reads, some holds and denies).
const MIX = [
  'git fetch upload-pack POST',
  'npm tarball',
  'pypi simple index',
  'openai chat completion',
  'kubernetes list pods',
  's3 get object',
  'git push receive-pack POST is held',
  'unknown host denied',
];

const allCases = loadDecisionCases();
const cases = allCases.filter((c) => MIX.includes(c.name));
const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? 100_000);
const ROUNDS = 10;
const encoder = new TextEncoder();

interface Peer {
  name: string;
  stream: 'trace' | 'mix';
  run: (i: number) => unknown;
  samples: Float64Array;
  n: number;
  ns: bigint;
  engine?: PolicyEngine;
}

function withSeq(input: PolicyInput, seq: number): PolicyInput {
  return { request: input.request, facts: input.facts, pod: input.pod, session: { ...input.session, seq } };
}

async function benchEngines() {
  const bundle = await readBundle(bundlePath);
  const cached = new PolicyEngine();
  await cached.load(bundle);
  const uncached = new PolicyEngine({ decisionCache: false });
  await uncached.load(bundle);
  const mixCached = new PolicyEngine();
  await mixCached.load(bundle);
  if (!cached.decisionCache.enabled) throw new Error(`the bundle gets no decision cache: ${cached.decisionCache.why} (run make policy)`);
  const sdk = await SdkPathEngine.load(bundle);
  // The floor: the same module, the same input bytes, nothing but opa_eval.
  const floorPolicy = await loadPolicy(bundle.wasm);
  floorPolicy.setData(bundle.data as object);
  const fp = floorPolicy as unknown as { mem: { buffer: ArrayBuffer }; dataAddr: number; dataHeapPtr: number; wasmInstance: { exports: { opa_eval: (...a: number[]) => number } } };
  const entrypoint = (floorPolicy.entrypoints as Record<string, number>)[POLICY_ENTRYPOINT]!;
  const floor = (bytes: Uint8Array) => {
    new Uint8Array(fp.mem.buffer).set(bytes, fp.dataHeapPtr);
    return fp.wasmInstance.exports.opa_eval(0, entrypoint, fp.dataAddr, fp.dataHeapPtr, bytes.length, fp.dataHeapPtr + bytes.length, 0);
  };
  const mixBytes = cases.map((c) => encoder.encode(JSON.stringify(c.input)));

  // Every path must decide exactly as the SDK path, and the cached engine as the uncached one on
  // a whole trace (the golden tests cover every case; sidecar/test/policy/decision-cache.test.ts
  // every variation of a read field).
  for (const c of cases) {
    const a = JSON.stringify(uncached.evaluate(c.input).decision);
    const b = JSON.stringify(sdk.evaluate(c.input));
    if (a !== b) throw new Error(`decisions differ for ${c.name}: ${a} vs ${b}`);
  }
  {
    const check = new PolicyEngine();
    await check.load(bundle);
    const next = agentTrace(allCases, 99);
    for (let i = 0; i < 5_000; i++) {
      const input = next();
      const a = JSON.stringify(check.evaluate(input));
      const b = JSON.stringify(uncached.evaluate(input));
      if (a !== b) throw new Error(`cached and uncached decisions differ: ${a} vs ${b} for ${JSON.stringify(input.request)}`);
    }
  }

  const perRound = Math.ceil(ITERATIONS / ROUNDS);
  const samples = () => new Float64Array(perRound * ROUNDS);
  let trace: PolicyInput[] = [];
  let traceBytes: Uint8Array[] = [];
  let seq = 0;
  const mixInput = (i: number) => withSeq(cases[i % cases.length]!.input, seq++);
  const peers: Peer[] = [
    { name: 'sluice engine (decision cache on)', stream: 'trace', run: (i) => cached.evaluate(trace[i]!), samples: samples(), n: 0, ns: 0n, engine: cached },
    { name: 'sluice engine, cache off (WASM every time)', stream: 'trace', run: (i) => uncached.evaluate(trace[i]!), samples: samples(), n: 0, ns: 0n },
    { name: 'WASM floor (opa_eval alone)', stream: 'trace', run: (i) => floor(traceBytes[i]!), samples: samples(), n: 0, ns: 0n },
    { name: 'sluice engine, cache off (WASM every time)', stream: 'mix', run: (i) => uncached.evaluate(mixInput(i)), samples: samples(), n: 0, ns: 0n },
    { name: 'sluice engine, cache on (hit path: only the seq changes)', stream: 'mix', run: (i) => mixCached.evaluate(mixInput(i)), samples: samples(), n: 0, ns: 0n, engine: mixCached },
    { name: 'previous path (SDK evaluate + schema)', stream: 'mix', run: (i) => sdk.evaluate(mixInput(i)), samples: samples(), n: 0, ns: 0n },
    { name: 'WASM floor (opa_eval alone)', stream: 'mix', run: (i) => floor(mixBytes[i % mixBytes.length]!), samples: samples(), n: 0, ns: 0n },
  ];
  // Warm the JIT on throwaway engines (the measured cached engine starts a session with an empty cache).
  {
    const warmCached = new PolicyEngine();
    await warmCached.load(bundle);
    const next = agentTrace(allCases, 7);
    for (let i = 0; i < 20_000; i++) {
      const input = next();
      warmCached.evaluate(input);
      uncached.evaluate(input);
      sdk.evaluate(mixInput(i));
      floor(mixBytes[i % mixBytes.length]!);
    }
  }
  const next = agentTrace(allCases);
  for (let round = 0; round < ROUNDS; round++) {
    // The next stretch of the session, built (and encoded for the floor) outside the timed loops.
    trace = Array.from({ length: perRound }, next);
    traceBytes = trace.map((input) => encoder.encode(JSON.stringify(input)));
    for (const peer of peers) {
      const start = process.hrtime.bigint();
      for (let i = 0; i < perRound; i++) {
        const t0 = process.hrtime.bigint();
        peer.run(i);
        peer.samples[peer.n++] = Number(process.hrtime.bigint() - t0) / 1e3;
      }
      peer.ns += process.hrtime.bigint() - start;
    }
  }
  return peers.map((p) => {
    const sorted = sortedCopy(p.samples);
    const stats = p.engine?.decisionCache;
    const hitRate = stats ? stats.hits / (stats.hits + stats.misses) : undefined;
    return { name: p.name, stream: p.stream, perSecond: p.n / (Number(p.ns) / 1e9), p50: percentile(sorted, 50), p99: percentile(sorted, 99), hitRate };
  });
}

interface OpaBenchResult {
  N: number;
  T: number;
  Extra: Record<string, number>;
}

/** opa bench per input; the mix's rate is the harmonic combination of per-input ns/op. */
function benchOpa() {
  mkdirSync(scratch, { recursive: true });
  const perOp = cases.map((c, i) => {
    const file = join(scratch, `${i}.json`);
    writeFileSync(file, JSON.stringify(c.input));
    const args = ['bench', '--format', 'json', '-i', file, '-d', 'policies/rego', '-d', 'policies/data', '--ignore', '*_test.rego', 'data.sluice.decision'];
    const out = execFileSync(opa, args, { cwd: root, encoding: 'utf8', env: { ...process.env, GOMAXPROCS: '1' } });
    const r = JSON.parse(out) as OpaBenchResult;
    const extra = (k: string) => (r.Extra[`histogram_timer_rego_query_eval_ns_${k}`] ?? NaN) / 1e3;
    return { meanUs: r.T / r.N / 1e3, medianUs: extra('median'), p99Us: extra('99%') };
  });
  // Equal weight per input, as in the sluice loop: rate from the mean of the per-input means;
  // p50 from the per-input medians; p99 is the worst per-input p99 (an upper bound).
  const mean = perOp.reduce((a, b) => a + b.meanUs, 0) / perOp.length;
  return {
    name: 'opa bench (Go topdown evaluator)',
    perSecond: 1e6 / mean,
    p50: percentile(sortedCopy(perOp.map((o) => o.medianUs)), 50),
    p99: Math.max(...perOp.map((o) => o.p99Us)),
  };
}

const engines = await benchEngines();
const opaRego = process.env.BENCH_SKIP_OPA ? undefined : { ...benchOpa(), stream: 'mix' as const, hitRate: undefined };
const all = opaRego ? [...engines, opaRego] : engines;
const floorOf = (stream: string) => all.find((r) => r.stream === stream && r.name.startsWith('WASM floor'))!.perSecond;
const rows = all.map((r) => [
  r.stream === 'trace' ? 'agent trace' : '8-input mix',
  r.name,
  r.perSecond,
  r.p50,
  r.p99,
  r.hitRate === undefined ? '' : `${(r.hitRate * 100).toFixed(1)}%`,
  (r.perSecond / floorOf(r.stream)).toFixed(2),
]);
console.log(`policy decisions, one core, ${ROUNDS} interleaved rounds (${ITERATIONS.toLocaleString('en')} evaluations per row)`);
console.log(`agent trace (modelled, agent-trace.ts): ${TRACE_KINDS.join(', ')}; a new session seq every input`);
console.log('targets: >= 100,000 decisions/s, p99 <= 50 us\n');
console.log(table(['inputs', 'engine', 'decisions/s', 'p50 us', 'p99 us', 'cache hits', '÷ WASM floor'], rows));
const traceFloor = engines.find((r) => r.stream === 'trace' && r.name.startsWith('WASM floor'))!;
const traceCached = engines.find((r) => r.stream === 'trace' && r.hitRate !== undefined)!;
const hitPath = engines.find((r) => r.stream === 'mix' && r.hitRate !== undefined)!;
// p50 rather than the rate for the per-decision cost: on a shared machine the rate also counts time the process was not running.
console.log(
  `\nthe floor of an uncached decision here: opa_eval alone, p50 ${traceFloor.p50.toFixed(1)} us (${Math.round(traceFloor.perSecond).toLocaleString('en')}/s);` +
    ` 100,000/s uncached needs <= 10 us, the module itself ${(traceFloor.p50 / 10).toFixed(1)}x faster.` +
    ` A cache hit: p50 ${hitPath.p50.toFixed(2)} us; at ${(traceCached.hitRate! * 100).toFixed(1)}% hits the agent trace runs at ${Math.round(traceCached.perSecond).toLocaleString('en')}/s.`,
);
mkdirSync(join(root, 'bench', 'results'), { recursive: true });
writeFileSync(join(root, 'bench', 'results', 'policy.json'), JSON.stringify({ date: new Date().toISOString(), iterations: ITERATIONS, trace: TRACE_KINDS, engines, opaRego }, null, 2));
