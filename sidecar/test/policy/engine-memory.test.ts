// opa-wasm's linear memory only stays flat if the heap is reset between evaluations (the SDK's
// ABI 1.2 path does this). A sidecar evaluates millions of times, so prove it rather than trust it.
import { expect, test } from '@jest/globals';
import { readBundle } from '../../../lib/src/policy/bundle.ts';
import { PolicyEngine } from '../../../lib/src/policy/engine.ts';
import { loadDecisionCases } from '../../../policies/cases/cases.ts';
import { defaultBundle } from '../../../testkit/policy/opa-build.ts';

const EVALUATIONS = 1_000_000;

test(`memory stays flat over ${EVALUATIONS.toLocaleString('en')} evaluations`, async () => {
  // The decision cache off: the golden inputs repeat, and this pins the WASM heap discipline of
  // every evaluation (the cache's own bound is pinned in decision-cache.test.ts).
  const engine = new PolicyEngine({ decisionCache: false });
  await engine.load(await readBundle(defaultBundle));
  const cases = loadDecisionCases();
  // Warm up with every case so the memory reaches its working size, then measure.
  for (let i = 0; i < 20_000; i++) engine.evaluate(cases[i % cases.length]!.input);
  const wasmBefore = engine.wasmMemoryBytes;
  const rssBefore = process.memoryUsage().rss;
  // The bulk uses the cheapest realistic input (an unknown host), mixed with every golden case.
  const cheap = cases.find((c) => c.name === 'unknown host denied')!.input;
  let denied = 0;
  for (let i = 0; i < EVALUATIONS; i++) {
    const input = i % 16 === 0 ? cases[(i >> 4) % cases.length]!.input : cheap;
    if (!engine.evaluate(input).decision.allow) denied++;
  }
  expect(denied).toBeGreaterThan(EVALUATIONS * 0.9);
  expect(engine.wasmMemoryBytes).toBe(wasmBefore);
  const growthMb = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
  expect(growthMb).toBeLessThan(48);
}, 300_000);
