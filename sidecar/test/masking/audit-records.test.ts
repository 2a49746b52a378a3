// Audit events never hold a secret the agent sent, in any form: the request's path, host and facts,
// the decision's reason (policies quote paths) and the details of other events (DNS names, refusal
// reasons) are masked with every rule and decoded view before they are recorded — whatever the
// policy masks on the wire. The records are built from a request context as the gateway builds it.
import { describe, expect, test } from '@jest/globals';
import type { PodIdentity } from '../../../api/src/index.ts';
import { createMasker, scanDecoded } from '../../src/masking/index.ts';
import { maskedPathAndQuery } from '../../src/approvals/approval-draft.ts';
import { eventRecord, requestRecord, responseRecord } from '../../src/proxy/audit-records.ts';
import type { RequestContext } from '../../src/proxy/request-context.ts';

const masker = createMasker('*');
const AWS_ID = 'AKIAQ4T7ZK2MWX3RPL6N';
const pct = (s: string): string => [...s].map((c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).join('');
const pod: PodIdentity = { namespace: 'agents', name: 'coder-0', service_account: 'coder', labels: {}, annotations: {} };

function secretsIn(value: unknown): string[] {
  return scanDecoded(Buffer.from(JSON.stringify(value)), masker.scanner, { mode: 'scan', maskRaw: true }).findings.map((f) => `${f.rule}:${f.via.join('>')}`);
}

function context(path: string, reason: string): RequestContext {
  return {
    id: 'r-1',
    req: { method: 'POST', url: path } as RequestContext['req'],
    res: {} as RequestContext['res'],
    conn: { id: 'c', via: 'proxy', scheme: 'https', openedAt: 0 },
    receivedAt: process.hrtime.bigint(),
    summary: { method: 'POST', scheme: 'https', host: 'api.openai.com', port: 443, path, query: {}, headers: {}, ip_literal: false },
    facts: { llm: { provider: 'openai', endpoint: 'chat.completions', model: `gpt-${Buffer.from(AWS_ID).toString('base64')}`, prompt_bytes: 10 } },
    answer: { code: 'test.deny', reason, kind: 'deny' },
    redactions: [],
    continued: false,
    bytesIn: 0,
    bytesOut: 0,
    overhead: 0,
    timings: {},
  };
}

describe('request and response records', () => {
  test.each([
    ['plain', `/v1/files/${AWS_ID}`],
    ['percent-encoded', `/v1/files/${pct(AWS_ID)}`],
    ['base64url', `/v1/files/${Buffer.from(`key=${AWS_ID}`).toString('base64url')}`],
    ['hex', `/v1/x/${Buffer.from(AWS_ID).toString('hex')}/y`],
  ])('a %s secret in the path, the facts and the reason is recorded masked', (_name, path) => {
    const ctx = context(path, `POST ${path} on api.openai.com needs approval`);
    for (const rec of [requestRecord(ctx, pod), responseRecord(ctx, pod)]) {
      expect(JSON.stringify(rec)).not.toContain(AWS_ID);
      expect(secretsIn(rec)).toEqual([]);
      expect(rec.request?.path).toMatch(/^\/v1\//);
      expect(rec.request?.host).toBe('api.openai.com');
    }
  });

  test('a clean request is recorded as it was', () => {
    const ctx = context('/v1/chat/completions', 'allowed');
    ctx.facts = {};
    expect(requestRecord(ctx, pod).request).toEqual({ method: 'POST', scheme: 'https', host: 'api.openai.com', port: 443, path: '/v1/chat/completions' });
  });
});

describe('other events', () => {
  test('a DNS name carrying a hex- or base32-looking key and a refusal reason quoting a target are masked', () => {
    const dns = eventRecord('dns', pod, { name: `${Buffer.from(AWS_ID).toString('hex')}.exfil.example`, type: 'A', result: 'refused' });
    const refusal = eventRecord('refusal', pod, { code: 'http.bad_target', reason: `bad target /x?k=${AWS_ID}`, nested: { list: [`ua/${AWS_ID}`] } });
    for (const rec of [dns, refusal]) {
      expect(JSON.stringify(rec)).not.toContain(AWS_ID);
      expect(secretsIn(rec)).toEqual([]);
    }
    expect((dns.detail as { name: string }).name).toMatch(/\.exfil\.example$/);
    expect(eventRecord('dns', pod, { name: 'api.openai.com', type: 'AAAA' }).detail).toEqual({ name: 'api.openai.com', type: 'AAAA' });
  });
});

describe('approval requests', () => {
  test.each([
    ['percent-encoded in the path', `/v1/files/${pct(AWS_ID)}`, {}],
    ['base64 in a query value', '/upload', { data: [Buffer.from(`id ${AWS_ID}`).toString('base64')] }],
    ['hex in a query value', '/upload', { blob: [Buffer.from(AWS_ID).toString('hex')] }],
  ])('a secret %s never reaches the ApprovalRequest a human reads', (_name, path, query: Record<string, string[]>) => {
    const shown = maskedPathAndQuery(path, query);
    expect(shown).not.toContain(AWS_ID);
    expect(secretsIn(shown)).toEqual([]);
  });
});
