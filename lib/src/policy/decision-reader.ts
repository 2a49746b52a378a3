// Turns the policy's result set (JSON text from the WASM module) into a Decision that passed the
// api/ schema. A policy produces few distinct decisions, so the text of each one that validated
// is remembered with the validated decision: the same bytes again skip the schema walk but still
// yield a fresh object (a deep copy: callers may change theirs). It must never let a result through that the schema would refuse: only
// byte-identical text that validated before is taken from the cache.
import { Decision, describeIssues } from '../../../api/src/index.ts';

/** `json`: the validated decision's JSON text, kept (and so safe to keep elsewhere) when the result was small enough. */
export type DecisionRead = { decision: Decision; json?: string; why?: undefined } | { decision?: undefined; json?: undefined; why: string };

// Bounded: a policy that interpolates request data into its reasons makes one entry per distinct
// text; past the bound the cache starts over rather than grow with what the agent sends.
const MAX_ENTRIES = 1024;
// A result larger than this (a reason echoing a URL or body) is validated each time, not kept:
// the bound above then also bounds the bytes held (at most about 1024 × 4 KiB × 2).
const MAX_CACHED_TEXT = 4096;

export class DecisionReader {
  /** result-set text → the decision as the schema returned it (its key order included) and its JSON; never handed out itself */
  readonly #validated = new Map<string, { decision: Decision; json: string }>();

  read(resultSet: string): DecisionRead {
    const known = this.#validated.get(resultSet);
    if (known !== undefined) return { decision: copyDecision(known.decision), json: known.json };
    let raw: unknown;
    try {
      raw = JSON.parse(resultSet) as unknown;
    } catch {
      return { why: 'policy result is not JSON' };
    }
    const result = Array.isArray(raw) && raw.length === 1 ? (raw[0] as { result?: unknown } | null)?.result : undefined;
    const parsed = Decision.safeParse(result);
    if (!parsed.success) return { why: result === undefined ? 'policy produced no decision' : describeIssues(parsed.error).join('; ') };
    if (resultSet.length > MAX_CACHED_TEXT) return { decision: parsed.data };
    if (this.#validated.size >= MAX_ENTRIES) this.#validated.clear();
    const json = JSON.stringify(parsed.data);
    this.#validated.set(resultSet, { decision: JSON.parse(json) as Decision, json });
    return { decision: parsed.data, json };
  }
}

/** A deep copy of a decision (JSON data: objects, arrays, scalars), about four times cheaper than parsing its text again. */
export function copyDecision(decision: Decision): Decision {
  return copyJson(decision) as Decision;
}

function copyJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(copyJson);
  if (value === null || typeof value !== 'object') return value;
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const v = copyJson((value as Record<string, unknown>)[key]);
    // A key named __proto__ (a credential parameter may be called anything) must stay a property.
    if (key === '__proto__') Object.defineProperty(copy, key, { value: v, enumerable: true, writable: true, configurable: true });
    else copy[key] = v;
  }
  return copy;
}
