// Builds what "ship one bundled JavaScript file" would give the sidecar image: main.ts and every
// module it can load (dependencies included) as one ES module (esbuild), with the few source lines
// that read files or resolve packages beside themselves at run time compiled in (as
// cli/scripts/bundle.ts does for kubectl-sluice). bench/startup times the sidecar from it; nothing
// ships it.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { build } from 'esbuild';
import type { Plugin } from 'esbuild';

function inlineAssets(): Plugin {
  return {
    name: 'sluice-bench-inline-assets',
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, (args) => {
        let src = readFileSync(args.path, 'utf8');
        if (/\/audit\/loki-push\.ts$/.test(args.path)) {
          src = src.replace("readFileSync(new URL('./loki-push.proto', import.meta.url), 'utf8')", JSON.stringify(readFileSync(join(args.path, '..', 'loki-push.proto'), 'utf8')));
        } else if (/\/policy\/wasm-builtins\.ts$/.test(args.path)) {
          const start = src.indexOf('export const sdkBuiltins');
          const end = src.indexOf('})();', start);
          if (start < 0 || end < 0) throw new Error(`${args.path}: sdkBuiltins changed; update bench/startup/bundle.ts`);
          const list = join(dirname(createRequire(args.path).resolve('@open-policy-agent/opa-wasm')), 'builtins', 'index.js');
          src = `import * as __sdkBuiltins from ${JSON.stringify(list)};\n${src.slice(0, start)}export const sdkBuiltins: ReadonlySet<string> = new Set(Object.keys(__sdkBuiltins));${src.slice(end + 5)}`.replace('const require = createRequire(import.meta.url);', '');
        } else if (/\/masking\/rule-schema\.ts$/.test(args.path)) {
          src = src.replace('const require = createRequire(import.meta.url);', '');
        } else {
          return undefined;
        }
        return { contents: src, loader: 'ts' };
      });
    },
  };
}

/** Bundles sidecar/src/main.ts into `out` (one .mjs file); returns its path. */
export async function buildSidecarBundle(root: string, out: string): Promise<string> {
  const file = join(out, 'sidecar.mjs');
  await build({
    entryPoints: [join(root, 'sidecar', 'src', 'main.ts')],
    bundle: true,
    platform: 'node',
    target: 'node24',
    format: 'esm',
    minify: true,
    keepNames: true,
    legalComments: 'none',
    logLevel: 'error',
    outfile: file,
    plugins: [inlineAssets()],
    // CommonJS dependencies require Node builtins; an ES module has no `require` of its own.
    banner: { js: "import { createRequire as __sluiceRequire } from 'node:module';\nconst require = __sluiceRequire(import.meta.url);" },
  });
  return file;
}
