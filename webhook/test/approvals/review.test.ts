// /mutate/approvals and /validate/approvals over HTTP (the admission app without TLS): the stamp
// comes back as a JSONPatch that applies, refusals carry the rule in the API server's message and
// are counted by rule, and anything that is not an ApprovalRequest passes untouched. Also the
// shipped registration: fail-closed, fast, side-effect free, only served paths, never system namespaces.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import fastJsonPatch from 'fast-json-patch';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { request } from 'undici';
import { parseAllDocuments } from 'yaml';
import { parseAdmissionReview } from '../../src/admission-review.ts';
import { parseWebhookConfig } from '../../src/config.ts';
import { registerWebhookMetrics } from '../../src/metrics.ts';
import { createAdmissionApp } from '../../src/server.ts';
import { reviewApprovalMutation } from '../../src/approvals/review.ts';
import { baseConfigInput } from '../../../testkit/webhook/fixtures.ts';
import { SAMPLE_SPEC } from '../../../testkit/approvals/sample-approval.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

const spec = { ...SAMPLE_SPEC, requestedScope: 'once' };

function review(userInfo: Json, status: Json, oldStatus: Json = { state: 'Pending' }, resource = 'approvalrequests'): Json {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'u-1',
      kind: { group: 'sluice.io', version: 'v1alpha1', kind: 'ApprovalRequest' },
      resource: { group: 'sluice.io', version: 'v1alpha1', resource },
      subResource: 'status',
      name: 'coder-0-abc',
      namespace: 'agents',
      operation: 'UPDATE',
      userInfo,
      object: { metadata: { name: 'coder-0-abc' }, spec, status },
      oldObject: { metadata: { name: 'coder-0-abc' }, spec, status: oldStatus },
    },
  };
}

const config = parseWebhookConfig(baseConfigInput);
const registry = new Registry();
let server: Server;
let base = '';

beforeAll(async () => {
  const app = createAdmissionApp({ config, metrics: registerWebhookMetrics(registry), logger: pino({ level: 'silent' }) });
  server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

async function post(path: string, body: Json): Promise<Json> {
  const res = await request(`${base}${path}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  expect(res.statusCode).toBe(200);
  return (await res.body.json()) as Json;
}

describe('the approvals endpoints', () => {
  const bob = { username: 'bob@example.com', uid: 'u-bob', groups: ['sluice-approvers', 'system:authenticated'] };

  test('/mutate/approvals stamps the decider as a JSONPatch that applies to the object', async () => {
    const body = review(bob, { state: 'Approved' });
    const res = await post('/mutate/approvals', body);
    expect(res.response.allowed).toBe(true);
    expect(res.response.patchType).toBe('JSONPatch');
    const patch = JSON.parse(Buffer.from(res.response.patch as string, 'base64').toString()) as fastJsonPatch.Operation[];
    const patched = fastJsonPatch.applyPatch(structuredClone(body.request.object), patch).newDocument as Json;
    expect(patched.status).toMatchObject({ state: 'Approved', decidedBy: 'bob@example.com', decidedByGroups: bob.groups, scope: 'once' });
    expect(Date.parse(patched.status.decidedAt as string)).not.toBeNaN();
    // …and the stamped object passes validation.
    expect((await post('/validate/approvals', { ...body, request: { ...body.request, object: patched } })).response.allowed).toBe(true);
  });

  test('/validate/approvals refuses the creator with the rule in the message, counted by rule', async () => {
    const alice = { username: 'alice@example.com', groups: ['sluice-approvers'] };
    const stamped = { state: 'Approved', scope: 'once', decidedBy: 'alice@example.com', decidedByGroups: alice.groups, decidedAt: '2030-01-01T00:00:00Z' };
    const res = await post('/validate/approvals', review(alice, stamped));
    expect(res.response).toMatchObject({ allowed: false, status: { code: 403, reason: 'Forbidden' } });
    expect(res.response.status.message).toBe('sluice approval.self_approval: status.state: alice@example.com created pod coder-0 and cannot approve its requests; another approver must');
    const denials = (await registry.getSingleMetric('sluice_webhook_denials_total')!.get()).values;
    expect(denials.find((v) => v.labels.rule === 'approval.self_approval')?.value).toBe(1);
  });

  test('a create by a pod-bound token, with no API access to read its pod, fails closed', async () => {
    const sidecar = { username: 'system:serviceaccount:agents:coder', groups: ['system:serviceaccounts'], extra: { 'authentication.kubernetes.io/pod-name': ['coder-0'], 'authentication.kubernetes.io/pod-uid': ['pod-uid-1'] } };
    const body = review(sidecar, {});
    body.request = { ...body.request, operation: 'CREATE', subResource: undefined, oldObject: undefined, object: { metadata: { name: 'coder-0-abc', labels: { 'sluice.io/pod': 'coder-0' } }, spec } };
    expect((await post('/mutate/approvals', body)).response).toEqual({ uid: 'u-1', allowed: true });
    const res = await post('/validate/approvals', body);
    expect(res.response.allowed).toBe(false);
    expect(res.response.status.message).toMatch(/^sluice approval.pod_unknown: spec.pod: the sluice webhook could not read pod agents\/coder-0/);
  });

  test('other resources pass both endpoints untouched', async () => {
    const other = review(bob, { state: 'Approved' }, { state: 'Pending' }, 'configmaps');
    expect((await post('/mutate/approvals', other)).response).toEqual({ uid: 'u-1', allowed: true });
    expect((await post('/validate/approvals', other)).response).toEqual({ uid: 'u-1', allowed: true });
  });

  test('the stamp uses the injected clock', async () => {
    const parsedReq = parseAdmissionReview(review(bob, { state: 'Approved', scope: 'ttl', ttl: '30m' }));
    const out = await reviewApprovalMutation(parsedReq, config, undefined, new Date('2030-01-01T00:00:00Z'));
    const patch = JSON.parse(Buffer.from(out.review.response.patch!, 'base64').toString()) as { path: string; value: unknown }[];
    expect(patch.find((p) => p.path === '/status/expiresAt')?.value).toBe('2030-01-01T00:30:00.000Z');
  });
});

describe('approvals-webhook.yaml', () => {
  interface Hook {
    name: string;
    failurePolicy: string;
    sideEffects: string;
    timeoutSeconds: number;
    clientConfig: { service: { path: string } };
    rules: { apiGroups: string[]; resources: string[]; operations: string[] }[];
    namespaceSelector: { matchExpressions: { key: string; operator: string; values: string[] }[] };
  }
  const docs = parseAllDocuments(readFileSync(join(import.meta.dirname, '..', '..', 'manifests', 'approvals-webhook.yaml'), 'utf8')).map((d) => d.toJS() as { kind: string; webhooks: Hook[] });

  test('a mutating stamp on create and status updates, a validating check on create, update, status and delete', () => {
    const mutating = docs.find((d) => d.kind === 'MutatingWebhookConfiguration')!.webhooks;
    const validating = docs.find((d) => d.kind === 'ValidatingWebhookConfiguration')!.webhooks;
    expect(mutating.map((h) => h.clientConfig.service.path)).toEqual(['/mutate/approvals']);
    expect(mutating[0]!.rules).toMatchObject([
      { apiGroups: ['sluice.io'], resources: ['approvalrequests'], operations: ['CREATE'] },
      { apiGroups: ['sluice.io'], resources: ['approvalrequests/status'], operations: ['UPDATE'] },
    ]);
    expect(validating.map((h) => h.clientConfig.service.path)).toEqual(['/validate/approvals']);
    expect(validating[0]!.rules[0]).toMatchObject({ resources: ['approvalrequests', 'approvalrequests/status'], operations: ['CREATE', 'UPDATE', 'DELETE'] });
  });

  test.each(docs.flatMap((d) => d.webhooks.map((h) => [h.name, h] as const)))('%s fails closed, is fast, has no side effects, skips system namespaces', (_n, hook) => {
    expect(hook.failurePolicy).toBe('Fail');
    expect(hook.sideEffects).toBe('None');
    expect(hook.timeoutSeconds).toBeLessThanOrEqual(5);
    const excluded = hook.namespaceSelector.matchExpressions.find((e) => e.key === 'kubernetes.io/metadata.name')!.values;
    expect(excluded).toEqual(expect.arrayContaining(['kube-system', 'kube-public', 'kube-node-lease', 'sluice-system']));
  });
});
