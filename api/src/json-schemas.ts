// JSON Schema renderings of the contracts, keyed by file name under api/schemas/. `input.json`
// is what `opa check --strict --schema api/schemas` binds to `schema.input`, `organisation.json`
// to `schema.organisation` (the library's `data.organisation`).
import { z } from 'zod';
import { ApprovalRequestSpec, ApprovalRequestStatus } from './approval.ts';
import { AuditEvent } from './audit.ts';
import { Organisation } from './organisation.ts';
import { Decision, PolicyInput } from './policy.ts';

function render(schema: z.ZodType, title: string, io: 'input' | 'output' = 'input'): string {
  const json = { title, ...z.toJSONSchema(schema, { target: 'draft-7', io }) };
  return `${JSON.stringify(json, null, 2)}\n`;
}

export function renderSchemas(): Record<string, string> {
  return {
    'input.json': render(PolicyInput, 'sluice policy input'),
    'decision.json': render(Decision, 'sluice policy decision'),
    // What Rego sees as data.organisation: the parsed form, defaults applied (every list present).
    'organisation.json': render(Organisation, 'sluice organisation (policy data)', 'output'),
    'audit-event.json': render(AuditEvent, 'sluice audit event'),
    'approval-request-spec.json': render(ApprovalRequestSpec, 'ApprovalRequest spec'),
    'approval-request-status.json': render(ApprovalRequestStatus, 'ApprovalRequest status'),
  };
}
