// Stages that keep secrets where they belong. responseMaskingStage redacts secrets in what the
// agent receives (streaming, through gzip/deflate/br/zstd); outboundDlpStage scans what the agent
// sends — masking it or blocking the request per the decision's `dlp`, and scanning every blob of
// a git push, which is forwarded only on a clean verdict. Nothing unscannable goes either way.
import { Readable, pipeline } from 'node:stream';
import type { Transform } from 'node:stream';
import {
  DEFAULT_PASS_TYPES,
  PackCollector,
  applyHeaderChanges,
  createDecoder,
  maskingStages,
  planBodyMasking,
  planRequestForMaskedResponse,
} from '../../masking/index.ts';
import type { MaskerCache, MaskingMetrics, PackLimits, Redaction } from '../../masking/index.ts';
import { MAX_RECORDED_REDACTIONS } from '../audit-records.ts';
import type { RequestContext, Stage } from '../request-context.ts';
import type { Answerer } from './answer.ts';

export interface MaskingDeps {
  maskers: MaskerCache;
  metrics: MaskingMetrics;
  answer: Answerer;
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


export function responseMaskingStage(deps: MaskingDeps): Stage {
  return async (ctx, next) => {
    const rules = ctx.evaluation?.decision.mask;
    if (!rules?.length || !ctx.upstream) {
      await next();
      return;
    }
    const masker = deps.maskers.get(rules);
    // A range of a representation cannot be masked consistently; ask for the whole thing, in an
    // encoding we can decode.
    ctx.upstream.headers = applyHeaderChanges(ctx.upstream.headers, planRequestForMaskedResponse(ctx.upstream.headers));
    ctx.responseHooks.push(({ status, headers }) => {
      const plan = planBodyMasking(headers, { status, passTypes: deps.passTypes });
      if (plan.action === 'refuse') return { headers, refuse: { code: plan.reason, reason: `response cannot be scanned for secrets (${plan.reason})` } };
      if (plan.action !== 'mask') return { headers };
      return {
        headers: applyHeaderChanges(headers, plan.headerChanges),
        transforms: maskingStages(plan, { masker, direction: 'response', onRedaction: (r) => record(ctx, deps.metrics, r) }),
      };
    });
    await next();
  };
}

function readAll(body: Readable, limit: number): Promise<{ body: Buffer; overflow: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    body.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        body.destroy();
        resolve({ body: Buffer.alloc(0), overflow: true });
        return;
      }
      chunks.push(c);
    });
    body.once('end', () => resolve({ body: Buffer.concat(chunks), overflow: false }));
    body.once('error', reject);
  });
}

export function outboundDlpStage(deps: MaskingDeps): Stage {
  return async (ctx, next) => {
    const up = ctx.upstream;
    const decision = ctx.evaluation?.decision;
    const isPush = ctx.facts.git?.operation === 'push' && ctx.facts.git.phase === 'rpc';
    if (!up?.body || !decision || (!decision.dlp && !isPush)) {
      await next();
      return;
    }
    const masker = deps.maskers.get(decision.mask?.length ? decision.mask : '*');
    const plan = planBodyMasking(up.headers, { passTypes: [] });
    if (plan.action === 'refuse') {
      deps.answer(ctx, { status: 403, code: 'dlp.unscannable_body', reason: `request body cannot be scanned for secrets (${plan.reason})`, kind: 'deny' });
      return;
    }
    if (plan.action === 'scan-pack') {
      // A push is scanned whole (every blob, deltas resolved) before one byte goes upstream.
      const collector = new PackCollector(deps.packLimits);
      const source = chain(up.body, plan.decode.map(createDecoder));
      for await (const chunk of source as AsyncIterable<Buffer>) {
        if (!collector.push(chunk)) break;
      }
      const verdict = collector.verdict(masker.scanner);
      deps.metrics.recordPackVerdict(verdict);
      if (verdict.verdict === 'secrets') {
        const f = verdict.findings[0]!;
        for (const finding of verdict.findings.slice(0, MAX_RECORDED_REDACTIONS - ctx.redactions.length)) ctx.redactions.push({ rule: finding.rule, direction: 'request', offset: finding.offset });
        deps.answer(ctx, { status: 403, code: 'dlp.secret_in_push', reason: `push blocked: ${f.path ?? f.object} contains a secret (${f.rule})`, kind: 'deny' });
        return;
      }
      if (verdict.verdict === 'unscannable') {
        deps.answer(ctx, { status: 403, code: 'dlp.unscannable_push', reason: `push blocked: the pack cannot be scanned (${verdict.reason})`, kind: 'deny' });
        return;
      }
      const body = collector.body();
      up.body = Readable.from([body]);
      up.headers = { ...up.headers, 'content-length': String(body.length) };
      delete up.headers['content-encoding'];
      await next();
      return;
    }
    if (plan.action !== 'mask') {
      await next();
      return;
    }
    if (decision.dlp === 'block') {
      const { body, overflow } = await readAll(chain(up.body, plan.decode.map(createDecoder)), deps.maxBlockScanBytes);
      if (overflow) {
        deps.answer(ctx, { status: 403, code: 'dlp.body_too_large', reason: `request body exceeds ${deps.maxBlockScanBytes} bytes and cannot be scanned`, kind: 'deny' });
        return;
      }
      const { findings } = masker.maskBuffer(body);
      if (findings.length) {
        for (const f of findings) record(ctx, deps.metrics, { rule: f.rule, direction: 'request', offset: f.start, length: f.end - f.start });
        deps.answer(ctx, { status: 403, code: 'dlp.secret_in_request', reason: `request blocked: it contains a secret (${findings[0]!.rule})`, kind: 'deny' });
        return;
      }
      up.body = Readable.from([body]);
      up.headers = { ...up.headers, 'content-length': String(body.length) };
      delete up.headers['content-encoding'];
      await next();
      return;
    }
    up.headers = applyHeaderChanges(up.headers, plan.headerChanges);
    up.body = chain(up.body, maskingStages(plan, { masker, direction: 'request', onRedaction: (r) => record(ctx, deps.metrics, r) }));
    await next();
  };
}

/** source → transforms…, errors anywhere destroying the whole chain; returns the readable end. */
function chain(source: Readable, transforms: Transform[]): Readable {
  if (!transforms.length) return source;
  return pipeline([source, ...transforms], () => undefined) as unknown as Readable;
}
