// Reads a policy bundle as `opa build -t wasm` writes it: either the bundle.tar.gz itself or a
// directory holding policy.wasm, data.json and .manifest (a mounted ConfigMap). Never evaluates.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Parser } from 'tar';
import { createReadStream } from 'node:fs';

export interface PolicyBundle {
  wasm: Uint8Array;
  data: unknown;
  revision: string;
  source: string;
}

export class BundleError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'BundleError';
    this.code = code;
  }
}

const MAX_MEMBER_BYTES = 64 * 1024 * 1024;

interface Manifest {
  revision?: unknown;
}

function assemble(files: Map<string, Buffer>, source: string): PolicyBundle {
  const wasm = files.get('policy.wasm');
  if (!wasm) throw new BundleError('bundle.no_wasm', `${source}: no policy.wasm in bundle`);
  let data: unknown = {};
  const dataText = files.get('data.json');
  if (dataText) {
    try {
      data = JSON.parse(dataText.toString('utf8'));
    } catch (err) {
      throw new BundleError('bundle.bad_data', `${source}: data.json is not valid JSON (${(err as Error).message})`);
    }
  }
  let revision = '';
  const manifestText = files.get('.manifest');
  if (manifestText) {
    try {
      const manifest = JSON.parse(manifestText.toString('utf8')) as Manifest;
      if (typeof manifest.revision === 'string') revision = manifest.revision;
    } catch (err) {
      throw new BundleError('bundle.bad_manifest', `${source}: .manifest is not valid JSON (${(err as Error).message})`);
    }
  }
  return { wasm: new Uint8Array(wasm), data, revision, source };
}

async function readTarball(path: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const wanted = new Set(['policy.wasm', 'data.json', '.manifest']);
  await new Promise<void>((resolve, reject) => {
    const parser = new Parser({
      onwarn: (_code, message) => reject(new BundleError('bundle.bad_archive', `${path}: ${message}`)),
      onReadEntry: (entry) => {
        const name = entry.path.replace(/^\/+/, '');
        if (!wanted.has(name)) {
          entry.resume();
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        entry.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_MEMBER_BYTES) reject(new BundleError('bundle.too_large', `${path}: ${name} exceeds ${MAX_MEMBER_BYTES} bytes`));
          else chunks.push(chunk);
        });
        entry.on('end', () => files.set(name, Buffer.concat(chunks)));
      },
    });
    const input = createReadStream(path);
    input.on('error', reject);
    parser.on('error', (err: Error) => reject(new BundleError('bundle.bad_archive', `${path}: ${err.message}`)));
    parser.on('end', resolve);
    input.pipe(parser);
  });
  return files;
}

async function readDirectory(dir: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const name of ['policy.wasm', 'data.json', '.manifest']) {
    try {
      files.set(name, await readFile(join(dir, name)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return files;
}

/** Loads a bundle from a .tar.gz file or a directory; throws BundleError with a stable code. */
export async function readBundle(path: string): Promise<PolicyBundle> {
  let info;
  try {
    info = await stat(path);
  } catch {
    throw new BundleError('bundle.missing', `${path}: no policy bundle at this path`);
  }
  const files = info.isDirectory() ? await readDirectory(path) : await readTarball(path);
  return assemble(files, path);
}
