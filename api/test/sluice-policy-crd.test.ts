// The shipped SluicePolicy CRD is exactly what the zod contract renders to (a stale file fails here
// with the command that fixes it) and stays a structural schema the API server accepts: open
// mappings only where the readers validate (sidecar settings, an LLM credential), the role rules in
// CEL. The real API server accepting and enforcing it is e2e/policy.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { parse } from 'yaml';
import { SLUICE_POLICY_CRD_FILE, renderSluicePolicyCrd } from '../scripts/sluice-policy-crd.ts';

const shipped = readFileSync(join(import.meta.dirname, '..', 'crds', SLUICE_POLICY_CRD_FILE), 'utf8');

function walk(node: unknown, path: string[], visit: (n: Record<string, unknown>, path: string[]) => void): void {
  if (!node || typeof node !== 'object') return;
  visit(node as Record<string, unknown>, path);
  for (const [k, v] of Object.entries(node)) walk(v, [...path, k], visit);
}

describe('SluicePolicy CRD', () => {
  test('api/crds is up to date with api/src/sluice-policy.ts (run `node api/scripts/generate-crd.ts`)', () => {
    expect(shipped).toBe(renderSluicePolicyCrd());
  });

  const crd = parse(shipped) as { spec: { scope: string; versions: { schema: { openAPIV3Schema: Record<string, unknown> } }[] } };
  const schema = crd.spec.versions[0]!.schema.openAPIV3Schema;

  test('cluster-scoped, with the default/binding roles checked by the API server', () => {
    expect(crd.spec.scope).toBe('Cluster');
    expect(JSON.stringify(schema['x-kubernetes-validations'])).toContain("self.metadata.name != 'default'");
  });

  test('structural: no propertyNames, no additionalProperties:false, open objects only for sidecar settings and LLM credentials', () => {
    const open: string[] = [];
    walk(schema, [], (n, path) => {
      expect(n).not.toHaveProperty('propertyNames');
      expect(n.additionalProperties).not.toBe(false);
      if (n['x-kubernetes-preserve-unknown-fields'] === true) open.push(path.filter((p) => p !== 'properties' && p !== 'items').join('.'));
      if (n.anyOf || n.oneOf) expect(path.join('.')).toBe('(no union outside an open object)');
    });
    expect(open.sort()).toEqual(['spec.organisation.llm.providers.credential', 'spec.sidecar']);
  });
});
