// bench/policy: sluice's decision engine side by side, in one process and interleaved round by
// round so machine load falls on every peer alike: the engine as it is (opa_eval called directly,
// decision schema-checked once per distinct result text), the path it replaced (the SDK's
// evaluate + the schema on every result), the WASM floor (opa_eval alone on pre-encoded input
// bytes, no JavaScript work: what this policy costs in V8) and `opa bench` on the same policy and
// inputs (OPA's Go evaluator, topdown). One core each (GOMAXPROCS=1, one JS thread). opa's own
// WASM target needs a cgo build with wasmtime, which the pinned static opa is not.
// Every engine evaluation gets a new session seq, as in the gateway, so no two inputs are
// byte-identical and nothing can be answered without running the policy.
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
import { SdkPathEngine } from './sdk-path.ts';

const root = join(import.meta.dirname, '..', '..');
const opa = join(root, '.tools', 'bin', 'opa');
const bundlePath = join(root, 'policies', 'build', 'bundle.tar.gz');
const scratch = join(root, 'bench', 'results', 'policy-inputs');

// A realistic mix: what an agent's traffic looks like (mostly reads, some holds and denies).
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

const cases = loadDecisionCases().filter((c) => MIX.includes(c.name));
const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? 200_000);
const ROUNDS = 10;

interface Peer {
  name: string;
  run: (input: PolicyInput) => unknown;
  samples: Float64Array;
  n: number;
  ns: bigint;
}

function withSeq(input: PolicyInput, seq: number): PolicyInput {
  return { request: input.request, facts: input.facts, pod: input.pod, session: { ...input.session, seq } };
}

async function benchEngines() {
  const bundle = await readBundle(bundlePath);
  const engine = new PolicyEngine();
  await engine.load(bundle);
  const sdk = await SdkPathEngine.load(bundle);
  // The floor: the same module, the same input bytes, nothing but opa_eval.
  const floorPolicy = await loadPolicy(bundle.wasm);
  floorPolicy.setData(bundle.data as object);
  const fp = floorPolicy as unknown as { mem: { buffer: ArrayBuffer }; dataAddr: number; dataHeapPtr: number; wasmInstance: { exports: { opa_eval: (...a: number[]) => number } } };
  const entrypoint = (floorPolicy.entrypoints as Record<string, number>)[POLICY_ENTRYPOINT]!;
  const encoded = cases.map((c) => new TextEncoder().encode(JSON.stringify(c.input)));
  let floorIndex = 0;
  const floor = () => {
    const bytes = encoded[floorIndex++ % encoded.length]!;
    new Uint8Array(fp.mem.buffer).set(bytes, fp.dataHeapPtr);
    return fp.wasmInstance.exports.opa_eval(0, entrypoint, fp.dataAddr, fp.dataHeapPtr, bytes.length, fp.dataHeapPtr + bytes.length, 0);
  };

  // The new path must decide exactly as the old one on the mix (the golden tests cover every case).
  for (const c of cases) {
    const a = JSON.stringify(engine.evaluate(c.input).decision);
    const b = JSON.stringify(sdk.evaluate(c.input));
    if (a !== b) throw new Error(`decisions differ for ${c.name}: ${a} vs ${b}`);
  }

  const perRound = Math.ceil(ITERATIONS / ROUNDS);
  const peers: Peer[] = [
    { name: 'sluice engine (direct opa_eval)', run: (i) => engine.evaluate(i), samples: new Float64Array(perRound * ROUNDS), n: 0, ns: 0n },
    { name: 'previous path (SDK evaluate + schema)', run: (i) => sdk.evaluate(i), samples: new Float64Array(perRound * ROUNDS), n: 0, ns: 0n },
    { name: 'WASM floor (opa_eval alone)', run: floor, samples: new Float64Array(perRound * ROUNDS), n: 0, ns: 0n },
  ];
  let seq = 0;
  for (const peer of peers) for (let i = 0; i < 20_000; i++) peer.run(withSeq(cases[i % cases.length]!.input, seq++));
  for (let round = 0; round < ROUNDS; round++) {
    for (const peer of peers) {
      const start = process.hrtime.bigint();
      for (let i = 0; i < perRound; i++) {
        const input = withSeq(cases[i % cases.length]!.input, seq++);
        const t0 = process.hrtime.bigint();
        peer.run(input);
        peer.samples[peer.n++] = Number(process.hrtime.bigint() - t0) / 1e3;
      }
      peer.ns += process.hrtime.bigint() - start;
    }
  }
  return peers.map((p) => {
    const sorted = sortedCopy(p.samples);
    return { name: p.name, perSecond: p.n / (Number(p.ns) / 1e9), p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
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
const opaRego = process.env.BENCH_SKIP_OPA ? undefined : benchOpa();
const sluice = engines[0]!;
const all = opaRego ? [...engines, opaRego] : engines;
const rows = all.map((r) => [r.name, r.perSecond, r.p50, r.p99, (sluice.perSecond / r.perSecond).toFixed(2)]);
console.log(`policy decisions, ${cases.length}-input mix, one core, ${ROUNDS} interleaved rounds (${ITERATIONS.toLocaleString('en')} evaluations per engine)`);
console.log('targets: >= 100,000 decisions/s, p99 <= 50 us\n');
console.log(table(['engine', 'decisions/s', 'p50 us', 'p99 us', 'sluice ÷ peer'], rows));
mkdirSync(join(root, 'bench', 'results'), { recursive: true });
writeFileSync(join(root, 'bench', 'results', 'policy.json'), JSON.stringify({ date: new Date().toISOString(), engines, opaRego }, null, 2));
