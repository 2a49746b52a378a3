// Outbound DLP outside the body: secrets in the path, the query, custom headers, User-Agent,
// cookies and header names — plain or encoded — are found and masked so the request stays valid
// (percent-encoded in the URL, no line breaks in headers); the request's own credential headers
// and a presigned URL's signature are left alone. And the body's scanner follows its bytes, not
// the Content-Type the agent picked.
import { describe, expect, test } from '@jest/globals';
import { createMasker, maskRequestHead, planRequestBodyMasking, sniffRequestBody } from '../../src/masking/index.ts';

const masker = createMasker('*');
const AWS_ID = 'AKIAQ4T7ZK2MWX3RPL6N';
const GH = 'ghp_' + 'R7tq2Wm9ZxK4pLs8VbN3cJ6hD1fG5yE0uA2i'; // PAT-shaped (the checksum is not right: it only has to look like one)
const pct = (s: string): string => [...s].map((c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).join('');
const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('the URL', () => {
  test.each([
    ['a key id in the query', `/v1/search?q=${AWS_ID}&page=2`],
    ['a key id in a path segment', `/v1/files/${AWS_ID}/content`],
    ['percent-encoded in the path', `/v1/files/${pct(AWS_ID)}`],
    ['base64 in the query', `/v1/x?data=${encodeURIComponent(b64(`key ${AWS_ID}`))}`],
    ['hex in the query', `/v1/x?d=${Buffer.from(AWS_ID).toString('hex')}`],
  ])('%s is masked and the URL stays a valid request target', (_name, url) => {
    const r = maskRequestHead(url, { host: 'api.openai.com' }, masker);
    expect(r.findings.map((f) => [f.rule, f.where])).toContainEqual(['aws-access-key-id', url.includes('?') && !url.startsWith(`/v1/files`) ? 'query' : 'path']);
    expect(r.path).not.toContain(AWS_ID);
    expect(r.path).toMatch(/^[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]+$/);
    expect(r.unmaskable).toBeUndefined();
    expect(maskRequestHead(r.path, {}, masker).findings).toEqual([]);
    // Everything else is as it was.
    if (url.includes('&page=2')) expect(r.path).toMatch(/^\/v1\/search\?q=.*&page=2$/);
  });

  test('a clean URL and a presigned URL are untouched', () => {
    const clean = '/v1/chat/completions?stream=true&trace=3f786850e387550fdab836ed7e6dc881de23001b';
    expect(maskRequestHead(clean, {}, masker)).toMatchObject({ path: clean, findings: [] });
    const presigned = `/bucket/key?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=${AWS_ID}%2F20250101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20250101T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=${'ab12'.repeat(16)}`;
    expect(maskRequestHead(presigned, {}, masker)).toMatchObject({ path: presigned, findings: [] });
  });
});

describe('headers', () => {
  test.each([
    ['user-agent', `my-agent/1.0 (${AWS_ID})`],
    ['user-agent', `curl/8.5.0/${AWS_ID}`],
    ['x-note', b64(`creds ${AWS_ID}`)],
    ['x-debug', `id=${pct(AWS_ID)}`],
    ['cookie', `theme=dark; k=${AWS_ID}`],
    // Node hands header bytes over as latin1 characters: a zero-width space arrives as its three UTF-8 bytes.
    ['x-forwarded-for', Buffer.from(`10.0.0.1, ${AWS_ID.slice(0, 6)}\u200b${AWS_ID.slice(6)}`).toString('latin1')],
  ])('a secret in %s is masked, the value stays a valid header value', (name, value) => {
    const r = maskRequestHead('/', { host: 'api.openai.com', [name]: value, accept: 'application/json' }, masker);
    expect(r.findings.map((f) => f.where)).toContain(`header:${name}`);
    const v = String(r.headers[name]);
    expect(v).not.toContain(AWS_ID);
    expect(v).not.toMatch(/[\r\n\0]/);
    expect(r.headers.accept).toBe('application/json');
    expect(maskRequestHead('/', { [name]: v }, masker).findings).toEqual([]);
  });

  test('a secret in a header name cannot be masked there: unmaskable (the stage blocks)', () => {
    const r = maskRequestHead('/', { [`x-${AWS_ID.toLowerCase()}`]: '1', [`x-${b64(AWS_ID).toLowerCase()}`]: '1', [AWS_ID]: 'x' }, masker);
    expect(r.unmaskable).toMatchObject({ rule: 'aws-access-key-id' });
  });

  test('multi-valued headers are masked value by value', () => {
    const r = maskRequestHead('/', { 'x-tag': ['one', `two ${AWS_ID}`] }, masker);
    expect(r.headers['x-tag']).toEqual(['one', 'two [REDACTED:aws-access-key-id]']);
  });

  test('Authorization, Proxy-Authorization and the AWS session token are the request\'s own credential: not scanned', () => {
    const headers = { authorization: `Bearer ${GH}`, 'proxy-authorization': `Basic ${b64(`u:${AWS_ID}`)}`, 'x-amz-security-token': `IQoJb3JpZ2luX2VjE${AWS_ID}` };
    expect(maskRequestHead('/', headers, masker)).toMatchObject({ headers, findings: [] });
    // ...unless the sidecar is told otherwise.
    expect(maskRequestHead('/', headers, masker, { exemptHeaders: [] }).findings.length).toBeGreaterThan(0);
  });
});

describe('the body scanner follows the bytes', () => {
  test('a prompt sent as a git upload-pack request is scanned as text (it used to pass unscanned)', () => {
    expect(planRequestBodyMasking({ 'content-type': 'application/x-git-upload-pack-request' }, { isPush: false }).action).toBe('mask');
    expect(planRequestBodyMasking({ 'content-type': 'image/png' }, { isPush: false }).action).toBe('mask');
    expect(planRequestBodyMasking({ 'content-type': 'application/x-git-receive-pack-request' }, { isPush: false }).action).toBe('scan-pack');
    expect(planRequestBodyMasking({ 'content-type': 'text/plain' }, { isPush: true }).action).toBe('scan-pack');
    expect(planRequestBodyMasking({ 'content-type': 'application/json', 'content-encoding': 'compress' }, { isPush: false }).action).toBe('refuse');
  });

  test('sniffing: receive-pack commands, compressed data and text', () => {
    const oid = (c: string) => c.repeat(40);
    const cmd = `${oid('0')} ${oid('a')} refs/heads/main\0 report-status side-band-64k`;
    const pkt = (s: string) => `${(s.length + 4).toString(16).padStart(4, '0')}${s}`;
    expect(sniffRequestBody(Buffer.from(`${pkt(cmd)}0000PACK`))).toBe('receive-pack');
    expect(sniffRequestBody(Buffer.from(`${pkt('push-cert\0 push-options')}`))).toBe('receive-pack');
    expect(sniffRequestBody(Buffer.from([0x1f, 0x8b, 0x08, 0x00]))).toBe('compressed');
    expect(sniffRequestBody(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00]))).toBe('compressed');
    expect(sniffRequestBody(Buffer.from('PK\u0003\u0004rest', 'latin1'))).toBe('compressed');
    expect(sniffRequestBody(Buffer.from('PACK\0\0\0\u0002\0\0\0\u0001'))).toBe('compressed');
    expect(sniffRequestBody(Buffer.from('{"model":"gpt-5"}'))).toBe('text');
    expect(sniffRequestBody(Buffer.from('0032want 3f786850e387550fdab836ed7e6dc881de23001b\n'))).toBe('text');
    expect(sniffRequestBody(Buffer.from('x = 1'))).toBe('text');
  });
});
