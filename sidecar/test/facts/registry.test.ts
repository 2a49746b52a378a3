// The facts deriver registry (sidecar/src/facts/derivers.ts) is the one list a deriver is added to.
// This test fails when a deriver module is not listed, two derivers fill one key, a key of the
// `Facts` contract (api/src/policy.ts) has no deriver (other than `upgrade`, which the proxy sets
// on a protocol upgrade), or docs/policy.md's input example lacks a deriver's facts.
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, test } from '@jest/globals';
import { Facts } from '../../../api/src/index.ts';
import { classifyForFacts } from '../../src/facts/derive-facts.ts';
import { DERIVERS } from '../../src/facts/derivers.ts';

const REPO = join(import.meta.dirname, '..', '..', '..');
const SRC = join(REPO, 'sidecar', 'src', 'facts');
/** Facts the proxy itself sets (proxy/upgrade-request.ts), not a deriver. */
const SET_BY_PROXY = ['upgrade'];

describe('facts deriver registry', () => {
  test('every deriver module in sidecar/src/facts is in the registry', async () => {
    const declaring = readdirSync(SRC)
      .filter((f) => f.endsWith('.ts'))
      .map((f) => join(SRC, f))
      .filter((f) => /=\s*defineDeriver\b/.test(readFileSync(f, 'utf8')));
    expect(declaring.length).toBeGreaterThanOrEqual(DERIVERS.length);
    const listed = new Set<unknown>(DERIVERS);
    const missing: string[] = [];
    for (const f of declaring) {
      const mod = (await import(pathToFileURL(f).href)) as Record<string, unknown>;
      for (const [name, value] of Object.entries(mod)) {
        if (typeof value === 'object' && value !== null && 'key' in value && 'classify' in value && !listed.has(value)) missing.push(`${relative(REPO, f)}: ${name}`);
      }
    }
    expect(missing).toEqual([]);
  });

  test('each key of the Facts contract is filled by exactly one deriver (or by the proxy)', () => {
    const keys = DERIVERS.map((d) => d.key);
    expect(new Set(keys).size).toBe(keys.length);
    expect([...keys, ...SET_BY_PROXY].sort()).toEqual(Object.keys(Facts.shape).sort());
  });

  test('facts appear in registry order, and a deriver that finds nothing leaves its key out', () => {
    // A GraphQL call on an LLM host is both; llm comes before graphql, as in the registry.
    const facts = classifyForFacts({ method: 'GET', host: 'api.openai.com', path: '/v1/graphql', query: { query: ['{ a }'] }, headers: {} }).derive();
    expect(Object.keys(facts)).toEqual(['llm', 'graphql']);
    expect(DERIVERS.map((d) => d.key).filter((k) => k === 'llm' || k === 'graphql')).toEqual(['llm', 'graphql']);
    const none = classifyForFacts({ method: 'GET', host: 'example.com', path: '/', query: {}, headers: {} }).derive();
    expect(none).toStrictEqual({});
  });

  test("docs/policy.md's input example shows every deriver's facts", () => {
    const doc = readFileSync(join(REPO, 'docs', 'policy.md'), 'utf8');
    const block = doc.slice(doc.indexOf('"facts": {'), doc.indexOf('"pod": {'));
    expect(block.length).toBeGreaterThan(0);
    expect(DERIVERS.map((d) => d.key).filter((k) => !block.includes(`"${k}": {`))).toEqual([]);
  });
});
