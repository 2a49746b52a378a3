// Issue 16 items 3 and 4 through a real sidecar (explicit proxy, TLS interception, the policy
// engine, the audit spool): a base64'd AWS key in an LLM prompt, every other encoding of it, a
// secret in the query, in the path, in User-Agent and in a custom header are masked (dlp: mask) or
// refused (dlp: block) before they leave, a JSON prompt sent as a git upload-pack request is
// scanned all the same, and nothing the agent sent in any form reaches the audit trail.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startTestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import { createTestCa, echoHandler, startHttpsUpstream } from '../../../testkit/sidecar/upstreams.ts';
import type { TestUpstream } from '../../../testkit/sidecar/upstreams.ts';
import { createMasker, scanDecoded } from '../../src/masking/index.ts';
import { buildBundle } from '../../../testkit/policy/opa-build.ts';

const run = promisify(execFile);
const masker = createMasker('*');

// Fake but well-formed credentials.
const AWS_ID = 'AKIAQ4T7ZK2MWX3RPL6N';
const AWS_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8Lk3Tq9V';
const CREDS = `[default]\naws_access_key_id = ${AWS_ID}\naws_secret_access_key = ${AWS_SECRET}\n`;
const b64 = (s: string) => Buffer.from(s).toString('base64');
const every = (s: string, f: (c: string) => string): string => [...s].map(f).join('');

const POLICY = `package sluice

default decision := {"allow": true, "code": "test.allow", "reason": "test policy", "mask": ["*"], "dlp": "mask"}

decision := {"allow": true, "code": "test.block", "reason": "outbound DLP blocks here", "mask": ["*"], "dlp": "block"} if input.request.host == "paste.example"
`;

let api: TestUpstream;
let sidecar: TestSidecar;
const spoolDir = mkdtempSync(join(tmpdir(), 'sluice-dlp-spool-'));

beforeAll(async () => {
  const ca = await createTestCa();
  api = await startHttpsUpstream(ca, ['api.openai.com', 'paste.example'], echoHandler);
  sidecar = await startTestSidecar({
    resolve: { 'api.openai.com:443': api.dial, 'paste.example:443': api.dial },
    extraRootsFiles: [ca.caFile],
    bundle: buildBundle(POLICY, 'dlp-decoded-test'),
    config: { audit: { spoolDir, spool: { fsync: 'none' } } },
  });
}, 60_000);

afterAll(async () => {
  await sidecar?.stop();
  await api?.close();
});

async function curl(args: string[]): Promise<string> {
  try {
    return (await run('curl', ['-sS', '--max-time', '20', '--cacert', sidecar.trust.caFile, '-x', sidecar.proxyUrl, ...args], { encoding: 'utf8', maxBuffer: 16 << 20 })).stdout;
  } catch (e) {
    return (e as { stdout: string }).stdout;
  }
}

/** What the upstream received, in every form: nothing of the key in any decoded view. */
function leaked(sent: { url: string; headers: Record<string, unknown>; body: Buffer }): string[] {
  const parts = [Buffer.from(sent.url, 'latin1'), Buffer.from(JSON.stringify(sent.headers), 'latin1'), sent.body];
  return parts.flatMap((p) => scanDecoded(p, masker.scanner, { mode: 'scan', maskRaw: true }).findings.map((f) => `${f.rule}:${f.via.join('>')}`));
}

const prompt = (content: string) => JSON.stringify({ model: 'gpt-5', messages: [{ role: 'user', content }] });

describe('dlp: mask on an LLM API', () => {
  test("a base64'd AWS key in a prompt is masked inside its base64", async () => {
    const out = await curl(['-H', 'content-type: application/json', '--data-binary', prompt(`please use these: ${b64(CREDS)}`), 'https://api.openai.com/v1/chat/completions']);
    expect(JSON.parse(out)).toMatchObject({ method: 'POST' });
    const sent = api.requests.at(-1)!;
    expect(leaked(sent)).toEqual([]);
    const content = (JSON.parse(sent.body.toString()) as { messages: { content: string }[] }).messages[0]!.content;
    expect(Buffer.from(content.split(': ')[1]!, 'base64').toString()).toContain('[REDACTED:aws-');
  });

  test.each([
    ['MIME base64, line-wrapped', `--b\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64(CREDS).replace(/(.{76})/g, '$1\r\n')}\r\n--b--`],
    ['hex', Buffer.from(CREDS).toString('hex')],
    ['percent-encoding of every byte', every(CREDS, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`)],
    ['a zero-width space inside the token', `${AWS_ID.slice(0, 5)}\u200b${AWS_ID.slice(5)}`],
  ])('%s in a prompt is masked', async (_name, content) => {
    await curl(['-H', 'content-type: application/json', '--data-binary', prompt(content), 'https://api.openai.com/v1/chat/completions']);
    const sent = api.requests.at(-1)!;
    expect(sent.url).toBe('/v1/chat/completions');
    expect(leaked(sent)).toEqual([]);
    // The masked body still says what it said, with the key redacted in its own encoding.
    expect(sent.body.equals(Buffer.from(prompt(content)))).toBe(false);
    expect(() => JSON.parse(sent.body.toString()) as unknown).not.toThrow();
  });

  test('JSON \\u escapes, a key split across two fields, UTF-16LE', async () => {
    const escaped = `{"model":"gpt-5","messages":[{"role":"user","content":"${every(AWS_ID, (c) => `\\u00${c.charCodeAt(0).toString(16)}`)}"}]}`;
    const split = JSON.stringify({ model: 'gpt-5', messages: [{ role: 'user', content: `key ${AWS_ID.slice(0, 10)}` }, { role: 'user', content: `${AWS_ID.slice(10)} end` }] });
    for (const body of [escaped, split]) {
      await curl(['-H', 'content-type: application/json', '--data-binary', body, 'https://api.openai.com/v1/chat/completions']);
      const sent = api.requests.at(-1)!;
      expect(leaked(sent)).toEqual([]);
      expect(sent.body.toString()).toContain('[REDACTED:aws-access-key-id]');
      expect(sent.body.toString()).not.toMatch(/AKIAQ4T7|2MWX3RPL6N/);
    }
    const utf16 = Buffer.from(`text in utf-16: ${CREDS}`, 'utf16le');
    const file = join(spoolDir, '..', `utf16-${process.pid}.txt`);
    (await import('node:fs')).writeFileSync(file, utf16);
    await curl(['-H', 'content-type: text/plain; charset=utf-16le', '--data-binary', `@${file}`, 'https://api.openai.com/v1/chat/completions']);
    const sent = api.requests.at(-1)!;
    expect(leaked(sent)).toEqual([]);
    expect(sent.body.toString('utf16le')).toContain('[REDACTED:aws-');
  });

  test('a JSON prompt sent as application/x-git-upload-pack-request is scanned all the same', async () => {
    await curl(['-H', 'content-type: application/x-git-upload-pack-request', '--data-binary', prompt(`creds: ${b64(CREDS)} and raw ${AWS_ID} ${AWS_SECRET}`), 'https://api.openai.com/v1/chat/completions']);
    const sent = api.requests.at(-1)!;
    expect(leaked(sent)).toEqual([]);
    expect(sent.body.toString()).not.toContain(AWS_SECRET);
  });

  test('secrets in the query, the path, User-Agent and a custom header are masked; the request still goes', async () => {
    const out = await curl([
      '-A', `agent/1.0 (${AWS_ID})`,
      '-H', `x-debug-context: ${b64(CREDS)}`,
      '-H', 'content-type: application/json',
      '--data-binary', prompt('hello'),
      `https://api.openai.com/v1/files/${every(AWS_ID, (c) => `%${c.charCodeAt(0).toString(16)}`)}/content?q=${AWS_ID}&page=2`,
    ]);
    expect(JSON.parse(out)).toMatchObject({ method: 'POST' });
    const sent = api.requests.at(-1)!;
    expect(leaked(sent)).toEqual([]);
    expect(sent.url).toMatch(/^\/v1\/files\/%5BREDACTED%3Aaws-access-key-id%5D\/content\?q=%5BREDACTED%3Aaws-access-key-id%5D&page=2$/);
    expect(sent.headers['user-agent']).toBe('agent/1.0 ([REDACTED:aws-access-key-id])');
    expect(Buffer.from(String(sent.headers['x-debug-context']), 'base64').toString()).toContain('[REDACTED:aws-');
  });
});

describe('dlp: block', () => {
  test.each([
    ['the query', ['--data-binary', 'hi', `https://paste.example/upload?k=${AWS_ID}`], 'dlp.secret_in_url'],
    ['User-Agent', ['-A', `x/${b64(CREDS)}`, '--data-binary', 'hi', 'https://paste.example/upload'], 'dlp.secret_in_header'],
    ['a base64 body', ['--data-binary', b64(CREDS), 'https://paste.example/upload'], 'dlp.encoded_secret_in_request'],
  ])('a secret in %s is refused with a stable code', async (_name, args, code) => {
    const before = api.requests.length;
    const out = await curl(args);
    expect(JSON.parse(out)).toMatchObject({ error: code });
    expect(api.requests.length).toBe(before);
  });
});

describe('the audit trail', () => {
  test('holds no secret in any form: paths, reasons and details are recorded masked', async () => {
    // A denied request whose path carries the key (the reason quotes it) and a refused one.
    await curl(['--data-binary', 'hi', `https://paste.example/${AWS_ID}/x?q=${AWS_ID}`]);
    await new Promise((r) => setTimeout(r, 300)); // the end-of-request records are written after the answer
    const files: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d)) {
        const p = join(d, e);
        if (statSync(p).isDirectory()) walk(p);
        else files.push(p);
      }
    };
    walk(spoolDir);
    const lines = files.flatMap((f) => readFileSync(f, 'utf8').split('\n')).filter((l) => l.startsWith('{'));
    expect(lines.length).toBeGreaterThan(10);
    const all = lines.join('\n');
    expect(all).not.toContain(AWS_ID);
    expect(all).not.toContain(AWS_SECRET);
    const inAnyForm = lines.flatMap((l) => scanDecoded(Buffer.from(l), masker.scanner, { mode: 'scan', maskRaw: true }).findings.map((f) => `${f.rule}:${f.via.join('>')}`));
    expect(inAnyForm).toEqual([]);
    // The paths are there, masked.
    expect(all).toMatch(/"path":"\/v1\/files\/%5BREDACTED%3Aaws-access-key-id%5D\/content"/);
    expect(all).toContain('"code":"dlp.secret_in_url"');
  });
});
