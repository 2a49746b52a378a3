// The one entry the proxy calls to fill `PolicyInput.facts`: classifies a request as git
// smart-HTTP, AWS, Kubernetes API and/or LLM API, says how much of the body (if any) those facts
// need so the proxy buffers only a bounded prefix, and derives the facts. Pure: no I/O, no
// clock. It must never throw on hostile input (fuzz-tested) and never return facts that fail the
// api/ schema; a fact that cannot be derived is left out, never guessed (policy treats absence as
// unknown). A deriver bug surfaces as FactsError so the proxy fails closed instead of deciding on
// facts with a hole in them.
import { z } from 'zod';
import type { Facts } from '../../../api/src/index.ts';
import { awsBodyPrefixNeeded, awsFacts, awsMoreBodyNeeded, classifyAwsRequest } from './aws-request.ts';
import type { AwsRequestShape } from './aws-request.ts';
import { classifyGitRequest, gitBodyPrefixNeeded, gitFacts, gitMoreBodyNeeded } from './git-smart-http.ts';
import type { GitRequestShape } from './git-smart-http.ts';
import { kubernetesFacts } from './kubernetes-request.ts';
import { classifyLlmRequest, llmFacts, llmMoreBodyNeeded } from './llm-request.ts';
import type { LlmRequestShape } from './llm-request.ts';
import { declaredBodyLength, hostName } from './request.ts';
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
    /** Hard cap on the query-protocol form body read for `Action=`. */
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
  readonly code = 'facts.derive_failed';
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

interface Shapes {
  git?: GitRequestShape;
  aws?: AwsRequestShape;
  llm?: LlmRequestShape;
  k8s: boolean;
}

function classify(req: FactsRequest, config: FactsConfig): Shapes {
  const host = hostName(req.host);
  const shapes: Shapes = { k8s: config.kubernetesHosts.includes(host) };
  const git = classifyGitRequest(req);
  if (git) shapes.git = git;
  const aws = classifyAwsRequest(req, config.awsHostSuffixes);
  if (aws) shapes.aws = aws;
  const llm = classifyLlmRequest(req, config.llmHosts);
  if (llm) shapes.llm = llm;
  return shapes;
}

/**
 * How many body bytes the facts for this request can use at most (0 when none): the proxy
 * buffers up to this many bytes, or fewer when moreBodyNeeded says 0 or the body ends first.
 */
export function bodyPrefixNeeded(req: FactsRequest, config: FactsConfig = DEFAULT_FACTS_CONFIG): number {
  return guarded(() => {
    const s = classify(req, config);
    return Math.max(
      gitBodyPrefixNeeded(s.git, config.maxGitCommandBytes),
      awsBodyPrefixNeeded(s.aws, config.maxAwsFormBytes),
      s.llm?.scanBody ? config.maxLlmBodyBytes : 0,
    );
  });
}

/**
 * Given the prefix buffered so far: 0 when the facts can be derived now, else the minimum number
 * of further bytes worth waiting for. Never asks for more than bodyPrefixNeeded allows.
 */
export function moreBodyNeeded(req: FactsRequest, prefix: Buffer, config: FactsConfig = DEFAULT_FACTS_CONFIG): number {
  return guarded(() => {
    const s = classify(req, config);
    return Math.max(
      gitMoreBodyNeeded(req, s.git, prefix, config.maxGitCommandBytes),
      awsMoreBodyNeeded(req, s.aws, prefix, config.maxAwsFormBytes),
      llmMoreBodyNeeded(req, s.llm, prefix, config.maxLlmBodyBytes),
    );
  });
}

/**
 * Facts for a request. `body` is the buffered prefix (or the whole body); it is treated as
 * complete when its length equals the declared Content-Length.
 */
export function deriveFacts(req: FactsRequest, body?: Buffer, config: FactsConfig = DEFAULT_FACTS_CONFIG): Facts {
  return guarded(() => {
    const facts: Facts = {};
    const s = classify(req, config);
    if (s.git) facts.git = gitFacts(req, s.git, body, config.maxGitCommandBytes);
    if (s.aws) {
      const complete = body !== undefined && declaredBodyLength(req) === body.length;
      const aws = awsFacts(req, s.aws, body, complete, config.maxAwsFormBytes);
      if (aws) facts.aws = aws;
    }
    if (s.k8s) {
      const k8s = kubernetesFacts(req);
      if (k8s) facts.k8s = k8s;
    }
    if (s.llm) facts.llm = llmFacts(req, s.llm, body, config.maxLlmBodyBytes);
    return facts;
  });
}
