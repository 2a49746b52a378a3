// Masking benchmark, sluice and gitleaks side by side in one run, each on one core (taskset CPU 0;
// gitleaks also with GOMAXPROCS=1):
//   speed   — MB/s over a mixed corpus: real text (TypeScript lib .d.ts, package READMEs, the corpus
//             negatives) with one labelled secret every ~64 KiB, and over the same text without secrets.
//             sluice runs its streaming path (StreamMasker, 64 KiB chunks; also through node:stream,
//             and gzip bodies decoded → masked → sent decoded or re-encoded); gitleaks runs
//             the same bytes as 64 KiB files (`gitleaks dir`) and as one stream (`gitleaks stdin`).
//             Outbound DLP rows: the same text as request bodies through decoded views (base64,
//             hex, percent, escapes, UTF-16, format characters, JSON joins) plus the raw rules —
//             whole 1 MiB bodies (scanDecoded), and a stream decoded in 1 MiB segments
//             (DecodedViewsTransform → MaskingTransform); and an LLM-prompt-shaped input (the text
//             as JSON-escaped message contents) through the whole-body path. Before decoded views
//             outbound DLP ran the raw StreamMasker only (the first row).
//   quality — recall and false-positive rate of both on sidecar/test/masking-corpus, scored alike
//             (a positive counts when none of its secrets survives redaction of what was reported);
//             and sluice's outbound DLP on the encoded half of the corpus (encoded-*.jsonl).
// Speed is MB per CPU-second of the process (user+system; for gitleaks its child CPU time from
// /usr/bin/time), so a busy machine slows the wall clock but not the per-core figure; wall-clock
// MB/s is printed beside it.
//   node bench/masking/run.ts [--mb 32] [--runs 5] [--no-pin] [--gitleaks PATH]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { DecodedViewsTransform, StreamMasker, createMasker, maskingStages, maskingTransform, planBodyMasking, scanDecoded } from '../../sidecar/src/masking/index.ts';
import { formatEncodedScore, loadEncodedCorpus, scoreEncoded } from '../../sidecar/test/masking-corpus/encoded.ts';
import { formatScore, loadCorpus, score } from '../../sidecar/test/masking-corpus/evaluate.ts';
import type { Detector, Score } from '../../sidecar/test/masking-corpus/evaluate.ts';

const root = join(import.meta.dirname, '../..');
const { values } = parseArgs({
  options: {
    mb: { type: 'string', default: '32' },
    runs: { type: 'string', default: '5' },
    'no-pin': { type: 'boolean', default: false },
    gitleaks: { type: 'string', default: join(root, '.tools/bin/gitleaks') },
  },
});
const TARGET = Number(values.mb) * 1024 * 1024;
const RUNS = Number(values.runs);
const CHUNK = 64 * 1024;
// gitleaks runs two orders of magnitude slower on this text: one run each keeps the bench short.
const GITLEAKS_RUNS = 1;

let pinned = 'not pinned';
if (!values['no-pin']) {
  const res = spawnSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { encoding: 'utf8' });
  pinned = res.status === 0 ? 'pinned to CPU 0 (taskset); gitleaks on CPU 0 with GOMAXPROCS=1' : `taskset failed: ${res.stderr.trim()}`;
}

// ------------------------------------------------------------------------------ inputs
function realText(): Buffer[] {
  const parts: Buffer[] = [];
  const lib = join(root, 'node_modules/typescript/lib');
  for (const f of readdirSync(lib).filter((n) => n.endsWith('.d.ts')).sort()) parts.push(readFileSync(join(lib, f)));
  const readmes: string[] = [];
  const walk = (d: string, depth: number): void => {
    if (depth > 3) return;
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.isDirectory()) walk(join(d, e.name), depth + 1);
      else if (e.name === 'README.md') readmes.push(join(d, e.name));
    }
  };
  walk(join(root, 'node_modules'), 0);
  for (const f of readmes) if (statSync(f).size < 200_000) parts.push(readFileSync(f));
  return parts;
}

const corpus = loadCorpus();
const cleanParts = [...realText(), ...corpus.negatives.map((n) => Buffer.from(n.text + '\n'))];
function build(withSecrets: boolean): Buffer {
  const out: Buffer[] = [];
  let size = 0;
  let sinceSecret = 0;
  let p = 0;
  let s = 0;
  while (size < TARGET) {
    const part = cleanParts[p++ % cleanParts.length] as Buffer;
    out.push(part);
    size += part.length;
    sinceSecret += part.length;
    if (withSecrets && sinceSecret >= 64 * 1024) {
      const secret = Buffer.from(`\n${corpus.positives[s++ % corpus.positives.length]?.text ?? ''}\n`);
      out.push(secret);
      size += secret.length;
      sinceSecret = 0;
    }
  }
  return Buffer.concat(out).subarray(0, TARGET);
}
const clean = build(false);
const mixed = build(true);
const secretsInMixed = Math.floor(TARGET / (64 * 1024));

// ------------------------------------------------------------------------------ speed
const masker = createMasker('*');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

interface Timing {
  cpu: number;
  wall: number;
}

function measure<T>(fn: () => T): [T, Timing] {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const r = fn();
  const c = process.cpuUsage(c0);
  return [r, { cpu: (c.user + c.system) / 1e6, wall: Number(process.hrtime.bigint() - t0) / 1e9 }];
}

function medianTiming(ts: Timing[]): Timing {
  return { cpu: median(ts.map((t) => t.cpu)), wall: median(ts.map((t) => t.wall)) };
}

function timeSync(fn: () => void): Timing {
  fn(); // warm-up (JIT, caches)
  fn();
  const times: Timing[] = [];
  for (let i = 0; i < RUNS; i++) times.push(measure(fn)[1]);
  return medianTiming(times);
}

async function timeAsync(fn: () => Promise<void>): Promise<Timing> {
  await fn();
  const times: Timing[] = [];
  for (let i = 0; i < Math.max(3, RUNS - 2); i++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await fn();
    const c = process.cpuUsage(c0);
    times.push({ cpu: (c.user + c.system) / 1e6, wall: Number(process.hrtime.bigint() - t0) / 1e9 });
  }
  return medianTiming(times);
}

function streamCore(input: Buffer): () => void {
  return () => {
    const core = new StreamMasker({ masker, direction: 'response' });
    let n = 0;
    for (let i = 0; i < input.length; i += CHUNK) n += core.write(input.subarray(i, i + CHUNK)).length;
    n += core.end().length;
    if (n === 0) throw new Error('no output');
  };
}

const DLP_BODY = 1024 * 1024;

/** Outbound DLP on whole bodies of DLP_BODY bytes: decoded views and raw rules in one pass. */
function dlpWhole(input: Buffer): () => void {
  return () => {
    let n = 0;
    for (let i = 0; i < input.length; i += DLP_BODY) {
      const r = scanDecoded(input.subarray(i, i + DLP_BODY), masker.scanner, { mode: 'mask', maskRaw: true });
      if (r.unscannable) throw new Error(`unscannable: ${r.unscannable}`);
      n += r.output.length;
    }
    if (n === 0) throw new Error('no output');
  };
}

/** Outbound DLP on a body larger than the window: decoded in segments, then raw-masked as it streams. */
async function dlpStream(input: Buffer): Promise<void> {
  const chunks: Buffer[] = [];
  for (let i = 0; i < input.length; i += CHUNK) chunks.push(input.subarray(i, i + CHUNK));
  let n = 0;
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      n += c.length;
      cb();
    },
  });
  await pipeline([Readable.from(chunks), new DecodedViewsTransform({ masker, window: DLP_BODY }), maskingTransform({ masker, direction: 'request' }), sink]);
  if (n === 0) throw new Error('no output');
}

/** The text as an LLM prompt: JSON documents whose message contents are the text, JSON-escaped. */
function asPrompts(input: Buffer): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; i < input.length; i += 256 * 1024) {
    const text = input.subarray(i, i + 256 * 1024).toString('utf8');
    out.push(Buffer.from(JSON.stringify({ model: 'gpt-5', messages: [{ role: 'system', content: 'You are a coding agent.' }, { role: 'user', content: text }] })));
  }
  return Buffer.concat(out);
}

const gzipped = new Map<Buffer, Buffer>();
async function viaPipeline(input: Buffer, gzip: 'none' | 'reencode' | 'decoded'): Promise<void> {
  let body = input;
  if (gzip !== 'none') {
    body = gzipped.get(input) ?? gzipSync(input);
    gzipped.set(input, body);
  }
  const chunks: Buffer[] = [];
  for (let i = 0; i < body.length; i += CHUNK) chunks.push(body.subarray(i, i + CHUNK));
  const stages: NodeJS.ReadWriteStream[] =
    gzip === 'none'
      ? [maskingTransform({ masker, direction: 'response' })]
      : maskingStages(planBodyMasking({ 'content-encoding': 'gzip', 'content-type': 'text/plain' }, { reencode: gzip === 'reencode' }), { masker, direction: 'response' });
  let n = 0;
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      n += c.length;
      cb();
    },
  });
  await pipeline([Readable.from(chunks), ...stages, sink]);
  if (n === 0) throw new Error('no output');
}

function gitleaksAvailable(): boolean {
  return existsSync(values.gitleaks) && spawnSync(values.gitleaks, ['version'], { encoding: 'utf8' }).status === 0;
}

function gitleaksStdin(input: Buffer): Timing {
  const times: Timing[] = [];
  const timeFile = join(tmpdir(), `sluice-gitleaks-time-${process.pid}`);
  // gitleaks replaces its report file by rename: never point it at /dev/null.
  const reportFile = join(tmpdir(), `sluice-gitleaks-report-${process.pid}.json`);
  for (let i = 0; i < GITLEAKS_RUNS; i++) {
    const t0 = process.hrtime.bigint();
    const res = spawnSync(
      '/usr/bin/time',
      ['-f', '%U %S', '-o', timeFile, values.gitleaks, 'stdin', '--no-banner', '--log-level', 'error', '--exit-code', '0', '--report-path', reportFile, '--report-format', 'json'],
      { input, env: { ...process.env, GOMAXPROCS: '1' }, maxBuffer: 64 * 1024 * 1024 },
    );
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    if (res.status !== 0) throw new Error(`gitleaks stdin failed: ${res.stderr.toString()}`);
    const [user = 0, sys = 0] = readFileSync(timeFile, 'utf8').trim().split(/\s+/).slice(-2).map(Number);
    times.push({ cpu: user + sys, wall });
  }
  rmSync(timeFile, { force: true });
  return medianTiming(times);
}

/** The same bytes as 64 KiB files in a directory: `gitleaks dir`, its usual way of working. */
function gitleaksDir(input: Buffer): Timing {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-gitleaks-dir-'));
  for (let i = 0, f = 0; i < input.length; i += CHUNK, f++) writeFileSync(join(dir, `part-${String(f).padStart(5, '0')}.txt`), input.subarray(i, i + CHUNK));
  const timeFile = join(dir, '.time');
  const reportFile = join(tmpdir(), `sluice-gitleaks-report-dir-${process.pid}.json`);
  const times: Timing[] = [];
  for (let i = 0; i < GITLEAKS_RUNS; i++) {
    const t0 = process.hrtime.bigint();
    const res = spawnSync(
      '/usr/bin/time',
      ['-f', '%U %S', '-o', timeFile, values.gitleaks, 'dir', dir, '--no-banner', '--log-level', 'error', '--exit-code', '0', '--report-path', reportFile, '--report-format', 'json'],
      { env: { ...process.env, GOMAXPROCS: '1' }, maxBuffer: 64 * 1024 * 1024 },
    );
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    if (res.status !== 0) throw new Error(`gitleaks dir failed: ${res.stderr.toString()}`);
    const [user = 0, sys = 0] = readFileSync(timeFile, 'utf8').trim().split(/\s+/).slice(-2).map(Number);
    times.push({ cpu: user + sys, wall });
  }
  rmSync(dir, { recursive: true, force: true });
  return medianTiming(times);
}

// ------------------------------------------------------------------------------ quality
interface GitleaksFinding {
  File: string;
  Secret: string;
  Match: string;
  RuleID: string;
}

function gitleaksDetector(): { detector: Detector; seconds: number } {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-gitleaks-'));
  const texts = new Map<string, string>();
  for (const p of corpus.positives) texts.set(p.id, p.text);
  for (const n of corpus.negatives) texts.set(n.id, n.text);
  for (const [id, text] of texts) writeFileSync(join(dir, `${id}.txt`), text);
  const report = join(dir, 'report.json');
  const t0 = process.hrtime.bigint();
  const res = spawnSync(values.gitleaks, ['dir', dir, '--no-banner', '--log-level', 'error', '--exit-code', '0', '--report-format', 'json', '--report-path', report], {
    env: { ...process.env, GOMAXPROCS: '1' },
    encoding: 'utf8',
  });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (res.status !== 0) throw new Error(`gitleaks dir failed: ${res.stderr}`);
  const findings = JSON.parse(readFileSync(report, 'utf8')) as GitleaksFinding[];
  rmSync(dir, { recursive: true, force: true });
  const byText = new Map<string, GitleaksFinding[]>();
  for (const f of findings) {
    const id = (f.File.split('/').pop() ?? '').replace(/\.txt$/, '');
    const text = texts.get(id);
    if (text === undefined) continue;
    byText.set(text, [...(byText.get(text) ?? []), f]);
  }
  // Redact what gitleaks reported (its Secret, else its Match), then score like sluice's output.
  const detector: Detector = (text) => {
    const fs = byText.get(text) ?? [];
    let output = text;
    for (const f of fs) {
      const value = f.Secret || f.Match;
      if (value) output = output.split(value).join('[REDACTED]');
    }
    return { output, rules: fs.map((f) => f.RuleID) };
  };
  return { detector, seconds };
}

// ------------------------------------------------------------------------------ run
const mb = TARGET / 1e6;
console.log(`\nmasking benchmark — ${mb.toFixed(1)} MB per input (${secretsInMixed} secrets in the mixed one), ${RUNS} runs (median), node ${process.version}; ${pinned}\n`);

interface Row {
  peer: string;
  path: string;
  clean: Timing;
  mixed: Timing;
}
const rows: Row[] = [];
rows.push({ peer: 'sluice', path: 'StreamMasker, 64 KiB chunks', clean: timeSync(streamCore(clean)), mixed: timeSync(streamCore(mixed)) });
rows.push({ peer: 'sluice', path: 'node:stream Transform pipeline', clean: await timeAsync(() => viaPipeline(clean, 'none')), mixed: await timeAsync(() => viaPipeline(mixed, 'none')) });
rows.push({ peer: 'sluice', path: 'gzip: decode, mask, sent decoded', clean: await timeAsync(() => viaPipeline(clean, 'decoded')), mixed: await timeAsync(() => viaPipeline(mixed, 'decoded')) });
rows.push({ peer: 'sluice', path: 'gzip: decode, mask, re-encode', clean: await timeAsync(() => viaPipeline(clean, 'reencode')), mixed: await timeAsync(() => viaPipeline(mixed, 'reencode')) });
rows.push({ peer: 'sluice DLP', path: 'decoded views, 1 MiB bodies', clean: timeSync(dlpWhole(clean)), mixed: timeSync(dlpWhole(mixed)) });
rows.push({ peer: 'sluice DLP', path: 'decoded views, 1 MiB segments', clean: await timeAsync(() => dlpStream(clean)), mixed: await timeAsync(() => dlpStream(mixed)) });
{
  const cleanPrompts = asPrompts(clean);
  const mixedPrompts = asPrompts(mixed);
  rows.push({ peer: 'sluice DLP', path: 'raw only, LLM prompts (before)', clean: timeSync(streamCore(cleanPrompts)), mixed: timeSync(streamCore(mixedPrompts)) });
  rows.push({ peer: 'sluice DLP', path: 'decoded views, LLM prompts', clean: timeSync(dlpWhole(cleanPrompts)), mixed: timeSync(dlpWhole(mixedPrompts)) });
}
const haveGitleaks = gitleaksAvailable();
if (haveGitleaks) {
  rows.push({ peer: 'gitleaks 8', path: 'gitleaks dir, 64 KiB files', clean: gitleaksDir(clean), mixed: gitleaksDir(mixed) });
  rows.push({ peer: 'gitleaks 8', path: 'gitleaks stdin, one stream', clean: gitleaksStdin(clean), mixed: gitleaksStdin(mixed) });
}

const rate = (t: Timing, k: keyof Timing): string => (mb / t[k]).toFixed(1);
console.log(`${'peer'.padEnd(12)} ${'path'.padEnd(34)} ${'clean MB/cpu-s'.padStart(15)} ${'mixed MB/cpu-s'.padStart(15)} ${'clean MB/s wall'.padStart(16)} ${'mixed MB/s wall'.padStart(16)}`);
for (const r of rows) {
  console.log(`${r.peer.padEnd(12)} ${r.path.padEnd(34)} ${rate(r.clean, 'cpu').padStart(15)} ${rate(r.mixed, 'cpu').padStart(15)} ${rate(r.clean, 'wall').padStart(16)} ${rate(r.mixed, 'wall').padStart(16)}`);
}
const g = rows.find((r) => r.peer.startsWith('gitleaks'));
const s0 = rows[0];
if (g && s0) {
  console.log(`ratio sluice streaming core / gitleaks dir (per CPU-second): clean ×${(g.clean.cpu / s0.clean.cpu).toFixed(1)}, mixed ×${(g.mixed.cpu / s0.mixed.cpu).toFixed(1)}`);
}
if (!haveGitleaks) console.log(`gitleaks not found at ${values.gitleaks}: peer skipped`);
const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
console.log(`load average during the run: ${load}`);

const sluiceScore = score((text) => {
  const r = masker.maskText(text);
  return { output: r.output, rules: r.findings.map((f) => f.rule) };
}, corpus);
console.log('\n' + formatScore(sluiceScore, 'quality on sidecar/test/masking-corpus — sluice'));
const encodedCorpus = loadEncodedCorpus();
const encodedScore = scoreEncoded(
  (body) => {
    const r = scanDecoded(body, masker.scanner, { mode: 'mask', maskRaw: true });
    return { output: r.output, rules: r.findings.map((f) => f.rule), blocked: r.unmaskable !== undefined || r.unscannable !== undefined };
  },
  encodedCorpus.positives,
  encodedCorpus.negatives,
);
console.log('\n' + formatEncodedScore(encodedScore, 'quality on the encoded corpus (encoded-*.jsonl) — sluice outbound DLP'));
let gitleaksScore: Score | undefined;
if (haveGitleaks) {
  const { detector } = gitleaksDetector();
  gitleaksScore = score(detector, corpus);
  console.log('\n' + formatScore(gitleaksScore, 'quality on sidecar/test/masking-corpus — gitleaks (default config; recall by our labels)'));
}
const pct = (a: number, b: number): string => `${((100 * a) / b).toFixed(1)}%`;
console.log(`\n${'peer'.padEnd(12)} ${'recall'.padStart(8)} ${'FP rate'.padStart(8)}`);
console.log(`${'sluice'.padEnd(12)} ${pct(sluiceScore.detected, sluiceScore.positives).padStart(8)} ${pct(sluiceScore.falsePositives, sluiceScore.negatives).padStart(8)}`);
console.log(`${'sluice DLP'.padEnd(12)} ${pct(encodedScore.detected, encodedScore.positives).padStart(8)} ${pct(encodedScore.falsePositives, encodedScore.negatives).padStart(8)}  (encoded corpus)`);
if (gitleaksScore) console.log(`${'gitleaks'.padEnd(12)} ${pct(gitleaksScore.detected, gitleaksScore.positives).padStart(8)} ${pct(gitleaksScore.falsePositives, gitleaksScore.negatives).padStart(8)}`);

console.log(
  JSON.stringify({
    bench: 'masking',
    mb,
    runs: RUNS,
    pinned,
    load,
    speed: rows.map((r) => ({ peer: r.peer, path: r.path, clean_mb_per_cpu_s: mb / r.clean.cpu, mixed_mb_per_cpu_s: mb / r.mixed.cpu, clean_mb_per_s: mb / r.clean.wall, mixed_mb_per_s: mb / r.mixed.wall })),
    quality: {
      sluice: { recall: sluiceScore.detected / sluiceScore.positives, fp: sluiceScore.falsePositives / sluiceScore.negatives },
      sluice_dlp_encoded: { recall: encodedScore.detected / encodedScore.positives, fp: encodedScore.falsePositives / encodedScore.negatives },
      ...(gitleaksScore ? { gitleaks: { recall: gitleaksScore.detected / gitleaksScore.positives, fp: gitleaksScore.falsePositives / gitleaksScore.negatives } } : {}),
    },
  }),
);
