// LLM API facts: which provider and endpoint a request calls, the model and stream flag from a
// bounded prefix of its JSON body, and the prompt size. Endpoints are recognised by path shape
// (OpenAI-style /v1/chat/completions, /v1/responses, /v1/completions, /v1/embeddings, Azure's
// /openai/deployments/{id}/…, and Anthropic's /v1/messages) on any host, and the provider comes
// from the configured host map first. It must never read past the prefix it is given.
import type { LlmFacts } from '../../../api/src/index.ts';
import { decodedBodyPrefix } from './body-prefix.ts';
import { scanTopLevelJson } from './json-top-level-scan.ts';
import { declaredBodyLength, decodePercent, hostName } from './request.ts';
import type { FactsRequest } from './request.ts';

export type LlmProvider = LlmFacts['provider'];

export interface LlmRequestShape {
  provider: LlmProvider;
  endpoint: string;
  /** Azure OpenAI names the deployment in the path; the body then carries no model. */
  deployment?: string;
}

const ENDPOINTS: Readonly<Record<string, string>> = {
  'chat/completions': 'chat.completions',
  responses: 'responses',
  completions: 'completions',
  embeddings: 'embeddings',
  messages: 'messages',
};

// `/v1/<endpoint>` under any prefix (`/api/v1`, `/openai/v1`, `/v1beta/openai`), or Azure's deployment form.
const ENDPOINT_PATH = /\/(?:v1|openai|openai\/deployments\/([^/]+))\/(chat\/completions|responses|completions|embeddings|messages)\/?$/;
const WANTED = new Set(['model', 'stream']);

export function classifyLlmRequest(req: FactsRequest, hosts: Readonly<Record<string, LlmProvider>>): LlmRequestShape | undefined {
  if (req.method.toUpperCase() !== 'POST') return undefined;
  const m = ENDPOINT_PATH.exec(req.path);
  if (!m) return undefined;
  const endpoint = ENDPOINTS[m[2]!]!;
  const provider = hosts[hostName(req.host)] ?? (endpoint === 'messages' ? 'anthropic' : 'openai');
  const shape: LlmRequestShape = { provider, endpoint };
  if (m[1] !== undefined) shape.deployment = decodePercent(m[1]) ?? m[1];
  return shape;
}

export function llmMoreBodyNeeded(req: FactsRequest, shape: LlmRequestShape | undefined, prefix: Buffer, maxBytes: number): number {
  if (!shape || prefix.length >= maxBytes) return 0;
  const decoded = decodedBodyPrefix(req, prefix, maxBytes);
  if (decoded === undefined) return 0;
  const scan = scanTopLevelJson(decoded, WANTED);
  return scan.complete || scan.invalid ? 0 : 1;
}

/** LLM facts; prompt_bytes is the declared Content-Length, else the length of the body seen. */
export function llmFacts(req: FactsRequest, shape: LlmRequestShape, body: Buffer | undefined, maxBytes: number): LlmFacts {
  const facts: LlmFacts = {
    provider: shape.provider,
    endpoint: shape.endpoint,
    prompt_bytes: declaredBodyLength(req) ?? body?.length ?? 0,
  };
  if (shape.deployment !== undefined) facts.model = shape.deployment;
  const decoded = body === undefined ? undefined : decodedBodyPrefix(req, body, maxBytes);
  if (decoded !== undefined) {
    const scan = scanTopLevelJson(decoded, WANTED);
    const model = scan.values.get('model');
    const stream = scan.values.get('stream');
    if (typeof model === 'string' && model !== '') facts.model = model;
    if (typeof stream === 'boolean') facts.stream = stream;
    else if (scan.complete && !scan.values.has('stream')) facts.stream = false;
  }
  return facts;
}
