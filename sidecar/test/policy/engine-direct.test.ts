// The engine evaluates through opa_eval directly (wasm-eval.ts) and schema-checks each distinct
// result text once (decision-reader.ts). These pin what that path must keep: it is the policy's
// decision for every input (echoing input the SDK path would see), inputs larger than the module's
// memory still evaluate, an invalid result stays a deny however often it repeats next to valid
// ones, and every caller gets its own decision object.
import { describe, expect, test } from '@jest/globals';
import { readBundle } from '../../../lib/src/policy/bundle.ts';
import { DecisionReader } from '../../../lib/src/policy/decision-reader.ts';
import { PolicyEngine } from '../../../lib/src/policy/engine.ts';
import { agentInput } from '../../../policies/cases/cases.ts';
import { buildBundle } from '../../../testkit/policy/opa-build.ts';

// Valid for GET, malformed (code is not a stable identifier) for anything else; the reason echoes
// input so that what reaches the module can be read back from the decision.
const ECHO = `package sluice

decision := {"allow": true, "code": "echo.get", "reason": concat("|", [input.request.path, input.pod.name, format_int(input.session.seq, 10), input.request.headers["x-big"]])} if input.request.method == "GET"

decision := {"allow": true, "code": "Not A Code", "reason": "r"} if input.request.method != "GET"
`;

async function echoEngine(): Promise<PolicyEngine> {
  const engine = new PolicyEngine();
  await engine.load(await readBundle(buildBundle(ECHO, 'echo')));
  return engine;
}

describe('direct opa_eval path', () => {
  test('the module sees the whole input, non-ASCII included, fresh for every request', async () => {
    const engine = await echoEngine();
    for (let seq = 1; seq <= 3; seq++) {
      const input = agentInput({ method: 'GET', host: 'example.com', path: '/ü/日本', headers: { 'x-big': 'é' } });
      input.session = { ...input.session, seq };
      expect(engine.evaluate(input).decision.reason).toBe(`/ü/日本|${input.pod.name}|${seq}|é`);
    }
  });

  test('an input larger than the module memory grows it and evaluates', async () => {
    const engine = await echoEngine();
    const before = engine.wasmMemoryBytes;
    const big = 'x'.repeat(before + 3 * 65536);
    const { decision, fault } = engine.evaluate(agentInput({ method: 'GET', host: 'example.com', path: '/p', headers: { 'x-big': big } }));
    expect(fault).toBeUndefined();
    expect(decision.reason.endsWith(big)).toBe(true);
    expect(engine.wasmMemoryBytes).toBeGreaterThan(before);
  });

  test('a malformed result stays a deny every time, between valid ones', async () => {
    const engine = await echoEngine();
    const get = agentInput({ method: 'GET', host: 'example.com', path: '/a', headers: { 'x-big': '' } });
    const post = agentInput({ method: 'POST', host: 'example.com', path: '/a' });
    for (let i = 0; i < 4; i++) {
      expect(engine.evaluate(get)).toMatchObject({ decision: { allow: true, code: 'echo.get' } });
      expect(engine.evaluate(post)).toMatchObject({ fault: 'malformed_decision', decision: { allow: false, code: 'policy.malformed_decision' } });
    }
  });

  test('each evaluation returns its own decision object', async () => {
    const engine = await echoEngine();
    const get = agentInput({ method: 'GET', host: 'example.com', path: '/a', headers: { 'x-big': '' } });
    const first = engine.evaluate(get).decision;
    first.reason = 'changed by a caller';
    first.mask = ['*'];
    expect(engine.evaluate(get).decision).toEqual({ allow: true, code: 'echo.get', reason: `/a|${get.pod.name}|${get.session.seq}|` });
  });
});

describe('DecisionReader', () => {
  test('returns the decision as the schema gives it, and refuses what the schema refuses', () => {
    const reader = new DecisionReader();
    const text = '[{"result":{"reason":"r","code":"a.b","allow":true}}]';
    for (let i = 0; i < 2; i++) expect(JSON.stringify(reader.read(text).decision)).toBe('{"allow":true,"code":"a.b","reason":"r"}');
    expect(reader.read('[{"result":{"allow":true,"code":"a.b","reason":"r","extra":1}}]').why).toMatch(/extra/);
    expect(reader.read('[]').why).toBe('policy produced no decision');
    expect(reader.read('[null]').why).toBe('policy produced no decision');
    expect(reader.read('not json').why).toBe('policy result is not JSON');
  });
});
