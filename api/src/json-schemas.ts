// JSON Schema renderings of the contracts, keyed by file name under api/schemas/. `input.json`
// is what `opa check --strict --schema api/schemas` binds to `schema.input`.
import { z } from 'zod';
import { ApprovalRequestSpec, ApprovalRequestStatus } from './approval.ts';
import { AuditEvent } from './audit.ts';
import { Decision, PolicyInput } from './policy.ts';

function render(schema: z.ZodType, title: string): string {
  const json = { title, ...z.toJSONSchema(schema, { target: 'draft-7', io: 'input' }) };
  return `${JSON.stringify(json, null, 2)}\n`;
}

export function renderSchemas(): Record<string, string> {
  return {
    'input.json': render(PolicyInput, 'sluice policy input'),
    'decision.json': render(Decision, 'sluice policy decision'),
    'audit-event.json': render(AuditEvent, 'sluice audit event'),
    'approval-request-spec.json': render(ApprovalRequestSpec, 'ApprovalRequest spec'),
    'approval-request-status.json': render(ApprovalRequestStatus, 'ApprovalRequest status'),
  };
}
