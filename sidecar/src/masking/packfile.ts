// Outbound DLP for `git push`: parses a receive-pack request body (pkt-line commands, then the
// packfile), inflates every object, resolves OFS/REF deltas, and scans blobs, commits and tags with
// the masking rules. It decides; it never edits a pack (a changed byte breaks git's checksums).
// Every limit that trips yields `unscannable`: the caller holds or denies, never forwards unscanned.
// Findings name rule, object id, path and offset, never the matched bytes.
import { createHash } from 'node:crypto';
import { inflateSync } from 'node:zlib';
import type { AreaCode } from '../../../api/src/codes.ts';
import type { Scanner } from './scanner.ts';

export interface RefUpdate {
  old: string;
  new: string;
  ref: string;
}

export interface ReceivePackRequest {
  commands: RefUpdate[];
  capabilities: string[];
  pushOptions: string[];
  /** Offset of the packfile in the body (= body length when the push only deletes refs). */
  packOffset: number;
}

export interface PackLimits {
  /** Largest body the caller may buffer for scanning. */
  maxPackBytes: number;
  maxObjects: number;
  /** Sum of inflated and delta-resolved bytes held at once. */
  maxInflatedBytes: number;
  maxObjectBytes: number;
  maxDeltaDepth: number;
  /**
   * A thin pack's REF_DELTA against an object the server already has: scan the bytes the delta
   * inserts (new content is always inserted, copies come from what the server holds) or refuse.
   */
  thinDeltas: 'scan-inserts' | 'unscannable';
}

export const DEFAULT_PACK_LIMITS: Readonly<PackLimits> = Object.freeze({
  maxPackBytes: 256 * 1024 * 1024,
  maxObjects: 500_000,
  maxInflatedBytes: 1024 * 1024 * 1024,
  maxObjectBytes: 128 * 1024 * 1024,
  maxDeltaDepth: 128,
  thinDeltas: 'scan-inserts',
});

export interface PackFinding {
  rule: string;
  /** Object id (hex) of the blob, commit or tag that holds the secret. */
  object: string;
  type: 'blob' | 'commit' | 'tag';
  /** Path of the blob in a pushed tree, when the pack carries that tree. */
  path?: string;
  offset: number;
  length: number;
}

export type PackVerdict =
  | { verdict: 'clean'; objects: number }
  | { verdict: 'secrets'; objects: number; findings: PackFinding[] }
  | { verdict: 'unscannable'; reason: AreaCode<'pack'>; detail: string };

export class PackError extends Error {
  readonly code: AreaCode<'pack'>;
  constructor(code: AreaCode<'pack'>, message: string) {
    super(message);
    this.name = 'PackError';
    this.code = code;
  }
}

const TYPE_NAMES = ['', 'commit', 'tree', 'blob', 'tag', '', 'ofs-delta', 'ref-delta'] as const;
const OBJ_OFS_DELTA = 6;
const OBJ_REF_DELTA = 7;

/** Reads the pkt-line command section of a receive-pack request. Throws PackError when malformed. */
export function parseReceivePackRequest(body: Buffer): ReceivePackRequest {
  let pos = 0;
  const readSection = (): string[] => {
    const lines: string[] = [];
    for (;;) {
      if (pos + 4 > body.length) throw new PackError('pack.truncated_commands', 'pkt-line section ends before its flush');
      const lenHex = body.toString('latin1', pos, pos + 4);
      if (!/^[0-9a-f]{4}$/.test(lenHex)) throw new PackError('pack.bad_pkt_line', `bad pkt-line length at ${pos}`);
      const len = parseInt(lenHex, 16);
      if (len === 0) {
        pos += 4;
        return lines;
      }
      if (len < 4 || pos + len > body.length) throw new PackError('pack.bad_pkt_line', `bad pkt-line length ${len} at ${pos}`);
      lines.push(body.toString('latin1', pos + 4, pos + len).replace(/\n$/, ''));
      pos += len;
    }
  };
  const commands: RefUpdate[] = [];
  let capabilities: string[] = [];
  let inCert = false;
  for (const raw of readSection()) {
    let line = raw;
    const nul = line.indexOf('\0');
    if (nul >= 0) {
      capabilities = line.slice(nul + 1).trim().split(' ').filter(Boolean);
      line = line.slice(0, nul);
    }
    // A signed push wraps the commands in a certificate; its command lines are the same shape.
    if (line.startsWith('push-cert')) {
      inCert = true;
      continue;
    }
    if (line === 'push-cert-end') {
      inCert = false;
      continue;
    }
    if (line.startsWith('shallow ')) continue;
    const m = /^([0-9a-f]{40,64}) ([0-9a-f]{40,64}) (\S+)$/.exec(line);
    if (m) commands.push({ old: m[1] ?? '', new: m[2] ?? '', ref: m[3] ?? '' });
    else if (!inCert) throw new PackError('pack.bad_command', 'receive-pack command line is not "<old> <new> <ref>"');
  }
  const pushOptions = capabilities.includes('push-options') ? readSection() : [];
  return { commands, capabilities, pushOptions, packOffset: pos };
}

interface PackObject {
  offset: number;
  type: number;
  size: number;
  data: Buffer;
  baseOffset?: number;
  baseId?: string;
}

interface Resolved {
  type: number;
  content: Buffer;
  /** True when a thin delta's base was missing and only inserted bytes are known. */
  partial: boolean;
}

class PackReader {
  private readonly pack: Buffer;
  private readonly limits: PackLimits;
  private readonly hashName: 'sha1' | 'sha256';
  private readonly idLength: number;
  private inflated = 0;

  constructor(pack: Buffer, limits: PackLimits, hashName: 'sha1' | 'sha256') {
    this.pack = pack;
    this.limits = limits;
    this.hashName = hashName;
    this.idLength = hashName === 'sha1' ? 20 : 32;
  }

  readAll(): PackObject[] {
    const pack = this.pack;
    if (pack.length < 12 + this.idLength || pack.toString('latin1', 0, 4) !== 'PACK') {
      throw new PackError('pack.bad_header', 'body does not hold a packfile');
    }
    const version = pack.readUInt32BE(4);
    if (version !== 2 && version !== 3) throw new PackError('pack.bad_version', `pack version ${version}`);
    const count = pack.readUInt32BE(8);
    if (count > this.limits.maxObjects) throw new PackError('pack.too_many_objects', `${count} objects > limit ${this.limits.maxObjects}`);
    const end = pack.length - this.idLength;
    const expected = createHash(this.hashName).update(pack.subarray(0, end)).digest();
    if (!expected.equals(pack.subarray(end))) throw new PackError('pack.bad_checksum', 'pack trailer checksum does not match');
    const objects: PackObject[] = [];
    let pos = 12;
    for (let i = 0; i < count; i++) {
      if (pos >= end) throw new PackError('pack.truncated', `pack ends after ${i} of ${count} objects`);
      const offset = pos;
      let c = pack[pos++] ?? 0;
      const type = (c >> 4) & 7;
      let size = c & 15;
      let mult = 16;
      while (c & 0x80) {
        c = pack[pos++] ?? 0;
        size += (c & 0x7f) * mult;
        mult *= 128;
        if (mult > 2 ** 56) throw new PackError('pack.bad_object_header', `object size varint too long at ${offset}`);
      }
      if (type === 0 || type === 5) throw new PackError('pack.bad_object_type', `object type ${type} at ${offset}`);
      if (size > this.limits.maxObjectBytes) throw new PackError('pack.object_too_large', `object of ${size} bytes > limit ${this.limits.maxObjectBytes}`);
      const obj: PackObject = { offset, type, size, data: EMPTY };
      if (type === OBJ_OFS_DELTA) {
        c = pack[pos++] ?? 0;
        let rel = c & 0x7f;
        while (c & 0x80) {
          c = pack[pos++] ?? 0;
          rel = (rel + 1) * 128 + (c & 0x7f);
        }
        obj.baseOffset = offset - rel;
        if (rel <= 0 || obj.baseOffset < 12) throw new PackError('pack.bad_delta_base', `OFS_DELTA at ${offset} points outside the pack`);
      } else if (type === OBJ_REF_DELTA) {
        obj.baseId = pack.toString('hex', pos, pos + this.idLength);
        pos += this.idLength;
      }
      this.charge(size);
      let res: { buffer: Buffer; engine: { bytesWritten: number } };
      try {
        res = inflateSync(pack.subarray(pos, end), { info: true, maxOutputLength: Math.max(1, size) }) as unknown as typeof res;
      } catch (err) {
        throw new PackError('pack.bad_zlib', `object at ${offset} does not inflate (${(err as Error).message})`);
      }
      if (res.buffer.length !== size) throw new PackError('pack.bad_object_size', `object at ${offset} inflates to ${res.buffer.length}, header says ${size}`);
      obj.data = res.buffer;
      pos += res.engine.bytesWritten;
      objects.push(obj);
    }
    if (pos !== end) throw new PackError('pack.trailing_data', `${end - pos} bytes after the last object`);
    return objects;
  }

  charge(bytes: number): void {
    this.inflated += bytes;
    if (this.inflated > this.limits.maxInflatedBytes) {
      throw new PackError('pack.inflated_too_large', `more than ${this.limits.maxInflatedBytes} bytes inflated`);
    }
  }

  objectId(type: number, content: Buffer): string {
    return createHash(this.hashName)
      .update(`${TYPE_NAMES[type] ?? ''} ${content.length}\0`)
      .update(content)
      .digest('hex');
  }
}

const EMPTY = Buffer.alloc(0);

function readVarint(delta: Buffer, pos: number): [number, number] {
  let value = 0;
  let mult = 1;
  let c: number;
  do {
    c = delta[pos++] ?? 0;
    value += (c & 0x7f) * mult;
    mult *= 128;
  } while (c & 0x80 && pos < delta.length);
  return [value, pos];
}

/**
 * Applies a git delta. With `base` undefined (thin pack, base not sent), returns only the inserted
 * bytes, each copied range replaced by a newline so unrelated inserts do not join into a match.
 */
export function applyDelta(base: Buffer | undefined, delta: Buffer): Buffer {
  const [srcSize, afterSrc] = readVarint(delta, 0);
  const [dstSize, afterDst] = readVarint(delta, afterSrc);
  let pos = afterDst;
  if (base && base.length !== srcSize) throw new PackError('pack.bad_delta', `delta expects a ${srcSize}-byte base, got ${base.length}`);
  const out = Buffer.allocUnsafe(base ? dstSize : delta.length);
  let o = 0;
  while (pos < delta.length) {
    const op = delta[pos++] ?? 0;
    if (op & 0x80) {
      let off = 0;
      let size = 0;
      for (let b = 0; b < 4; b++) if (op & (1 << b)) off += (delta[pos++] ?? 0) * 2 ** (8 * b);
      for (let b = 0; b < 3; b++) if (op & (1 << (4 + b))) size += (delta[pos++] ?? 0) * 2 ** (8 * b);
      if (size === 0) size = 0x10000;
      if (base) {
        if (off + size > base.length || o + size > dstSize) throw new PackError('pack.bad_delta', 'delta copy out of range');
        base.copy(out, o, off, off + size);
        o += size;
      } else if (o > 0 && out[o - 1] !== 0x0a) {
        out[o++] = 0x0a;
      }
    } else if (op !== 0) {
      if (pos + op > delta.length || (base && o + op > dstSize)) throw new PackError('pack.bad_delta', 'delta insert out of range');
      delta.copy(out, o, pos, pos + op);
      o += op;
      pos += op;
    } else {
      throw new PackError('pack.bad_delta', 'delta opcode 0 is reserved');
    }
  }
  if (base && o !== dstSize) throw new PackError('pack.bad_delta', `delta produced ${o} bytes, header says ${dstSize}`);
  return out.subarray(0, o);
}

/** Tree entries → (child id → name, parent tree id) so a blob's path can be rebuilt. */
function indexTree(content: Buffer, treeId: string, idLength: number, parents: Map<string, { name: string; parent: string }>): void {
  let pos = 0;
  while (pos < content.length) {
    const nul = content.indexOf(0, pos);
    if (nul < 0 || nul + 1 + idLength > content.length) return;
    const entry = content.toString('utf8', pos, nul);
    const name = entry.slice(entry.indexOf(' ') + 1);
    const child = content.toString('hex', nul + 1, nul + 1 + idLength);
    if (!parents.has(child)) parents.set(child, { name, parent: treeId });
    pos = nul + 1 + idLength;
  }
}

function pathOf(id: string, parents: Map<string, { name: string; parent: string }>): string | undefined {
  const parts: string[] = [];
  let cur = parents.get(id);
  for (let depth = 0; cur && depth < 256; depth++) {
    parts.unshift(cur.name);
    cur = parents.get(cur.parent);
  }
  return parts.length ? parts.join('/') : undefined;
}

/** Scans a packfile. Never throws: malformed or over-limit packs are `unscannable`. */
export function scanPack(pack: Buffer, scanner: Scanner, opts: Partial<PackLimits> & { objectFormat?: 'sha1' | 'sha256' } = {}): PackVerdict {
  const limits = { ...DEFAULT_PACK_LIMITS, ...opts };
  try {
    if (pack.length > limits.maxPackBytes) throw new PackError('pack.too_large', `pack of ${pack.length} bytes > limit ${limits.maxPackBytes}`);
    const reader = new PackReader(pack, limits, opts.objectFormat ?? 'sha1');
    const objects = reader.readAll();
    const byOffset = new Map<number, number>();
    objects.forEach((o, i) => byOffset.set(o.offset, i));
    const resolved: (Resolved | undefined)[] = new Array<Resolved | undefined>(objects.length);
    const byId = new Map<string, number>();
    const ids: string[] = new Array<string>(objects.length).fill('');
    // Full objects first: REF_DELTA bases are looked up by id.
    objects.forEach((o, i) => {
      if (o.type < OBJ_OFS_DELTA) {
        resolved[i] = { type: o.type, content: o.data, partial: false };
        const id = reader.objectId(o.type, o.data);
        ids[i] = id;
        byId.set(id, i);
      }
    });
    const resolve = (i: number, depth: number): Resolved => {
      const done = resolved[i];
      if (done) return done;
      if (depth > limits.maxDeltaDepth) throw new PackError('pack.delta_too_deep', `delta chain deeper than ${limits.maxDeltaDepth}`);
      const o = objects[i];
      if (!o) throw new PackError('pack.bad_delta_base', 'delta base missing');
      let baseIndex: number | undefined;
      if (o.baseOffset !== undefined) {
        baseIndex = byOffset.get(o.baseOffset);
        if (baseIndex === undefined) throw new PackError('pack.bad_delta_base', `no object starts at offset ${o.baseOffset}`);
      } else if (o.baseId !== undefined) {
        baseIndex = byId.get(o.baseId);
      }
      let result: Resolved;
      if (baseIndex === undefined) {
        if (limits.thinDeltas === 'unscannable') throw new PackError('pack.thin_delta', `delta base ${o.baseId ?? ''} is not in the pack`);
        result = { type: 3, content: applyDelta(undefined, o.data), partial: true };
      } else {
        const base = resolve(baseIndex, depth + 1);
        result = base.partial
          ? { type: base.type, content: applyDelta(undefined, o.data), partial: true }
          : { type: base.type, content: applyDelta(base.content, o.data), partial: false };
      }
      reader.charge(result.content.length);
      resolved[i] = result;
      if (!result.partial) {
        const id = reader.objectId(result.type, result.content);
        ids[i] = id;
        byId.set(id, i);
      }
      return result;
    };
    // A REF_DELTA may name a base that is itself a delta resolved later: resolve in rounds, each
    // taking the deltas whose chain ends in a known object; what is left has a missing (thin) base.
    const rootKnown = (i: number): boolean => {
      let o = objects[i];
      for (let d = 0; o && d <= limits.maxDeltaDepth; d++) {
        if (o.type < OBJ_OFS_DELTA) return true;
        if (o.baseId !== undefined) return byId.has(o.baseId);
        const b = byOffset.get(o.baseOffset ?? -1);
        if (b === undefined || resolved[b]) return true;
        o = objects[b];
      }
      return true;
    };
    let pending = objects.map((_, i) => i).filter((i) => !resolved[i]);
    for (;;) {
      const ready = pending.filter(rootKnown);
      if (ready.length === 0) break;
      for (const i of ready) resolve(i, 0);
      pending = pending.filter((i) => !resolved[i]);
    }
    for (const i of pending) resolve(i, 0);
    const idLength = opts.objectFormat === 'sha256' ? 32 : 20;
    const parents = new Map<string, { name: string; parent: string }>();
    resolved.forEach((r, i) => {
      if (r && r.type === 2 && !r.partial) indexTree(r.content, ids[i] ?? '', idLength, parents);
    });
    const findings: PackFinding[] = [];
    resolved.forEach((r, i) => {
      if (!r || r.type === 2) return;
      const type = r.type === 1 ? 'commit' : r.type === 4 ? 'tag' : 'blob';
      for (const f of scanner.scan(r.content, 0, true).findings) {
        const id = ids[i] || `offset:${objects[i]?.offset ?? 0}`;
        const path = pathOf(id, parents);
        findings.push({ rule: f.rule, object: id, type, ...(path ? { path } : {}), offset: f.start, length: f.end - f.start });
      }
    });
    return findings.length > 0 ? { verdict: 'secrets', objects: objects.length, findings } : { verdict: 'clean', objects: objects.length };
  } catch (err) {
    if (err instanceof PackError) return { verdict: 'unscannable', reason: err.code, detail: err.message };
    return { verdict: 'unscannable', reason: 'pack.internal_error', detail: (err as Error).message };
  }
}

/** Scans a whole receive-pack request body: commands, then the pack (if any). */
export function scanReceivePack(body: Buffer, scanner: Scanner, opts: Partial<PackLimits> = {}): PackVerdict & { request?: ReceivePackRequest } {
  let request: ReceivePackRequest;
  try {
    request = parseReceivePackRequest(body);
  } catch (err) {
    const e = err instanceof PackError ? err : new PackError('pack.internal_error', (err as Error).message);
    return { verdict: 'unscannable', reason: e.code, detail: e.message };
  }
  if (request.packOffset === body.length) {
    // Only ref deletions carry no pack; anything else without a pack is malformed.
    const onlyDeletes = request.commands.every((c) => /^0+$/.test(c.new));
    return onlyDeletes
      ? { verdict: 'clean', objects: 0, request }
      : { verdict: 'unscannable', reason: 'pack.missing', detail: 'ref updates without a pack', request };
  }
  const objectFormat = request.capabilities.includes('object-format=sha256') ? 'sha256' : 'sha1';
  return { ...scanPack(body.subarray(request.packOffset), scanner, { ...opts, objectFormat }), request };
}

/**
 * Collects a push body chunk by chunk up to maxPackBytes. Past the limit it stops keeping bytes and
 * the verdict is `unscannable` (the proxy must not forward what it did not scan).
 */
export class PackCollector {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private overflow = false;
  private readonly limits: PackLimits;
  constructor(limits: Partial<PackLimits> = {}) {
    this.limits = { ...DEFAULT_PACK_LIMITS, ...limits };
  }
  /** Returns false once the body is over the limit (the caller can stop reading and deny). */
  push(chunk: Buffer): boolean {
    if (this.overflow) return false;
    this.size += chunk.length;
    if (this.size > this.limits.maxPackBytes) {
      this.overflow = true;
      this.chunks.length = 0;
      return false;
    }
    this.chunks.push(chunk);
    return true;
  }
  /** The buffered body, for forwarding after a clean verdict. */
  body(): Buffer {
    return Buffer.concat(this.chunks);
  }
  verdict(scanner: Scanner): PackVerdict & { request?: ReceivePackRequest } {
    if (this.overflow) {
      return { verdict: 'unscannable', reason: 'pack.too_large', detail: `push body over ${this.limits.maxPackBytes} bytes` };
    }
    return scanReceivePack(this.body(), scanner, this.limits);
  }
}
