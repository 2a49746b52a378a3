// The encoded half of the masking corpus: every labelled positive (and negative) of the raw corpus
// again, as an agent would smuggle it out in a request — base64, base64url, a MIME part wrapped at
// 76, hex, percent-encoding of every byte, JSON \u escapes of every character, UTF-16LE/BE, format
// characters inside each secret, split across two prompt messages, percent-encoded base64 — plus
// look-alikes that must not trip (random base64 and hex blobs, digests, git SHAs, UUIDs, data
// URIs, UTF-16 prose, emoji sequences, MIME attachments of binary). Deterministic (seeded), and
// scored by decoding the masked output the way the receiver would, with Node's own decoders (not
// sluice's), so a secret masked in its encoding counts and one left in counts as missed.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Negative, Positive } from './generate.ts';
import { prng } from '../../../testkit/prng.ts';
import { CORPUS_DIR, secretsGone } from './evaluate.ts';

export const ENCODED_FILES = { positives: 'encoded-positives.jsonl', negatives: 'encoded-negatives.jsonl' } as const;

export function loadEncodedCorpus(): { positives: EncodedPositive[]; negatives: EncodedNegative[] } {
  const read = <T>(file: string): T[] =>
    readFileSync(join(CORPUS_DIR, file), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as T);
  return { positives: read<EncodedPositive>(ENCODED_FILES.positives), negatives: read<EncodedNegative>(ENCODED_FILES.negatives) };
}

export const ENCODINGS = ['base64', 'base64url', 'mime', 'hex', 'percent', 'escapes', 'utf16le', 'utf16be', 'format-chars', 'split', 'percent-base64'] as const;
export type Encoding = (typeof ENCODINGS)[number];

export interface EncodedPositive {
  id: string;
  rule: string;
  encoding: Encoding;
  /** The request body, base64 (UTF-16 bodies are not text). */
  body: string;
  secrets: string[];
}

export interface EncodedNegative {
  id: string;
  kind: string;
  encoding: Encoding | 'none';
  body: string;
}

const OPEN = '<<<';
const CLOSE = '>>>';
const INVISIBLES = ['\u200b', '\u00ad', '\u2060', '\ufeff', '\u200c', '\u200d', '\u200e', '\u2062'];

const prompt = (...contents: string[]): string => JSON.stringify({ model: 'gpt-5', messages: contents.map((content) => ({ role: 'user', content })) });
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const pctAll = (s: string): string => [...Buffer.from(s, 'utf8')].map((c) => `%${c.toString(16).padStart(2, '0').toUpperCase()}`).join('');
const wrap = (s: string, n: number, sep: string): string => (s.match(new RegExp(`.{1,${n}}`, 'g')) ?? []).join(sep);

/** The body an agent would send for `text` in `encoding`. */
export function encodeBody(text: string, encoding: Encoding, secrets: readonly string[], r: () => number): Buffer {
  switch (encoding) {
    case 'base64':
      return Buffer.from(prompt(`Here is the file, base64: ${OPEN}${b64(text)}${CLOSE} what does it do?`));
    case 'base64url':
      return Buffer.from(prompt(`payload ${OPEN}${Buffer.from(text, 'utf8').toString('base64url')}${CLOSE}`));
    case 'mime':
      return Buffer.from(`--sluice\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n${wrap(b64(text), 76, '\r\n')}\r\n--sluice--\r\n`);
    case 'hex':
      return Buffer.from(prompt(`bytes ${OPEN}${Buffer.from(text, 'utf8').toString('hex')}${CLOSE}`));
    case 'percent':
      return Buffer.from(`q=${pctAll(text)}&lang=en`);
    case 'escapes': {
      const esc = [...text].map((c) => (c.codePointAt(0)! > 0xffff ? JSON.stringify(c).slice(1, -1) : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)).join('');
      return Buffer.from(`{"model":"gpt-5","messages":[{"role":"user","content":"${esc}"}]}`);
    }
    case 'utf16le':
      return Buffer.from(text, 'utf16le');
    case 'utf16be':
      return Buffer.from(text, 'utf16le').swap16();
    case 'format-chars': {
      let t = text;
      for (const s of secrets) {
        if (s.length < 4) continue;
        const inv = INVISIBLES[Math.floor(r() * INVISIBLES.length)]!;
        let cut = '';
        for (let i = 0; i < s.length; i++) cut += (i > 0 && i % 7 === 0 ? inv : '') + s[i];
        t = t.split(s).join(cut);
      }
      return Buffer.from(prompt(t));
    }
    case 'split': {
      const first = secrets[0] ?? '';
      const at = first ? text.indexOf(first) + Math.floor(first.length / 2) : Math.floor(text.length / 2);
      return Buffer.from(prompt(text.slice(0, at), text.slice(at)));
    }
    case 'percent-base64':
      return Buffer.from(`data=${encodeURIComponent(b64(text))}`);
  }
}

function between(s: string): string {
  const a = s.indexOf(OPEN);
  const b = s.indexOf(CLOSE, a + OPEN.length);
  return a < 0 || b < 0 ? s : s.slice(a + OPEN.length, b);
}

function percentDecode(s: string): string {
  return Buffer.from(s.replace(/%([0-9A-Fa-f]{2})|([^%])/g, (_m, h: string | undefined, c: string | undefined) => (h ? String.fromCharCode(parseInt(h, 16)) : c!)), 'latin1').toString('utf8');
}

function contents(body: Buffer): string[] {
  try {
    return (JSON.parse(body.toString('utf8')) as { messages: { content: string }[] }).messages.map((m) => m.content);
  } catch {
    return [body.toString('utf8')];
  }
}

/** What the receiver of `body` reads, decoded with Node's decoders: the text the secrets must be gone from. */
export function receiverView(body: Buffer, encoding: Encoding | 'none'): string {
  switch (encoding) {
    case 'base64':
      return Buffer.from(between(contents(body).join('')), 'base64').toString('utf8');
    case 'base64url':
      return Buffer.from(between(contents(body).join('')), 'base64url').toString('utf8');
    case 'mime': {
      const s = body.toString('latin1');
      const part = s.slice(s.indexOf('\r\n\r\n') + 4, s.indexOf('\r\n--sluice--'));
      return Buffer.from(part.replace(/\r\n/g, ''), 'base64').toString('utf8');
    }
    case 'hex':
      return Buffer.from(between(contents(body).join('')), 'hex').toString('utf8');
    case 'percent':
      return percentDecode(body.toString('latin1').slice(2, body.toString('latin1').lastIndexOf('&lang=')));
    case 'escapes':
    case 'split':
      return contents(body).join('');
    case 'format-chars':
      return contents(body).join('').replace(/[\p{Cf}]/gu, '');
    case 'utf16le':
      return body.toString('utf16le');
    case 'utf16be':
      return Buffer.from(body).swap16().toString('utf16le');
    case 'percent-base64':
      return Buffer.from(percentDecode(body.toString('latin1').slice(5)), 'base64').toString('utf8');
    case 'none':
      return body.toString('utf8');
  }
}

export function generateEncodedPositives(positives: readonly Positive[], seed = 16): EncodedPositive[] {
  const r = prng(seed);
  return positives.map((p, i) => {
    const encoding = ENCODINGS[i % ENCODINGS.length]!;
    return { id: `e${p.id}`, rule: p.rule, encoding, body: encodeBody(p.text, encoding, p.secrets, r).toString('base64'), secrets: p.secrets };
  });
}

/** Look-alikes that are encoded data but not secrets. */
const LOOKALIKES: Record<string, (r: () => number) => Buffer> = {
  'random-base64': (r) => Buffer.from(prompt(`attachment ${rand(r, 24 + Math.floor(r() * 900)).toString('base64')}`)),
  'random-base64url': (r) => Buffer.from(`state=${rand(r, 16 + Math.floor(r() * 120)).toString('base64url')}&nonce=${rand(r, 16).toString('base64url')}`),
  'hex-digests': (r) => Buffer.from(prompt(`sha256:${rand(r, 32).toString('hex')} sha1 ${rand(r, 20).toString('hex')} md5 ${rand(r, 16).toString('hex')}`)),
  'git-shas': (r) => Buffer.from(`0098want ${rand(r, 20).toString('hex')} multi_ack side-band-64k ofs-delta\n0032have ${rand(r, 20).toString('hex')}\n00000009done\n`),
  uuids: (r) => Buffer.from(JSON.stringify({ id: uuid(r), session: uuid(r), items: [uuid(r), uuid(r)], trace: rand(r, 16).toString('hex') })),
  'data-uri': (r) => Buffer.from(prompt(`![img](data:image/png;base64,${Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), rand(r, 200 + Math.floor(r() * 2000))]).toString('base64')})`)),
  'mime-binary': (r) => Buffer.from(`--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n${wrap(rand(r, 300 + Math.floor(r() * 3000)).toString('base64'), 76, '\r\n')}\r\n--b--\r\n`),
  'percent-text': (r) => Buffer.from(`q=${encodeURIComponent(`${pick(r, PHRASES)} ${pick(r, PHRASES)} — ${Math.floor(r() * 1e6)} ü ß ☃`)}&page=${Math.floor(r() * 9)}`),
  'utf16-prose': (r) => Buffer.from(`${pick(r, PHRASES)}. ${pick(r, PHRASES)} (${rand(r, 8).toString('hex')})`, 'utf16le'),
  'emoji-and-soft-hyphens': (r) => Buffer.from(prompt(`family \u{1F468}\u200d\u{1F469}\u200d\u{1F467} ${pick(r, PHRASES)} hyphen\u00adated \u2066rtl\u2069 ${uuid(r)}`)),
  'escaped-unicode': (r) => Buffer.from(JSON.stringify({ text: `${pick(r, PHRASES)} caf\u00e9 na\u00efve \u2014 ${rand(r, 6).toString('hex')}` }).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)),
  'base64-json-config': (r) => Buffer.from(prompt(`config ${b64(JSON.stringify({ region: 'eu-west-1', replicas: Math.floor(r() * 9), image: `registry.example/app:${rand(r, 4).toString('hex')}` }))}`)),
};

const PHRASES = ['the build failed on step three', 'please refactor this function', 'why does the test time out', 'summarise the design document', 'rename the variable to something clearer', 'add a retry with backoff'];

function rand(r: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}
function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}
function uuid(r: () => number): string {
  const h = rand(r, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20)}`;
}

export function generateEncodedNegatives(negatives: readonly Negative[], seed = 17): EncodedNegative[] {
  const r = prng(seed);
  const out: EncodedNegative[] = negatives.map((n, i) => {
    const encoding = ENCODINGS[i % ENCODINGS.length]!;
    return { id: `e${n.id}`, kind: `${n.kind} (${encoding})`, encoding, body: encodeBody(n.text, encoding, [], r).toString('base64') };
  });
  for (const [kind, make] of Object.entries(LOOKALIKES)) {
    const g = prng(seed * 1000 + crc32(kind));
    for (let i = 0; i < 40; i++) out.push({ id: `el${String(out.length + 1).padStart(4, '0')}`, kind, encoding: 'none', body: make(g).toString('base64') });
  }
  return out;
}

/** A DLP detector: the masked body, the rules that fired, and whether it would block the request instead. */
export type BodyDetector = (body: Buffer) => { output: Buffer; rules: string[]; blocked: boolean };

export interface EncodedScore {
  positives: number;
  detected: number;
  byEncoding: Map<string, { positives: number; detected: number }>;
  negatives: number;
  falsePositives: number;
  missed: string[];
  fpIds: string[];
}

export function scoreEncoded(detect: BodyDetector, positives: readonly EncodedPositive[], negatives: readonly EncodedNegative[]): EncodedScore {
  const s: EncodedScore = { positives: positives.length, detected: 0, byEncoding: new Map(), negatives: negatives.length, falsePositives: 0, missed: [], fpIds: [] };
  for (const p of positives) {
    const row = s.byEncoding.get(p.encoding) ?? { positives: 0, detected: 0 };
    s.byEncoding.set(p.encoding, row);
    row.positives++;
    const r = detect(Buffer.from(p.body, 'base64'));
    if (r.blocked || secretsGone(receiverView(r.output, p.encoding), p.secrets)) {
      row.detected++;
      s.detected++;
    } else s.missed.push(p.id);
  }
  for (const n of negatives) {
    const r = detect(Buffer.from(n.body, 'base64'));
    if (r.rules.length > 0 || r.blocked) {
      s.falsePositives++;
      s.fpIds.push(n.id);
    }
  }
  return s;
}

export function formatEncodedScore(s: EncodedScore, title: string): string {
  const pct = (a: number, b: number): string => `${((100 * a) / b).toFixed(1).padStart(5)}%`;
  const lines = [title, `${'encoding'.padEnd(28)} ${'n'.padStart(4)} ${'recall'.padStart(7)}`];
  for (const [e, r] of s.byEncoding) lines.push(`${e.padEnd(28)} ${String(r.positives).padStart(4)} ${pct(r.detected, r.positives).padStart(7)}`);
  lines.push(`${'ALL encoded positives'.padEnd(28)} ${String(s.positives).padStart(4)} ${pct(s.detected, s.positives).padStart(7)}`);
  lines.push(`${'negatives (false positives)'.padEnd(28)} ${String(s.negatives).padStart(4)} ${pct(s.falsePositives, s.negatives).padStart(7)}  (${s.falsePositives})`);
  return lines.join('\n');
}
