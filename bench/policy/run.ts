// bench/policy: sluice's decision engine (opa-wasm in Node, the sidecar's real path including
// decision validation) side by side with `opa bench` on the same policy and the same inputs,
// using OPA's Go evaluator (topdown). One core each (GOMAXPROCS=1, one JS thread). opa's own
// WASM target needs a cgo build with wasmtime, which the pinned static opa is not.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadDecisionCases } from '../../policies/cases/cases.ts';
import { readBundle } from '../../sidecar/src/policy/bundle.ts';
import { PolicyEngine } from '../../sidecar/src/policy/engine.ts';
import { percentile, sortedCopy, table } from '../lib/stats.ts';

const root = join(import.meta.dirname, '..', '..');
const opa = join(root, '.tools', 'bin', 'opa');
const bundle = join(root, 'policies', 'build', 'bundle.tar.gz');
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

async function benchSluice() {
  const engine = new PolicyEngine();
  await engine.load(await readBundle(bundle));
  for (let i = 0; i < 20_000; i++) engine.evaluate(cases[i % cases.length]!.input);
  const samples = new Float64Array(ITERATIONS);
  const start = process.hrtime.bigint();
  for (let i = 0; i < ITERATIONS; i++) {
    const t0 = process.hrtime.bigint();
    engine.evaluate(cases[i % cases.length]!.input);
    samples[i] = Number(process.hrtime.bigint() - t0) / 1e3;
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const sorted = sortedCopy(samples);
  return { perSecond: ITERATIONS / seconds, p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
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
    perSecond: 1e6 / mean,
    p50: percentile(sortedCopy(perOp.map((o) => o.medianUs)), 50),
    p99: Math.max(...perOp.map((o) => o.p99Us)),
  };
}

const sluice = await benchSluice();
const opaRego = benchOpa();
const rows = [
  ['sluice engine (opa-wasm, Node 24)', sluice.perSecond, sluice.p50, sluice.p99, '1.00'],
  ['opa bench (Go topdown evaluator)', opaRego.perSecond, opaRego.p50, opaRego.p99, (sluice.perSecond / opaRego.perSecond).toFixed(2)],
];
console.log(`policy decisions, ${cases.length}-input mix, one core (${ITERATIONS.toLocaleString('en')} sluice evaluations)`);
console.log('targets: >= 100,000 decisions/s, p99 <= 50 us\n');
console.log(table(['engine', 'decisions/s', 'p50 us', 'p99 us', 'sluice ÷ peer'], rows));
mkdirSync(join(root, 'bench', 'results'), { recursive: true });
writeFileSync(join(root, 'bench', 'results', 'policy.json'), JSON.stringify({ date: new Date().toISOString(), sluice, opaRego }, null, 2));
