// The golden decision table, evaluated by the compiled policy.wasm through the sidecar's own
// engine (not only `opa test`), so what ships is what is tested.
import { beforeAll, describe, expect, test } from '@jest/globals';
import { decisionAction } from '../../api/src/index.ts';
import { readBundle } from '../../lib/src/policy/bundle.ts';
import { PolicyEngine } from '../../lib/src/policy/engine.ts';
import { defaultBundle } from '../../testkit/policy/opa-build.ts';
import { loadDecisionCases } from '../cases/cases.ts';

const cases = loadDecisionCases();
const engine = new PolicyEngine();

beforeAll(async () => {
  await engine.load(await readBundle(defaultBundle));
});

test('the table is large enough to mean something', () => {
  expect(cases.length).toBeGreaterThanOrEqual(30);
  const actions = new Set(cases.map((c) => c.expect.action));
  expect([...actions].sort()).toEqual(['allow', 'deny', 'hold']);
});

describe('default policy (compiled WASM)', () => {
  test.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const { decision, fault } = engine.evaluate(c.input);
    expect(fault).toBeUndefined();
    expect({ action: decisionAction(decision), code: decision.code }).toEqual({ action: c.expect.action, code: c.expect.code });
    if (c.expect.scope) expect(decision.require_approval?.scope).toBe(c.expect.scope);
    if (c.expect.credential) expect(decision.credential?.provider).toBe(c.expect.credential);
    if (c.expect.dlp) expect(decision.dlp).toBe(c.expect.dlp);
    if (c.expect.reason_contains) expect(decision.reason).toContain(c.expect.reason_contains);
    expect(decision.reason.length).toBeGreaterThan(0);
  });
});
