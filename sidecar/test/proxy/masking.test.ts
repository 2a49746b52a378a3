// Masking in the request path, with real clients: secrets in responses are redacted before the
// agent sees them (also through gzip); secrets in what the agent sends are masked or the request
// is blocked, per the decision; a git push carrying a secret is refused, a clean one goes through.
// Framing: a text body under application/octet-stream is masked by its bytes, and its head tells
// the truth about what the agent gets (no secret: Content-Length, ETag and Content-MD5 kept; a
// secret: the masked body's exact length, a weak ETag, no digest); a request body outbound DLP
// changes loses the agent's Content-MD5 and gets its new length.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { createBareRepo, gitBackendHandler } from '../../../testkit/git/git-backend.ts';
import { startTestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import { createTestCa, echoHandler, startHttpsUpstream } from '../../../testkit/sidecar/upstreams.ts';
import type { TestUpstream } from '../../../testkit/sidecar/upstreams.ts';
import { buildBundle, scratchDir } from '../../../testkit/policy/opa-build.ts';

const run = promisify(execFile);

// Fake but well-formed credentials (base32 key id, 40-character secret).
const AWS_ID = 'AKIAQ4T7ZK2MWX3RPL6N';
const AWS_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8Lk3Tq9V';
const LEAKY = JSON.stringify({ config: { aws_access_key_id: AWS_ID, aws_secret_access_key: AWS_SECRET }, note: 'deploy creds' });

const POLICY = `package sluice

default decision := {"allow": true, "code": "test.allow", "reason": "test policy", "mask": ["*"], "dlp": "mask"}

decision := {"allow": true, "code": "test.block", "reason": "outbound DLP blocks here", "mask": ["*"], "dlp": "block"} if input.request.host == "paste.example"
`;

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('base64');
const OCTET: Record<string, Buffer> = {
  '/octet-plain': Buffer.from('just some words, nothing to hide\n'.repeat(20)),
  '/octet-secret': Buffer.from(`config:\naws_access_key_id = ${AWS_ID}\naws_secret_access_key = ${AWS_SECRET}\n`),
};

let api: TestUpstream;
let git: TestUpstream;
let sidecar: TestSidecar;

beforeAll(async () => {
  const ca = await createTestCa();
  api = await startHttpsUpstream(ca, ['registry.npmjs.org', 'api.openai.com', 'paste.example'], (req, res, body) => {
    if (req.url === '/leaky') return void res.writeHead(200, { 'content-type': 'application/json' }).end(LEAKY);
    // An image label over text an upstream echoed after a NUL byte: binary by its bytes, but no image.
    if (req.url === '/image-nul-secret') return void res.writeHead(200, { 'content-type': 'image/png' }).end(Buffer.concat([Buffer.from([0, 1, 2]), Buffer.from(LEAKY)]));
    if (req.url === '/leaky-gzip') return void res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(gzipSync(LEAKY));
    const octet = OCTET[req.url ?? ''];
    if (octet) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': octet.length, etag: '"v1"', 'content-md5': md5(octet) });
      // In two pieces, as a network delivers it: the head waits for the first bytes either way.
      res.write(octet.subarray(0, 40));
      return void setTimeout(() => res.end(octet.subarray(40)), 20);
    }
    echoHandler(req, res, body);
  });
  const repos = createBareRepo('acme', 'app').root;
  git = await startHttpsUpstream(ca, ['github.com'], gitBackendHandler(repos));
  sidecar = await startTestSidecar({
    resolve: { 'registry.npmjs.org:443': api.dial, 'api.openai.com:443': api.dial, 'paste.example:443': api.dial, 'github.com:443': git.dial },
    extraRootsFiles: [ca.caFile],
    bundle: buildBundle(POLICY, 'masking-test'),
  });
}, 60_000);

afterAll(async () => {
  await sidecar?.stop();
  await api?.close();
  await git?.close();
});

async function curl(args: string[]) {
  try {
    return (await run('curl', ['-sS', '--max-time', '20', '--cacert', sidecar.trust.caFile, '-x', sidecar.proxyUrl, ...args], { encoding: 'utf8' })).stdout;
  } catch (e) {
    return (e as { stdout: string }).stdout;
  }
}

describe('responses', () => {
  test('secrets in a JSON response are redacted, the JSON stays valid, the redaction is counted by rule', async () => {
    const body = await curl(['https://registry.npmjs.org/leaky']);
    expect(body).not.toContain(AWS_SECRET);
    expect(body).not.toContain(AWS_ID);
    expect(body).toContain('[REDACTED:');
    expect(JSON.parse(body)).toMatchObject({ note: 'deploy creds' });
    const metrics = await (await fetch(`${sidecar.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/sluice_masking_redactions_total\{rule="[a-z0-9-]+",direction="response"\} [1-9]/);
    expect(metrics).not.toContain(AWS_SECRET);
  });

  test('a gzip-encoded response is decoded, masked and re-encoded', async () => {
    const body = await curl(['--compressed', 'https://registry.npmjs.org/leaky-gzip']);
    expect(body).not.toContain(AWS_SECRET);
    expect(body).toContain('[REDACTED:');
  });
});

/** The response's head (lower-case names) and body, through the sidecar. */
async function curlWithHead(args: string[]): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const out = await curl(['-i', '--http1.1', '--suppress-connect-headers', ...args]);
  const split = out.indexOf('\r\n\r\n');
  const lines = out.slice(0, split).split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const colon = l.indexOf(':');
    headers[l.slice(0, colon).trim().toLowerCase()] = l.slice(colon + 1).trim();
  }
  return { status: Number(lines[0]!.split(' ')[1]), headers, body: out.slice(split + 4) };
}

describe('response framing under a binary label', () => {
  test('a text body under application/octet-stream with no secret keeps its Content-Length, ETag and Content-MD5', async () => {
    const r = await curlWithHead(['https://registry.npmjs.org/octet-plain']);
    const sent = OCTET['/octet-plain']!;
    expect(r.status).toBe(200);
    expect(r.body).toBe(sent.toString());
    expect(r.headers['content-length']).toBe(String(sent.length));
    expect(r.headers.etag).toBe('"v1"');
    expect(r.headers['content-md5']).toBe(md5(sent));
    expect(r.headers['transfer-encoding']).toBeUndefined();
  });

  test('with a secret: masked, with the masked body\'s exact Content-Length, a weak ETag and no Content-MD5', async () => {
    const r = await curlWithHead(['https://registry.npmjs.org/octet-secret']);
    expect(r.status).toBe(200);
    expect(r.body).not.toContain(AWS_SECRET);
    expect(r.body).toContain('[REDACTED:');
    expect(r.headers['content-length']).toBe(String(Buffer.byteLength(r.body)));
    expect(r.headers.etag).toBe('W/"v1"');
    expect(r.headers['content-md5']).toBeUndefined();
  });
});

describe('a body that only looks binary', () => {
  test('under an image label, a NUL byte first does not let the text after it pass unmasked (no file signature)', async () => {
    const out = await curl(['https://registry.npmjs.org/image-nul-secret']);
    expect(out).not.toContain(AWS_SECRET);
    expect(out).toContain('[REDACTED:');
  });
});

describe('outbound DLP', () => {
  test('a request body DLP masks loses its Content-MD5 and is sent with its new length', async () => {
    const body = `deploy with ${AWS_ID} ${AWS_SECRET} please`;
    await curl(['-H', 'content-type: text/plain', '-H', `content-md5: ${md5(Buffer.from(body))}`, '-H', 'digest: sha-256=abc=', '--data-binary', body, 'https://api.openai.com/v1/notes']);
    const got = api.requests.at(-1)!;
    expect(got.url).toBe('/v1/notes');
    expect(got.body.toString()).toContain('[REDACTED:');
    expect(got.headers['content-md5']).toBeUndefined();
    expect(got.headers.digest).toBeUndefined();
    expect(got.headers['content-length']).toBe(String(got.body.length));
    // A body DLP leaves alone keeps its digest.
    const clean = 'nothing secret here';
    await curl(['-H', 'content-type: text/plain', '-H', `content-md5: ${md5(Buffer.from(clean))}`, '--data-binary', clean, 'https://api.openai.com/v1/notes']);
    expect(api.requests.at(-1)!.headers['content-md5']).toBe(md5(Buffer.from(clean)));
  });

  test('a secret in an LLM prompt is masked before it leaves', async () => {
    const prompt = JSON.stringify({ model: 'gpt-5', messages: [{ role: 'user', content: `why does this fail? ${AWS_ID} ${AWS_SECRET}` }] });
    const out = await curl(['-H', 'content-type: application/json', '--data-binary', prompt, 'https://api.openai.com/v1/chat/completions']);
    expect(JSON.parse(out)).toMatchObject({ method: 'POST' });
    const sent = api.requests.at(-1)!.body.toString();
    expect(sent).not.toContain(AWS_SECRET);
    expect(sent).toContain('[REDACTED:');
    expect(() => JSON.parse(sent) as unknown).not.toThrow();
  });

  test('where the decision says block, a request carrying a secret is refused with the rule id', async () => {
    const before = api.requests.length;
    const out = await curl(['--data-binary', `token=${AWS_SECRET} id=${AWS_ID}`, 'https://paste.example/upload']);
    expect(JSON.parse(out)).toMatchObject({ error: 'dlp.secret_in_request' });
    expect(api.requests.length).toBe(before);
    const clean = await curl(['--data-binary', 'just some text', 'https://paste.example/upload']);
    expect(JSON.parse(clean)).toMatchObject({ method: 'POST', bytes: 14 });
  });
});

describe('git push', () => {
  const env = (home: string) => ({
    ...process.env,
    HOME: home,
    HTTPS_PROXY: sidecar.proxyUrl,
    GIT_SSL_CAINFO: sidecar.trust.bundleFile,
    GIT_AUTHOR_NAME: 'agent',
    GIT_AUTHOR_EMAIL: 'agent@example.com',
    GIT_COMMITTER_NAME: 'agent',
    GIT_COMMITTER_EMAIL: 'agent@example.com',
  });

  test('a commit that adds a secret is blocked, a clean one goes through', async () => {
    const home = scratchDir('git-home-');
    const dir = join(home, 'app');
    await run('git', ['clone', '-q', 'https://github.com/acme/app.git', dir], { env: env(home) });
    writeFileSync(join(dir, 'deploy.env'), `AWS_ACCESS_KEY_ID=${AWS_ID}\nAWS_SECRET_ACCESS_KEY=${AWS_SECRET}\n`);
    await run('git', ['-C', dir, 'add', '.'], { env: env(home) });
    await run('git', ['-C', dir, 'commit', '-qm', 'add deploy creds'], { env: env(home) });
    const blocked = await run('git', ['-C', dir, 'push', 'origin', 'main'], { env: env(home) }).then(
      () => ({ ok: true, stderr: '' }),
      (e: { stderr: string }) => ({ ok: false, stderr: e.stderr }),
    );
    expect(blocked.ok).toBe(false);
    expect(blocked.stderr).toMatch(/403/);
    expect(git.requests.some((r) => r.url.endsWith('/git-receive-pack') && r.method === 'POST')).toBe(false);

    await run('git', ['-C', dir, 'reset', '-q', '--hard', 'HEAD~1'], { env: env(home) });
    writeFileSync(join(dir, 'notes.md'), 'nothing secret here\n');
    await run('git', ['-C', dir, 'add', '.'], { env: env(home) });
    await run('git', ['-C', dir, 'commit', '-qm', 'notes'], { env: env(home) });
    await run('git', ['-C', dir, 'push', '-q', 'origin', 'main'], { env: env(home) });
    expect(git.requests.some((r) => r.url.endsWith('/git-receive-pack') && r.method === 'POST')).toBe(true);
  });
});
