// api/schemas/*.json are generated from the zod contracts and used by `opa check --strict`; a
// contract change without regenerating them would let Rego and code drift apart.
import { expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderSchemas } from '../src/json-schemas.ts';
import { Decision, PolicyInput } from '../src/index.ts';

const dir = join(import.meta.dirname, '..', 'schemas');

test.each(Object.entries(renderSchemas()))('api/schemas/%s is up to date (run `make schemas`)', (file, text) => {
  expect(readFileSync(join(dir, file), 'utf8')).toBe(text);
});

test('objects are closed so Rego cannot reference a field that does not exist', () => {
  const input = JSON.parse(renderSchemas()['input.json']!) as { additionalProperties: boolean; properties: { request: { additionalProperties: boolean } } };
  expect(input.additionalProperties).toBe(false);
  expect(input.properties.request.additionalProperties).toBe(false);
});

test('a decision needs allow, code and reason; codes are stable identifiers', () => {
  expect(Decision.safeParse({ allow: true }).success).toBe(false);
  expect(Decision.safeParse({ allow: false, code: 'Not A Code', reason: 'x' }).success).toBe(false);
  expect(Decision.safeParse({ allow: false, code: 'net.not_allowlisted', reason: 'x' }).success).toBe(true);
});

test('policy input rejects unknown fields', () => {
  const base = { request: { method: 'GET', scheme: 'https', host: 'a', port: 443, path: '/', query: {}, headers: {}, ip_literal: false }, facts: {}, pod: { namespace: 'n', name: 'p', service_account: 's', labels: {}, annotations: {} }, session: { id: 's', seq: 0, bytes_out: 0 } };
  expect(PolicyInput.safeParse(base).success).toBe(true);
  expect(PolicyInput.safeParse({ ...base, extra: 1 }).success).toBe(false);
});
