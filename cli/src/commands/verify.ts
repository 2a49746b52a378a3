// `kubectl sluice verify SESSION`: reads every stored event of a session and checks its hash chain
// (edits, gaps, reordering, forks, truncation). Exit 0: intact; exit 1: broken, naming the first
// bad seq; exit 2: could not check (bad flags, unreadable source, no events for the session). Read-only.
import type { Command } from 'commander';
import { verifyChain } from '../../../lib/src/audit/chain.ts';
import type { VerifyOptions, VerifyResult } from '../../../lib/src/audit/chain.ts';
import { collectSession } from '../../../lib/src/audit/session-source.ts';
import type { StoredItem } from '../../../lib/src/audit/session-source.ts';
import { CliError, EXIT_FAILED, EXIT_USAGE } from '../errors.ts';
import type { Io } from '../program.ts';
import { addSourceOptions, sourceFailure, sourceFromFlags } from './replay.ts';
import type { SourceFlags } from './replay.ts';

export interface VerifyFlags extends SourceFlags {
  requireEnd?: boolean;
  headSeq?: string;
  headHash?: string;
  output: string;
}

function verifyOptions(session: string, flags: VerifyFlags): VerifyOptions {
  const opts: VerifyOptions = { session, requireEnd: flags.requireEnd ?? false };
  if ((flags.headSeq === undefined) !== (flags.headHash === undefined)) throw new CliError('--head-seq and --head-hash go together');
  if (flags.headSeq !== undefined && flags.headHash !== undefined) {
    const seq = Number(flags.headSeq);
    if (!Number.isInteger(seq) || seq < 0) throw new CliError(`--head-seq ${flags.headSeq}: expected a non-negative integer`);
    if (!/^[0-9a-f]{64}$/.test(flags.headHash)) throw new CliError('--head-hash: expected 64 lower-case hex digits');
    opts.head = { seq, hash: flags.headHash };
  }
  return opts;
}

/** The verdict as one line of text (pure). */
export function describeVerdict(session: string, result: VerifyResult): string {
  if (!result.ok) return `session ${session}: chain broken at seq ${result.fault.seq}: ${result.fault.code}: ${result.fault.message} (${result.verified} events verified before it)`;
  const dup = result.duplicates ? `, ${result.duplicates} duplicate deliveries ignored` : '';
  const end = result.ended ? 'ended' : 'open (no session_end yet)';
  return `session ${session}: ${result.count} events, seq 0..${result.lastSeq}, chain intact, ${end}${dup}; head ${result.lastHash}`;
}

export async function verifyCommand(session: string, flags: VerifyFlags, io: Io): Promise<void> {
  if (flags.output !== 'text' && flags.output !== 'json') throw new CliError(`--output ${flags.output}: expected text or json`);
  const source = sourceFromFlags(flags);
  const opts = verifyOptions(session, flags);
  let items: StoredItem[] = [];
  try {
    items = await collectSession(source, { session });
  } catch (err) {
    sourceFailure(err);
  }
  // Nothing to check is not a broken chain: exit 2 (could not check), like an unreadable source.
  if (!items.length) throw new CliError(`session ${session}: no events found in the source; check the session id (kubectl sluice sessions lists them) and the source`, EXIT_USAGE);
  const result = verifyChain(
    items.map((i) => i.value),
    opts,
  );
  if (flags.output === 'json') io.out(`${JSON.stringify({ session, ...result })}\n`);
  if (!result.ok) throw new CliError(describeVerdict(session, result), EXIT_FAILED);
  if (flags.output === 'text') io.out(`ok: ${describeVerdict(session, result)}\n`);
}

export function registerVerifyCommand(program: Command, io: Io): void {
  const cmd = program
    .command('verify')
    .description('check a session\'s audit hash chain; exits 1 naming the first bad seq')
    .argument('<session>', 'session id (one per pod start)')
    .option('--require-end', 'fail unless the session ended (its last event is session_end)')
    .option('--head-seq <seq>', 'a known head (seq) the chain must reach, e.g. from the sidecar')
    .option('--head-hash <hash>', 'the hash of the event at --head-seq')
    .option('-o, --output <format>', 'text or json', 'text');
  addSourceOptions(cmd).action((session: string, flags: VerifyFlags) => verifyCommand(session, flags, io));
}
