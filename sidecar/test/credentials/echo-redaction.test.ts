// Injected credentials echoed by an upstream are overwritten before the agent sees them: in
// headers, in uncompressed bodies at any chunk split, percent-encoded too, length preserved.
import { Readable } from 'node:stream';
import { describe, expect, test } from '@jest/globals';
import { echoNeedles, redactEchoesHook, redactingTransform } from '../../src/credentials/echo-redaction.ts';

const SECRET = 'FwoGZXIvYXdzEJr/session+token=';

async function through(chunks: Buffer[], secrets: string[]): Promise<string> {
  const out: Buffer[] = [];
  for await (const c of Readable.from(chunks).pipe(redactingTransform(echoNeedles(secrets))) as AsyncIterable<Buffer>) out.push(c);
  return Buffer.concat(out).toString();
}

describe('echo redaction', () => {
  test('finds the secret across every chunk boundary and keeps the length', async () => {
    const body = `<Error><CanonicalRequest>x-amz-security-token:${SECRET}\nhost:s3</CanonicalRequest><Url>?X-Amz-Security-Token=${encodeURIComponent(SECRET)}</Url></Error>`;
    for (let size = 1; size <= body.length; size += 7) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < body.length; i += size) chunks.push(Buffer.from(body.slice(i, i + size)));
      const out = await through(chunks, [SECRET]);
      expect(out.length).toBe(body.length);
      expect(out).not.toContain(SECRET);
      expect(out).not.toContain(encodeURIComponent(SECRET));
      expect(out).toContain('x-amz-security-token:****');
    }
  });

  test('headers are masked; compressed bodies are left alone (the request asked for identity)', () => {
    const hook = redactEchoesHook([SECRET]);
    const plain = hook({ status: 200, headers: { 'x-echo': `Bearer ${SECRET}`, 'set-cookie': [`a=${SECRET}`, 'b=1'] } });
    expect(plain.headers).toEqual({ 'x-echo': `Bearer ${'*'.repeat(SECRET.length)}`, 'set-cookie': [`a=${'*'.repeat(SECRET.length)}`, 'b=1'] });
    expect(plain.transforms).toHaveLength(1);
    // A redirect to a presigned URL carries the token percent-encoded.
    const location = `https://b.s3.amazonaws.com/k?X-Amz-Security-Token=${encodeURIComponent(SECRET)}&X-Amz-Signature=abc`;
    expect(hook({ status: 307, headers: { location } }).headers).toEqual({ location: location.replace(encodeURIComponent(SECRET), '*'.repeat(encodeURIComponent(SECRET).length)) });
    expect(hook({ status: 200, headers: { 'content-encoding': 'gzip' } }).transforms).toBeUndefined();
    // Nothing to mask: the same headers come back, and a body too short to hold a secret is not scanned.
    const clean = { 'content-type': 'application/json', 'content-length': String(SECRET.length - 1) };
    const r = hook({ status: 200, headers: clean });
    expect(r.headers).toBe(clean);
    expect(r.transforms).toBeUndefined();
    expect(hook({ status: 200, headers: { 'content-length': String(SECRET.length) } }).transforms).toHaveLength(1);
  });

  test('values too short to search for safely are not searched', async () => {
    expect(echoNeedles(['abc', SECRET]).map(String)).toEqual([SECRET, encodeURIComponent(SECRET)]);
    expect(await through([Buffer.from('abc abc')], ['abc'])).toBe('abc abc');
  });
});
