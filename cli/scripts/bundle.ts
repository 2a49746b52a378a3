// Builds kubectl-sluice as artefacts that run outside the checkout:
//   <out>/kubectl-sluice.mjs        one ESM file (every dependency and sidecar module inside) for Node >= 20
//   <out>/npm/                      an npm package folder: package.json with `bin`, the bundle, the default policy
//   <out>/sea/kubectl-sluice        a Node single executable application (no Node needed), built from the
//                                   pinned Node 24 with postject (skipped with --no-sea)
// Assets the sources read from disk next to themselves (the Loki push .proto, the OPA SDK's
// builtin list, the masking analyser's lazy requires) are compiled in, so nothing is looked up
// beside the bundle but the optional default policy (policy/bundle.tar.gz, with its rule index rules.json).
//
//   node cli/scripts/bundle.ts [--out DIR] [--no-sea]
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import type { BuildOptions, Plugin } from 'esbuild';

export const REPO = join(import.meta.dirname, '..', '..');
const TOOLS_BIN = join(REPO, '.tools', 'bin');
/** The Node versions the bundle must run on (package.json engines of the npm package). */
export const NODE_RANGE = '>=20.0.0';

function git(args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

export function buildIdentity(): { version: string; revision: string } {
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
  let revision = git(['rev-parse', 'HEAD']) ?? 'unknown';
  if (revision !== 'unknown' && git(['status', '--porcelain', '--untracked-files=no', '--', 'cli', 'sidecar/src', 'lib/src', 'api/src'])) revision += '-dirty';
  return { version: pkg.version, revision };
}

/** Rewrites the few source lines that read files or resolve packages at run time. */
function inlineAssets(): Plugin {
  const rewrites: { file: RegExp; apply(src: string, path: string): string }[] = [
    {
      // protobuf schema read beside the module → the schema text itself
      file: /sidecar\/src\/audit\/loki-push\.ts$/,
      apply: (src, path) => {
        const proto = readFileSync(join(path, '..', 'loki-push.proto'), 'utf8');
        const from = "readFileSync(new URL('./loki-push.proto', import.meta.url), 'utf8')";
        if (!src.includes(from)) throw new Error(`${path}: the .proto read changed; update cli/scripts/bundle.ts`);
        return src.replace(from, JSON.stringify(proto));
      },
    },
    {
      // the SDK's builtin list resolved from node_modules at run time → imported statically
      file: /lib\/src\/policy\/wasm-builtins\.ts$/,
      apply: (src, path) => {
        const start = src.indexOf('export const sdkBuiltins');
        const end = src.indexOf('})();', start);
        if (start < 0 || end < 0) throw new Error(`${path}: sdkBuiltins changed; update cli/scripts/bundle.ts`);
        // The same file the source resolves at run time: beside the SDK's entry (its exports map hides it).
        const list = join(dirname(createRequire(path).resolve('@open-policy-agent/opa-wasm')), 'builtins', 'index.js');
        return `import * as __sdkBuiltins from ${JSON.stringify(list)};\n${src.slice(0, start)}export const sdkBuiltins: ReadonlySet<string> = new Set(Object.keys(__sdkBuiltins));${src.slice(end + 5)}`.replace(
          'const require = createRequire(import.meta.url);',
          '',
        );
      },
    },
    {
      // lazy require through createRequire(import.meta.url) → the bundler's own require
      file: /sidecar\/src\/masking\/rule-schema\.ts$/,
      apply: (src) => src.replace('const require = createRequire(import.meta.url);', ''),
    },
  ];
  return {
    name: 'sluice-inline-assets',
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, (args) => {
        const rw = rewrites.find((r) => r.file.test(args.path));
        if (!rw) return undefined;
        return { contents: rw.apply(readFileSync(args.path, 'utf8'), args.path), loader: 'ts' };
      });
    },
  };
}

/**
 * Prepended to the ESM bundle. An ES module has no `require`, which the CommonJS dependencies call
 * for Node builtins. undici 8 (through @kubernetes/client-node) builds its zstd decoder at load
 * time, and Node 20 has no zstd: a stand-in that refuses zstd (which the API server and the log
 * stores never send unasked; every request here says which encodings it accepts) lets it load.
 */
export const ESM_BANNER = [
  '#!/usr/bin/env node',
  "import { createRequire as __sluiceRequire } from 'node:module';",
  'const require = __sluiceRequire(import.meta.url);',
  "{ const z = require('node:zlib'); if (typeof z.createZstdDecompress !== 'function') z.createZstdDecompress = () => { throw new Error('zstd content-encoding needs Node >= 22.15'); }; }",
  // Node < 22.10 has no markAsUncloneable; undici only marks its own objects with it.
  "{ const w = require('node:worker_threads'); if (typeof w.markAsUncloneable !== 'function') w.markAsUncloneable = () => undefined; }",
].join('\n');

function options(kind: 'bundle' | 'sea', id: { version: string; revision: string }): BuildOptions {
  const esm = kind === 'bundle';
  return {
    stdin: {
      // The CJS build (SEA) cannot await at top level; runAsProcess sets the exit code itself.
      contents: `import { runAsProcess } from './cli/src/main.ts';\n${esm ? 'await runAsProcess();' : 'void runAsProcess();'}\n`,
      resolveDir: REPO,
      loader: 'ts',
      sourcefile: 'kubectl-sluice-entry.ts',
    },
    bundle: true,
    platform: 'node',
    target: esm ? 'node20' : 'node24',
    format: esm ? 'esm' : 'cjs',
    minify: true,
    keepNames: true,
    legalComments: 'none',
    logLevel: 'warning',
    // build-info.ts reads import.meta only when run from source (never in a bundle).
    logOverride: esm ? {} : { 'empty-import-meta': 'silent' },
    plugins: [inlineAssets()],
    define: {
      'process.env.SLUICE_BUILD_VERSION': JSON.stringify(id.version),
      'process.env.SLUICE_BUILD_REVISION': JSON.stringify(id.revision),
      'process.env.SLUICE_BUILD_KIND': JSON.stringify(kind),
    },
    // CommonJS dependencies require Node builtins; an ES module has no `require` of its own.
    banner: esm ? { js: ESM_BANNER } : {},
    write: true,
  };
}

/** `make policy`'s rule index (policies/build/rules.json), for `policy explain`'s file:line. */
function ruleIndexOf(policy: string): string {
  return join(dirname(policy), 'rules.json');
}

function copyRuleIndex(policy: string, dir: string): void {
  if (existsSync(ruleIndexOf(policy))) copyFileSync(ruleIndexOf(policy), join(dir, 'rules.json'));
}

function npmPackage(out: string, id: { version: string; revision: string }, policy: string | undefined): void {
  const dir = join(out, 'npm');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'bin'), { recursive: true });
  copyFileSync(join(out, 'kubectl-sluice.mjs'), join(dir, 'bin', 'kubectl-sluice.mjs'));
  chmodSync(join(dir, 'bin', 'kubectl-sluice.mjs'), 0o755);
  if (policy) {
    mkdirSync(join(dir, 'bin', 'policy'), { recursive: true });
    copyFileSync(policy, join(dir, 'bin', 'policy', 'bundle.tar.gz'));
    copyRuleIndex(policy, join(dir, 'bin', 'policy'));
  }
  const root = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { license?: string; repository?: unknown };
  const pkg = {
    name: 'kubectl-sluice',
    version: id.version,
    description: 'kubectl plugin for sluice: approve held requests, replay and verify audit sessions, evaluate policies, check an install',
    license: root.license ?? 'Apache-2.0',
    type: 'module',
    bin: { 'kubectl-sluice': 'bin/kubectl-sluice.mjs' },
    files: ['bin/kubectl-sluice.mjs', ...(policy ? ['bin/policy/bundle.tar.gz', ...(existsSync(ruleIndexOf(policy)) ? ['bin/policy/rules.json'] : [])] : []), 'README.md'],
    engines: { node: NODE_RANGE },
    homepage: 'https://github.com/sluice-dev/sluice',
    repository: { type: 'git', url: 'git+https://github.com/sluice-dev/sluice.git' },
    keywords: ['kubectl', 'kubectl-plugin', 'ai-agents', 'egress', 'audit'],
    gitHead: id.revision.replace(/-dirty$/, ''),
  };
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  writeFileSync(
    join(dir, 'README.md'),
    `# kubectl-sluice ${id.version}\n\nThe kubectl plugin of [sluice](https://github.com/sluice-dev/sluice) as one bundled file: no dependencies, Node ${NODE_RANGE}.\n\n\`\`\`sh\nnpm install -g kubectl-sluice@${id.version}\nkubectl sluice version --client\nkubectl sluice check --pre\n\`\`\`\n\nVerbs, global flags and exit codes: docs/cli.md in the repository (revision ${id.revision}).\n`,
  );
}

/** A single executable application: the pinned Node binary with the CJS bundle injected (postject). */
async function sea(out: string, id: { version: string; revision: string }): Promise<string> {
  const dir = join(out, 'sea');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const main = join(dir, 'kubectl-sluice.cjs');
  await build({ ...options('sea', id), outfile: main });
  const blob = join(dir, 'sea-prep.blob');
  const config = join(dir, 'sea-config.json');
  writeFileSync(config, JSON.stringify({ main, output: blob, disableExperimentalSEAWarning: true, useCodeCache: false, useSnapshot: false }));
  const node = join(TOOLS_BIN, 'node');
  execFileSync(node, ['--experimental-sea-config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exe = join(dir, 'kubectl-sluice');
  copyFileSync(node, exe);
  chmodSync(exe, 0o755);
  // postject prints harmless ELF note warnings; its output is shown only when it fails.
  const inject = spawnSync(node, [join(REPO, 'node_modules', 'postject', 'dist', 'cli.js'), exe, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'], { encoding: 'utf8' });
  if (inject.status !== 0) throw new Error(`postject failed (${inject.status}):\n${inject.stdout}${inject.stderr}`);
  for (const f of [main, blob, config]) rmSync(f);
  return exe;
}

export interface BundleResult {
  bundle: string;
  npm: string;
  sea?: string;
  version: string;
  revision: string;
}

export async function bundleCli(out: string, withSea: boolean): Promise<BundleResult> {
  mkdirSync(out, { recursive: true });
  const id = buildIdentity();
  const bundle = join(out, 'kubectl-sluice.mjs');
  await build({ ...options('bundle', id), outfile: bundle });
  chmodSync(bundle, 0o755);
  const policy = join(REPO, 'policies', 'build', 'bundle.tar.gz');
  npmPackage(out, id, existsSync(policy) ? policy : undefined);
  const result: BundleResult = { bundle, npm: join(out, 'npm'), version: id.version, revision: id.revision };
  if (withSea) {
    result.sea = await sea(out, id);
    if (existsSync(policy)) {
      mkdirSync(join(out, 'sea', 'policy'), { recursive: true });
      copyFileSync(policy, join(out, 'sea', 'policy', 'bundle.tar.gz'));
      copyRuleIndex(policy, join(out, 'sea', 'policy'));
    }
  }
  return result;
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { out: { type: 'string', default: join(REPO, 'dist', 'cli') }, 'no-sea': { type: 'boolean', default: false } } });
  const r = await bundleCli(values.out, !values['no-sea']);
  const size = (p: string) => `${(statSync(p).size / 1024 / 1024).toFixed(1)} MiB`;
  console.log(`kubectl-sluice ${r.version} (${r.revision})`);
  console.log(`  ${r.bundle}  ${size(r.bundle)}`);
  console.log(`  ${r.npm}/`);
  if (r.sea) console.log(`  ${r.sea}  ${size(r.sea)}`);
}
