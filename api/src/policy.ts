// The policy contract: what the sidecar hands to Rego (PolicyInput) and what it expects back
// (Decision). Both are runtime schemas; their JSON Schema (api/schemas) is what `opa check
// --strict` type-checks the Rego library against, so policy and code cannot drift apart.
import { z } from 'zod';
import type { AreaCode, Code } from './codes.ts';

const stringMap = z.record(z.string(), z.string());

export const GitFacts = z
  .object({
    service: z.enum(['git-upload-pack', 'git-receive-pack']).describe('smart-HTTP service'),
    operation: z.enum(['fetch', 'push']),
    phase: z.enum(['discovery', 'rpc']).describe('info/refs advertisement or the POST that transfers data'),
    repo: z.string().describe('repository path on the host, without .git suffix, e.g. org/repo'),
    refs: z
      .array(z.object({ ref: z.string(), old: z.string(), new: z.string() }).strict())
      .optional()
      .describe('ref updates of a receive-pack request (from its pkt-line command section); absent when unknown'),
    push_options: z
      .array(z.string())
      .optional()
      .describe('push options sent with a receive-pack request (git push -o), e.g. GitLab merge_request.create'),
  })
  .strict();

export const AwsFacts = z
  .object({
    service: z.string(),
    region: z.string(),
    action: z.string().describe('API action, e.g. s3:DeleteObject or sts:GetCallerIdentity'),
    bucket: z.string().optional(),
    key: z.string().optional(),
    signed: z
      .boolean()
      .optional()
      .describe('the agent signed the request (SigV4/SigV4a/SigV2, header or presigned); false: unsigned (anonymous)'),
    copy_source_bucket: z.string().optional().describe('S3 CopyObject/UploadPartCopy: the bucket named by x-amz-copy-source'),
    role_arn: z.string().optional().describe('sts:AssumeRole*: the RoleArn asked for'),
    role_account: z.string().optional().describe('sts:AssumeRole*: the 12-digit account of RoleArn'),
    with_decryption: z.boolean().optional().describe('ssm:GetParameter(s|ByPath): WithDecryption as sent (absent: unknown)'),
    resource_account: z
      .string()
      .optional()
      .describe('sqs:*, sns:*: the 12-digit account of the queue (QueueUrl or path) or topic (TopicArn/TargetArn) named; absent: none, unknown or conflicting'),
    resource_accounts: z
      .array(z.string().regex(/^\d{12}$/))
      .optional()
      .describe(
        'every 12-digit account the resources of the request name (ARNs, queue URLs, account ids in the query, a parameter body, x-amz-* headers, a Lambda function or S3 bucket in the path, an account-prefixed or access point host), sorted; [] when they name none (they resolve in the signer’s own account); absent when a parameter body was not read whole or a value could not be read (unknown)',
      ),
  })
  .strict();

export const K8sFacts = z
  .object({
    verb: z.string().describe('get, list, watch, create, update, patch, delete, deletecollection'),
    api_group: z.string().describe('"" for the core group'),
    api_version: z.string(),
    resource: z.string(),
    subresource: z.string().optional(),
    namespace: z.string().optional(),
    name: z.string().optional(),
  })
  .strict();

export const LlmFacts = z
  .object({
    provider: z.enum(['openai', 'anthropic']),
    endpoint: z.string().describe('e.g. chat.completions, responses, messages; files, batches, … for other operations'),
    operation: z
      .enum(['inference', 'models', 'files', 'uploads', 'fine_tuning', 'batches', 'assistants', 'threads', 'vector_stores', 'other'])
      .optional()
      .describe('what the call does: inference (a prompt in, a completion out) or an API that stores data with the provider'),
    model: z.string().optional(),
    prompt_bytes: z.number().int().nonnegative(),
    stream: z.boolean().optional(),
  })
  .strict();

export const GraphqlFacts = z
  .object({
    operations: z
      .array(z.enum(['query', 'mutation', 'subscription']))
      .min(1)
      .describe('the operation types the GraphQL document defines (sorted); a document with several counts each'),
    reads_content: z
      .boolean()
      .describe('the document selects a field or type that carries file content (GitHub Blob.text, GistFile; GitLab blobs, rawBlob, rawTextBlob, plainData, snippet blobs, ciVariables)'),
  })
  .strict();

export const UpgradeFacts = z
  .object({
    protocol: z.string().describe('the Upgrade field as asked, lower-case (websocket); sluice carries only websocket, refusing h2c and every other protocol itself'),
    subprotocols: z.array(z.string()).optional().describe('Sec-WebSocket-Protocol values offered'),
  })
  .strict();

export const Facts = z
  .object({
    git: GitFacts.optional(),
    aws: AwsFacts.optional(),
    k8s: K8sFacts.optional(),
    llm: LlmFacts.optional(),
    graphql: GraphqlFacts.optional().describe('a GraphQL request (a path ending in /graphql): POST body read whole, or GET ?query=; absent when its document could not be read'),
    upgrade: UpgradeFacts.optional().describe('present on a protocol-upgrade request (WebSocket opening handshake)'),
  })
  .strict();

export const Creator = z
  .object({
    username: z.string(),
    uid: z.string().optional(),
    groups: z.array(z.string()),
  })
  .strict();

export const PodIdentity = z
  .object({
    namespace: z.string(),
    name: z.string(),
    service_account: z.string(),
    labels: stringMap,
    annotations: stringMap,
    creator: Creator.optional(),
  })
  .strict();

export const RequestSummary = z
  .object({
    method: z.string().describe('HTTP method; CONNECT for the connection-level decision before TLS'),
    scheme: z.enum(['http', 'https']),
    host: z.string().describe('lower-case destination name (SNI/Host), or an IP literal'),
    port: z.number().int().min(1).max(65535),
    path: z.string(),
    query: z.record(z.string(), z.array(z.string())),
    headers: stringMap.describe('lower-case names; credential values replaced by "[redacted]"'),
    ip_literal: z.boolean().describe('true when host is an IPv4/IPv6 literal rather than a name'),
  })
  .strict();

export const SessionInfo = z
  .object({
    id: z.string(),
    seq: z.number().int().nonnegative(),
    bytes_out: z.number().int().nonnegative(),
  })
  .strict();

export const PolicyInput = z
  .object({
    request: RequestSummary,
    facts: Facts,
    pod: PodIdentity,
    session: SessionInfo,
  })
  .strict();

export const ApprovalScope = z.enum(['once', 'session', 'ttl']);

export const Decision = z
  .object({
    allow: z.boolean().describe('false denies; true forwards (after approval when require_approval is set)'),
    // a string, not the catalogue's Code: a custom bundle (docs/policy.md) decides with codes of its own
    code: z
      .string()
      .regex(/^[a-z0-9_.]+$/)
      .describe('stable identifier of the rule that decided: metric label, audit field, runbook key'),
    reason: z.string().describe('human-readable explanation shown to the agent and the approver'),
    require_approval: z
      .object({
        reason: z.string(),
        scope: ApprovalScope,
        ttl: z
          .string()
          .regex(/^[0-9]+[smh]$/)
          .optional(),
      })
      .strict()
      .optional(),
    mask: z.array(z.string()).optional().describe('masking rule ids to apply to bodies in both directions'),
    dlp: z.enum(['mask', 'block']).optional().describe('what to do with a secret found in the outbound body'),
    credential: z
      .object({ provider: z.string() })
      .catchall(z.union([z.string(), z.number(), z.boolean()]))
      .optional()
      .describe('credential provider to inject for this destination, with its parameters'),
    record_body: z.boolean().optional(),
    passthrough: z.boolean().optional().describe('CONNECT only: tunnel uninspected (pinned certs, mTLS)'),
    allow_upgrade: z
      .boolean()
      .optional()
      .describe('allow a protocol upgrade (WebSocket) on this request; every message is inspected (dlp: mask or block, block when unset) and recorded'),
  })
  .strict();

export type GitFacts = z.infer<typeof GitFacts>;
export type AwsFacts = z.infer<typeof AwsFacts>;
export type K8sFacts = z.infer<typeof K8sFacts>;
export type LlmFacts = z.infer<typeof LlmFacts>;
export type GraphqlFacts = z.infer<typeof GraphqlFacts>;
export type UpgradeFacts = z.infer<typeof UpgradeFacts>;
export type Facts = z.infer<typeof Facts>;
export type Creator = z.infer<typeof Creator>;
export type PodIdentity = z.infer<typeof PodIdentity>;
export type RequestSummary = z.infer<typeof RequestSummary>;
export type SessionInfo = z.infer<typeof SessionInfo>;
export type PolicyInput = z.infer<typeof PolicyInput>;
export type ApprovalScope = z.infer<typeof ApprovalScope>;
export type Decision = z.infer<typeof Decision>;

/** What the sidecar does with a decision. A deny always wins over an approval requirement. */
export type Action = 'allow' | 'deny' | 'hold';

export function decisionAction(decision: Decision): Action {
  if (!decision.allow) return 'deny';
  return decision.require_approval ? 'hold' : 'allow';
}

/** A decision sluice makes itself (not the policy's): its code is a catalogued one. */
export type SluiceDecision = Decision & { code: Code };

/** Fail-closed decisions the engine produces itself; their codes are documented in docs/policy.md. */
export function engineDeny(code: AreaCode<'policy', 'fault'>, reason: string): SluiceDecision {
  return { allow: false, code, reason };
}
