// The shipped CRD is exactly what the zod contracts render to (a stale file fails here with the
// command that fixes it), and the rendering keeps the structural-schema rules the API server
// enforces. The real API server accepting it is e2e/approvals.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { parse } from 'yaml';
import { z } from 'zod';
import { ApprovalRequestSpec, ApprovalState } from '../src/index.ts';
import { CRD_FILE, renderApprovalCrd, toStructural } from '../scripts/approval-crd.ts';

interface Crd {
  spec: {
    names: { kind: string; plural: string };
    scope: string;
    versions: {
      name: string;
      subresources: { status: object };
      additionalPrinterColumns: { name: string; jsonPath: string }[];
      schema: { openAPIV3Schema: { properties: { spec: Record<string, unknown>; status: { properties: Record<string, { enum?: string[] }> } } } };
    }[];
  };
}

const shipped = readFileSync(join(import.meta.dirname, '..', 'crds', CRD_FILE), 'utf8');

function walk(node: unknown, visit: (n: Record<string, unknown>) => void): void {
  if (!node || typeof node !== 'object') return;
  visit(node as Record<string, unknown>);
  for (const v of Object.values(node)) walk(v, visit);
}

describe('ApprovalRequest CRD', () => {
  test('api/crds is up to date with api/src/approval.ts (run `node api/scripts/generate-crd.ts`)', () => {
    expect(shipped).toBe(renderApprovalCrd());
  });

  const crd = parse(shipped) as Crd;
  const version = crd.spec.versions[0]!;

  test('namespaced sluice.io/v1alpha1 with a status subresource and the printer columns approvers read', () => {
    expect(crd.spec.scope).toBe('Namespaced');
    expect(version.name).toBe('v1alpha1');
    expect(version.subresources).toEqual({ status: {} });
    const columns = Object.fromEntries(version.additionalPrinterColumns.map((c) => [c.name, c.jsonPath]));
    expect(columns).toMatchObject({
      Pod: '.spec.pod.name',
      Creator: '.spec.creator.username',
      Summary: '.spec.request.summary',
      State: '.status.state',
      Age: '.metadata.creationTimestamp',
    });
  });

  test('the schema is structural: no additionalProperties:false, no $ref, every node typed', () => {
    walk(version.schema.openAPIV3Schema, (n) => {
      expect(n.additionalProperties).not.toBe(false);
      expect(n.$ref).toBeUndefined();
      if ('properties' in n) expect(n.type).toBe('object');
    });
  });

  test('the state enum is the contract’s', () => {
    expect(version.schema.openAPIV3Schema.properties.status.properties.state!.enum).toEqual(ApprovalState.options);
  });

  test('a field added to the zod spec appears in the rendered schema', () => {
    const extended = ApprovalRequestSpec.extend({ newField: ApprovalState.optional() });
    const rendered = toStructural(z.toJSONSchema(extended, { target: 'draft-7', io: 'input' })) as { properties: Record<string, unknown> };
    expect(rendered.properties.newField).toEqual({ type: 'string', enum: ApprovalState.options });
  });
});
