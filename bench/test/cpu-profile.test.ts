// The CPU-profile summary bench/proxy prints: a small hand-built profile whose every figure is
// known, so areas, call-site charging, the time window and hotspots are checked exactly.
import { describe, expect, test } from '@jest/globals';
import { areaOf, summarizeCpuProfile } from '../lib/cpu-profile.ts';
import type { CpuProfile, CpuProfileNode } from '../lib/cpu-profile.ts';

const root = '/repo';
const frame = (functionName: string, url = '', lineNumber = 0) => ({ functionName, url, lineNumber });

// (root)
// ├─ (idle) 2          ├─ (garbage collector) 3
// ├─ onRequest [sidecar/src/proxy/gateway.ts]
// │   └─ evaluate [sidecar/src/policy/engine.ts]
// │       ├─ opa_eval [wasm]            (self 4)
// │       └─ evaluate (recursion)  └─ opa_eval [wasm] (self 1)
// └─ finishImpl [node:internal/streams/pipeline] └─ NodeError [node:internal/errors] (self 5)
const nodes: CpuProfileNode[] = [
  { id: 1, callFrame: frame('(root)'), children: [2, 3, 4, 8] },
  { id: 2, callFrame: frame('(idle)') },
  { id: 3, callFrame: frame('(garbage collector)') },
  { id: 4, callFrame: frame('onRequest', 'file:///repo/sidecar/src/proxy/gateway.ts', 104), children: [5] },
  { id: 5, callFrame: frame('evaluate', 'file:///repo/sidecar/src/policy/engine.ts', 92), children: [6, 10] },
  { id: 6, callFrame: frame('opa_eval', 'wasm://wasm/opa.wasm-0001') },
  { id: 8, callFrame: frame('finishImpl', 'node:internal/streams/pipeline', 228), children: [9] },
  { id: 9, callFrame: frame('NodeError', 'node:internal/errors', 500) },
  { id: 10, callFrame: frame('evaluate', 'file:///repo/sidecar/src/policy/engine.ts', 92), children: [11] },
  { id: 11, callFrame: frame('opa_eval', 'wasm://wasm/opa.wasm-0001') },
];

/** One sample per millisecond; `order` lists the node of each sample. */
function profileOf(order: number[]): CpuProfile {
  return { nodes, startTime: 0, endTime: order.length * 1000, samples: order, timeDeltas: order.map(() => 1000) };
}

const order = [2, 2, 3, 3, 3, 6, 6, 6, 6, 11, 9, 9, 9, 9, 9];

describe('summarizeCpuProfile', () => {
  test('busy time leaves out idle, and areas add up to it', () => {
    const s = summarizeCpuProfile(profileOf(order), { root });
    expect(s.totalMs).toBe(15);
    expect(s.busyMs).toBe(13);
    expect(Object.fromEntries(s.byArea.map((a) => [a.area, a.selfMs]))).toEqual({ 'node: other': 5, 'policy: opa-wasm WASM': 5, GC: 3 });
    expect(s.byArea.reduce((sum, a) => sum + a.pctOfBusy, 0)).toBeCloseTo(100);
  });

  test('library time is charged to the innermost sluice frame; the rest stays apart', () => {
    const s = summarizeCpuProfile(profileOf(order), { root });
    expect(s.bySluiceSite).toEqual([
      { name: '(no sluice frame: event loop, node I/O, GC)', where: '', totalMs: 8, pctOfBusy: (100 * 8) / 13 },
      { name: 'evaluate', where: 'sidecar/src/policy/engine.ts:93', totalMs: 5, pctOfBusy: (100 * 5) / 13 },
    ]);
  });

  test('a recursive hotspot counts each sample once', () => {
    const s = summarizeCpuProfile(profileOf(order), {
      root,
      hotspots: [
        { label: 'policy', functionName: 'evaluate', urlIncludes: 'sidecar/src/policy/engine.ts' },
        { label: 'pipeline teardown', functionName: 'finishImpl', urlIncludes: 'node:internal/streams/pipeline' },
      ],
    });
    expect(s.hotspots.map((h) => [h.label, h.totalMs])).toEqual([
      ['policy', 5],
      ['pipeline teardown', 5],
    ]);
  });

  test('the window keeps only samples taken inside it', () => {
    // samples are at 1..15 ms; 6..10 ms are the five wasm samples
    const s = summarizeCpuProfile(profileOf(order), { root, window: { fromMs: 6, toMs: 10 } });
    expect(s.busyMs).toBe(5);
    expect(s.byArea).toEqual([{ area: 'policy: opa-wasm WASM', selfMs: 5, pctOfBusy: 100 }]);
  });

  test('top self-time functions are merged by function and location', () => {
    const s = summarizeCpuProfile(profileOf(order), { root, top: 2 });
    expect(s.topSelf.map((f) => [f.name, f.selfMs])).toEqual([
      ['opa_eval', 5],
      ['NodeError', 5],
    ]);
  });
});

describe('areaOf', () => {
  test.each([
    ['node_modules/@open-policy-agent/opa-wasm/src/opa.js', 'policy: opa-wasm JS glue'],
    ['node_modules/undici/lib/core/util.js', 'npm: undici'],
    ['sidecar/src/masking/scanner.ts', 'sluice: sidecar/src/masking'],
  ])('/repo/%s is %s', (path, area) => {
    expect(areaOf(frame('x', `file:///repo/${path}`), root)).toBe(area);
  });

  test.each([
    ['node:_http_server', 'node: http'],
    ['node:internal/tls/wrap', 'node: tls/crypto'],
    ['', 'V8/native builtins'],
  ])('url "%s" is %s', (url, area) => {
    expect(areaOf(frame('x', url), root)).toBe(area);
  });
});
