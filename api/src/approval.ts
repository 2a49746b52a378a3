// ApprovalRequest (sluice.io/v1alpha1): a held request waiting for a human. The sidecar creates
// it (spec); approvers change status through the API server, whose admission stamps who decided.
// Field names follow Kubernetes conventions (camelCase), unlike the snake_case policy input.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ApprovalScope, Creator, Facts } from './policy.ts';

export const APPROVAL_API_VERSION = 'sluice.io/v1alpha1';
export const APPROVAL_KIND = 'ApprovalRequest';
export const APPROVAL_PLURAL = 'approvalrequests';

/** Revoked: a granted session/ttl scope withdrawn after approval (`kubectl sluice revoke`). */
export const ApprovalState = z.enum(['Pending', 'Approved', 'Denied', 'Expired', 'Revoked']);

export const ApprovalRequestSpec = z
  .object({
    pod: z.object({ namespace: z.string(), name: z.string(), uid: z.string().optional() }).strict(),
    serviceAccount: z.string(),
    session: z.string(),
    creator: Creator.optional(),
    request: z
      .object({
        method: z.string(),
        host: z.string(),
        path: z.string().describe('secrets masked'),
        summary: z.string().describe('one line for humans, e.g. "git push org/repo refs/heads/main"'),
        facts: Facts.optional(),
      })
      .strict(),
    code: z.string(),
    reason: z.string(),
    requestedScope: ApprovalScope,
    requestedTTL: z.string().optional(),
    fingerprint: z.string().describe('identical pending requests share one ApprovalRequest'),
    expiresAt: z.string().describe('when the sidecar stops waiting and denies'),
  })
  .strict();

export const ApprovalRequestStatus = z
  .object({
    state: ApprovalState,
    decidedBy: z.string().optional(),
    decidedByGroups: z.array(z.string()).optional(),
    decidedAt: z.string().optional(),
    scope: ApprovalScope.optional(),
    ttl: z.string().optional(),
    expiresAt: z.string().optional().describe('end of a granted ttl scope'),
    reason: z.string().optional(),
    revokedBy: z.string().optional(),
    revokedAt: z.string().optional(),
  })
  .strict();

export type ApprovalState = z.infer<typeof ApprovalState>;
export type ApprovalRequestSpec = z.infer<typeof ApprovalRequestSpec>;
export type ApprovalRequestStatus = z.infer<typeof ApprovalRequestStatus>;

export interface ApprovalRequest {
  apiVersion: typeof APPROVAL_API_VERSION;
  kind: typeof APPROVAL_KIND;
  metadata: { name?: string; namespace?: string; labels?: Record<string, string>; [k: string]: unknown };
  spec: ApprovalRequestSpec;
  status?: ApprovalRequestStatus;
}

/**
 * The creator stamp of a pod or workload whose creator could not be established (its controller's
 * owner carries no stamp): no user has this name, so nobody counts as the creator and the
 * ApprovalRequest rules treat it as unknown (its requests can only be denied).
 */
export const UNKNOWN_CREATOR_USERNAME = 'sluice:unknown-creator';

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/**
 * The `sluice.io/pod` / `sluice.io/session` label value for a pod name or session id: itself when
 * it is a valid label value, else a prefix plus a hash, so selection stays exact. The sidecar
 * writes it and the webhook checks it with this one function.
 */
export function approvalLabelValue(value: string): string {
  if (value.length <= 63 && LABEL_VALUE.test(value)) return value;
  const hash = createHash('sha256').update(value).digest('hex').slice(0, 16);
  const prefix = value.slice(0, 46).replace(/[^A-Za-z0-9_.-]/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  return `${prefix}${prefix ? '-' : ''}${hash}`;
}

/** Longest summary line; a longer one is cut (never inside a masked span) and ends with "…". */
export const MAX_SUMMARY = 200;

function listRefs(refs: readonly { ref: string }[] | undefined): string {
  if (!refs?.length) return '';
  const names = refs.map((r) => r.ref);
  return ` ${names.slice(0, 3).join(', ')}${names.length > 3 ? ` (+${names.length - 3} more)` : ''}`;
}

/**
 * The one line a human judges, derived only from what the request will forward (method, host,
 * masked path, facts): "git push acme/app refs/heads/main on github.com", "aws s3:DeleteObject
 * bucket/key (eu-west-1)". The sidecar masks it into spec.request.summary; the webhook refuses
 * an ApprovalRequest whose summary is not this line (up to masking and the length cut), so what
 * an approver reads is what the facts say.
 */
export function approvalSummaryLine(request: Pick<ApprovalRequestSpec['request'], 'method' | 'host' | 'path' | 'facts'>): string {
  const facts = request.facts ?? {};
  if (facts.git) return `git ${facts.git.operation} ${facts.git.repo}${listRefs(facts.git.refs)} on ${request.host}`;
  if (facts.aws) return `aws ${facts.aws.action}${facts.aws.bucket ? ` ${facts.aws.bucket}${facts.aws.key ? `/${facts.aws.key}` : ''}` : ''} (${facts.aws.region})`;
  if (facts.k8s) {
    const k = facts.k8s;
    return `kubernetes ${k.verb} ${k.resource}${k.subresource ? `/${k.subresource}` : ''}${k.name ? ` ${k.name}` : ''}${k.namespace ? ` -n ${k.namespace}` : ''}`;
  }
  if (facts.llm) return `${facts.llm.provider} ${facts.llm.endpoint}${facts.llm.model ? ` ${facts.llm.model}` : ''} (${facts.llm.prompt_bytes} prompt bytes)`;
  return `${request.method} ${request.host}${request.path}`;
}

/** A masked span as the sidecar's masker writes it: `[REDACTED:rule]` (+ `*` padding) or a `*` run. */
const MASKED_SPAN = /\[REDACTED:[A-Za-z0-9_.:-]{1,64}\](\**)|\*+/g;
const MAX_LINE = 8192;

type Token = { lit: string } | { exact: number } | { any: true };

/**
 * Does `summary` show `line`, with only masked spans and the length cut standing for parts of it?
 * A `[REDACTED:rule]` stands for some text without whitespace (a secret is one token: a mask cannot
 * hide the words around it), its `*` padding and a run of `*` for as many non-space characters,
 * and a trailing "…" (the sidecar's cut) for the rest. Matched by
 * walking the set of reachable positions (linear per token), never by a backtracking regex: the
 * summary is written by whoever holds the token, and must not be able to stall the webhook.
 */
export function summaryShowsLine(summary: string, line: string): boolean {
  if (summary === line) return true;
  if (summary.length > MAX_SUMMARY || line.length > MAX_LINE) return false;
  return spanMatch(summary, line, false) || (summary.endsWith('…') && spanMatch(summary.slice(0, -1), line, true));
}

function spanMatch(text: string, line: string, cut: boolean): boolean {
  const tokens: Token[] = [];
  let last = 0;
  for (const m of text.matchAll(MASKED_SPAN)) {
    if (m.index > last) tokens.push({ lit: text.slice(last, m.index) });
    if (m[0].startsWith('[')) {
      tokens.push({ any: true });
      if (m[1]!.length) tokens.push({ exact: m[1]!.length });
    } else {
      tokens.push({ exact: m[0].length });
    }
    last = m.index + m[0].length;
  }
  if (last < text.length) tokens.push({ lit: text.slice(last) });
  if (cut) tokens.push({ any: true });
  const n = line.length;
  // spaces[i]: whitespace characters in line[0, i), so "no whitespace in [p, q)" is one subtraction.
  const spaces = new Uint32Array(n + 1);
  for (let i = 0; i < n; i++) spaces[i + 1] = spaces[i]! + (/\s/.test(line[i]!) ? 1 : 0);
  let reach = new Uint8Array(n + 1);
  reach[0] = 1;
  for (let ti = 0; ti < tokens.length; ti++) {
    const t = tokens[ti]!;
    const rest = cut && ti === tokens.length - 1;
    const next = new Uint8Array(n + 1);
    if ('any' in t) {
      // One or more characters; without whitespace unless it is the cut's rest of the line.
      let active = false;
      for (let q = 0; q <= n; q++) {
        if (q > 0) {
          if (!rest && spaces[q]! > spaces[q - 1]!) active = false;
          else if (active) next[q] = 1;
        }
        if (reach[q]) active = true;
      }
    } else {
      for (let p = 0; p <= n; p++) {
        if (!reach[p]) continue;
        if ('lit' in t) {
          if (line.startsWith(t.lit, p)) next[p + t.lit.length] = 1;
        } else if (p + t.exact <= n && spaces[p + t.exact] === spaces[p]) {
          next[p + t.exact] = 1;
        }
      }
    }
    reach = next;
  }
  return reach[n] === 1;
}
