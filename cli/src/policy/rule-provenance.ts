// Which of several rules that produce the same code fired, from the pinned OPA's trace: in a
// checkout, `opa eval --explain full` over the original sources (the ones rules.json indexes) with
// the bundle's data and the rebuilt input; a rule fired when the trace exits its head. Optional: with
// no OPA or no sources explain lists every candidate and says it cannot tell. Never used to decide —
// the decision shown is always the WASM engine's.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { PolicyInput } from '../../../api/src/index.ts';
import type { RuleEntry } from './rule-index.ts';

interface TraceEvent {
  Op?: string;
  Location?: { file?: string; row?: number };
}

/** file → rows at which the trace exits a rule (pure). */
export function exitedRows(explanation: unknown): Map<string, Set<number>> {
  const rows = new Map<string, Set<number>>();
  if (!Array.isArray(explanation)) return rows;
  for (const e of explanation as TraceEvent[]) {
    const file = e.Location?.file;
    const row = e.Location?.row;
    if (e.Op !== 'Exit' || !file || row === undefined) continue;
    rows.set(file, (rows.get(file) ?? new Set()).add(row));
  }
  return rows;
}

export type Provenance = { ok: true; fired: Set<RuleEntry> } | { ok: false; why: string };

/**
 * Runs the trace. `root` is the checkout the index's paths are relative to; `data` the data the
 * bundle evaluated with (the cluster's organisation in it, when --cluster); `code` the code the
 * engine decided, which the trace must reproduce before it is believed.
 */
export function fireTrace(o: { root: string; rules: readonly RuleEntry[]; data: unknown; input: PolicyInput; code: string; opa?: string }): Provenance {
  const opa = o.opa ?? process.env.SLUICE_OPA ?? (existsSync(join(o.root, '.tools', 'bin', 'opa')) ? join(o.root, '.tools', 'bin', 'opa') : 'opa');
  const dirs = [...new Set(o.rules.map((r) => dirname(r.file)))];
  if (!dirs.every((d) => existsSync(join(o.root, d)))) return { ok: false, why: 'the indexed sources are not here' };
  const work = mkdtempSync(join(tmpdir(), 'sluice-trace-'));
  try {
    writeFileSync(join(work, 'data.json'), JSON.stringify(o.data ?? {}));
    writeFileSync(join(work, 'input.json'), JSON.stringify(o.input));
    const args = ['eval', '--format', 'json', '--explain', 'full', '--ignore', '*_test.rego', '-d', join(work, 'data.json'), ...dirs.flatMap((d) => ['-d', d]), '-i', join(work, 'input.json'), 'data.sluice.decision.code'];
    const res = spawnSync(opa, args, { cwd: o.root, encoding: 'utf8', timeout: 20_000, maxBuffer: 256 * 1024 * 1024 });
    if (res.error || res.status !== 0) return { ok: false, why: `opa eval did not run (${res.error?.message ?? res.stderr.trim().split('\n')[0] ?? `exit ${res.status}`})` };
    const out = JSON.parse(res.stdout) as { result?: { expressions?: { value?: unknown }[] }[]; explanation?: unknown };
    const traced = out.result?.[0]?.expressions?.[0]?.value;
    if (traced !== o.code) return { ok: false, why: `the trace over the sources decided ${String(traced)}, not ${o.code}` };
    const rows = exitedRows(out.explanation);
    return { ok: true, fired: new Set(o.rules.filter((r) => rows.get(r.file)?.has(r.start))) };
  } catch (err) {
    return { ok: false, why: (err as Error).message };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
