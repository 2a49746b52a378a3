// RFC 6902 operations as the injector emits them, and RFC 6901 pointers built from path segments.
export interface JsonPatchOp {
  op: 'add' | 'remove' | 'replace';
  path: string;
  value?: unknown;
}

/** A JSON pointer from raw segments: `~` and `/` inside a segment are escaped. */
export function pointer(...segments: readonly (string | number)[]): string {
  // Called for every op of every admission review: most segments need no escaping, so skip the
  // two regex passes for those (this was half of planInjection's time).
  let out = '';
  for (const segment of segments) out += `/${escapeSegment(String(segment))}`;
  return out;
}

function escapeSegment(s: string): string {
  if (!s.includes('~') && !s.includes('/')) return s;
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * JSON.stringify(ops), byte for byte, with the text of each frozen value kept: the injector's
 * containers, volumes and env come from renderInjection, deep-frozen once per config, and were most
 * of every patch's serialisation (the two init containers alone, 4 KB of JSON). A frozen value is
 * taken to be frozen all the way down (deepFreeze, api/src/validation.ts: the config and everything
 * rendered from it). Any other op — the pod's own values, small objects made per review — is left
 * to JSON.stringify, which is quicker than any walk in JavaScript.
 */
export function patchJson(ops: readonly JsonPatchOp[]): string {
  let out = '[';
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    const value = op.value === undefined ? undefined : keptJson(op.value);
    out += i ? ',' : '';
    out += value !== undefined && isOpPathValue(op) ? `{"op":${JSON.stringify(op.op)},"path":${JSON.stringify(op.path)},"value":${value}}` : JSON.stringify(op);
  }
  return `${out}]`;
}

/** Exactly the keys op, path, value in that order (what JSON.stringify of the op would write). */
function isOpPathValue(op: JsonPatchOp): boolean {
  let i = 0;
  for (const k in op) {
    if (k !== (i === 0 ? 'op' : i === 1 ? 'path' : 'value')) return false;
    i++;
  }
  return i === 3;
}

const frozenJson = new WeakMap<object, string>();

/** The kept text of a frozen plain value, or of an array of them; undefined for anything else. */
function keptJson(v: unknown): string | undefined {
  if (!Array.isArray(v)) return frozenText(v);
  const kept = frozenJson.get(v);
  if (kept !== undefined) return kept;
  let out = '[';
  for (let i = 0; i < v.length; i++) {
    const text = frozenText(v[i]);
    if (text === undefined) return undefined;
    out += i ? `,${text}` : text;
  }
  return `${out}]`;
}

function frozenText(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  // The kept text first: Object.isFrozen is a slow runtime call on an object that is not frozen.
  let text = frozenJson.get(v);
  if (text !== undefined) return text;
  // toJSON would be called with the key it sits under: not a value to keep (none of sluice's has one).
  if (!Object.isFrozen(v) || typeof (v as { toJSON?: unknown }).toJSON === 'function') return undefined;
  text = JSON.stringify(v);
  frozenJson.set(v, text);
  return text;
}
