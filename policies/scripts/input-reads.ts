// Records in a built bundle which parts of the input its policy reads (lib/src/policy/input-reads.ts):
// scans every Rego source under the directories `opa build` compiled (the same *_test.rego
// ignored) and adds the result, bound to the bundle's policy.wasm by its SHA-256, as the member
// sluice.input-reads; the engine's decision cache keys on exactly those parts. Run by `make policy`
// right after opa build, on the same directories; it must never be given fewer sources than the
// build compiled (a read it does not see would be missing from every cache key).
//
//   node policies/scripts/input-reads.ts BUNDLE.tar.gz SOURCE_DIR...
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { create } from 'tar';
import { INPUT_READS_MEMBER, readTarballBytes } from '../../lib/src/policy/bundle.ts';
import { inputReads, inputReadsMember } from '../../lib/src/policy/input-reads.ts';

function regoUnder(dir: string): { path: string; text: string }[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    // a symlink to a file is compiled by opa build, so it is scanned too
    .filter((e) => (e.isFile() || (e.isSymbolicLink() && statSync(join(e.parentPath, e.name)).isFile())) && e.name.endsWith('.rego') && !e.name.endsWith('_test.rego'))
    .map((e) => join(e.parentPath, e.name))
    .sort()
    .map((path) => ({ path, text: readFileSync(path, 'utf8') }));
}

/** Rewrites `bundlePath` with the input-reads member for the Rego under `sourceDirs`; returns what it recorded. */
export async function addInputReads(bundlePath: string, sourceDirs: readonly string[]): Promise<string> {
  const files = await readTarballBytes(readFileSync(bundlePath), bundlePath);
  const wasm = files.get('policy.wasm');
  if (!wasm) throw new Error(`${bundlePath}: no policy.wasm`);
  const sources = sourceDirs.flatMap(regoUnder);
  // opa build keeps a copy of every module it compiled, named by its path: each must be one this
  // scan read, or a read it missed would be left out of every cache key (fail the build instead).
  const scanned = new Set(sources.flatMap((f) => ['/' + relative(process.cwd(), f.path).split(sep).join('/'), resolve(f.path).split(sep).join('/')]));
  const unscanned = [...files.keys()].filter((name) => name.endsWith('.rego') && !scanned.has(name.startsWith('/') ? name : '/' + name));
  if (unscanned.length) throw new Error(`${bundlePath}: compiled modules not scanned for input reads: ${unscanned.join(', ')} (give input-reads.ts the directories opa build was given)`);
  const member = inputReadsMember(inputReads(sources), wasm);
  files.set(INPUT_READS_MEMBER, Buffer.from(member));
  const dir = mkdtempSync(join(tmpdir(), 'sluice-input-reads-'));
  try {
    for (const [name, bytes] of files) {
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      writeFileSync(join(dir, name), bytes);
    }
    // Members named /like/this, as opa build names them (the Makefile and OPA's tools read /.manifest).
    await create({ gzip: true, file: bundlePath, cwd: dir, portable: true, prefix: '/', preservePaths: true }, [...files.keys()].sort());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return member;
}

if (import.meta.main) {
  const [bundlePath, ...dirs] = process.argv.slice(2);
  if (!bundlePath || !dirs.length) {
    process.stderr.write('usage: input-reads.ts BUNDLE.tar.gz SOURCE_DIR...\n');
    process.exit(2);
  }
  process.stdout.write(`input reads: ${await addInputReads(bundlePath, dirs)}`);
}
