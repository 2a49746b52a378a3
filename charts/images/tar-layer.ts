// Deterministic tar for OCI image layers: entries in byte order of their paths, owner root:root,
// one fixed mtime, modes as on disk, PAX records only for names that do not fit ustar. The same
// tree always gives the same bytes, so layers shared by the sidecar and webhook images (and by
// two builds of one revision) have the same digest. It reads the tree; it never writes outside the
// output stream, and never follows a symlink out of the tree.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, lstatSync, readdirSync, readlinkSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';

const BLOCK = 512;

export interface TarEntry {
  /** path inside the layer, no leading slash; directories end without a slash */
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'hardlink';
  mode: number;
  size: number;
  /** symlink target, or the layer path a hard link points at */
  link?: string;
  /** absolute source path of a file's content */
  source?: string;
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return Buffer.from(`${len}${body}`);
}

function header(name: string, e: { type: string; mode: number; size: number; link?: string }, mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK, 0);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(e.mode & 0o7777, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii');
  h.write(octal(0, 8), 116, 'ascii');
  h.write(octal(e.size, 12), 124, 'ascii');
  h.write(octal(mtime, 12), 136, 'ascii');
  h.write('        ', 148, 'ascii');
  const flag = { file: '0', hardlink: '1', symlink: '2', dir: '5', pax: 'x' }[e.type]!;
  h.write(flag, 156, 'ascii');
  if (e.link) h.write(e.link, 157, 100, 'utf8');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write('root', 265, 'ascii');
  h.write('root', 297, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + ' ', 148, 'ascii');
  return h;
}

/** Header blocks of one entry: a PAX header first when the path or link is too long for ustar. */
export function entryHeader(e: TarEntry, mtime: number): Buffer {
  const name = e.type === 'dir' ? `${e.path}/` : e.path;
  const records: Buffer[] = [];
  if (Buffer.byteLength(name) > 100) records.push(paxRecord('path', name));
  if (e.link && Buffer.byteLength(e.link) > 100) records.push(paxRecord('linkpath', e.link));
  const main = header(name.slice(0, 100), { type: e.type, mode: e.mode, size: e.type === 'file' ? e.size : 0, ...(e.link ? { link: e.link.slice(0, 100) } : {}) }, mtime);
  if (!records.length) return main;
  const pax = Buffer.concat(records);
  return Buffer.concat([header(`PaxHeaders/${name}`.slice(0, 100), { type: 'pax', mode: 0o644, size: pax.length }, mtime), pad(pax), main]);
}

function pad(b: Buffer): Buffer {
  const rest = b.length % BLOCK;
  return rest ? Buffer.concat([b, Buffer.alloc(BLOCK - rest)]) : b;
}

function typeOf(st: Stats): TarEntry['type'] | undefined {
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFile()) return 'file';
  return undefined;
}

/** Every entry under `root`, as layer paths under `prefix`, sorted; hard links point at the first path. */
export function listTree(root: string, prefix = ''): TarEntry[] {
  const out: TarEntry[] = [];
  const seen = new Map<string, string>();
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir).sort()) {
      const abs = join(dir, name);
      const path = rel ? `${rel}/${name}` : name;
      const st = lstatSync(abs);
      const type = typeOf(st);
      if (!type) continue;
      if (type === 'file' && st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        const first = seen.get(key);
        if (first) {
          out.push({ path, type: 'hardlink', mode: st.mode, size: 0, link: first });
          continue;
        }
        seen.set(key, path);
      }
      out.push({ path, type, mode: st.mode, size: type === 'file' ? st.size : 0, ...(type === 'symlink' ? { link: readlinkSync(abs) } : {}), ...(type === 'file' ? { source: abs } : {}) });
      if (type === 'dir') walk(abs, path);
    }
  };
  walk(root, prefix);
  // Parent directories of the prefix, so the layer creates them with sane modes.
  const parents = prefix ? prefix.split('/').map((_, i, all) => all.slice(0, i + 1).join('/')) : [];
  return [...parents.map((p) => ({ path: p, type: 'dir' as const, mode: 0o755, size: 0 })), ...out].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

async function* tarStream(entries: readonly TarEntry[], mtime: number): AsyncGenerator<Buffer> {
  for (const e of entries) {
    yield entryHeader(e, mtime);
    if (e.type !== 'file' || !e.source) continue;
    let written = 0;
    for await (const chunk of createReadStream(e.source)) {
      written += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
    if (written !== e.size) throw new Error(`${e.source} changed while it was archived`);
    if (written % BLOCK) yield Buffer.alloc(BLOCK - (written % BLOCK));
  }
  yield Buffer.alloc(BLOCK * 2);
}

export interface WrittenLayer {
  /** sha256 of the uncompressed tar (the config's diff_id) */
  diffId: string;
  /** sha256 of the gzipped blob (the manifest's digest) */
  digest: string;
  size: number;
  uncompressedSize: number;
}

/** Writes entries as a gzipped tar to `out`; returns both digests and sizes. */
export async function writeLayer(entries: readonly TarEntry[], mtime: number, out: string): Promise<WrittenLayer> {
  const raw = createHash('sha256');
  const gz = createHash('sha256');
  let uncompressedSize = 0;
  let size = 0;
  const tee = new PassThrough();
  tee.on('data', (c: Buffer) => {
    raw.update(c);
    uncompressedSize += c.length;
  });
  const count = new PassThrough();
  count.on('data', (c: Buffer) => {
    gz.update(c);
    size += c.length;
  });
  await pipeline(Readable.from(tarStream(entries, mtime)), tee, createGzip({ level: 6 }), count, createWriteStream(out));
  return { diffId: `sha256:${raw.digest('hex')}`, digest: `sha256:${gz.digest('hex')}`, size, uncompressedSize };
}
