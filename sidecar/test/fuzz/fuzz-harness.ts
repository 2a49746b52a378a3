// The fuzzing suite's harness around fast-check: fixed seeds and run counts (the same inputs on
// every machine, bounded time in `make test`), replay of saved regression cases first, and a
// failure saved as a new regression case (testdata/<target>/<hash>.json) before the test fails,
// so a counterexample found once is replayed on every later run. Each target reports its size
// (runs, replayed cases) and time; SLUICE_FUZZ_SCALE multiplies the runs for a longer local
// session, SLUICE_FUZZ_SEED picks other inputs (both leave `make test` as it is when unset).
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';

export const TESTDATA = join(import.meta.dirname, 'testdata');
const SEED = process.env.SLUICE_FUZZ_SEED ? Number(process.env.SLUICE_FUZZ_SEED) : 0x5111ce;
const SCALE = process.env.SLUICE_FUZZ_SCALE ? Number(process.env.SLUICE_FUZZ_SCALE) : 1;

/** Buffers survive the trip through JSON as {"$hex": …}. */
function replacer(_key: string, value: unknown): unknown {
  if (value && typeof value === 'object' && (value as { type?: string }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data)) {
    return { $hex: Buffer.from((value as { data: number[] }).data).toString('hex') };
  }
  if (value instanceof Uint8Array) return { $hex: Buffer.from(value).toString('hex') };
  return value;
}

function reviver(_key: string, value: unknown): unknown {
  if (value && typeof value === 'object' && typeof (value as { $hex?: unknown }).$hex === 'string') return Buffer.from((value as { $hex: string }).$hex, 'hex');
  return value;
}

export function encodeCase(value: unknown): string {
  return JSON.stringify(value, replacer, 1);
}

export function decodeCase<T>(text: string): T {
  return JSON.parse(text, reviver) as T;
}

/** The saved regression cases of a target (their inputs), oldest first by file name. */
export function regressionCases<T>(target: string): { file: string; input: T }[] {
  const dir = join(TESTDATA, target);
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  } catch {
    return [];
  }
  return files.map((file) => ({ file, input: decodeCase<{ input: T }>(readFileSync(join(dir, file), 'utf8')).input }));
}

export function saveRegressionCase(target: string, input: unknown, error: string): string {
  const dir = join(TESTDATA, target);
  mkdirSync(dir, { recursive: true });
  const text = encodeCase({ input });
  const file = `${createHash('sha256').update(text).digest('hex').slice(0, 12)}.json`;
  writeFileSync(join(dir, file), encodeCase({ input, found: { seed: SEED, error: error.slice(0, 2000) } }));
  return join('sidecar/test/fuzz/testdata', target, file);
}

export interface FuzzReport {
  target: string;
  runs: number;
  replayed: number;
  ms: number;
  cpuMs: number;
}

export const reports: FuzzReport[] = [];

/** Prints the size and time of every target run in this file (one line each, then a total). */
export function printReports(): void {
  const lines = reports.map((r) => `fuzz ${r.target.padEnd(22)} ${String(r.runs).padStart(5)} runs + ${r.replayed} regression cases  ${r.ms.toFixed(0).padStart(6)} ms wall  ${r.cpuMs.toFixed(0).padStart(6)} ms cpu`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

/**
 * Replays the target's regression cases, then checks `property` on `runs` generated inputs with
 * a fixed seed. A failing input is saved as a regression case and the error names the file.
 */
export async function fuzz<T>(target: string, arbitrary: fc.Arbitrary<T>, runs: number, property: (input: T) => void | Promise<void>): Promise<FuzzReport> {
  const started = performance.now();
  const cpu = process.cpuUsage();
  const cases = regressionCases<T>(target);
  for (const c of cases) {
    try {
      await property(c.input);
    } catch (err) {
      throw new Error(`fuzz ${target}: regression case ${c.file} fails again: ${(err as Error).message}`, { cause: err });
    }
  }
  const numRuns = Math.max(1, Math.round(runs * SCALE));
  const details = await fc.check(
    fc.asyncProperty(arbitrary, async (input) => {
      await property(input);
    }),
    { seed: SEED, numRuns, endOnFailure: false },
  );
  if (details.failed) {
    const input = details.counterexample?.[0];
    const message = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
    const file = input === undefined ? '(no counterexample)' : saveRegressionCase(target, input, message);
    throw new Error(`fuzz ${target}: failed after ${details.numRuns} runs (seed ${SEED}, path ${details.counterexamplePath}); shrunk counterexample saved as ${file}:\n${message}`);
  }
  const used = process.cpuUsage(cpu);
  const report = { target, runs: numRuns, replayed: cases.length, ms: performance.now() - started, cpuMs: (used.user + used.system) / 1000 };
  reports.push(report);
  return report;
}

/** Byte-level mutations of a seed input: flips, insertions of interesting bytes, cuts, repeats. */
export function mutated(seed: fc.Arbitrary<Buffer>, interesting: readonly number[] = [0x00, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x22, 0x2c, 0x3a, 0x3b, 0x7f, 0x80, 0xff]): fc.Arbitrary<Buffer> {
  const edit = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), byte: fc.constantFrom(...interesting) }),
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), byte: fc.nat({ max: 8 }) }),
    fc.record({ kind: fc.constant('cut' as const), at: fc.nat(), byte: fc.constant(0) }),
  );
  return fc.tuple(seed, fc.array(edit, { maxLength: 4 })).map(([buf, edits]) => {
    let b = Buffer.from(buf);
    for (const e of edits) {
      if (b.length === 0) break;
      const at = e.at % (b.length + 1);
      if (e.kind === 'flip' && at < b.length) b[at] = e.byte;
      else if (e.kind === 'insert') b = Buffer.concat([b.subarray(0, at), Buffer.from([e.byte]), b.subarray(at)]);
      else if (e.kind === 'delete') b = Buffer.concat([b.subarray(0, at), b.subarray(at + e.byte)]);
      else if (e.kind === 'cut') b = b.subarray(0, at);
    }
    return b;
  });
}
