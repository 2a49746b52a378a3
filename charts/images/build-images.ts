// `make image`: builds the sidecar and webhook images as OCI image archives without a container
// daemon and without pulling from any registry. Debian packages come from apt (`apt-get
// download`, unpacked with dpkg-deb, no maintainer scripts), Node 24 from .tools, the production
// node_modules from the npm cache (`npm ci --omit=dev --offline`), the app from this checkout.
// Layers are deterministic (tar-layer.ts), so both images share their common layers and a rebuild
// of one revision is byte-identical. Output: charts/images/build/<name>-<version>.oci.tar (load with
// `podman load -i`, push with `skopeo copy oci-archive:… docker://…`) and images.json.
//
//   node charts/images/build-images.ts [--only sidecar|webhook] [--out DIR]
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { ALTERNATIVES, APP_EXCLUDED, DROPPED_MODULE_FILES, DROPPED_PATHS, GROUP, IMAGES, PASSWD, imageConfig, index, labels, manifest } from './image-spec.ts';
import type { BuildInfo, Component, ImageSpec, LayerRef } from './image-spec.ts';
import { stripTree } from './strip-types.ts';
import { listTree, writeLayer } from './tar-layer.ts';
import type { TarEntry } from './tar-layer.ts';

export const REPO = join(import.meta.dirname, '..', '..');
export const DEFAULT_OUT = join(import.meta.dirname, 'build');
const CACHE = join(process.env.XDG_CACHE_HOME ?? join(process.env.HOME ?? tmpdir(), '.cache'), 'sluice', 'image-debs');

function sh(cmd: string, args: string[], cwd?: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
}

export function buildInfo(): BuildInfo {
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
  let revision = 'unknown';
  let created = 0;
  try {
    revision = sh('git', ['rev-parse', 'HEAD'], REPO).trim();
    created = Number(sh('git', ['log', '-1', '--format=%ct'], REPO).trim());
    if (sh('git', ['status', '--porcelain', '--untracked-files=no'], REPO).trim()) revision += '-dirty';
  } catch {
    // not a git checkout (a source tarball): unknown revision, epoch 0
  }
  if (process.env.SOURCE_DATE_EPOCH) created = Number(process.env.SOURCE_DATE_EPOCH);
  return { version: pkg.version, revision, created, source: 'https://github.com/sluice-dev/sluice' };
}

/** .deb files for the packages (candidate versions), downloaded once into the cache. */
function debs(packages: readonly string[], retried = false): string[] {
  mkdirSync(CACHE, { recursive: true });
  const versions = new Map<string, string>();
  for (const line of sh('apt-cache', ['policy', ...packages]).split('\n')) {
    const name = /^(\S+):$/.exec(line)?.[1];
    if (name) versions.set('current', name);
    const candidate = /^\s+Candidate: (\S+)/.exec(line)?.[1];
    if (candidate && versions.get('current')) versions.set(versions.get('current')!, candidate);
  }
  const files: string[] = [];
  const missing: string[] = [];
  for (const p of packages) {
    const v = versions.get(p);
    if (!v || v === '(none)') throw new Error(`apt knows no candidate for ${p}: run apt-get update`);
    // apt-get download writes an epoch's colon as %3a.
    const found = readdirSync(CACHE).find((f) => f.startsWith(`${p}_${v.replace(':', '%3a')}_`) && f.endsWith('.deb'));
    if (found) files.push(join(CACHE, found));
    else missing.push(`${p}=${v}`);
  }
  if (missing.length) {
    if (retried) throw new Error(`apt-get download did not produce ${missing.join(' ')} in ${CACHE}`);
    console.error(`[image] apt-get download ${missing.join(' ')}`);
    sh('apt-get', ['download', ...missing], CACHE);
    return debs(packages, true);
  }
  return files;
}

/** The root filesystem of Debian packages, as Debian would have left it minus docs and scripts. */
function unpackPackages(spec: ImageSpec, dir: string): void {
  const status: string[] = [];
  for (const deb of debs(spec.packages)) {
    sh('dpkg-deb', ['-x', deb, dir]);
    status.push(`${sh('dpkg-deb', ['-f', deb]).trim()}\nStatus: install ok installed\n`);
  }
  for (const p of DROPPED_PATHS) rmSync(join(dir, p), { recursive: true, force: true });
  for (const [link, target] of Object.entries(ALTERNATIVES)) {
    if (!existsSync(join(dir, dirname(link), target))) continue;
    rmSync(join(dir, link), { force: true });
    symlinkSync(target, join(dir, link));
  }
  // Scanners (trivy, grype) read installed packages from here, as in distroless images.
  mkdirSync(join(dir, 'var/lib/dpkg'), { recursive: true });
  writeFileSync(join(dir, 'var/lib/dpkg/status'), status.join('\n'));
  writeFileSync(join(dir, 'etc/passwd'), PASSWD);
  writeFileSync(join(dir, 'etc/group'), GROUP);
  writeFileSync(join(dir, 'etc/nsswitch.conf'), 'passwd: files\ngroup: files\nhosts: files dns\n');
  for (const d of ['tmp', 'var/tmp']) {
    mkdirSync(join(dir, d), { recursive: true });
    chmodSync(join(dir, d), 0o1777);
  }
  mkdirSync(join(dir, 'var/run/sluice'), { recursive: true });
}

/** Production dependencies from the lockfile, offline from the npm cache, without maps and types. */
function productionModules(dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const f of ['package.json', 'package-lock.json']) copyFileSync(join(REPO, f), join(dir, f));
  const npm = join(REPO, '.tools', 'bin', 'npm');
  execFileSync(npm, ['ci', '--omit=dev', '--ignore-scripts', '--offline', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, PATH: `${join(REPO, '.tools', 'bin')}:${process.env.PATH ?? ''}` },
  });
  const prune = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) prune(p);
      else if (DROPPED_MODULE_FILES.test(e.name)) rmSync(p);
    }
  };
  prune(join(dir, 'node_modules'));
  rmSync(join(dir, 'package-lock.json'));
  rmSync(join(dir, 'package.json'));
}

function appTree(spec: ImageSpec, dir: string): void {
  for (const d of spec.appDirs) cpSync(join(REPO, d), join(dir, d), { recursive: true, filter: (src) => !APP_EXCLUDED.test(relative(REPO, src)) });
  for (const d of spec.stripTypes) stripTree(join(dir, d));
  for (const f of spec.appFiles) {
    if (!existsSync(join(REPO, f))) throw new Error(`${f} is missing: run \`make policy\` before building the images`);
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    copyFileSync(join(REPO, f), join(dir, f));
  }
  copyFileSync(join(REPO, 'package.json'), join(dir, 'package.json'));
}

function nodeTree(dir: string): void {
  const node = realpathSync(join(REPO, '.tools', 'bin', 'node'));
  mkdirSync(join(dir, 'usr/local/bin'), { recursive: true });
  copyFileSync(node, join(dir, 'usr/local/bin/node'));
  chmodSync(join(dir, 'usr/local/bin/node'), 0o755);
}

interface Layer {
  comment: string;
  entries: TarEntry[];
}

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface BuiltImage {
  component: Component;
  ref: string;
  archive: string;
  manifestDigest: string;
  /** compressed bytes of all layers plus config (what a registry stores) */
  compressedSize: number;
  /** bytes of the unpacked filesystem (sum of uncompressed layers) */
  uncompressedSize: number;
  layers: { comment: string; digest: string; size: number; uncompressedSize: number }[];
}

/** Builds one image into `out` (work files under `work`, layer blobs shared through `blobs`). */
async function buildImage(spec: ImageSpec, info: BuildInfo, work: string, blobs: string, shared: Map<string, Layer>, out: string): Promise<BuiltImage> {
  const layers: Layer[] = [];
  const base = join(work, `${spec.component}-rootfs`);
  unpackPackages(spec, base);
  layers.push({ comment: `debian packages: ${spec.packages.join(' ')}`, entries: listTree(base) });
  layers.push(shared.get('node')!);
  layers.push(shared.get('modules')!);
  const app = join(work, `${spec.component}-app`);
  appTree(spec, app);
  layers.push({ comment: `app: ${[...spec.appDirs, ...spec.appFiles].join(' ')} package.json`, entries: listTree(app, 'app') });

  const refs: LayerRef[] = [];
  const built: BuiltImage['layers'] = [];
  for (const l of layers) {
    const tmp = join(blobs, `.layer-${process.pid}-${refs.length}`);
    const w = await writeLayer(l.entries, info.created, tmp);
    const final = join(blobs, w.digest.slice('sha256:'.length));
    if (existsSync(final)) rmSync(tmp);
    else execFileSync('mv', [tmp, final]);
    refs.push({ digest: w.digest, diffId: w.diffId, size: w.size, comment: l.comment });
    built.push({ comment: l.comment, digest: w.digest, size: w.size, uncompressedSize: w.uncompressedSize });
  }
  const config = Buffer.from(JSON.stringify(imageConfig(spec, info, refs)));
  const configRef = { digest: sha256(config), size: config.length };
  writeFileSync(join(blobs, configRef.digest.slice(7)), config);
  const man = Buffer.from(JSON.stringify(manifest(configRef, refs, { 'org.opencontainers.image.created': labels(spec, info)['org.opencontainers.image.created']! })));
  const manRef = { digest: sha256(man), size: man.length };
  writeFileSync(join(blobs, manRef.digest.slice(7)), man);

  // The OCI layout of this one image, archived: oci-layout, index.json, its blobs.
  const ref = `${info.version}`;
  const layout = join(work, `${spec.component}-layout`);
  mkdirSync(join(layout, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(join(layout, 'index.json'), JSON.stringify(index(manRef, ref)));
  for (const d of [configRef.digest, manRef.digest, ...refs.map((r) => r.digest)]) copyFileSync(join(blobs, d.slice(7)), join(layout, 'blobs', 'sha256', d.slice(7)));
  const archive = join(out, `${spec.name}-${info.version}.oci.tar`);
  await writeLayerlessArchive(layout, info.created, archive);
  return {
    component: spec.component,
    ref: `${spec.name}:${ref}`,
    archive,
    manifestDigest: manRef.digest,
    compressedSize: config.length + refs.reduce((n, r) => n + r.size, 0),
    uncompressedSize: built.reduce((n, l) => n + l.uncompressedSize, 0),
    layers: built,
  };
}

/** The OCI layout as a plain (uncompressed) tar: blobs are gzipped already. */
async function writeLayerlessArchive(layout: string, mtime: number, archive: string): Promise<void> {
  const tmp = `${archive}.gz-tmp`;
  await writeLayer(listTree(layout), mtime, tmp);
  execFileSync('sh', ['-c', `gzip -dc '${tmp}' > '${archive}' && rm -f '${tmp}'`]);
}

/** sha256 over everything an image is built from; images.json records it so a fresh build can be reused. */
export function inputsHash(): string {
  const h = createHash('sha256');
  const add = (path: string) => {
    const st = statSync(path);
    if (st.isDirectory()) {
      for (const name of readdirSync(path).sort()) if (!APP_EXCLUDED.test(relative(REPO, join(path, name))) && name !== 'build') add(join(path, name));
      return;
    }
    h.update(relative(REPO, path)).update('\0').update(readFileSync(path)).update('\0');
  };
  const dirs = new Set(Object.values(IMAGES).flatMap((i) => i.appDirs));
  const files = new Set(Object.values(IMAGES).flatMap((i) => i.appFiles));
  for (const p of [...dirs, ...files, 'package.json', 'package-lock.json', 'charts/images/image-spec.ts', 'charts/images/build-images.ts', 'charts/images/tar-layer.ts']) add(join(REPO, p));
  h.update(sh(join(REPO, '.tools', 'bin', 'node'), ['--version']));
  h.update(sh('apt-cache', ['policy', ...new Set(Object.values(IMAGES).flatMap((i) => i.packages))]));
  return h.digest('hex');
}

export interface ImagesJson extends BuildInfo {
  inputs: string;
  images: (BuiltImage & { archive: string })[];
}

/** The images built from the current tree: reused from `out` when its inputs hash matches, else built. */
export async function ensureImages(out = DEFAULT_OUT): Promise<{ built: boolean; images: ImagesJson }> {
  const file = join(out, 'images.json');
  const inputs = inputsHash();
  if (existsSync(file)) {
    const current = JSON.parse(readFileSync(file, 'utf8')) as ImagesJson;
    if (current.inputs === inputs && current.images.length === Object.keys(IMAGES).length && current.images.every((i) => existsSync(join(REPO, i.archive)))) return { built: false, images: current };
  }
  await buildImages({ out });
  return { built: true, images: JSON.parse(readFileSync(file, 'utf8')) as ImagesJson };
}

export async function buildImages(opts: { only?: Component; out?: string } = {}): Promise<BuiltImage[]> {
  const out = opts.out ?? DEFAULT_OUT;
  const info = buildInfo();
  mkdirSync(out, { recursive: true });
  const work = join(tmpdir(), `sluice-image-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  const blobs = join(work, 'blobs');
  mkdirSync(blobs, { recursive: true });
  try {
    const nodeDir = join(work, 'node');
    nodeTree(nodeDir);
    const modules = join(work, 'modules');
    productionModules(modules);
    const shared = new Map<string, Layer>([
      ['node', { comment: `node ${sh(join(REPO, '.tools', 'bin', 'node'), ['--version']).trim()} from .tools`, entries: listTree(nodeDir) }],
      ['modules', { comment: 'node_modules (npm ci --omit=dev)', entries: listTree(join(modules, 'node_modules'), 'app/node_modules') }],
    ]);
    const built: BuiltImage[] = [];
    for (const spec of Object.values(IMAGES)) {
      if (opts.only && spec.component !== opts.only) continue;
      built.push(await buildImage(spec, info, work, blobs, shared, out));
    }
    const inputs = inputsHash();
    writeFileSync(join(out, 'images.json'), JSON.stringify({ ...info, inputs, images: built.map((b) => ({ ...b, archive: relative(REPO, b.archive) })) }, null, 2) + '\n');
    return built;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { only: { type: 'string' }, out: { type: 'string' } } });
  if (values.only && !(values.only in IMAGES)) throw new Error(`--only: sidecar or webhook, not ${values.only}`);
  const started = Date.now();
  const built = await buildImages({ ...(values.only ? { only: values.only as Component } : {}), ...(values.out ? { out: values.out } : {}) });
  for (const b of built) {
    console.log(`${b.ref}  ${relative(REPO, b.archive)}  ${b.manifestDigest.slice(0, 19)}…  compressed ${mib(b.compressedSize)}, unpacked ${mib(b.uncompressedSize)}`);
    for (const l of b.layers) console.log(`    ${mib(l.size).padStart(10)} (${mib(l.uncompressedSize).padStart(10)})  ${l.comment.slice(0, 90)}`);
  }
  console.log(`built in ${((Date.now() - started) / 1000).toFixed(1)} s; archive size ${built.map((b) => mib(statSync(b.archive).size)).join(', ')}`);
}

if (import.meta.filename === process.argv[1]) await main();
