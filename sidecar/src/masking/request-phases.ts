// Masking's work in the request pipeline: keeping secrets where they belong. In before-forward it
// asks the upstream for a response it can mask (maskResponseRequest) and runs outbound DLP; in
// response-headers it plans the response body's masking (under a binary label, by the body's first
// bytes before the head is written, so the head is true of the body: sniffed-response.ts). Response masking redacts secrets in what the
// agent receives (streaming, through gzip/deflate/br/zstd, bounded against decompression bombs;
// the body's kind by its bytes, text with its decoded views: masking/response-body.ts); outboundDlp scans what the agent
// sends — its path, query and headers, and its body with every decoded view (base64, hex, percent,
// escapes, UTF-16, format characters, JSON values joined) — masking it or blocking the request per
// the decision's `dlp`, and scanning every blob of a git push, which is forwarded only on a clean
// verdict. The body's scanner is chosen by its bytes, not its Content-Type. Nothing unscannable
// goes either way. A handler returns sluice's answer to end the request; it never sends one.
import { Readable, pipeline } from 'node:stream';
import type { Transform } from 'node:stream';
import { DEFAULT_PASS_TYPES, applyHeaderChanges, maskedBodyHeaderChanges, planBodyMasking, planRequestBodyMasking, planRequestForMaskedResponse, sniffRequestBody } from './body-plan.ts';
import { createDecoder, createEncoder } from './body-codecs.ts';
import { DecodedViewsTransform } from './decoded-stream.ts';
import { scanDecoded } from './decoded-views.ts';
import type { ViewFinding } from './decoded-views.ts';
import type { Masker, MaskerCache, Redaction } from './masker.ts';
import type { MaskingMetrics } from './metrics.ts';
import { PackCollector } from './packfile.ts';
import type { PackLimits } from './packfile.ts';
import { maskRequestHead } from './request-head.ts';
import { DEFAULT_RESPONSE_LIMITS, inflationGuard, sniffedMaskingStage, sniffedStagesChooser, textLikeMediaType } from './response-body.ts';
import { DIGEST_HEADERS, sniffedResponse, wholeHeaders } from './sniffed-response.ts';
import { maskingTransform } from './stream.ts';
import { MAX_RECORDED_REDACTIONS } from '../proxy/audit-records.ts';
import type { Step } from '../proxy/pipeline.ts';
import type { Forwarding, RequestContext, ResponseHead, ResponsePlan } from '../proxy/request-context.ts';
import type { SluiceAnswerSpec } from '../proxy/stages/answer.ts';

declare module '../proxy/request-context.ts' {
  interface RequestContext {
    /** The masker the response is masked with (set in before-forward when the decision masks). */
    responseMasker?: Masker;
  }
}

export interface MaskingDeps {
  maskers: MaskerCache;
  metrics: MaskingMetrics;
  /** Media types passed unscanned (binary that cannot hold text): archives, git data, media. */
  passTypes: readonly string[];
  /** Largest request body buffered for a `dlp: block` scan. */
  maxBlockScanBytes: number;
  packLimits: Partial<PackLimits>;
}

export const DEFAULT_MASKING_PASS_TYPES: readonly string[] = [
  ...DEFAULT_PASS_TYPES,
  'application/octet-stream',
  'application/gzip',
  'application/x-gzip',
  'application/x-tar',
  'application/zip',
  'application/java-archive',
];

function record(ctx: RequestContext, metrics: MaskingMetrics, r: Redaction): void {
  metrics.recordRedaction(r);
  // A body full of secret-shaped tokens must not grow the context without bound.
  if (ctx.redactions.length < MAX_RECORDED_REDACTIONS) ctx.redactions.push({ rule: r.rule, direction: r.direction, offset: r.offset });
}


/**
 * before-forward: a response the decision masks is asked for whole and in an encoding sluice can
 * decode (a range of a representation cannot be masked consistently); its masker is kept on ctx.
 */
export function maskResponseRequest(ctx: Forwarding, deps: MaskingDeps): void {
  const rules = ctx.evaluation.decision.mask;
  if (!rules?.length) return;
  ctx.responseMasker = deps.maskers.get(rules);
  ctx.upstream.headers = applyHeaderChanges(ctx.upstream.headers, planRequestForMaskedResponse(ctx.upstream.headers));
}

/** response-headers: how the response body is masked (or refused) for a request the decision masks. */
export async function planResponseMasking(ctx: Forwarding, { status, headers, body }: ResponseHead, deps: MaskingDeps): Promise<ResponsePlan | undefined> {
  const masker = ctx.responseMasker;
  if (!masker) return undefined;
  const plan = planBodyMasking(headers, { status, passTypes: deps.passTypes });
  if (plan.action === 'refuse') return { headers, refuse: { code: plan.reason, reason: `response cannot be scanned for secrets (${plan.reason})` } };
  if (plan.action !== 'mask' && plan.reason !== 'masking.binary_type') return { headers };
  // The body's kind is decided by its bytes (response-body.ts): a binary label is the
  // upstream's word, which the agent can often choose.
  const o = {
    masker,
    onRedaction: (r: Redaction) => record(ctx, deps.metrics, r),
    onFinding: (f: ViewFinding) => record(ctx, deps.metrics, { rule: f.rule, direction: 'response', offset: f.offset, length: f.length }),
    ...(plan.flushAt ? { flushAt: plan.flushAt } : {}),
  };
  const cut = (err: Error & { code?: string }) => {
    const code = err.code && /^[a-z]+\.[a-z_]+$/.test(err.code) ? err.code : 'masking.stream_error';
    deps.metrics.recordResponseCut(code);
    ctx.answer ??= { code, reason: `the response was cut: ${err.message}`, kind: 'error' };
  };
  if (plan.action !== 'mask') {
    if (!body) {
      // No body to read ahead (a caller without one): streamed, framed as a body that may change.
      const stage = sniffedMaskingStage(o, 'pass', false);
      stage.once('error', cut);
      return { headers: applyHeaderChanges(headers, maskedBodyHeaderChanges()), transforms: [stage] };
    }
    // The head waits for the body's first bytes: a binary body passes with every header; a text
    // one is masked, whole (exact length, weak ETag if changed) when short, else streamed.
    let sniffed;
    try {
      sniffed = await sniffedResponse(headers, body, sniffedStagesChooser(o, 'pass', false));
    } catch (err) {
      const e = err as Error & { code?: string };
      // A stage's own refusal (dlp.*, masking.*): nothing has reached the agent, so it is refused whole.
      if (!e.code || !/^[a-z]+\.[a-z_]+$/.test(e.code)) throw err;
      deps.metrics.recordResponseCut(e.code);
      return { headers, refuse: { code: e.code, reason: `response cannot be masked: ${e.message}` } };
    }
    // A streamed body's stage errors fail the body the agent reads (the stream is cut).
    if (sniffed.framing === 'streamed') sniffed.body.once('error', (err: Error & { code?: string }) => (err.code && /^[a-z]+\.[a-z_]+$/.test(err.code) ? cut(err) : undefined));
    return { headers: sniffed.headers, body: sniffed.body };
  }
  const mediaType = (String(headers['content-type'] ?? '').split(';')[0] ?? '').trim().toLowerCase();
  const stage = sniffedMaskingStage(o, 'raw', textLikeMediaType(mediaType));
  stage.once('error', cut);
  const guard = plan.decode.length ? inflationGuard(DEFAULT_RESPONSE_LIMITS) : undefined;
  guard?.decoded.once('error', cut);
  const decoders = plan.decode.map(createDecoder);
  // A body that is not what its Content-Encoding says fails its decoder: cut, and counted.
  for (const d of decoders) d.once('error', (err: Error & { code?: string }) => cut(Object.assign(new Error(err.message), { code: 'masking.bad_encoding' })));
  return {
    headers: applyHeaderChanges(headers, plan.headerChanges),
    transforms: [...(guard ? [guard.encoded] : []), ...decoders, ...(guard ? [guard.decoded] : []), stage, ...plan.encode.map(createEncoder)],
  };
}

/**
 * Reads `body` until it ends or passes `limit` bytes. `rest` is the whole body as a stream again
 * (what was read, then what follows), for bodies that did not end within the limit.
 */
async function readUpTo(body: Readable, limit: number): Promise<{ whole: Buffer | undefined; rest: Readable; head: Buffer }> {
  const it = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let size = 0;
  for (;;) {
    const r = await it.next();
    if (r.done) {
      const whole = Buffer.concat(chunks);
      return { whole, rest: Readable.from([]), head: whole };
    }
    const c = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    chunks.push(c);
    size += c.length;
    if (size > limit) break;
  }
  async function* again(): AsyncGenerator<Buffer> {
    yield* chunks;
    for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
  }
  const head = Buffer.concat(chunks.slice(0, 64)).subarray(0, 4096);
  return { whole: undefined, rest: Readable.from(again()), head };
}

const VIA = (via: readonly string[]): string => (via.length ? `, ${via.join(' in ')}` : '');

/**
 * Outbound DLP on the request head: path, query and headers (not the request's own credential
 * headers) scanned with their decoded views; masked in place or blocked per `decision.dlp`.
 * Returns the answer when the request may not go on.
 */
function headDlp(ctx: Forwarding, deps: MaskingDeps, masker: Masker, dlp: 'mask' | 'block'): SluiceAnswerSpec | undefined {
  const up = ctx.upstream;
  const head = maskRequestHead(up.path, up.headers, masker);
  if (head.unscannable) {
    return { status: 403, code: head.unscannable.reason, reason: `request ${head.unscannable.where} cannot be decoded within sluice's bounds (${head.unscannable.reason})`, kind: 'deny' };
  }
  if (head.findings.length === 0) return undefined;
  for (const f of head.findings) record(ctx, deps.metrics, { rule: f.rule, direction: 'request', offset: f.offset, length: 0 });
  const f = head.findings[0]!;
  const where = f.where.startsWith('header:') ? 'header' : 'url';
  if (dlp === 'block') {
    return { status: 403, code: `dlp.secret_in_${where}`, reason: `request blocked: its ${f.where} holds a secret (${f.rule}${VIA(f.via)})`, kind: 'deny' };
  }
  if (head.unmaskable) {
    const u = head.unmaskable;
    return { status: 403, code: 'dlp.unmaskable_secret', reason: `request blocked: its ${u.where} holds a secret (${u.rule}${VIA(u.via)}) that cannot be masked where it is`, kind: 'deny' };
  }
  up.path = head.path;
  up.headers = head.headers;
  return undefined;
}

/** before-forward: outbound DLP on what the agent sends (head and body), per the decision's `dlp`; every push. */
export async function outboundDlp(ctx: Forwarding, deps: MaskingDeps): Promise<Step> {
  const up = ctx.upstream;
  const decision = ctx.evaluation.decision;
  const isPush = ctx.facts.git?.operation === 'push' && ctx.facts.git.phase === 'rpc';
  if (!decision.dlp && !isPush) return undefined;
  const masker = deps.maskers.get(decision.mask?.length ? decision.mask : '*');
  if (decision.dlp) {
    const blocked = headDlp(ctx, deps, masker, decision.dlp);
    if (blocked) return blocked;
  }
  if (!up.body) return undefined;
  // The scanner is picked by what the body is: the Content-Type is the agent's word.
  const plan = planRequestBodyMasking(up.headers, { isPush });
  if (plan.action === 'refuse') {
    return { status: 403, code: 'dlp.unscannable_body', reason: `request body cannot be scanned for secrets (${plan.reason})`, kind: 'deny' };
  }
  if (plan.action === 'pass') return undefined;
  const decoded = chain(up.body, plan.decode.map(createDecoder));
  if (plan.action === 'scan-pack') return scanPush(ctx, deps, masker, decoded);
  const window = deps.maxBlockScanBytes;
  const { whole, rest, head } = await readUpTo(decoded, window);
  const sniffed = sniffRequestBody(head);
  if (sniffed === 'receive-pack') {
    // A push under another name: it goes through the pack scanner like any push.
    return scanPush(ctx, deps, masker, whole ? Readable.from([whole]) : rest);
  }
  if (sniffed === 'compressed') {
    return { status: 403, code: 'dlp.unscannable_body', reason: 'request body holds compressed or packed data that no Content-Encoding names: it cannot be scanned for secrets', kind: 'deny' };
  }
  if (whole === undefined) {
    if (decision.dlp === 'block') {
      return { status: 403, code: 'dlp.body_too_large', reason: `request body exceeds ${window} bytes and cannot be scanned`, kind: 'deny' };
    }
    // Larger than the window: decoded in segments, then raw-masked as a stream (decoded-stream.ts).
    const onFinding = (f: ViewFinding) => record(ctx, deps.metrics, { rule: f.rule, direction: 'request', offset: f.offset, length: f.length });
    up.body = chain(rest, [new DecodedViewsTransform({ masker, window, onFinding }), maskingTransform({ masker, direction: 'request', onRedaction: (r) => record(ctx, deps.metrics, r) })]);
    // Its bytes may change as it streams: no length, no digests of the original.
    for (const h of ['content-encoding', 'content-length', ...DIGEST_HEADERS]) delete up.headers[h];
    return undefined;
  }
  const scan = scanDecoded(whole, masker.scanner, { mode: decision.dlp === 'mask' ? 'mask' : 'scan', maskRaw: true });
  if (scan.unscannable) {
    return { status: 403, code: scan.unscannable, reason: `request body cannot be decoded within sluice's bounds (${scan.unscannable}): it is not sent unscanned`, kind: 'deny' };
  }
  for (const f of scan.findings) record(ctx, deps.metrics, { rule: f.rule, direction: 'request', offset: f.offset, length: f.length });
  if (scan.findings.length && (decision.dlp !== 'mask' || scan.unmaskable)) {
    const raw = scan.findings.find((f) => f.via.length === 0);
    const f = scan.unmaskable ?? raw ?? scan.findings[0]!;
    const code = scan.unmaskable ? 'dlp.unmaskable_secret' : raw ? 'dlp.secret_in_request' : 'dlp.encoded_secret_in_request';
    const why = scan.unmaskable ? ' that cannot be masked in its encoding' : '';
    return { status: 403, code, reason: `request blocked: it contains a secret (${f.rule}${VIA(f.via)})${why}`, kind: 'deny' };
  }
  up.body = Readable.from([scan.output]);
  // A changed body loses the agent's digests of it (Content-MD5, Digest): they would not match.
  // So does a decoded one (the digests were of its encoded bytes).
  up.headers = wholeHeaders(withoutCoding(up.headers), scan.output, plan.decode.length > 0 || !scan.output.equals(whole));
  up.headers['content-length'] = String(scan.output.length);
  return undefined;
}

/** The headers without Content-Encoding (the body is sent decoded). */
function withoutCoding(headers: Record<string, string | string[]>): Record<string, string | string[]> {
  const out = { ...headers };
  delete out['content-encoding'];
  return out;
}

/** A push is scanned whole (every blob, deltas resolved) before one byte goes upstream. */
async function scanPush(ctx: Forwarding, deps: MaskingDeps, masker: Masker, source: Readable): Promise<Step> {
  const up = ctx.upstream;
  const collector = new PackCollector(deps.packLimits);
  for await (const chunk of source as AsyncIterable<Buffer>) {
    if (!collector.push(chunk)) break;
  }
  const verdict = collector.verdict(masker.scanner);
  deps.metrics.recordPackVerdict(verdict);
  if (verdict.verdict === 'secrets') {
    const f = verdict.findings[0]!;
    for (const finding of verdict.findings.slice(0, MAX_RECORDED_REDACTIONS - ctx.redactions.length)) ctx.redactions.push({ rule: finding.rule, direction: 'request', offset: finding.offset });
    return { status: 403, code: 'dlp.secret_in_push', reason: `push blocked: ${f.path ?? f.object} contains a secret (${f.rule})`, kind: 'deny' };
  }
  if (verdict.verdict === 'unscannable') {
    return { status: 403, code: 'dlp.unscannable_push', reason: `push blocked: the pack cannot be scanned (${verdict.reason})`, kind: 'deny' };
  }
  const body = collector.body();
  up.body = Readable.from([body]);
  up.headers = { ...up.headers, 'content-length': String(body.length) };
  delete up.headers['content-encoding'];
  return undefined;
}

/** source → transforms…, errors anywhere destroying the whole chain; returns the readable end. */
function chain(source: Readable, transforms: Transform[]): Readable {
  if (!transforms.length) return source;
  return pipeline([source, ...transforms], () => undefined) as unknown as Readable;
}
