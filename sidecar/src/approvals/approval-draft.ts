// What a held request looks like to a human and to the sidecar's bookkeeping: the ApprovalRequest
// spec (secrets in the path and query masked), a one-line summary, the fingerprint that lets
// identical pending requests share one ApprovalRequest, and the grant key that decides which
// later requests a granted session/ttl scope covers. Pure; no clock or ids of its own.
// It must never put a header value, a body byte or an unmasked secret into the spec.
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { MAX_SUMMARY, approvalSummaryLine } from '../../../api/src/index.ts';
import type { ApprovalRequestSpec, Creator, Decision, Facts, RequestSummary } from '../../../api/src/index.ts';
import { createMasker, maskAuditText } from '../masking/index.ts';
import type { Masker } from '../masking/index.ts';

export interface DraftInput {
  summary: RequestSummary;
  facts: Facts;
  decision: Decision;
  pod: { namespace: string; name: string; uid?: string | undefined; serviceAccount: string; creator?: Creator | undefined };
  session: string;
  /** When the sidecar stops waiting (ISO time). */
  expiresAt: string;
  /** The sidecar's masker (built-in plus the platform team's rules); built-ins alone without it. */
  masker?: Masker | undefined;
}

export interface ApprovalDraft {
  spec: ApprovalRequestSpec;
  /** Identical pending requests (same session, request and facts) share one ApprovalRequest. */
  fingerprint: string;
  /** What an approval covers: same rule, method, destination and the facts a human judged. */
  grantKey: string;
}

/** Query parameter names whose values are credentials often enough to always mask. */
const SECRET_QUERY_KEY = /(^|[_-])(token|access[_-]?token|key|api[_-]?key|secret|password|passwd|pwd|sig|signature|auth|code|session|credential)s?$|^x-amz-(signature|credential|security-token)$/i;
const MAX_PATH = 512;

let masker: Masker | undefined;
function secretMasker(): Masker {
  masker ??= createMasker('*');
  return masker;
}

/**
 * Path plus query with credential-looking query values and known token formats masked. Masked
 * before any escaping (an escaped `/`, `+` or `=` would hide a token from its pattern); only
 * whitespace and control characters are escaped, for one readable line.
 */
export function maskedPathAndQuery(path: string, query: Readonly<Record<string, readonly string[]>>, masker: Masker = secretMasker()): string {
  const pairs: string[] = [];
  for (const [key, values] of Object.entries(query)) {
    for (const v of values) pairs.push(`${key}=${SECRET_QUERY_KEY.test(key) && v !== '' ? '[redacted]' : v}`);
  }
  const full = pairs.length ? `${path}?${pairs.join('&')}` : path;
  // Decoded views too: a key percent-encoded, base64'd or hex'd in a URL is masked like a plain one.
  const output = maskAuditText(full, masker).replace(/[\s\p{Cc}]/gu, (c) => encodeURIComponent(c));
  return output.length > MAX_PATH ? `${output.slice(0, MAX_PATH - 1)}…` : output;
}

function hostAndPort(s: RequestSummary): string {
  return s.port === (s.scheme === 'https' ? 443 : 80) ? s.host : `${s.host}:${s.port}`;
}

/** A masked span the cut must not split (a half label would not match the line it stands for). */
const MASKED_SPAN = /\[REDACTED:[^\]]*\]\**/g;

/** `text` cut to MAX_SUMMARY with "…", never inside a masked span. */
function cutSummary(text: string): string {
  if (text.length <= MAX_SUMMARY) return text;
  let end = MAX_SUMMARY - 1;
  for (const m of text.matchAll(MASKED_SPAN)) {
    if (m.index >= end) break;
    if (m.index + m[0].length > end) end = m.index;
  }
  // A `*` run split by the cut still stands for as many characters; a surrogate pair must not be.
  if (/[\uD800-\uDBFF]/.test(text.charAt(end - 1))) end--;
  return `${text.slice(0, end)}…`;
}

/**
 * One line for humans: "git push acme/app refs/heads/main on github.com", "aws s3:DeleteObject
 * bucket/key". The line is api's approvalSummaryLine over exactly what the spec carries, masked;
 * the webhook refuses a summary that is not that line (up to masking and the cut).
 */
export function summarize(summary: RequestSummary, facts: Facts, maskedPath: string): string {
  const line = approvalSummaryLine({ method: summary.method, host: hostAndPort(summary), path: maskedPath, facts });
  return cutSummary(maskAuditText(line, secretMasker()));
}

function hash(value: unknown): string {
  return createHash('sha256').update(canonicalize(value) ?? '').digest('hex');
}

/**
 * The facts an approver judged, without what changes from one identical action to the next
 * (object ids of a push, prompt sizes): a session grant for "push to acme/app main" covers the
 * next push to main, not a push to another branch or repository.
 */
function grantFacts(facts: Facts): unknown {
  const { git, aws, k8s, llm } = facts;
  return {
    git: git && { service: git.service, phase: git.phase, repo: git.repo, refs: git.refs?.map((r) => r.ref).sort() ?? null },
    aws: aws && { service: aws.service, region: aws.region, action: aws.action, bucket: aws.bucket ?? null, key: aws.key ?? null },
    k8s,
    llm: llm && { provider: llm.provider, endpoint: llm.endpoint, model: llm.model ?? null },
  };
}

/** The grant key of a stored spec; the same function keys live requests, so both always agree. */
export function grantKeyOf(spec: Pick<ApprovalRequestSpec, 'code' | 'request'>): string {
  const r = spec.request;
  // Without facts the path is what was judged; with facts the facts are (a push's path is fixed).
  const facts = r.facts && Object.keys(r.facts).length ? grantFacts(r.facts) : null;
  return hash({ code: spec.code, method: r.method, host: r.host, path: facts ? null : r.path, facts });
}

export function draftApproval(input: DraftInput): ApprovalDraft {
  const { summary, facts, decision, pod } = input;
  const path = maskedPathAndQuery(summary.path, summary.query, input.masker);
  const hasFacts = Object.keys(facts).length > 0;
  const approval = decision.require_approval;
  const spec: ApprovalRequestSpec = {
    pod: { namespace: pod.namespace, name: pod.name, ...(pod.uid ? { uid: pod.uid } : {}) },
    serviceAccount: pod.serviceAccount,
    session: input.session,
    ...(pod.creator ? { creator: pod.creator } : {}),
    request: {
      method: summary.method,
      host: hostAndPort(summary),
      path,
      summary: summarize(summary, facts, path),
      ...(hasFacts ? { facts } : {}),
    },
    code: decision.code,
    reason: approval?.reason ?? decision.reason,
    requestedScope: approval?.scope ?? 'once',
    ...(approval?.ttl ? { requestedTTL: approval.ttl } : {}),
    fingerprint: '',
    expiresAt: input.expiresAt,
  };
  spec.fingerprint = hash({ session: spec.session, code: spec.code, request: { ...spec.request, summary: null } }).slice(0, 32);
  return { spec, fingerprint: spec.fingerprint, grantKey: grantKeyOf(spec) };
}
