// LLM API facts: which provider and endpoint a request calls, the model and stream flag from a
// bounded prefix of its JSON body, and the prompt size. Endpoints are recognised by path shape
// (OpenAI-style /v1/chat/completions, /v1/responses, /v1/completions, /v1/embeddings, Azure's
// /openai/deployments/{id}/…, and Anthropic's /v1/messages) on any host, and the provider comes
// from the configured host map first. On a configured LLM host every other call is named too
// (`operation`: models, files, uploads, fine_tuning, batches, assistants, threads, vector_stores,
// other) so that policy can keep agents to inference. It must never read past the prefix it is
// given.
import type { LlmFacts } from '../../../api/src/index.ts';
import { decodedBodyPrefix } from './body-prefix.ts';
import { scanTopLevelJson } from './json-top-level-scan.ts';
import { declaredBodyLength, decodePercent, hostName } from './request.ts';
import type { FactsRequest } from './request.ts';
import { defineDeriver } from './deriver.ts';

export type LlmProvider = LlmFacts['provider'];

export type LlmOperation = NonNullable<LlmFacts['operation']>;

export interface LlmRequestShape {
  provider: LlmProvider;
  endpoint: string;
  operation: LlmOperation;
  /** The JSON body is worth scanning for model/stream (inference only). */
  scanBody: boolean;
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

/** API resources that store data with the provider or read it back, by the first path segment after the version. */
const RESOURCES: Readonly<Record<string, LlmOperation>> = {
  models: 'models',
  files: 'files',
  uploads: 'uploads',
  fine_tuning: 'fine_tuning',
  'fine-tunes': 'fine_tuning',
  batches: 'batches',
  assistants: 'assistants',
  threads: 'threads',
  vector_stores: 'vector_stores',
};
const VERSION = /^v\d+(?:alpha|beta)?\d*$/;

/** Any call on a configured LLM host that is not an inference endpoint, named by its path. */
function otherOperation(req: FactsRequest, provider: LlmProvider): LlmRequestShape {
  const segments = req.path.split('/').filter((s) => s !== '');
  const at = segments.findIndex((s) => VERSION.test(s));
  const [first, second] = at < 0 ? [] : segments.slice(at + 1, at + 3);
  const shape = (endpoint: string, operation: LlmOperation, scanBody = false): LlmRequestShape => ({ provider, endpoint, operation, scanBody });
  if (first === 'messages' && second === 'batches') return shape('messages.batches', 'batches');
  // Counting a prompt's tokens sends the prompt and stores nothing: it is inference.
  if (first === 'messages' && second === 'count_tokens' && req.method.toUpperCase() === 'POST') return shape('messages.count_tokens', 'inference', true);
  const operation = first === undefined ? undefined : RESOURCES[first];
  return operation === undefined ? shape('other', 'other') : shape(operation, operation);
}

export function classifyLlmRequest(req: FactsRequest, hosts: Readonly<Record<string, LlmProvider>>): LlmRequestShape | undefined {
  const configured = hosts[hostName(req.host)];
  const m = req.method.toUpperCase() === 'POST' ? ENDPOINT_PATH.exec(req.path) : null;
  if (!m) return configured === undefined ? undefined : otherOperation(req, configured);
  const endpoint = ENDPOINTS[m[2]!]!;
  const provider = configured ?? (endpoint === 'messages' ? 'anthropic' : 'openai');
  const shape: LlmRequestShape = { provider, endpoint, operation: 'inference', scanBody: true };
  if (m[1] !== undefined) shape.deployment = decodePercent(m[1]) ?? m[1];
  return shape;
}

export function llmMoreBodyNeeded(req: FactsRequest, shape: LlmRequestShape | undefined, prefix: Buffer, maxBytes: number): number {
  if (!shape?.scanBody || prefix.length >= maxBytes) return 0;
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
    operation: shape.operation,
    prompt_bytes: declaredBodyLength(req) ?? body?.length ?? 0,
  };
  if (shape.deployment !== undefined) facts.model = shape.deployment;
  const decoded = body === undefined || !shape.scanBody ? undefined : decodedBodyPrefix(req, body, maxBytes);
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

/** facts.llm: provider and operation from host and path; model and stream from the JSON body's prefix. */
export const llmDeriver = defineDeriver<'llm', LlmRequestShape>({
  key: 'llm',
  classify: (req, config) => classifyLlmRequest(req, config.llmHosts),
  bodyPrefixNeeded: (shape, config) => (shape.scanBody ? config.maxLlmBodyBytes : 0),
  moreBodyNeeded: (req, shape, prefix, config) => llmMoreBodyNeeded(req, shape, prefix, config.maxLlmBodyBytes),
  derive: (req, shape, body, config) => llmFacts(req, shape, body, config.maxLlmBodyBytes),
});
