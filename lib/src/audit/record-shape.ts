// The recorder's per-record check, written out by hand: the same decisions as the AuditEvent schema
// (api/src/audit.ts) without the chain fields, asked in place instead of through zod's safeParse,
// which cost about a quarter of the chain step's CPU on every recorded request. It is conservative,
// never more lenient: true only where the schema surely accepts the record (every field of the right
// type, integer or finite where the schema says so, enum values it lists, no key a strict object does
// not know, plain objects without an own `__proto__` or `constructor` key, records without symbol
// keys). Anything else goes to the schema itself, which then decides and words the refusal, so what is
// recorded and what is refused stay the schema's (sidecar/test/audit/record-shape.test.ts compares
// the two field by field). It must never pass a record the schema refuses: when the schema gains a
// field or a tighter rule, this check must learn it too (the test pins the key sets to the schema's).
import { AuditEvent, AuditKind, GitFacts, GraphqlFacts, LlmFacts, describeIssues } from '../../../api/src/index.ts';
import type { AuditRecord } from '../../../api/src/index.ts';
import { AuditError } from './errors.ts';

/** What the proxy may hand to record(): the event without the fields the chain makes. */
export const RecordSchema = AuditEvent.omit({ v: true, id: true, time: true, session: true, seq: true, prev_hash: true, hash: true });

type Obj = Record<string, unknown>;

/** Object.prototype of this realm or another one (a test runner's vm context, structuredClone's). */
function isObjectPrototype(p: unknown): boolean {
  return p === Object.prototype || (typeof p === 'object' && p !== null && Object.getPrototypeOf(p) === null && Object.hasOwn(p, 'isPrototypeOf') && Object.hasOwn(p, 'hasOwnProperty'));
}

/** A plain object zod reads as it is: no own `__proto__` (zod refuses or drops it) nor `constructor` (its plain-object test reads it). */
function plain(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && isObjectPrototype(Object.getPrototypeOf(v)) && !Object.hasOwn(v, '__proto__') && !Object.hasOwn(v, 'constructor');
}

/** A strict object: plain, and every enumerable key one the schema knows (zod's strict check reads the same keys). */
function strict(v: unknown, known: ReadonlySet<string>): v is Obj {
  if (!plain(v)) return false;
  for (const k in v) if (!known.has(k)) return false;
  return true;
}

/** z.record(z.string(), …): plain, no symbol keys (zod refuses them), every value passes `each`. */
function record(v: unknown, each: (e: unknown) => boolean): boolean {
  if (!plain(v) || Object.getOwnPropertySymbols(v).length !== 0) return false;
  for (const k in v) if (!each(v[k])) return false;
  return true;
}

/** Every element (holes included: zod reads them as undefined) passes `each`. */
function listOf(v: unknown, each: (e: unknown) => boolean, min = 0): boolean {
  if (!Array.isArray(v) || v.length < min) return false;
  for (let i = 0; i < v.length; i++) if (!each(v[i])) return false;
  return true;
}

const str = (v: unknown): v is string => typeof v === 'string';
const optStr = (v: unknown) => v === undefined || typeof v === 'string';
const optBool = (v: unknown) => v === undefined || typeof v === 'boolean';
/** z.number(): finite (zod 4 refuses NaN and ±Infinity). */
const num = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
/** z.number().int(): zod 4 takes safe integers only. */
const int = (v: unknown): v is number => Number.isSafeInteger(v);
const optInt = (v: unknown) => v === undefined || Number.isSafeInteger(v);
const nonNegInt = (v: unknown) => int(v) && v >= 0;
const oneOf = (values: readonly string[]) => {
  const set: ReadonlySet<unknown> = new Set(values);
  return (v: unknown) => set.has(v);
};
const keys = (...k: string[]): ReadonlySet<string> => new Set(k);

const KIND = oneOf(AuditKind.options);
const GIT_SERVICE = oneOf(GitFacts.shape.service.options);
const GIT_OPERATION = oneOf(GitFacts.shape.operation.options);
const GIT_PHASE = oneOf(GitFacts.shape.phase.options);
const LLM_PROVIDER = oneOf(LlmFacts.shape.provider.options);
const LLM_OPERATION = oneOf(LlmFacts.shape.operation.unwrap().options);
const GRAPHQL_OPERATION = oneOf(GraphqlFacts.shape.operations.element.options);
const DECISION_ACTION = oneOf(['allow', 'deny', 'hold']);
const DIRECTION = oneOf(['request', 'response']);
const ACCOUNT = /^\d{12}$/;

/** The key sets of every strict object below, exported so the test can hold them to the schema's. */
export const RECORD_KEYS = {
  record: keys('kind', 'pod', 'creator', 'request_id', 'request', 'decision', 'status', 'masking', 'bytes', 'timings', 'body_sample', 'detail'),
  pod: keys('namespace', 'name', 'service_account'),
  creator: keys('username', 'uid', 'groups'),
  request: keys('method', 'scheme', 'host', 'port', 'path', 'facts'),
  decision: keys('action', 'code', 'reason', 'revision', 'scope_used'),
  masking: keys('rule', 'direction', 'offset'),
  bytes: keys('in', 'out'),
  facts: keys('git', 'aws', 'k8s', 'llm', 'graphql', 'upgrade'),
  git: keys('service', 'operation', 'phase', 'repo', 'refs', 'push_options'),
  gitRef: keys('ref', 'old', 'new'),
  aws: keys('service', 'region', 'action', 'bucket', 'key', 'signed', 'copy_source_bucket', 'role_arn', 'role_account', 'with_decryption', 'resource_account', 'resource_accounts'),
  k8s: keys('verb', 'api_group', 'api_version', 'resource', 'subresource', 'namespace', 'name'),
  llm: keys('provider', 'endpoint', 'operation', 'model', 'prompt_bytes', 'stream'),
  graphql: keys('operations', 'reads_content'),
  upgrade: keys('protocol', 'subprotocols'),
} as const;
const K = RECORD_KEYS;

const gitRef = (v: unknown) => strict(v, K.gitRef) && str(v.ref) && str(v.old) && str(v.new);

function gitHolds(v: unknown): boolean {
  if (!strict(v, K.git) || !GIT_SERVICE(v.service) || !GIT_OPERATION(v.operation) || !GIT_PHASE(v.phase) || !str(v.repo)) return false;
  return (v.refs === undefined || listOf(v.refs, gitRef)) && (v.push_options === undefined || listOf(v.push_options, str));
}

function awsHolds(v: unknown): boolean {
  if (!strict(v, K.aws) || !str(v.service) || !str(v.region) || !str(v.action)) return false;
  if (!optStr(v.bucket) || !optStr(v.key) || !optBool(v.signed) || !optStr(v.copy_source_bucket) || !optStr(v.role_arn)) return false;
  if (!optStr(v.role_account) || !optBool(v.with_decryption) || !optStr(v.resource_account)) return false;
  return v.resource_accounts === undefined || listOf(v.resource_accounts, (a) => str(a) && ACCOUNT.test(a));
}

function k8sHolds(v: unknown): boolean {
  if (!strict(v, K.k8s) || !str(v.verb) || !str(v.api_group) || !str(v.api_version) || !str(v.resource)) return false;
  return optStr(v.subresource) && optStr(v.namespace) && optStr(v.name);
}

function llmHolds(v: unknown): boolean {
  if (!strict(v, K.llm) || !LLM_PROVIDER(v.provider) || !str(v.endpoint)) return false;
  return (v.operation === undefined || LLM_OPERATION(v.operation)) && optStr(v.model) && nonNegInt(v.prompt_bytes) && optBool(v.stream);
}

const graphqlHolds = (v: unknown) => strict(v, K.graphql) && listOf(v.operations, GRAPHQL_OPERATION, 1) && typeof v.reads_content === 'boolean';
const upgradeHolds = (v: unknown) => strict(v, K.upgrade) && str(v.protocol) && (v.subprotocols === undefined || listOf(v.subprotocols, str));

function factsHold(v: unknown): boolean {
  if (!strict(v, K.facts)) return false;
  return (
    (v.git === undefined || gitHolds(v.git)) &&
    (v.aws === undefined || awsHolds(v.aws)) &&
    (v.k8s === undefined || k8sHolds(v.k8s)) &&
    (v.llm === undefined || llmHolds(v.llm)) &&
    (v.graphql === undefined || graphqlHolds(v.graphql)) &&
    (v.upgrade === undefined || upgradeHolds(v.upgrade))
  );
}

function requestHolds(v: unknown): boolean {
  if (!strict(v, K.request) || !str(v.method) || !str(v.scheme) || !str(v.host) || !int(v.port) || !str(v.path)) return false;
  return v.facts === undefined || factsHold(v.facts);
}

function decisionHolds(v: unknown): boolean {
  return strict(v, K.decision) && DECISION_ACTION(v.action) && str(v.code) && str(v.reason) && optStr(v.revision) && optStr(v.scope_used);
}

const maskingEntry = (v: unknown) => strict(v, K.masking) && str(v.rule) && DIRECTION(v.direction) && nonNegInt(v.offset);
const creatorHolds = (v: unknown) => strict(v, K.creator) && str(v.username) && optStr(v.uid) && listOf(v.groups, str);
const podHolds = (v: unknown) => strict(v, K.pod) && str(v.namespace) && str(v.name) && optStr(v.service_account);
const bytesHold = (v: unknown) => strict(v, K.bytes) && int(v.in) && int(v.out);
const anything = () => true;

/**
 * True only when the record schema (AuditEvent without its chain fields) surely accepts `v`; false
 * means "ask the schema", not "refused".
 */
export function recordHolds(v: unknown): v is AuditRecord {
  if (!strict(v, K.record) || !KIND(v.kind) || !podHolds(v.pod)) return false;
  if (v.creator !== undefined && !creatorHolds(v.creator)) return false;
  if (!optStr(v.request_id) || !optInt(v.status) || !optStr(v.body_sample)) return false;
  if (v.request !== undefined && !requestHolds(v.request)) return false;
  if (v.decision !== undefined && !decisionHolds(v.decision)) return false;
  if (v.masking !== undefined && !listOf(v.masking, maskingEntry)) return false;
  if (v.bytes !== undefined && !bytesHold(v.bytes)) return false;
  if (v.timings !== undefined && !record(v.timings, num)) return false;
  return v.detail === undefined || record(v.detail, anything);
}

/**
 * The recorder's check of a record before it is chained: the hand-written check answers for the
 * records the proxy builds; anything it is not sure of goes to the schema, which decides and words
 * the refusal (audit.bad_record).
 */
export function checkRecord(rec: unknown): asserts rec is AuditRecord {
  if (recordHolds(rec)) return;
  const checked = RecordSchema.safeParse(rec);
  if (!checked.success) throw new AuditError('audit.bad_record', `record does not match the audit event schema: ${describeIssues(checked.error).join('; ')}`);
}
