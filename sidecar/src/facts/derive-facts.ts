// The one entry the proxy calls to fill `PolicyInput.facts`: classifies a request with every
// deriver of the registry (derivers.ts: git smart-HTTP, AWS, Kubernetes API, LLM API, GraphQL),
// says how much of the body (if any) those facts need so the proxy buffers only a bounded prefix,
// and derives the facts. Pure: no I/O, no clock. It must never throw on hostile input
// (fuzz-tested) and never return facts that fail the api/ schema; a fact that cannot be derived is
// left out, never guessed (policy treats absence as unknown). A deriver bug surfaces as FactsError
// so the proxy fails closed instead of deciding on facts with a hole in them.
import { z } from 'zod';
import type { Code, Facts } from '../../../api/src/index.ts';
import type { FactsDeriver } from './deriver.ts';
import { DERIVERS } from './derivers.ts';
import type { FactsRequest } from './request.ts';

export type { FactsRequest } from './request.ts';

const byteCap = z.number().int().min(1024).max(16 * 1024 * 1024);

export const FactsConfig = z
  .object({
    /** Host → provider for LLM APIs (mirrors `llm.providers[].hosts` of the organisation policy data); other hosts go by path shape. */
    llmHosts: z.record(z.string(), z.enum(['openai', 'anthropic'])).default({ 'api.openai.com': 'openai', 'api.anthropic.com': 'anthropic' }),
    /** Hosts whose requests are read as Kubernetes API calls (mirrors `kubernetes.api_servers` of the organisation). */
    kubernetesHosts: z.array(z.string()).default(['kubernetes.default.svc', 'kubernetes.default.svc.cluster.local', 'kubernetes.default', 'kubernetes']),
    /** Host suffixes of AWS endpoints (mirrors `aws.host_suffixes` of the organisation); signed requests count on any host. */
    awsHostSuffixes: z.array(z.string()).default(['amazonaws.com', 'amazonaws.com.cn']),
    /** Hard cap on the receive-pack command section read from a push body. */
    maxGitCommandBytes: byteCap.default(64 * 1024),
    /**
     * Hard cap on an AWS parameter body (query-protocol form, JSON, Smithy CBOR, S3 bucket
     * configuration XML), read whole for its action and for the accounts its resources name; a
     * larger body leaves `aws.resource_accounts` unknown, which the default library holds.
     */
    maxAwsFormBytes: byteCap.default(16 * 1024),
    /** Hard cap on the LLM JSON body prefix scanned for `model`/`stream`. */
    maxLlmBodyBytes: byteCap.default(256 * 1024),
  })
  .strict();

export type FactsConfig = Readonly<z.infer<typeof FactsConfig>>;

/** Validates and freezes facts config; a bad value throws a ZodError naming the field. */
export function parseFactsConfig(input: unknown): FactsConfig {
  const parsed = FactsConfig.parse(input ?? {});
  return Object.freeze({
    ...parsed,
    llmHosts: Object.freeze({ ...parsed.llmHosts }),
    kubernetesHosts: Object.freeze([...parsed.kubernetesHosts]) as string[],
    awsHostSuffixes: Object.freeze([...parsed.awsHostSuffixes]) as string[],
  });
}

export const DEFAULT_FACTS_CONFIG: FactsConfig = parseFactsConfig({});

/** A fact deriver failed on an input; the proxy must deny (code `facts.derive_failed`). */
export class FactsError extends Error {
  readonly code = 'facts.derive_failed' satisfies Code;
  constructor(cause: unknown) {
    super(`deriving facts failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'FactsError';
  }
}

function guarded<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new FactsError(err);
  }
}

/**
 * A request classified once for facts (the proxy asks all three questions of one request). Every
 * method throws FactsError on a deriver fault, as classifyForFacts itself does.
 */
export interface ClassifiedRequest {
  /**
   * How many body bytes the facts for this request can use at most (0 when none): the proxy
   * buffers up to this many bytes, or fewer when moreBodyNeeded says 0 or the body ends first.
   */
  bodyPrefixNeeded(): number;
  /**
   * Given the prefix buffered so far: 0 when the facts can be derived now, else the minimum number
   * of further bytes worth waiting for. Never asks for more than bodyPrefixNeeded allows.
   */
  moreBodyNeeded(prefix: Buffer): number;
  /** The facts; `body` is the buffered prefix (or the whole body), complete when its length equals the declared Content-Length. */
  derive(body?: Buffer): Facts;
}

export function classifyForFacts(req: FactsRequest, config: FactsConfig = DEFAULT_FACTS_CONFIG): ClassifiedRequest {
  const found = guarded(() => {
    const out: { d: FactsDeriver; shape: unknown }[] = [];
    for (const d of DERIVERS) {
      const shape = d.classify(req, config);
      if (shape !== undefined) out.push({ d, shape });
    }
    return out;
  });
  return {
    bodyPrefixNeeded: () => guarded(() => found.reduce((n, f) => Math.max(n, f.d.bodyPrefixNeeded(f.shape, config)), 0)),
    moreBodyNeeded: (prefix) => guarded(() => found.reduce((n, f) => Math.max(n, f.d.moreBodyNeeded(req, f.shape, prefix, config)), 0)),
    derive: (body) =>
      guarded(() => {
        const facts: Record<string, unknown> = {};
        for (const f of found) {
          const value = f.d.derive(req, f.shape, body, config);
          if (value !== undefined) facts[f.d.key] = value;
        }
        return facts;
      }),
  };
}

/** classifyForFacts(req).bodyPrefixNeeded(), for one question. */
export function bodyPrefixNeeded(req: FactsRequest, config: FactsConfig = DEFAULT_FACTS_CONFIG): number {
  return classifyForFacts(req, config).bodyPrefixNeeded();
}

/** classifyForFacts(req).moreBodyNeeded(prefix), for one question. */
export function moreBodyNeeded(req: FactsRequest, prefix: Buffer, config: FactsConfig = DEFAULT_FACTS_CONFIG): number {
  return classifyForFacts(req, config).moreBodyNeeded(prefix);
}

/** classifyForFacts(req).derive(body), for one question. */
export function deriveFacts(req: FactsRequest, body?: Buffer, config: FactsConfig = DEFAULT_FACTS_CONFIG): Facts {
  return classifyForFacts(req, config).derive(body);
}
