// A policy rule is added in one folder (policies/rego: the rule and its _test.rego) plus its golden
// case (policies/cases/decisions.yaml), its catalogue row (api/src/codes.ts) and its docs
// (docs/policy.md). api/test/codes.test.ts fails on a Rego code that has no catalogue row; this test
// fails when a policy code of the catalogue is missing from docs/policy.md or has no golden case.
// The codes below need organisation data the default does not set (IP ranges, passthrough hosts,
// listed endpoints, public buckets, iam_writes: hold, a model allow-list) or a request shape the
// table does not build yet; their rules are covered by the Rego unit tests. The list only shrinks:
// an entry that gains a golden case fails until it is deleted here.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from '@jest/globals';
import { CODES } from '../../api/src/codes.ts';
import { loadDecisionCases } from '../cases/cases.ts';

const REPO = join(import.meta.dirname, '..', '..');
const WITHOUT_GOLDEN_CASE = ['net.ip_allowed', 'net.passthrough', 'k8s.unclassified', 'llm.model_denied', 'cloud.endpoint', 'cloud.anonymous_read', 'cloud.iam_write_held'];

const policyCodes = CODES.filter((c) => c.by === 'policy').map((c) => c.code);

test('every policy decision code of the catalogue is documented in docs/policy.md', () => {
  const doc = readFileSync(join(REPO, 'docs', 'policy.md'), 'utf8');
  expect(policyCodes.length).toBeGreaterThan(30);
  expect(policyCodes.filter((code) => !doc.includes(`\`${code}\``))).toEqual([]);
});

test('every policy decision code has a golden case in policies/cases/decisions.yaml (the list of exceptions only shrinks)', () => {
  const golden = new Set(loadDecisionCases().map((c) => c.expect.code));
  const missing = policyCodes.filter((code) => !golden.has(code));
  expect(missing.filter((code) => !WITHOUT_GOLDEN_CASE.includes(code))).toEqual([]);
  expect(WITHOUT_GOLDEN_CASE.filter((code) => !missing.includes(code))).toEqual([]);
  // Golden cases expect only catalogued codes.
  expect([...golden].filter((code) => !CODES.some((c) => c.code === code))).toEqual([]);
});
