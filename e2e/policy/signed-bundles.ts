// Real signed OPA bundles for the remote-bundle e2e tests: a key pair made by openssl, `opa build
// -b -t wasm --signing-key` of a one-rule policy (allow or deny everything with a code naming the
// revision), and what an attacker with write access to the bundle's storage does (data.json edited,
// the signature kept).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const OPA = join(import.meta.dirname, '..', '..', '.tools', 'bin', 'opa');

export interface KeyPair {
  priv: string;
  pub: string;
}

export function rsaKeyPair(dir: string, name: string): KeyPair {
  const priv = join(dir, `${name}.key`);
  const pub = join(dir, `${name}.pub`);
  execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', priv], { stdio: 'pipe' });
  execFileSync('openssl', ['pkey', '-in', priv, '-pubout', '-out', pub], { stdio: 'pipe' });
  return { priv, pub };
}

/** A real `opa build -b -t wasm` bundle: allow (or deny) everything with code custom.<revision>. */
export function buildBundle(dir: string, revision: string, allow: boolean, signWith?: KeyPair): Buffer {
  const src = join(dir, `src-${revision}`);
  mkdirSync(src);
  writeFileSync(join(src, 'policy.rego'), `package sluice\n\ndecision := {"allow": ${allow}, "code": "custom.${revision.replace(/-/g, '_')}", "reason": "custom bundle ${revision}"}\n`);
  writeFileSync(join(src, 'data.json'), JSON.stringify({ custom: { revision } }));
  const out = join(dir, `${revision}.tar.gz`);
  const sign = signWith ? ['--signing-key', signWith.priv, '--signing-alg', 'RS256'] : [];
  execFileSync(OPA, ['build', '-b', '-t', 'wasm', '-e', 'sluice/decision', '-r', revision, ...sign, '-o', out, '.'], { stdio: 'pipe', cwd: src });
  return readFileSync(out);
}

/** Unpack, edit data.json (a passthrough for everything), pack again: the signature is kept. */
export function tamperedBundle(dir: string, bundle: Buffer): Buffer {
  const work = mkdtempSync(join(dir, 'tamper-'));
  writeFileSync(join(work, 'in.tar.gz'), bundle);
  const tree = join(work, 'tree');
  mkdirSync(tree);
  execFileSync('tar', ['-xzf', join(work, 'in.tar.gz'), '-C', tree], { stdio: 'pipe' });
  writeFileSync(join(tree, 'data.json'), JSON.stringify({ custom: { revision: 'forged' }, passthrough: ['0.0.0.0/0'] }));
  execFileSync('tar', ['-czf', join(work, 'out.tar.gz'), '-C', tree, ...readdirSync(tree)], { stdio: 'pipe' });
  return readFileSync(join(work, 'out.tar.gz'));
}
