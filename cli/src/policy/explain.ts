// `policy explain`, the pure part: from one recorded audit event, the policy input it implies, and
// from that input's re-evaluation plus the rule index, which rule decided, what it read and whether
// the recorded decision is reproduced at the recorded revision. No I/O: the command reads the event,
// loads the bundle and evaluates; this module compares and words the result.
// It must never present a re-evaluation with another revision, or with inputs the event did not
// record, as what happened: each of those is said, and turns into its own exit code.
import { isIP } from 'node:net';
import { PolicyInput, decisionAction } from '../../../api/src/index.ts';
import type { Action, AuditEvent, Decision } from '../../../api/src/index.ts';
import { rulesFor } from './rule-index.ts';
import type { RuleEntry, RuleIndex } from './rule-index.ts';

/** Exit codes of explain beyond 0/1/2 (docs/cli.md). */
export const EXIT_REVISION_MISMATCH = 3;
export const EXIT_NOT_REPRODUCED = 4;

/**
 * Parts of the policy input an audit event never records (audit-records.ts keeps no header, query
 * or label). Re-evaluation sees them empty; `ip_literal` is derived from the host instead.
 */
export const NOT_RECORDED = ['input.request.query', 'input.request.headers', 'input.pod.labels', 'input.pod.annotations', 'input.session.seq', 'input.session.bytes_out'] as const;

export type RebuiltInput = { ok: true; input: PolicyInput } | { ok: false; why: string };

/** The policy input a request or response event implies, or why it implies none. */
export function inputFromEvent(ev: AuditEvent): RebuiltInput {
  const r = ev.request;
  if (!r) return { ok: false, why: `a ${ev.kind} event records no request` };
  if (!r.method || !r.port) return { ok: false, why: 'sluice refused this request before summarising it: the policy never saw it' };
  if (r.scheme !== 'http' && r.scheme !== 'https') return { ok: false, why: `scheme ${r.scheme} is not one the policy is asked about` };
  const host = r.host.replace(/^\[(.*)\]$/, '$1');
  const candidate = {
    request: { method: r.method, scheme: r.scheme, host: r.host, port: r.port, path: r.path, query: {}, headers: {}, ip_literal: isIP(host) !== 0 },
    facts: r.facts ?? {},
    pod: { namespace: ev.pod.namespace, name: ev.pod.name, service_account: ev.pod.service_account ?? '', labels: {}, annotations: {}, ...(ev.creator ? { creator: ev.creator } : {}) },
    session: { id: ev.session, seq: 0, bytes_out: 0 },
  };
  const parsed = PolicyInput.safeParse(candidate);
  if (!parsed.success) return { ok: false, why: `the recorded request is not a valid policy input (${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message})` };
  return { ok: true, input: parsed.data };
}

export interface RecordedDecision {
  action: Action;
  code: string;
  reason: string;
  revision?: string;
  scope_used?: string;
}

/** What the event says was decided: its decision, or the code of a refusal/approval detail. */
export function recordedDecision(ev: AuditEvent): RecordedDecision | undefined {
  if (ev.decision) return { ...ev.decision };
  const d = ev.detail as { code?: unknown; reason?: unknown; revision?: unknown } | undefined;
  if (typeof d?.code !== 'string') return undefined;
  return { action: 'deny', code: d.code, reason: typeof d.reason === 'string' ? d.reason : '', ...(typeof d.revision === 'string' ? { revision: d.revision } : {}) };
}

export interface EvaluatedDecision {
  bundle: string;
  revision: string;
  action: Action;
  code: string;
  reason: string;
  decision: Decision;
  fault?: string;
}

export interface InputRead {
  path: string;
  /** the value re-evaluation used; absent when the event does not record it */
  value?: unknown;
  recorded: boolean;
}

export interface RuleMatch extends RuleEntry {
  reads: InputRead[];
  /** set when several rules name the code and OPA's trace tells which fired */
  fired?: boolean;
}

export interface Explanation {
  event: {
    session: string;
    seq: number;
    kind: string;
    time: string;
    pod: string;
    request_id?: string;
    request?: string;
    facts?: Record<string, unknown>;
  };
  recorded?: RecordedDecision;
  evaluated?: EvaluatedDecision;
  /** recorded vs evaluated revision */
  revision: 'match' | 'differs' | 'not_recorded' | 'not_evaluated';
  /** the evaluation gave the recorded code (at whatever revision) */
  reproduced: boolean;
  /** where the recorded code comes from */
  decided_by: 'policy' | 'sidecar' | 'unknown';
  /** the rules that produce the recorded code */
  rules: RuleMatch[];
  /** the rules that produce the evaluated code, when it is another */
  evaluated_rules: RuleMatch[];
  index: { from: RuleIndex['from'] | 'none'; revision: string };
  not_recorded: string[];
  notes: string[];
  exit_code: number;
}

function valueAt(input: PolicyInput, path: string): unknown {
  let v: unknown = input;
  for (const part of path.split('.').slice(1)) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

function isUnrecorded(path: string): boolean {
  return NOT_RECORDED.some((p) => path === p || path.startsWith(`${p}.`));
}

function withReads(rules: RuleEntry[], input: PolicyInput | undefined): RuleMatch[] {
  return rules.map((r) => ({
    ...r,
    reads: r.inputs.map((path) => {
      if (isUnrecorded(path)) return { path, recorded: false };
      const value = input ? valueAt(input, path) : undefined;
      return value === undefined ? { path, recorded: true } : { path, value, recorded: true };
    }),
  }));
}

function url(r: NonNullable<AuditEvent['request']>): string {
  const port = (r.scheme === 'https' && r.port === 443) || (r.scheme === 'http' && r.port === 80) ? '' : `:${r.port}`;
  return `${r.method} ${r.scheme}://${r.host}${port}${r.path}`;
}

export interface ExplainParts {
  event: AuditEvent;
  rebuilt: RebuiltInput;
  evaluated?: EvaluatedDecision;
  index?: RuleIndex;
}

/** Compares the recorded decision with the re-evaluation and names the rules (pure). */
export function explain({ event, rebuilt, evaluated, index }: ExplainParts): Explanation {
  const recorded = recordedDecision(event);
  const input = rebuilt.ok ? rebuilt.input : undefined;
  const notes: string[] = [];
  const recordedRules = recorded && index ? rulesFor(index, recorded.code) : [];
  const reproduced = !!(recorded && evaluated && evaluated.code === recorded.code);
  let revision: Explanation['revision'] = 'not_evaluated';
  if (evaluated) revision = !recorded?.revision ? 'not_recorded' : recorded.revision === evaluated.revision ? 'match' : 'differs';

  // A code no rule names is sluice's own answer, said only when the index is of the original
  // sources at the recorded revision (a bundle's stored copies lack the entrypoint rule).
  let decidedBy: Explanation['decided_by'] = 'unknown';
  if (recordedRules.length || (reproduced && !evaluated?.fault)) decidedBy = 'policy';
  else if (recorded && index?.from === 'sources' && (!recorded.revision || recorded.revision === index.revision)) decidedBy = 'sidecar';

  if (!recorded) notes.push(`this ${event.kind} event records no decision`);
  if (!rebuilt.ok) notes.push(`not re-evaluated: ${rebuilt.why}`);
  if (recorded && decidedBy === 'sidecar') {
    notes.push(`no rule of the policy library produces ${recorded.code}: sluice itself answered (a protocol, DLP, kill-switch, approval or upstream outcome)${evaluated ? `; the policy decides ${evaluated.action} ${evaluated.code} for this request` : ''}`);
  }
  if (recorded && evaluated && !reproduced && decidedBy !== 'sidecar') {
    const unrecordedReads = recordedRules.flatMap((r) => r.inputs.filter(isUnrecorded));
    if (unrecordedReads.length) {
      notes.push(`the rule that recorded ${recorded.code} reads ${[...new Set(unrecordedReads)].join(', ')}, which audit events do not record: re-evaluation sees ${unrecordedReads.length > 1 ? 'them' : 'it'} empty`);
    } else if (revision === 'match') {
      notes.push(`same revision, another decision: the event's facts or request parts were masked when recorded, or the organisation data the sidecar ran with differs from the bundle's (use --cluster for the cluster's)`);
    }
  }
  if (recorded && evaluated && reproduced && recorded.action !== evaluated.action) {
    notes.push(`the policy ${evaluated.action === 'hold' ? 'held' : evaluated.action === 'deny' ? 'denied' : 'allowed'} it; recorded as ${recorded.action}${recorded.scope_used ? ` (approval scope ${recorded.scope_used})` : ''} after the approval step`);
  }
  if (evaluated?.fault) notes.push(`the engine, not a rule, decided: ${evaluated.fault}`);

  if (evaluated && revision === 'not_recorded') notes.push('the event records no policy revision: the policy may not have been asked (sluice answered first), and the revision cannot be confirmed');
  let exit = 0;
  if (revision === 'differs') exit = EXIT_REVISION_MISMATCH;
  else if (!reproduced || revision !== 'match') exit = EXIT_NOT_REPRODUCED;

  return {
    event: {
      session: event.session,
      seq: event.seq,
      kind: event.kind,
      time: event.time,
      pod: `${event.pod.namespace}/${event.pod.name}`,
      ...(event.request_id ? { request_id: event.request_id } : {}),
      ...(event.request ? { request: url(event.request) } : {}),
      ...(event.request?.facts ? { facts: event.request.facts } : {}),
    },
    ...(recorded ? { recorded } : {}),
    ...(evaluated ? { evaluated } : {}),
    revision,
    reproduced,
    decided_by: decidedBy,
    rules: withReads(recordedRules, input),
    evaluated_rules: evaluated && index && evaluated.code !== recorded?.code ? withReads(rulesFor(index, evaluated.code), input) : [],
    index: index ? { from: index.from, revision: index.revision } : { from: 'none', revision: '' },
    not_recorded: input ? [...NOT_RECORDED] : [],
    notes,
    exit_code: exit,
  };
}

/**
 * How to evaluate with what decided: a revision is the bundle's, plus `+org.<revision>` while the
 * sidecar ran with the cluster's SluicePolicy organisation.
 */
export function revisionHint(recorded: string, evaluated: string): string {
  const [rb, ro] = recorded.split('+org.');
  const [eb, eo] = evaluated.split('+org.');
  const parts: string[] = [];
  if (rb !== eb) parts.push(`pass --bundle with a build of ${rb}`);
  if (ro && !eo) parts.push(`pass --cluster: the sidecar ran with the cluster's organisation (revision ${ro})`);
  else if (ro && eo && ro !== eo) parts.push(`the cluster's organisation changed since (it was ${ro}, it is ${eo} now): the SluicePolicy objects then are not readable any more`);
  else if (!ro && eo) parts.push('the sidecar ran with its bundle\u2019s own organisation data: drop --cluster');
  return parts.join('; ') || `pass --bundle with a build of ${recorded}`;
}

/** The evaluated decision as explain reports it. */
export function evaluatedDecision(bundle: string, revision: string, decision: Decision, fault?: string): EvaluatedDecision {
  return { bundle, revision, action: decisionAction(decision), code: decision.code, reason: decision.reason, decision, ...(fault ? { fault } : {}) };
}

// --- text ------------------------------------------------------------------------------------

function flatten(prefix: string, v: unknown, out: string[]): void {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) flatten(prefix ? `${prefix}.${k}` : k, x, out);
  } else out.push(`${prefix} = ${JSON.stringify(v)}`);
}

function ruleText(r: RuleMatch, indexFrom: string): string {
  const where = `${r.file}:${r.line}`;
  const fired = r.fired === undefined ? '' : r.fired ? '  \u2190 fired (opa trace)' : '  (did not fire)';
  const head = `  ${r.code}  ${where}  rule ${r.package ? `${r.package}.` : ''}${r.rule}${r.priority !== undefined ? ` (priority ${r.priority})` : ''}${indexFrom === 'bundle' ? ' [line in the bundle\u2019s stored copy]' : ''}${fired}\n`;
  const body = r.text
    .split('\n')
    .map((l, i) => `    ${String(r.start + i).padStart(4)} | ${l.replace(/\t/g, '  ')}`)
    .join('\n');
  const reads = r.reads.length
    ? `\n    reads:\n${r.reads.map((x) => `      ${x.path} = ${x.recorded ? (x.value === undefined ? '(absent)' : JSON.stringify(x.value)) : '(not recorded in audit events)'}`).join('\n')}`
    : '';
  return `${head}${body}${reads}\n`;
}

/** The human explanation. */
export function explanationText(e: Explanation): string {
  const lines: string[] = [];
  const warn = (s: string) => lines.push(`!! ${s}`);
  if (e.revision === 'differs') {
    warn(`POLICY REVISION MISMATCH: the event was decided by revision ${e.recorded?.revision}, this explanation evaluates ${e.evaluated?.revision} (${e.evaluated?.bundle}).`);
    warn(`Rules and lines below are those of ${e.evaluated?.revision}, not necessarily what decided: ${revisionHint(e.recorded?.revision ?? '', e.evaluated?.revision ?? '')}.`);
    lines.push('');
  }
  lines.push(`event      ${e.event.kind} #${e.event.seq} of session ${e.event.session} at ${e.event.time}, pod ${e.event.pod}${e.event.request_id ? `, request ${e.event.request_id}` : ''}`);
  if (e.event.request) lines.push(`request    ${e.event.request}`);
  if (e.event.facts && Object.keys(e.event.facts).length) {
    const facts: string[] = [];
    flatten('', e.event.facts, facts);
    lines.push(`facts      ${facts.join('\n           ')}`);
  }
  if (e.recorded) lines.push(`recorded   ${e.recorded.action} ${e.recorded.code}${e.recorded.reason ? ` \u2014 ${e.recorded.reason}` : ''} (revision ${e.recorded.revision ?? 'not recorded'})`);
  if (e.evaluated) {
    const verdict = e.reproduced ? (e.revision === 'differs' ? 'same code, other revision' : 'reproduced') : 'NOT reproduced';
    lines.push(`evaluated  ${e.evaluated.action} ${e.evaluated.code} \u2014 ${e.evaluated.reason} (revision ${e.evaluated.revision || 'none'}, ${e.evaluated.bundle}): ${verdict}`);
  }
  lines.push('');
  if (e.rules.length) {
    lines.push(e.rules.length > 1 ? `decided by one of ${e.rules.length} rules that produce ${e.rules[0]!.code}:` : 'decided by:');
    for (const r of e.rules) lines.push(ruleText(r, e.index.from));
  } else if (e.recorded) {
    lines.push(e.index.from === 'none' ? `no rule index: cannot say where ${e.recorded.code} comes from` : `no rule of the library produces ${e.recorded.code}`);
  }
  if (e.evaluated_rules.length) {
    lines.push(`re-evaluation decided ${e.evaluated?.code} through:`);
    for (const r of e.evaluated_rules) lines.push(ruleText(r, e.index.from));
  }
  if (e.index.from === 'bundle') lines.push('(no rules.json of this revision beside the bundle: locations are in the Rego copies the bundle stores, which opa build reformats)');
  if (e.not_recorded.length) lines.push(`not recorded by audit events, evaluated as empty: ${e.not_recorded.map((p) => p.replace(/^input\./, '')).join(', ')}`);
  for (const n of e.notes) lines.push(`note: ${n}`);
  return `${lines.join('\n').replace(/\n{3,}/g, '\n\n')}\n`;
}
