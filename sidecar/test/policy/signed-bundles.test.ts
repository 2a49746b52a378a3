// Custom policy ships as a signed OPA bundle (`opa build --signing-key`): with a public key
// configured, the sidecar loads only a bundle whose signature verifies with that key and covers
// exactly its files. Unsigned, tampered (a file edited, added or removed after signing, a member
// repeated), other-key and wrong-algorithm bundles are refused with a stable code, recorded as a
// policy_load event and counted, and the last good bundle stays in service.
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readBundle } from '../../../lib/src/policy/bundle.ts';
import type { BundleError } from '../../../lib/src/policy/bundle.ts';
import type { BundleVerification } from '../../../lib/src/policy/bundle-signature.ts';
import { BundleWatcher } from '../../src/policy/bundle-watcher.ts';
import { PolicyEngine } from '../../../lib/src/policy/engine.ts';
import type { LoadedBundle } from '../../../lib/src/policy/engine.ts';
import { parseSidecarConfig } from '../../src/config/sidecar-config.ts';
import { agentInput } from '../../../policies/cases/cases.ts';
import { startTestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import { allowAllRego, opaBin, repoRoot, scratchDir } from '../../../testkit/policy/opa-build.ts';

const input = agentInput({ method: 'GET', host: 'registry.npmjs.org', path: '/express' });
const work = scratchDir('sluice-signed-');

interface KeyPair {
  priv: string;
  pub: string;
}

function keyPair(name: string, kind: 'rsa' | 'ec'): KeyPair {
  const priv = join(work, `${name}.key`);
  const pub = join(work, `${name}.pub`);
  if (kind === 'rsa') execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', priv], { stdio: 'pipe' });
  else execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', priv], { stdio: 'pipe' });
  execFileSync('openssl', ['pkey', '-in', priv, '-pubout', '-out', pub], { stdio: 'pipe' });
  return { priv, pub };
}

let buildSeq = 0;
/** Real `opa build -b -t wasm` of a one-rule policy (and data), signed when a key is given. */
function build(code: string, revision: string, opts: { key?: KeyPair; alg?: string; data?: object; extra?: Record<string, string> } = {}): string {
  const src = join(work, `src-${++buildSeq}`);
  mkdirSync(src);
  writeFileSync(join(src, 'policy.rego'), allowAllRego(code));
  writeFileSync(join(src, 'data.json'), JSON.stringify(opts.data ?? { org: { buckets: ['acme-artifacts'], limit: 1.5e3 } }));
  for (const [name, text] of Object.entries(opts.extra ?? {})) writeFileSync(join(src, name), text);
  const out = join(work, `bundle-${buildSeq}.tar.gz`);
  const sign = opts.key ? ['--signing-key', opts.key.priv, '--signing-alg', opts.alg ?? 'RS256'] : [];
  execFileSync(opaBin, ['build', '-b', '-t', 'wasm', '-e', 'sluice/decision', '-r', revision, ...sign, '-o', out, '.'], { stdio: 'pipe', cwd: src });
  return out;
}

/** Unpacks a bundle, lets `edit` change the tree, and packs it again (what an attacker with write access does). */
function repack(bundle: string, edit: (dir: string) => void, tarArgs: string[] = []): string {
  const dir = join(work, `repack-${++buildSeq}`);
  mkdirSync(dir);
  execFileSync('tar', ['-xzf', bundle, '-C', dir], { stdio: 'pipe' });
  edit(dir);
  const out = join(work, `repacked-${buildSeq}.tar.gz`);
  execFileSync('tar', ['-czf', out, '-C', dir, ...tarArgs, ...readdirSync(dir)], { stdio: 'pipe' });
  return out;
}

function verification(key: KeyPair, algorithm: BundleVerification['algorithm'] = 'RS256'): BundleVerification {
  return { algorithm, publicKey: () => Promise.resolve(readFileSync(key.pub, 'utf8')) };
}

let rsa: KeyPair;
let ec: KeyPair;
let other: KeyPair;
let signed: string;

beforeAll(() => {
  rsa = keyPair('rsa', 'rsa');
  ec = keyPair('ec', 'ec');
  other = keyPair('other', 'rsa');
  signed = build('signed.ok', 'signed-1', { key: rsa });
}, 60_000);

describe('reading a signed bundle', () => {
  test('a bundle signed by the configured RS256 key loads, with its revision and the key id', async () => {
    const bundle = await readBundle(signed, { verification: verification(rsa) });
    expect(bundle.revision).toBe('signed-1');
    expect(bundle.signature).toEqual({ keyId: 'default', algorithm: 'RS256', files: 4 });
    const engine = new PolicyEngine();
    await engine.load(bundle);
    expect(engine.evaluate(input).decision.code).toBe('signed.ok');
  });

  test('ES256 works the same, and data with non-ASCII strings and number literals verifies as OPA digests it', async () => {
    const data = { org: { name: 'Ächme\u2028Corp <&>', ratio: 1.0, big: 1e21, tiny: 5e-7, emoji: '😀', ['\u{1F600}k']: 1, zk: 2 } };
    const bundle = await readBundle(build('signed.ec', 'ec-1', { key: ec, alg: 'ES256', data }), { verification: verification(ec, 'ES256') });
    expect(bundle.signature).toMatchObject({ algorithm: 'ES256' });
    expect(bundle.data).toEqual(data);
  });

  test('the real default library (rego + organisation data), built and signed by opa, verifies and decides', async () => {
    const src = join(work, 'library');
    mkdirSync(src);
    cpSync(join(repoRoot, 'policies', 'rego'), join(src, 'rego'), { recursive: true, filter: (f) => !f.endsWith('_test.rego') });
    cpSync(join(repoRoot, 'policies', 'data'), src, { recursive: true }); // config/, organisation/ at the data root, as make policy lays them
    const out = join(work, 'library.tar.gz');
    const caps = join(repoRoot, 'policies', 'build', 'capabilities.json');
    execFileSync(opaBin, ['build', '-b', '-t', 'wasm', '-e', 'sluice/decision', '--capabilities', caps, '-r', 'lib-1', '--signing-key', rsa.priv, '--signing-alg', 'RS256', '-o', out, '.'], { stdio: 'pipe', cwd: src });
    const bundle = await readBundle(out, { verification: verification(rsa) });
    expect(bundle.signature!.files).toBeGreaterThan(5);
    const engine = new PolicyEngine();
    await engine.load(bundle);
    expect(engine.evaluate(input).decision).toMatchObject({ allow: true, code: 'registry.read' });
  }, 60_000);

  test('without a configured key an unsigned bundle still loads (the default library, development)', async () => {
    expect((await readBundle(build('plain', 'plain-1'))).revision).toBe('plain-1');
  });

  const refusals: [string, () => string, () => BundleVerification, string][] = [
    ['an unsigned bundle', () => build('unsigned', 'u-1'), () => verification(rsa), 'bundle.unsigned'],
    ['a bundle signed by another key', () => build('other', 'o-1', { key: other }), () => verification(rsa), 'bundle.signature_invalid'],
    ['an RS256 bundle when ES256 is configured', () => signed, () => verification(ec, 'ES256'), 'bundle.signature_invalid'],
    [
      'data.json edited after signing (a passthrough host added)',
      () => repack(signed, (d) => writeFileSync(join(d, 'data.json'), JSON.stringify({ org: { buckets: ['acme-artifacts', 'attacker'], limit: 1.5e3 } }))),
      () => verification(rsa),
      'bundle.digest_mismatch',
    ],
    [
      'policy.wasm swapped for another signed build',
      () => repack(signed, (d) => execFileSync('tar', ['-xzf', build('evil', 'e-1', { key: other }), '-C', d, '/policy.wasm'], { stdio: 'pipe' })),
      () => verification(rsa),
      'bundle.digest_mismatch',
    ],
    ['.manifest edited (revision changed)', () => repack(signed, (d) => writeFileSync(join(d, '.manifest'), '{"revision":"forged","roots":[""]}')), () => verification(rsa), 'bundle.digest_mismatch'],
    ['a file added after signing', () => repack(signed, (d) => writeFileSync(join(d, 'extra.rego'), 'package x\n')), () => verification(rsa), 'bundle.file_not_signed'],
    ['a signed file removed', () => repack(signed, (d) => execFileSync('rm', [join(d, 'policy.rego')])), () => verification(rsa), 'bundle.signed_file_missing'],
    ['a signature file with two JWTs', () => repack(signed, (d) => {
      const sig = JSON.parse(readFileSync(join(d, '.signatures.json'), 'utf8')) as { signatures: string[] };
      writeFileSync(join(d, '.signatures.json'), JSON.stringify({ signatures: [sig.signatures[0], sig.signatures[0]] }));
    }), () => verification(rsa), 'bundle.signature_invalid'],
    ['a JWT with its signature part cut off', () => repack(signed, (d) => {
      const sig = JSON.parse(readFileSync(join(d, '.signatures.json'), 'utf8')) as { signatures: string[] };
      writeFileSync(join(d, '.signatures.json'), JSON.stringify({ signatures: [sig.signatures[0]!.replace(/\.[^.]+$/, '.')] }));
    }), () => verification(rsa), 'bundle.signature_invalid'],
  ];

  test.each(refusals)('refuses %s', async (_what, bundle, v, code) => {
    await expect(readBundle(bundle(), { verification: v() })).rejects.toMatchObject({ name: 'BundleError', code });
  });

  test('refuses a tarball that repeats a signed member with other content (the later copy would win)', async () => {
    const dir = join(work, 'dup');
    mkdirSync(dir);
    execFileSync('tar', ['-xzf', signed, '-C', dir], { stdio: 'pipe' });
    const tarFile = join(work, 'dup.tar');
    execFileSync('tar', ['-cf', tarFile, '-C', dir, ...readdirSync(dir)], { stdio: 'pipe' });
    writeFileSync(join(dir, 'data.json'), '{"org":{"buckets":["attacker"]}}');
    execFileSync('tar', ['-rf', tarFile, '-C', dir, 'data.json'], { stdio: 'pipe' });
    execFileSync('gzip', ['-f', tarFile]);
    await expect(readBundle(`${tarFile}.gz`, { verification: verification(rsa) })).rejects.toMatchObject({ code: 'bundle.bad_archive' });
    await expect(readBundle(`${tarFile}.gz`)).rejects.toMatchObject({ code: 'bundle.bad_archive' });
  });

  test('a configured private key is refused rather than used', async () => {
    const v: BundleVerification = { algorithm: 'RS256', publicKey: () => Promise.resolve(readFileSync(rsa.priv, 'utf8')) };
    await expect(readBundle(signed, { verification: v })).rejects.toMatchObject({ code: 'bundle.verification_key' });
  });

  test('the scope claim must match the configured scope', async () => {
    await expect(readBundle(signed, { verification: { ...verification(rsa), scope: 'prod' } })).rejects.toMatchObject({ code: 'bundle.signature_invalid' });
  });
});

describe('the setting', () => {
  const base = { pod: { namespace: 'a', name: 'p', serviceAccount: 's' }, trustDir: '/tmp/t' };
  test('takes an algorithm and exactly one of publicKey and publicKeyFile', () => {
    const ok = parseSidecarConfig({ ...base, policy: { path: '/b', verification: { algorithm: 'ES256', publicKeyFile: '/k/key.pem' } } });
    expect(ok.policy.verification).toEqual({ algorithm: 'ES256', publicKeyFile: '/k/key.pem' });
    expect(() => parseSidecarConfig({ ...base, policy: { path: '/b', verification: { algorithm: 'ES256' } } })).toThrow(/exactly one of publicKey and publicKeyFile/);
    expect(() => parseSidecarConfig({ ...base, policy: { path: '/b', verification: { algorithm: 'HS256', publicKey: 'x' } } })).toThrow(/algorithm/);
  });
});

/** Collects watcher events so a test can await the next one instead of sleeping. */
function eventQueue() {
  const events: ({ kind: 'loaded'; meta: LoadedBundle } | { kind: 'failed'; error: BundleError })[] = [];
  const waiters: (() => void)[] = [];
  const push = (e: (typeof events)[number]) => {
    events.push(e);
    waiters.splice(0).forEach((w) => w());
  };
  return {
    handlers: { loaded: (meta: LoadedBundle) => push({ kind: 'loaded', meta }), failed: (error: BundleError) => push({ kind: 'failed', error }) },
    async next() {
      while (events.length === 0) await new Promise<void>((resolve) => waiters.push(resolve));
      return events.shift()!;
    },
  };
}

/** Replaces the file at `path` atomically, as a kubelet or `kubectl cp` + mv would. */
function publish(bundle: string, path: string): void {
  copyFileSync(bundle, `${path}.tmp`);
  renameSync(`${path}.tmp`, path);
}

describe('hot reload with a key configured', () => {
  let watcher: BundleWatcher | undefined;
  afterEach(() => watcher?.stop());

  test('keeps the last good signed bundle through unsigned and tampered updates, then takes the next signed one', async () => {
    const path = join(scratchDir(), 'bundle.tar.gz');
    publish(signed, path);
    const engine = new PolicyEngine();
    const q = eventQueue();
    watcher = new BundleWatcher(path, engine, q.handlers, { pollIntervalMs: 200, verification: verification(rsa) });
    await watcher.start();
    expect(await q.next()).toMatchObject({ kind: 'loaded', meta: { revision: 'signed-1', signature: { algorithm: 'RS256' } } });

    publish(build('unsigned.update', 'u-2'), path);
    expect(await q.next()).toMatchObject({ kind: 'failed', error: { code: 'bundle.unsigned' } });
    expect(engine.evaluate(input).decision.code).toBe('signed.ok');

    publish(repack(build('tampered', 't-2', { key: rsa }), (d) => writeFileSync(join(d, 'data.json'), '{"passthrough":["0.0.0.0/0"]}')), path);
    expect(await q.next()).toMatchObject({ kind: 'failed', error: { code: 'bundle.digest_mismatch' } });
    expect(engine.revision).toBe('signed-1');

    publish(build('signed.two', 'signed-2', { key: rsa }), path);
    expect(await q.next()).toMatchObject({ kind: 'loaded', meta: { revision: 'signed-2' } });
    expect(engine.evaluate(input).decision.code).toBe('signed.two');
  }, 60_000);
});

describe('from a mounted ConfigMap holding the archive (binaryData bundle.tar.gz)', () => {
  let watcher: BundleWatcher | undefined;
  afterEach(() => watcher?.stop());

  /** The kubelet's layout: bundle.tar.gz → ..data/bundle.tar.gz, ..data → ..gen_N, swapped atomically. */
  function configMap(): { dir: string; publish(bundle: string): void } {
    const dir = scratchDir('configmap-tar-');
    let gen = 0;
    return {
      dir,
      publish(bundle: string) {
        const g = join(dir, `..gen_${++gen}`);
        mkdirSync(g);
        copyFileSync(bundle, join(g, 'bundle.tar.gz'));
        symlinkSync(`..gen_${gen}`, join(dir, '..data_tmp'));
        renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
        if (gen === 1) symlinkSync(join('..data', 'bundle.tar.gz'), join(dir, 'bundle.tar.gz'));
      },
    };
  }

  test('verifies and hot-reloads the signed archive; a tampered update is refused and the last good stays', async () => {
    const cm = configMap();
    cm.publish(signed);
    const engine = new PolicyEngine();
    const q = eventQueue();
    watcher = new BundleWatcher(cm.dir, engine, q.handlers, { pollIntervalMs: 200, verification: verification(rsa) });
    await watcher.start();
    expect(await q.next()).toMatchObject({ kind: 'loaded', meta: { revision: 'signed-1', signature: { algorithm: 'RS256' } } });
    cm.publish(repack(signed, (d) => writeFileSync(join(d, 'data.json'), '{"passthrough":["evil.example"]}')));
    expect(await q.next()).toMatchObject({ kind: 'failed', error: { code: 'bundle.digest_mismatch' } });
    expect(engine.revision).toBe('signed-1');
    cm.publish(build('signed.cm', 'signed-cm', { key: rsa }));
    expect(await q.next()).toMatchObject({ kind: 'loaded', meta: { revision: 'signed-cm' } });
  }, 60_000);

  test('an archive beside loose bundle files is refused (which one would be the policy?)', async () => {
    const dir = scratchDir();
    copyFileSync(signed, join(dir, 'bundle.tar.gz'));
    writeFileSync(join(dir, 'policy.wasm'), 'x');
    await expect(readBundle(dir)).rejects.toMatchObject({ code: 'bundle.bad_archive' });
  });
});

describe('a running sidecar', () => {
  let sidecar: TestSidecar | undefined;
  const spoolDir = scratchDir('sluice-signed-spool-');
  afterAll(async () => {
    await sidecar?.stop();
  });

  function spoolEvents(): Record<string, unknown>[] {
    const files: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d)) {
        const p = join(d, e);
        if (statSync(p).isDirectory()) walk(p);
        else files.push(p);
      }
    };
    walk(spoolDir);
    return files
      .flatMap((f) => readFileSync(f, 'utf8').split('\n'))
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  test('refuses a tampered bundle at start: not ready, a policy_load event with the code, counted; a signed update then loads', async () => {
    const path = join(scratchDir(), 'bundle.tar.gz');
    publish(repack(signed, (d) => writeFileSync(join(d, 'data.json'), '{}')), path);
    sidecar = await startTestSidecar({
      bundle: path,
      config: { audit: { spoolDir, spool: { fsync: 'none' } }, policy: { path, pollIntervalMs: 200, verification: { algorithm: 'RS256', publicKeyFile: rsa.pub } } },
    });
    expect(sidecar.engine.ready).toBe(false);
    expect((await fetch(`${sidecar.adminUrl}/readyz`)).status).not.toBe(200);
    const metrics = await sidecar.registry.getSingleMetricAsString('sluice_policy_loads_total');
    expect(metrics).toContain('sluice_policy_loads_total{result="failure",code="bundle.digest_mismatch"} 1');
    await new Promise((r) => setTimeout(r, 200)); // records are appended after the load callback
    const refused = spoolEvents().filter((e) => e.kind === 'policy_load');
    expect(JSON.stringify(refused)).toContain('"code":"bundle.digest_mismatch"');
    expect(JSON.stringify(refused)).toContain('"result":"rejected"');

    publish(signed, path);
    for (let i = 0; i < 100 && !sidecar.engine.ready; i++) await new Promise((r) => setTimeout(r, 100));
    expect(sidecar.engine.revision).toBe('signed-1');
    const loaded = spoolEvents().filter((e) => e.kind === 'policy_load');
    expect(JSON.stringify(loaded)).toContain('"signed":{"algorithm":"RS256","key_id":"default"}');
  }, 60_000);
});
