// Reads a policy bundle as `opa build -t wasm` writes it: either the bundle.tar.gz itself or a
// directory holding policy.wasm, data.json and .manifest, or bundle.tar.gz (a mounted ConfigMap). Every file of the
// bundle is read (bounded) so a signature can be checked against all of them; when a signing key
// is configured, a bundle whose signature does not cover exactly its files is refused. Never evaluates.
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Parser } from 'tar';
import { createReadStream } from 'node:fs';
import { BundleError } from './bundle-error.ts';
import { verifyBundleFiles } from './bundle-signature.ts';
import type { BundleVerification, VerifiedSignature } from './bundle-signature.ts';

export { BundleError } from './bundle-error.ts';

export interface PolicyBundle {
  wasm: Uint8Array;
  data: unknown;
  revision: string;
  source: string;
  /** Present when the bundle's signature was verified against the configured key. */
  signature?: VerifiedSignature;
  /**
   * The bundle's INPUT_READS_MEMBER text, when it has one: which input paths the Rego that
   * policy.wasm was compiled from reads, bound to the WASM by its digest (input-reads.ts).
   */
  inputReads?: string;
}

/** Written into the default bundle by `make policy` (policies/scripts/input-reads.ts); not .json, so OPA's bundle loader ignores it. */
export const INPUT_READS_MEMBER = 'sluice.input-reads';

export interface ReadBundleOptions {
  /** When set, only a bundle signed by this key, with every file covered, is accepted. */
  verification?: BundleVerification | undefined;
}

/** The ConfigMap/Secret key under which a directory may hold the bundle archive. */
export const TARBALL_KEY = 'bundle.tar.gz';
const MAX_MEMBER_BYTES = 64 * 1024 * 1024;
const MAX_TOTAL_BYTES = 128 * 1024 * 1024;
const MAX_FILES = 10_000;
const MAX_DEPTH = 16;

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
  const bundle: PolicyBundle = { wasm: new Uint8Array(wasm), data, revision, source };
  const reads = files.get(INPUT_READS_MEMBER);
  if (reads) bundle.inputReads = reads.toString('utf8');
  return bundle;
}

/** Bundle-relative name as OPA lists it in a signature; refuses names that could mean two files. */
function memberName(raw: string, source: string): string {
  const name = raw.replace(/^(\.?\/)+/, '');
  const parts = name.split('/');
  if (!name || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new BundleError('bundle.bad_archive', `${source}: member name "${raw}" is not a plain relative path`);
  }
  return name;
}

/** Collects members with the bounds every reader shares. */
class Members {
  readonly files = new Map<string, Buffer>();
  #total = 0;
  readonly #source: string;
  constructor(source: string) {
    this.#source = source;
  }

  /** Called before reading a member's bytes: a second copy of a name would let one shadow the other. */
  claim(raw: string): string {
    const name = memberName(raw, this.#source);
    if (this.files.has(name)) throw new BundleError('bundle.bad_archive', `${this.#source}: ${name} appears twice`);
    if (this.files.size >= MAX_FILES) throw new BundleError('bundle.too_large', `${this.#source}: more than ${MAX_FILES} files`);
    this.files.set(name, Buffer.alloc(0));
    return name;
  }

  count(name: string, bytes: number, sizeSoFar: number): void {
    this.#total += bytes;
    if (sizeSoFar > MAX_MEMBER_BYTES) throw new BundleError('bundle.too_large', `${this.#source}: ${name} exceeds ${MAX_MEMBER_BYTES} bytes`);
    if (this.#total > MAX_TOTAL_BYTES) throw new BundleError('bundle.too_large', `${this.#source}: bundle exceeds ${MAX_TOTAL_BYTES} bytes`);
  }
}

async function readTarball(path: string): Promise<Map<string, Buffer>> {
  return readTarStream(path, (parser, fail) => {
    const input = createReadStream(path);
    input.on('error', fail);
    input.pipe(parser);
  });
}

/** The members of a tar.gz held in memory (a bundle read from the API server or a registry). */
export function readTarballBytes(bytes: Uint8Array, source: string): Promise<Map<string, Buffer>> {
  return readTarStream(source, (parser) => parser.end(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)));
}

async function readTarStream(path: string, feed: (parser: Parser, fail: (err: unknown) => void) => void): Promise<Map<string, Buffer>> {
  const members = new Members(path);
  await new Promise<void>((resolve, reject) => {
    const fail = (err: unknown) => reject(err instanceof BundleError ? err : new BundleError('bundle.bad_archive', `${path}: ${String(err)}`));
    const parser = new Parser({
      onwarn: (_code, message) => fail(new BundleError('bundle.bad_archive', `${path}: ${message}`)),
      onReadEntry: (entry) => {
        if (entry.type === 'Directory') {
          entry.resume();
          return;
        }
        let name: string;
        try {
          if (entry.type !== 'File' && entry.type !== 'OldFile' && entry.type !== 'ContiguousFile') {
            throw new BundleError('bundle.bad_archive', `${path}: ${entry.path} is a ${entry.type}, not a regular file`);
          }
          name = members.claim(entry.path);
        } catch (err) {
          entry.resume();
          fail(err);
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        entry.on('data', (chunk: Buffer) => {
          size += chunk.length;
          try {
            members.count(name, chunk.length, size);
            chunks.push(chunk);
          } catch (err) {
            fail(err);
          }
        });
        entry.on('end', () => members.files.set(name, Buffer.concat(chunks)));
      },
    });
    parser.on('error', (err: Error) => fail(new BundleError('bundle.bad_archive', `${path}: ${err.message}`)));
    parser.on('end', resolve);
    feed(parser, fail);
  });
  return members.files;
}

/**
 * Every regular file under `dir` (symlinks followed, as a ConfigMap mount is made of them). The
 * kubelet's own `..data` / `..<timestamp>` entries at the top are skipped: they are the same files.
 */
async function readDirectory(dir: string): Promise<Map<string, Buffer>> {
  const members = new Members(dir);
  const visit = async (rel: string, depth: number): Promise<void> => {
    if (depth > MAX_DEPTH) throw new BundleError('bundle.bad_archive', `${dir}: directories nested deeper than ${MAX_DEPTH}`);
    for (const name of (await readdir(join(dir, rel))).sort()) {
      if (depth === 0 && name.startsWith('..')) continue;
      const relName = rel ? `${rel}/${name}` : name;
      const info = await stat(join(dir, relName)).catch(() => undefined);
      if (!info) continue; // a dangling link mid-swap; the next pass sees the settled state
      if (info.isDirectory()) await visit(relName, depth + 1);
      else if (info.isFile()) {
        const member = members.claim(relName);
        members.count(member, info.size, info.size);
        members.files.set(member, await readFile(join(dir, relName)));
      }
    }
  };
  await visit('', 0);
  return members.files;
}

/**
 * A directory is the unpacked bundle, or a mounted ConfigMap holding the archive itself under
 * `bundle.tar.gz` (binaryData: a signed bundle keeps its nested paths and its .signatures.json).
 */
async function readDirectoryBundle(dir: string): Promise<Map<string, Buffer>> {
  const files = await readDirectory(dir);
  const archive = files.get(TARBALL_KEY);
  if (!archive) return files;
  if (files.size > 1) {
    throw new BundleError('bundle.bad_archive', `${dir}: holds ${TARBALL_KEY} and other files (${[...files.keys()].filter((f) => f !== TARBALL_KEY).slice(0, 3).join(', ')}); use one or the other`);
  }
  return readTarball(join(dir, TARBALL_KEY));
}

/**
 * Loads a bundle from the bytes of its .tar.gz (a ConfigMap's binaryData, an OCI layer); the same
 * bounds and, with verification, the same signature check as a file. Throws BundleError.
 */
export async function readBundleBytes(bytes: Uint8Array, source: string, options: ReadBundleOptions = {}): Promise<PolicyBundle> {
  const files = await readTarballBytes(bytes, source);
  const signature = options.verification ? await verifyBundleFiles(files, options.verification, source) : undefined;
  const bundle = assemble(files, source);
  return signature ? { ...bundle, signature } : bundle;
}

/** Loads a bundle from a .tar.gz file or a directory; throws BundleError with a stable code. */
export async function readBundle(path: string, options: ReadBundleOptions = {}): Promise<PolicyBundle> {
  let info;
  try {
    info = await stat(path);
  } catch {
    throw new BundleError('bundle.missing', `${path}: no policy bundle at this path`);
  }
  const files = info.isDirectory() ? await readDirectoryBundle(path) : await readTarball(path);
  // The signature is checked before anything in the bundle is parsed or compiled.
  const signature = options.verification ? await verifyBundleFiles(files, options.verification, path) : undefined;
  const bundle = assemble(files, path);
  return signature ? { ...bundle, signature } : bundle;
}
