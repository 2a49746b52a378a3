// `make release`: every artefact a platform team installs, built from this checkout into
// dist/release/ (gitignored), so nobody has to build anything:
//   sluice-<v>.tgz                         the chart, `helm package`d from a staging copy in which the
//                                          symlinks under files/ (CRDs, webhook registrations, the
//                                          compiled default policy) are real files
//   sluice-{sidecar,webhook}-<v>.oci.tar   the images as OCI archives (charts/images, reused when current)
//   sluice-{sidecar,webhook}-<v>.cdx.json  their CycloneDX SBOMs
//   kubectl-sluice-<v>.mjs                 the CLI as one ESM file for Node >= 20
//   kubectl-sluice-<v>.tgz                 the CLI as an npm package (`npm install -g ./kubectl-sluice-<v>.tgz`)
//   kubectl-sluice_<v>_linux_amd64.tar.gz  the CLI as a single executable (no Node needed) + default policy
//   sluice.yaml                            the krew plugin manifest (uri + sha256 of the archive above)
//   SHA256SUMS                             sha256sum -c compatible
// It never edits the chart in place and never publishes anything.
//
//   node tools/release.ts [--out DIR] [--no-images] [--no-sea] [--base-url URL]
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify as toYaml } from 'yaml';
import { bundleCli } from '../cli/scripts/bundle.ts';
import { IMAGES } from '../charts/images/image-spec.ts';
import { aptCandidates, cycloneDx } from '../charts/images/sbom.ts';
import type { Lockfile } from '../charts/images/sbom.ts';

const REPO = join(import.meta.dirname, '..');
const BIN = join(REPO, '.tools', 'bin');
export const DEFAULT_RELEASE_DIR = join(REPO, 'dist', 'release');
const DEFAULT_BASE_URL = 'https://github.com/sluice-dev/sluice/releases/download';

const sha256File = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
const run = (cmd: string, args: string[], cwd?: string) => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });

/** Every symlink below `dir` (relative paths); a packaged chart must have none. */
export function symlinksUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isSymbolicLink()) out.push(relative(dir, p));
      else if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

/** Copies a tree, following symlinks (a link to a directory becomes a directory of copies). */
export function copyResolved(from: string, to: string): void {
  const st = statSync(from);
  if (st.isDirectory()) {
    mkdirSync(to, { recursive: true });
    for (const name of readdirSync(from)) copyResolved(join(from, name), join(to, name));
  } else {
    copyFileSync(from, to);
  }
}

/** The chart with its symlinks resolved into real files, packaged by Helm. */
export function packageChart(out: string): string {
  const bundle = join(REPO, 'policies', 'build', 'bundle', 'policy.wasm');
  if (!existsSync(bundle)) throw new Error('policies/build/bundle is missing: run `make policy` first (the chart ships the compiled default policy)');
  const staging = join(tmpdir(), `sluice-chart-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  const chart = join(staging, 'sluice');
  // files/crds, files/webhook-manifests and files/policy-bundle become copies of what they point at.
  copyResolved(join(REPO, 'charts', 'sluice'), chart);
  const links = symlinksUnder(chart);
  if (links.length) throw new Error(`staged chart still has symlinks: ${links.join(', ')}`);
  try {
    const res = run(join(BIN, 'helm'), ['package', chart, '--destination', out]);
    const file = /saved it to: (\S+)/.exec(res)?.[1];
    if (!file || !existsSync(file)) throw new Error(`helm package did not say where it saved the chart:\n${res}`);
    return file;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

async function images(out: string): Promise<string[]> {
  const { ensureImages } = await import('../charts/images/build-images.ts');
  const { images: built } = await ensureImages();
  const lock = JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as Lockfile;
  const nodeVersion = run(join(BIN, 'node'), ['--version']).trim();
  const candidates = aptCandidates(run('apt-cache', ['policy', ...new Set(Object.values(IMAGES).flatMap((i) => i.packages))]));
  const files: string[] = [];
  for (const img of built.images) {
    const archive = join(REPO, img.archive);
    const dest = join(out, img.archive.split('/').pop()!);
    copyFileSync(archive, dest);
    files.push(dest);
    const spec = IMAGES[img.component];
    const debs = spec.packages.map((name) => {
      const version = candidates.get(name);
      if (!version) throw new Error(`apt knows no candidate for ${name}: run apt-get update`);
      return { name, version, arch: 'amd64' };
    });
    const sbom = cycloneDx({ component: spec.component, info: built, lock, nodeVersion, debs, digest: img.manifestDigest });
    const sbomFile = dest.replace(/\.oci\.tar$/, '.cdx.json');
    writeFileSync(sbomFile, `${JSON.stringify(sbom, null, 2)}\n`);
    files.push(sbomFile);
  }
  return files;
}

/** The krew plugin manifest for the archives built here (one platform: the SEA is linux/amd64). */
export function krewManifest(version: string, platforms: { os: string; arch: string; uri: string; sha256: string }[]): string {
  const manifest = {
    apiVersion: 'krew.googlecontainertools.github.com/v1alpha2',
    kind: 'Plugin',
    metadata: { name: 'sluice' },
    spec: {
      version: `v${version}`,
      homepage: 'https://github.com/sluice-dev/sluice',
      shortDescription: 'Approve, audit and check AI-agent egress guarded by sluice',
      description:
        'kubectl sluice approves or denies requests an AI coding agent\'s sidecar holds, revokes grants, cuts a pod off,\nreplays and verifies hash-chained audit sessions, evaluates policies and checks an install (kubectl sluice check).\n',
      platforms: platforms.map((p) => ({
        selector: { matchLabels: { os: p.os, arch: p.arch } },
        uri: p.uri,
        sha256: p.sha256,
        bin: 'kubectl-sluice',
        files: [
          { from: 'kubectl-sluice', to: '.' },
          { from: 'policy/*', to: 'policy' },
        ],
      })),
    },
  };
  return toYaml(manifest, { lineWidth: 0 });
}

export interface ReleaseOptions {
  out: string;
  images: boolean;
  sea: boolean;
  baseUrl: string;
}

export async function release(o: ReleaseOptions): Promise<{ files: string[]; version: string }> {
  rmSync(o.out, { recursive: true, force: true });
  mkdirSync(o.out, { recursive: true });
  const files: string[] = [packageChart(o.out)];
  if (o.images) files.push(...(await images(o.out)));

  const work = join(tmpdir(), `sluice-cli-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  try {
    const cli = await bundleCli(work, o.sea);
    const v = cli.version;
    const mjs = join(o.out, `kubectl-sluice-${v}.mjs`);
    copyFileSync(cli.bundle, mjs);
    files.push(mjs);
    const packed = run(join(BIN, 'npm'), ['pack', '--pack-destination', o.out, '--loglevel=error'], cli.npm).trim().split('\n').pop()!;
    files.push(join(o.out, packed));
    if (cli.sea) {
      const name = `kubectl-sluice_${v}_linux_amd64.tar.gz`;
      const archive = join(o.out, name);
      // Fixed owner, mode and order: the archive (and so its sha256) depends on the content only.
      run('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-czf', archive, '-C', join(work, 'sea'), 'kubectl-sluice', 'policy']);
      files.push(archive);
      const manifest = join(o.out, 'sluice.yaml');
      writeFileSync(manifest, krewManifest(v, [{ os: 'linux', arch: 'amd64', uri: `${o.baseUrl}/v${v}/${name}`, sha256: sha256File(archive) }]));
      files.push(manifest);
    }
    const sums = files.map((f) => `${sha256File(f)}  ${relative(o.out, f)}`).join('\n');
    writeFileSync(join(o.out, 'SHA256SUMS'), `${sums}\n`);
    files.push(join(o.out, 'SHA256SUMS'));
    return { files, version: v };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: DEFAULT_RELEASE_DIR },
      'no-images': { type: 'boolean', default: false },
      'no-sea': { type: 'boolean', default: false },
      'base-url': { type: 'string', default: DEFAULT_BASE_URL },
    },
  });
  const started = Date.now();
  const r = await release({ out: values.out, images: !values['no-images'], sea: !values['no-sea'], baseUrl: values['base-url'] });
  const mib = (n: number) => (n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`);
  console.log(`sluice ${r.version} release in ${relative(process.cwd(), values.out) || '.'} (${((Date.now() - started) / 1000).toFixed(0)} s):`);
  for (const f of r.files) console.log(`  ${mib(statSync(f).size).padStart(10)}  ${relative(values.out, f)}`);
}
