// `-o json|yaml|wide` as kubectl users expect it: one validator for the flag and one printer for
// machine-readable output, so every verb that prints a list offers the same formats with the same
// spelling. Pure functions over data; printing is the caller's.
import type { Command } from 'commander';
import { stringify as toYaml } from 'yaml';
import { CliError, EXIT_USAGE } from './errors.ts';

export type OutputFormat = 'text' | 'wide' | 'json' | 'yaml';

const ALL_FORMATS: readonly OutputFormat[] = ['text', 'wide', 'json', 'yaml'];

/** Adds `-o, --output` accepting the given formats (text is the table). */
export function addOutputOption(cmd: Command, formats: readonly OutputFormat[] = ALL_FORMATS): Command {
  return cmd.option('-o, --output <format>', `output format: ${formats.join(', ')}`, 'text');
}

export function parseOutput<F extends OutputFormat = OutputFormat>(value: string | undefined, formats: readonly F[] = ALL_FORMATS as readonly F[]): F {
  const v = value ?? 'text';
  // kubectl spells the table "" or omits -o; accept "table" as text too.
  const normal = v === 'table' ? 'text' : v;
  if (!(formats as readonly string[]).includes(normal)) throw new CliError(`--output ${v}: expected ${formats.join(', ')}`, EXIT_USAGE);
  return normal as F;
}

/** JSON (two-space indent, trailing newline) or YAML of any plain data. */
export function formatData(data: unknown, format: 'json' | 'yaml'): string {
  return format === 'json' ? `${JSON.stringify(data, null, 2)}\n` : toYaml(data, { lineWidth: 0 });
}

/** Columns padded to the widest cell, three spaces apart, upper-case headers (kubectl's look). */
export function formatTable(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [head, ...rows];
  const widths = head.map((_h, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('   ')).join('\n') + '\n';
}
