// The gateway in-process with real clients (curl) through its explicit proxy port: keep-alive,
// streamed uploads and downloads, 100-continue, upstream TLS verification, passthrough, the kill
// switch. The network-namespace suite (e2e/datapath) covers the transparent path.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createTestCa, echoHandler, startHttpUpstream, startHttpsUpstream } from '../../../testkit/sidecar/upstreams.ts';
import type { TestCa, TestUpstream } from '../../../testkit/sidecar/upstreams.ts';
import { startTestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import { opaBin, repoRoot, scratchDir } from '../../../testkit/policy/opa-build.ts';

const run = promisify(execFile);
const download = randomBytes(8 * 1024 * 1024);
/** Resolves each time the upstream starts sending the big download. */
let downloadStarted: () => void = () => undefined;

let ca: TestCa;
let api: TestUpstream;
let plain: TestUpstream;
let wrongName: TestUpstream;
let pinned: TestUpstream;
let sidecar: TestSidecar;
let podInfoDir: string;

/** The default policy with pinned.example marked passthrough, built by the real compiler. */
function passthroughBundle(): string {
  const dir = scratchDir('bundle-');
  cpSync(join(repoRoot, 'policies', 'rego'), join(dir, 'rego'), { recursive: true });
  mkdirSync(join(dir, 'data', 'config'), { recursive: true });
  cpSync(join(repoRoot, 'policies', 'data', 'organisation'), join(dir, 'data', 'organisation'), { recursive: true });
  const data = JSON.parse(readFileSync(join(repoRoot, 'policies', 'data', 'config', 'data.json'), 'utf8')) as Record<string, unknown>;
  data.passthrough_hosts = ['pinned.example'];
  writeFileSync(join(dir, 'data', 'config', 'data.json'), JSON.stringify(data));
  const out = join(dir, 'bundle.tar.gz');
  execFileSync(opaBin, ['build', '-t', 'wasm', '-e', 'sluice/decision', '--ignore', '*_test.rego', '-r', 'passthrough-test', '-o', out, join(dir, 'rego'), join(dir, 'data')]);
  return out;
}

beforeAll(async () => {
  ca = await createTestCa();
  api = await startHttpsUpstream(ca, ['registry.npmjs.org', 'api.openai.com'], (req, res, body) => {
    if (req.url === '/big') {
      downloadStarted();
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': download.length }).end(download);
      return;
    }
    echoHandler(req, res, body);
  });
  plain = await startHttpUpstream();
  wrongName = await startHttpsUpstream(ca, ['not-pypi.example']);
  const otherCa = await createTestCa('a CA nobody trusts');
  pinned = await startHttpsUpstream(otherCa, ['pinned.example']);
  podInfoDir = scratchDir('podinfo-');
  writeFileSync(join(podInfoDir, 'labels'), 'app="coder"\n');
  writeFileSync(join(podInfoDir, 'annotations'), '');
  sidecar = await startTestSidecar({
    resolve: {
      'registry.npmjs.org:443': api.dial,
      'api.openai.com:443': api.dial,
      'github.com:80': plain.dial,
      'pypi.org:443': wrongName.dial,
      'pinned.example:443': pinned.dial,
    },
    extraRootsFiles: [ca.caFile],
    bundle: passthroughBundle(),
    config: { podInfoDir },
  });
  (pinned as TestUpstream & { caFile?: string }).caFile = otherCa.caFile;
}, 60_000);

afterAll(async () => {
  await sidecar?.stop();
  for (const u of [api, plain, wrongName, pinned]) await u?.close();
});

async function curl(args: string[], cacert = sidecar.trust.caFile) {
  try {
    const r = await run('curl', ['-sS', '--max-time', '20', '--cacert', cacert, '-x', sidecar.proxyUrl, ...args], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr.toString() };
  } catch (e) {
    const x = e as { code: number; stdout: Buffer; stderr: Buffer };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr.toString() };
  }
}

describe('explicit proxy', () => {
  test('keeps one upstream-facing tunnel alive across requests', async () => {
    const r = await curl(['-w', '[connects=%{num_connects}]', 'https://registry.npmjs.org/a', 'https://registry.npmjs.org/b']);
    expect(r.code).toBe(0);
    expect([...r.stdout.toString().matchAll(/\[connects=(\d)\]/g)].map((m) => m[1])).toEqual(['1', '0']);
  });

  test('streams a chunked upload of 6 MB intact', async () => {
    const body = randomBytes(6 * 1024 * 1024);
    const file = join(scratchDir(), 'upload.bin');
    writeFileSync(file, body);
    const r = await curl(['-H', 'Transfer-Encoding: chunked', '-H', 'content-type: application/json', '--data-binary', `@${file}`, 'https://api.openai.com/v1/chat/completions']);
    expect(JSON.parse(r.stdout.toString())).toMatchObject({ method: 'POST', bytes: body.length });
    const seen = api.requests.at(-1)!;
    expect(createHash('sha256').update(seen.body).digest('hex')).toBe(createHash('sha256').update(body).digest('hex'));
  }, 30_000); // 6 MB through outbound DLP: ~4 s on a loaded 2-core machine

  test('streams an 8 MB download intact', async () => {
    const r = await curl(['https://registry.npmjs.org/big']);
    expect(r.stdout.length).toBe(download.length);
    expect(r.stdout.equals(download)).toBe(true);
  });

  test.each([
    ['--http1.1', 'HTTP/1.1'],
    ['--http2', 'HTTP/2'],
  ])('100-continue (%s): a denied upload is refused before its body is sent', async (flag, version) => {
    const file = join(scratchDir(), 'pkg.tgz');
    writeFileSync(file, randomBytes(2 * 1024 * 1024));
    const before = api.requests.length;
    const r = await curl([flag, '-i', '-X', 'PUT', '-H', 'Expect: 100-continue', '--data-binary', `@${file}`, 'https://registry.npmjs.org/acme']);
    const text = r.stdout.toString('latin1');
    expect(text).toContain(`${version} 403`);
    expect(text).not.toMatch(/HTTP\/[\d.]+ 100/);
    expect(api.requests.length).toBe(before);
  });

  test('absolute-form plain HTTP is decided and forwarded', async () => {
    const r = await curl(['http://github.com/raw/README.md']);
    expect(JSON.parse(r.stdout.toString())).toMatchObject({ url: '/raw/README.md', host: 'github.com' });
  });

  test('an upstream whose certificate does not match the name is a 502 with the reason, never a downgrade', async () => {
    const r = await curl(['-i', 'https://pypi.org/simple/']);
    const text = r.stdout.toString();
    expect(text).toMatch(/HTTP\/(1\.1|2) 502/);
    expect(text).toContain('upstream.tls_verify_failed');
    expect(wrongName.requests).toHaveLength(0);
  });

  test('a passthrough host is tunnelled uninspected: the client sees the upstream certificate', async () => {
    const r = await curl(['https://pinned.example/pinned'], (pinned as TestUpstream & { caFile: string }).caFile);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout.toString())).toMatchObject({ url: '/pinned' });
  });

  test('metrics count decisions by action and code', async () => {
    const text = await (await fetch(`${sidecar.adminUrl}/metrics`)).text();
    expect(text).toMatch(/sluice_requests_total\{action="allow",code="registry.read"\} [1-9]/);
    expect(text).toMatch(/sluice_requests_total\{action="error",code="upstream.tls_verify_failed"\} 1/);
    expect(text).toMatch(/sluice_policy_bundle_info\{revision="passthrough-test"\} 1/);
  });
});

describe('kill switch', () => {
  test('sluice.io/kill denies every new request and cuts an open download', async () => {
    const started = new Promise<void>((resolve) => (downloadStarted = resolve));
    const slow = curl(['--limit-rate', '200k', 'https://registry.npmjs.org/big']);
    await started;
    writeFileSync(join(podInfoDir, 'annotations'), 'sluice.io/kill="true"\n');
    await sidecar.podInfo.refresh();
    const cut = await slow;
    expect(cut.stdout.length).toBeLessThan(download.length);
    const denied = await curl(['-i', 'https://registry.npmjs.org/after-kill']);
    expect(denied.stdout.toString()).toContain('pod.killed');
  });
});
