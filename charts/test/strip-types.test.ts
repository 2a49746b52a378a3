// The sidecar image's JavaScript tree (charts/images/strip-types.ts, image-spec.ts stripTypes):
// every module keeps its line numbers (stack traces point at the .ts source), relative imports
// point at the twins, and the sidecar started from main.js with approvals and credentials
// configured becomes ready without loading a single .ts module (so Node never loads its
// TypeScript stripper).
import { afterAll, describe, expect, jest, test } from '@jest/globals';
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IMAGES } from '../images/image-spec.ts';
import { stripTree, toJavaScript } from '../images/strip-types.ts';

jest.setTimeout(120_000);

const REPO = join(import.meta.dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'sluice-strip-types-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function modules(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts'))
    .map((e) => join(e.parentPath, e.name));
}

describe('strip-types', () => {
  test('every sidecar module keeps its line count and loses every relative .ts import', () => {
    for (const d of IMAGES.sidecar.stripTypes) {
      for (const file of modules(join(REPO, d)).filter((f) => !/\/(test|testdata)\//.test(f))) {
        const ts = readFileSync(file, 'utf8');
        const js = toJavaScript(ts);
        expect([file, js.split('\n').length]).toEqual([file, ts.split('\n').length]);
        expect([file, /(?:from|import)\s*\(?\s*['"]\.{1,2}\/[^'"]+\.ts['"]/.test(js)]).toEqual([file, false]);
      }
    }
  });

  test('the sidecar image runs main.js', () => {
    expect(IMAGES.sidecar.entrypoint).toEqual(['node', '/app/sidecar/src/main.js']);
    expect(IMAGES.sidecar.stripTypes).toEqual(expect.arrayContaining(['api/src', 'lib/src', 'sidecar/src']));
  });

  test('the sidecar from the JavaScript tree becomes ready with approvals and credentials configured, loading no .ts module', async () => {
    const app = join(work, 'app');
    for (const d of IMAGES.sidecar.stripTypes) {
      cpSync(join(REPO, d), join(app, d), { recursive: true, filter: (src) => !/\/(test|testdata)(\/|$)/.test(src.slice(REPO.length)) });
      expect(stripTree(join(app, d))).toBeGreaterThan(0);
    }
    writeFileSync(join(app, 'package.json'), readFileSync(join(REPO, 'package.json')));
    // node_modules beside the tree as in the image (hard links: no copy of the bytes, no symlink).
    execFileSync('cp', ['-al', join(REPO, 'node_modules'), join(app, 'node_modules')]);
    const admin = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as AddressInfo;
        s.close(() => resolve(port));
      });
    });
    const run = join(work, 'run');
    mkdirSync(join(run, 'tokens'), { recursive: true });
    writeFileSync(join(run, 'tokens', 'aws'), 'eyJhbGciOiJSUzI1NiJ9.e30.c2ln');
    writeFileSync(join(run, 'static-secret'), 'a-static-token');
    writeFileSync(
      join(run, 'kubeconfig'),
      JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:1', 'insecure-skip-tls-verify': true } }], users: [{ name: 'u', user: { token: 't' } }], contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }], 'current-context': 'x' }),
    );
    writeFileSync(
      join(run, 'sidecar.json'),
      JSON.stringify({
        pod: { namespace: 'strip', name: 'strip-0', serviceAccount: 'agent' },
        policy: { path: join(REPO, 'policies', 'build', 'bundle.tar.gz') },
        podInfoDir: join(run, 'podinfo'),
        trustDir: join(run, 'trust'),
        resolvConf: join(run, 'resolv.conf'),
        audit: { spoolDir: join(run, 'spool') },
        ports: { transparent: 0, proxy: 0, dns: 0, admin },
        bind: { transparent: '127.0.0.1', proxy: '127.0.0.1', dns: ['127.0.0.1'], admin: '127.0.0.1' },
        approvals: { kubeconfig: join(run, 'kubeconfig') },
        credentials: { tokenDir: join(run, 'tokens'), aws: { roles: [{ roleArn: 'arn:aws:iam::123456789012:role/agent' }] }, static: { s: { file: join(run, 'static-secret'), hosts: ['api.example.com'] } } },
      }),
    );
    const loaded = join(run, 'loaded.json');
    const hook = join(run, 'hook.mjs');
    writeFileSync(hook, `import { registerHooks } from 'node:module';\nimport { writeFileSync } from 'node:fs';\nconst seen = [];\nregisterHooks({ load(url, c, next) { seen.push(url); writeFileSync(${JSON.stringify(loaded)}, JSON.stringify(seen)); return next(url, c); } });\n`);
    const child = spawn(process.execPath, ['--import', hook, join(app, 'sidecar', 'src', 'main.js'), 'proxy'], { env: { ...process.env, SLUICE_CONFIG_FILE: join(run, 'sidecar.json') }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    try {
      let status = 0;
      for (let i = 0; i < 600 && status !== 200 && child.exitCode === null; i++) {
        status = await fetch(`http://127.0.0.1:${admin}/readyz`).then(
          (r) => r.status,
          () => 0,
        );
        if (status !== 200) await new Promise((r) => setTimeout(r, 100));
      }
      expect([status, output.includes('"sidecar ready"') ? 'ready' : output.slice(-2000)]).toEqual([200, 'ready']);
      const urls = JSON.parse(readFileSync(loaded, 'utf8')) as string[];
      expect(urls.filter((u) => u.startsWith('file:') && u.endsWith('.ts'))).toEqual([]);
      expect(urls.filter((u) => u.includes('/app/sidecar/src/')).length).toBeGreaterThan(50);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });
});
