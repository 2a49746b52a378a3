// `kubectl sluice policy explain EVENT | --session ID --seq N`: reads one recorded audit event (a
// JSON file, an NDJSON export, stdin, or a session in the log store/spool as `replay` reads it),
// re-evaluates the request it records with the sidecar's WASM engine and prints which rule decided
// (explain.ts). Read-only: it never writes to the store, the spool or the cluster.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { AuditEvent, describeIssues } from '../../../api/src/index.ts';
import { OmittedStub } from '../../../lib/src/audit/chain.ts';
import { collectSession } from '../../../lib/src/audit/session-source.ts';
import { BundleError, readBundle } from '../../../lib/src/policy/bundle.ts';
import { PolicyEngine } from '../../../lib/src/policy/engine.ts';
import { sourceFailure, sourceFromFlags } from '../commands/replay.ts';
import type { SourceFlags } from '../commands/replay.ts';
import { CliError, EXIT_FAILED, EXIT_USAGE } from '../errors.ts';
import { formatData, parseOutput } from '../output.ts';
import type { Io } from '../program.ts';
import { driftedRules, ruleIndexFor } from './bundle-rules.ts';
import { fireTrace } from './rule-provenance.ts';
import { loadClusterPolicy, loadIntoEngine } from './cluster-load.ts';
import type { ClusterFlags, ClusterLoaded } from './cluster-load.ts';
import { EXIT_NOT_REPRODUCED, EXIT_REVISION_MISMATCH, evaluatedDecision, explain, explanationText, inputFromEvent, revisionHint } from './explain.ts';
import type { EvaluatedDecision, Explanation } from './explain.ts';

export interface ExplainFlags extends SourceFlags, ClusterFlags {
  session?: string;
  seq?: string;
  bundle?: string;
  output?: string;
}

interface Picked {
  event: AuditEvent;
  notes: string[];
}

function parseSeq(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new CliError(`--seq ${value}: expected the event's sequence number (a non-negative integer)`, EXIT_USAGE);
  return Number(value);
}

/** Events in a file: one JSON object, or NDJSON lines (a `replay -o json` export). */
function eventsInText(text: string, where: string): unknown[] {
  const trimmed = text.trim();
  if (!trimmed) throw new CliError(`${where} is empty`, EXIT_USAGE);
  try {
    const one = JSON.parse(trimmed) as unknown;
    return Array.isArray(one) ? one : [one];
  } catch {
    // not one document: NDJSON
  }
  return trimmed.split('\n').flatMap((line, i) => {
    if (!line.trim()) return [];
    try {
      return [JSON.parse(line) as unknown];
    } catch (err) {
      throw new CliError(`${where} line ${i + 1} is not JSON: ${(err as Error).message}`, EXIT_USAGE);
    }
  });
}

function seqOf(v: unknown): number | undefined {
  const s = (v as { seq?: unknown } | null)?.seq;
  return typeof s === 'number' ? s : undefined;
}

/** The event to explain: the one asked for, or the request event an approval/response belongs to. */
export function pickEvent(values: readonly unknown[], seq: number | undefined, where: string): Picked {
  let raw: unknown;
  if (seq !== undefined) {
    raw = values.find((v) => seqOf(v) === seq);
    if (raw === undefined) throw new CliError(`no event #${seq} in ${where}`, EXIT_USAGE);
  } else if (values.length === 1) raw = values[0];
  else throw new CliError(`${where} holds ${values.length} events: pick one with --seq N`, EXIT_USAGE);
  const stub = OmittedStub.safeParse(raw);
  if (stub.success) {
    throw new CliError(`event #${stub.data.seq} is stored only as an omitted stub (${stub.data.omitted.bytes} bytes not stored, ${stub.data.omitted.reason}): nothing to explain`, EXIT_NOT_REPRODUCED);
  }
  const parsed = AuditEvent.safeParse(raw);
  if (!parsed.success) throw new CliError(`${where}: not a sluice audit event (${describeIssues(parsed.error).slice(0, 3).join('; ')})`, EXIT_USAGE);
  const event = parsed.data;
  const notes: string[] = [];
  if ((!event.request || !event.decision) && event.request_id) {
    const request = values.map((v) => AuditEvent.safeParse(v)).find((p) => p.success && p.data.kind === 'request' && p.data.request_id === event.request_id && p.data.decision);
    if (request?.success) {
      notes.push(`event #${event.seq} (${event.kind}) belongs to request ${event.request_id}: explaining its request event #${request.data.seq}`);
      return { event: request.data, notes };
    }
  }
  return { event, notes };
}

async function readPicked(target: string | undefined, flags: ExplainFlags): Promise<Picked> {
  const seq = parseSeq(flags.seq);
  if (target !== undefined && flags.session !== undefined) throw new CliError('give an event file or --session, not both', EXIT_USAGE);
  if (target !== undefined) {
    let text: string;
    try {
      text = target === '-' ? readFileSync(0, 'utf8') : readFileSync(target, 'utf8');
    } catch (err) {
      throw new CliError(`cannot read ${target}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, EXIT_USAGE);
    }
    return pickEvent(eventsInText(text, target === '-' ? 'stdin' : target), seq, target === '-' ? 'stdin' : target);
  }
  if (flags.session === undefined) throw new CliError('give an audit event (a file, - for stdin) or --session ID --seq N with a source (--loki, --victorialogs, --spool, --file)', EXIT_USAGE);
  if (seq === undefined) throw new CliError('--session needs --seq N: the event to explain', EXIT_USAGE);
  const source = sourceFromFlags(flags);
  let values: unknown[];
  try {
    values = (await collectSession(source, { session: flags.session })).map((i) => i.value);
  } catch (err) {
    sourceFailure(err);
  }
  if (!values.length) throw new CliError(`no events found for session ${flags.session}`, EXIT_USAGE);
  return pickEvent(values, seq, `session ${flags.session}`);
}

export async function explainCommand(target: string | undefined, flags: ExplainFlags & { bundle: string }, io: Io, bundleExplicit = true): Promise<void> {
  const format = parseOutput(flags.output, ['text', 'json', 'yaml'] as const);
  if (flags.allowStale && !flags.cluster) throw new CliError('--allow-stale goes with --cluster', EXIT_USAGE);
  const { event, notes } = await readPicked(target, flags);
  const engine = new PolicyEngine();
  let cluster: ClusterLoaded | undefined;
  let data: unknown;
  try {
    if (flags.cluster) {
      cluster = await loadClusterPolicy(flags, { namespace: flags.namespace ?? event.pod.namespace, bundle: bundleExplicit ? flags.bundle : undefined, explicit: bundleExplicit, defaultBundle: flags.bundle }, io);
      await loadIntoEngine(engine, cluster);
      data = cluster.data;
    } else {
      const bundle = await readBundle(flags.bundle);
      await engine.load(bundle);
      data = bundle.data;
    }
  } catch (err) {
    if (err instanceof BundleError) throw new CliError(`${err.message} (${err.code}); run \`make policy\` to build it, or pass --bundle`, EXIT_FAILED);
    throw err;
  }
  const bundlePath = cluster ? cluster.plan.bundlePath : flags.bundle;
  const bundleRevision = engine.loaded?.revision ?? '';
  const rebuilt = inputFromEvent(event);
  let evaluated: EvaluatedDecision | undefined;
  if (rebuilt.ok) {
    const ev = engine.evaluate(rebuilt.input);
    evaluated = evaluatedDecision(bundlePath, ev.revision, ev.decision, ev.fault);
  }
  const index = await ruleIndexFor(bundlePath, bundleRevision);
  const result = explain({ event, rebuilt, ...(evaluated ? { evaluated } : {}), ...(index ? { index } : {}) });
  result.notes.unshift(...notes);
  const drifted = index ? driftedRules(index, [...result.rules, ...result.evaluated_rules]) : [];
  if (drifted.length) result.notes.push(`${drifted.join(', ')}: the source changed since \`make policy\` built this bundle; the rule text shown is the build's`);
  // Several rules name the code: the pinned OPA's trace over the checkout's sources says which fired.
  if (result.reproduced && result.rules.length > 1 && rebuilt.ok && index?.from === 'sources' && index.file && !drifted.length) {
    const trace = fireTrace({ root: join(dirname(index.file), '..', '..'), rules: result.rules, data, input: rebuilt.input, code: result.evaluated!.code });
    if (trace.ok) for (const r of result.rules) r.fired = [...trace.fired].some((f) => f.file === r.file && f.start === r.start);
    else result.notes.push(`cannot tell which of the ${result.rules.length} rules fired: ${trace.why}`);
  } else if (result.rules.length > 1) {
    result.notes.push(`cannot tell which of the ${result.rules.length} rules fired without the sources and opa (a checkout)`);
  }
  if (cluster) (result as Explanation & { cluster?: unknown }).cluster = cluster.summary;
  io.out(format === 'text' ? explanationText(result) : formatData(result, format));
  if (result.exit_code === EXIT_REVISION_MISMATCH) {
    throw new CliError(`the event was decided by policy revision ${result.recorded?.revision}, not ${result.evaluated?.revision} (${bundlePath}): ${revisionHint(result.recorded?.revision ?? '', result.evaluated?.revision ?? '')}`, EXIT_REVISION_MISMATCH);
  }
  if (result.exit_code === EXIT_NOT_REPRODUCED) {
    const why = !result.evaluated ? 'the event does not record a request the policy could be asked about again' : result.revision === 'not_recorded' ? 'the event records no policy revision' : `re-evaluation decided ${result.evaluated.code}, the event records ${result.recorded?.code ?? 'no decision'}`;
    throw new CliError(`not reproduced: ${why}`, EXIT_NOT_REPRODUCED);
  }
}
