// The engine's decision cache (lib/src/policy/decision-cache.ts, input-reads.ts): an input is
// answered from the cache only when it is identical to an earlier one in every part the policy's
// Rego sources can read, and never across a bundle, data or organisation change. These pin what a
// user relies on: the cached engine decides exactly as one that runs the WASM every time, on the
// golden cases and on every variation of them in a field the policy reads; a field the policy
// reads by a computed key, a bare `input` or a template string keeps the whole input in the key;
// a bundle without the build's input-reads member, or with one made for another policy.wasm, gets
// no cache (the Rego copies opa build puts in a WASM bundle lack the entrypoint's rules).
import { describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Organisation } from '../../../api/src/index.ts';
import type { PolicyInput } from '../../../api/src/index.ts';
import { readBundle } from '../../../lib/src/policy/bundle.ts';
import { DecisionCache } from '../../../lib/src/policy/decision-cache.ts';
import { copyDecision } from '../../../lib/src/policy/decision-reader.ts';
import { PolicyEngine, compileBundle } from '../../../lib/src/policy/engine.ts';
import { bundledInputReads, inputReads } from '../../../lib/src/policy/input-reads.ts';
import { agentInput, loadDecisionCases } from '../../../policies/cases/cases.ts';
import { buildBundle, defaultBundle, scratchDir } from '../../../testkit/policy/opa-build.ts';
import { addInputReads } from '../../../policies/scripts/input-reads.ts';

const ACME = Organisation.parse(JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', '..', 'policies', 'data', 'organisation', 'data.json'), 'utf8')));

async function engines(path: string): Promise<[PolicyEngine, PolicyEngine]> {
  const bundle = await readBundle(path);
  const cached = new PolicyEngine();
  const uncached = new PolicyEngine({ decisionCache: false });
  await cached.load(bundle);
  await uncached.load(bundle);
  return [cached, uncached];
}

/** A bundle as `make policy` makes one: opa build, then what its sources read recorded in it. */
async function cachedBundle(rego: string, revision: string, data: object = {}, dir = scratchDir()): Promise<string> {
  const out = buildBundle(rego, revision, data, dir);
  await addInputReads(out, [join(dirname(out), `src-${revision}`)]);
  return out;
}

const withSession = (input: PolicyInput, seq: number): PolicyInput => ({ ...input, session: { ...input.session, seq, bytes_out: seq * 7 } });

describe('what a policy reads', () => {
  const reads = (text: string) => inputReads([{ path: 'p.rego', text }]);

  test('the default bundle records that its policy reads request, facts and the pod namespace, not the session', async () => {
    const bundle = await readBundle(defaultBundle);
    expect(bundledInputReads(bundle.inputReads, bundle.wasm)).toEqual({
      paths: [['facts'], ['pod', 'namespace'], ['request', 'headers'], ['request', 'host'], ['request', 'ip_literal'], ['request', 'method'], ['request', 'path'], ['request', 'port'], ['request', 'query'], ['request', 'scheme']],
    });
  });

  test('references as far as they are constant; comments and strings are not code', () => {
    expect(reads('package p\n# input.session is not read: input\nx := "input" if input.request["host"] == `input`\ny := input.request.headers[k]\nz := input["facts"].git.refs[0]\nw := data.input.x')).toEqual({
      paths: [['facts', 'git', 'refs'], ['request', 'headers'], ['request', 'host']],
    });
  });

  test('a bare input, an import of it, a template string or no sources mean the whole input', () => {
    expect(reads('package p\nx := object.get(input, "session", {})').whole).toMatch(/whole input/);
    expect(reads('package p\nimport input\nx := input.a').whole).toMatch(/whole input/);
    expect(reads('package p\nx := walk(input)').whole).toMatch(/whole input/);
    expect(reads('package p\nx := input[k]').whole).toMatch(/whole input/);
    expect(reads('package p\nx := $"{input.session.seq}"').whole).toMatch(/template string/);
    expect(inputReads([]).whole).toMatch(/no Rego/);
  });
});

describe('cache keys', () => {
  test('are made of every top-level part some read path starts with, and only those', () => {
    expect(new DecisionCache([['facts'], ['pod', 'namespace'], ['request', 'host']]).parts).toEqual(['request', 'facts', 'pod']);
    expect(new DecisionCache([['session', 'seq']]).parts).toEqual(['session']);
    // input.other is never given to the module: nothing to key on.
    expect(new DecisionCache([['other']]).parts).toEqual([]);
  });

  test('have one reading, and an input too long to keep is evaluated, not cached', () => {
    const cache = new DecisionCache([['request'], ['facts']]);
    const key = (request: unknown, facts: unknown) => cache.keyOf({ request: JSON.stringify(request), facts: JSON.stringify(facts), pod: '{}', session: '{}' });
    expect(key({ a: '1' }, {})).not.toBe(cache.keyOf({ request: '{"a":"1"}{}', facts: '', pod: '{}', session: '{}' }));
    expect(key({ a: 'x\n' }, {})).not.toBe(key({ a: 'x' }, {}));
    expect(key({ a: 'x' }, {})).toBe(cache.keyOf({ request: '{"a":"x"}', facts: '{}', pod: '{"other":1}', session: '{"seq":2}' }));
    expect(key({ a: 'x'.repeat(5000) }, {})).toBeUndefined();
  });

  test('a decision handed out is a deep copy, whatever its keys are called', () => {
    const stored = JSON.parse('{"allow":true,"code":"c","reason":"r","mask":["m"],"credential":{"provider":"p","__proto__":"x"}}') as Parameters<typeof copyDecision>[0];
    const copy = copyDecision(stored);
    expect(copy).toEqual(stored);
    expect(JSON.stringify(copy)).toBe(JSON.stringify(stored));
    expect(Object.getPrototypeOf(copy.credential)).toBe(Object.prototype);
    copy.mask!.push('n');
    copy.credential!.provider = 'changed';
    expect(stored.mask).toEqual(['m']);
    expect(stored.credential!.provider).toBe('p');
  });

  test('hold at most 2048 decisions however many distinct inputs arrive, the newest kept', () => {
    const cache = new DecisionCache([['request']]);
    const key = (n: number) => cache.keyOf({ request: `{"path":"/${n}"}`, facts: '{}', pod: '{}', session: '{}' })!;
    for (let n = 0; n < 10_000; n++) cache.set(key(n), { allow: true, code: 'n', reason: String(n) });
    expect(cache.stats.entries).toBe(2048);
    expect(cache.get(key(9_999))?.reason).toBe('9999');
    expect(cache.get(key(0))).toBeUndefined();
  });

  test('keep an input that repeats while a stream of one-off inputs passes through', () => {
    const cache = new DecisionCache([['request']]);
    const key = (path: string) => cache.keyOf({ request: `{"path":"${path}"}`, facts: '{}', pod: '{}', session: '{}' })!;
    cache.set(key('/polled'), { allow: true, code: 'polled', reason: 'r' });
    for (let n = 0; n < 20_000; n++) {
      cache.set(key(`/one-off/${n}`), { allow: true, code: 'n', reason: String(n) });
      if (n % 100 === 0) expect(cache.get(key('/polled'))?.code).toBe('polled');
    }
    expect(cache.stats.entries).toBe(2048);
  });
});

describe('the cached engine', () => {
  test('decides every golden case and every variation of a field the policy reads exactly as the WASM does', async () => {
    const [cached, uncached] = await engines(defaultBundle);
    const variations = (input: PolicyInput): PolicyInput[] => {
      const r = input.request;
      return [
        input,
        withSession(input, 99),
        { ...input, request: { ...r, method: r.method === 'GET' ? 'POST' : 'GET' } },
        { ...input, request: { ...r, host: `x.${r.host}` } },
        { ...input, request: { ...r, path: `${r.path}/.env` } },
        { ...input, request: { ...r, port: r.port === 443 ? 8443 : 443 } },
        { ...input, request: { ...r, scheme: r.scheme === 'https' ? 'http' : 'https' } },
        { ...input, request: { ...r, query: { q: ['x'] } } },
        { ...input, request: { ...r, headers: { ...r.headers, 'x-amz-acl': 'public-read', accept: 'application/vnd.github.text-match+json' } } },
        { ...input, request: { ...r, ip_literal: !r.ip_literal } },
        { ...input, facts: {} },
        { ...input, pod: { ...input.pod, namespace: 'other' } },
      ];
    };
    let evaluations = 0;
    for (const c of loadDecisionCases()) {
      for (const input of variations(c.input)) {
        for (let i = 0; i < 2; i++) {
          expect(cached.evaluate(input)).toEqual(uncached.evaluate(input));
          evaluations++;
        }
      }
    }
    const { hits, misses, enabled } = cached.decisionCache;
    expect(enabled).toBe(true);
    expect(hits + misses).toBe(evaluations);
    expect(hits).toBeGreaterThanOrEqual(evaluations / 2);
  });

  test('a policy that reads the session is evaluated for every new session value', async () => {
    const rego = 'package sluice\n\ndecision := {"allow": true, "code": "seq", "reason": format_int(input.session.seq, 10)}\n';
    const [cached] = await engines(await cachedBundle(rego, 'seq'));
    const input = agentInput({ method: 'GET', host: 'example.com', path: '/' });
    for (let seq = 1; seq <= 3; seq++) expect(cached.evaluate(withSession(input, seq)).decision.reason).toBe(String(seq));
    expect(cached.evaluate(withSession(input, 2)).decision.reason).toBe('2');
    expect(cached.decisionCache).toMatchObject({ hits: 1, misses: 3 });
  });

  test('a header read by a computed name keeps every header in the key', async () => {
    const rego = 'package sluice\n\nname := concat("-", ["x", "api", "key"])\n\ndecision := {"allow": true, "code": "h", "reason": object.get(input.request.headers, name, "none")} if input.request.headers[name]\n\ndefault decision := {"allow": false, "code": "none", "reason": "no key"}\n';
    const [cached] = await engines(await cachedBundle(rego, 'hdr'));
    const input = (value?: string) => agentInput({ method: 'GET', host: 'example.com', path: '/', headers: value ? { 'x-api-key': value } : {} });
    expect(cached.evaluate(input()).decision.allow).toBe(false);
    expect(cached.evaluate(input('k1')).decision.reason).toBe('k1');
    expect(cached.evaluate(input('k2')).decision.reason).toBe('k2');
    expect(cached.evaluate(input()).decision.allow).toBe(false);
  });

  test('is emptied by a new bundle, new data and a new organisation', async () => {
    const engine = new PolicyEngine();
    const rego = (code: string) => `package sluice\n\ndecision := {"allow": data.open, "code": "${code}", "reason": "r"}\n`;
    const dir = scratchDir();
    const input = agentInput({ method: 'GET', host: 'example.com', path: '/' });
    await engine.load(await readBundle(await cachedBundle(rego('one'), 'one', { open: true }, dir)));
    expect(engine.evaluate(input).decision).toMatchObject({ allow: true, code: 'one' });
    expect(engine.evaluate(input).decision).toMatchObject({ allow: true, code: 'one' });
    // Same Rego, other data.
    await engine.load(await readBundle(await cachedBundle(rego('one'), 'one-closed', { open: false }, dir)));
    expect(engine.evaluate(input).decision).toMatchObject({ allow: false, code: 'one' });
    // Other Rego.
    engine.install(await compileBundle(await readBundle(await cachedBundle(rego('two'), 'two', { open: false }, dir))));
    expect(engine.evaluate(input).decision).toMatchObject({ allow: false, code: 'two' });

    // The organisation (data.organisation) swapped in and back out.
    const org = new PolicyEngine({ requireOrganisation: true });
    await org.load(await readBundle(defaultBundle));
    const read = agentInput({ method: 'GET', host: 'pkgs.example.test', path: '/pkg/left-pad' });
    org.setOrganisation({ organisation: ACME, revision: 'r1' });
    expect(org.evaluate(read).decision.allow).toBe(false);
    expect(org.evaluate(read).decision.allow).toBe(false);
    org.setOrganisation({ organisation: { ...ACME, registries: { ...ACME.registries, read: [...ACME.registries.read, 'pkgs.example.test'] } }, revision: 'r2' });
    expect(org.evaluate(read).decision).toMatchObject({ allow: true, code: 'registry.read' });
    org.setOrganisation({ organisation: ACME, revision: 'r3' });
    expect(org.evaluate(read).decision.allow).toBe(false);
  });

  test('a bundle opa built without the input-reads member, or with one for another WASM, is evaluated every time', async () => {
    const rego = 'package sluice\n\ndecision := {"allow": true, "code": "a", "reason": format_int(input.session.seq, 10)}\n';
    const input = agentInput({ method: 'GET', host: 'example.com', path: '/' });
    const plain = new PolicyEngine();
    await plain.load(await readBundle(buildBundle(rego, 'plain')));
    for (let seq = 1; seq <= 3; seq++) expect(plain.evaluate(withSession(input, seq)).decision.reason).toBe(String(seq));
    expect(plain.decisionCache).toMatchObject({ enabled: false, hits: 0, why: expect.stringMatching(/does not say which input/) });

    // The member of a policy that reads nothing, put next to the WASM of one that reads the session.
    const other = await readBundle(await cachedBundle('package sluice\n\ndecision := {"allow": true, "code": "a", "reason": "r"}\n', 'other'));
    const seqBundle = await readBundle(buildBundle(rego, 'seq'));
    const swapped = new PolicyEngine();
    await swapped.load({ ...seqBundle, inputReads: other.inputReads! });
    for (let seq = 1; seq <= 3; seq++) expect(swapped.evaluate(withSession(input, seq)).decision.reason).toBe(String(seq));
    expect(swapped.decisionCache).toMatchObject({ enabled: false, why: expect.stringMatching(/another policy.wasm/) });
    // The same member with its own WASM does cache: the policy reads no input at all.
    expect(bundledInputReads(other.inputReads, other.wasm)).toEqual({ paths: [] });
  });
});
