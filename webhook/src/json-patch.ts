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
 * of every patch's serialisation. A frozen value is taken to be frozen all the way down (deepFreeze,
 * api/src/validation.ts: the config and everything rendered from it); everything else — the pod's
 * own values, the ops — is serialised afresh each time.
 */
export function patchJson(ops: readonly JsonPatchOp[]): string {
  return json(ops) ?? 'null';
}

const frozenJson = new WeakMap<object, string>();

function json(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null) return JSON.stringify(v);
  if (Object.isFrozen(v)) {
    let text = frozenJson.get(v);
    if (text === undefined) {
      text = JSON.stringify(v);
      frozenJson.set(v, text);
    }
    return text;
  }
  if (Array.isArray(v)) {
    let out = '[';
    for (let i = 0; i < v.length; i++) out += `${i ? ',' : ''}${json(v[i]) ?? 'null'}`;
    return `${out}]`;
  }
  // Only a plain object's own keys are what JSON.stringify writes (no toJSON, no class).
  if (Object.getPrototypeOf(v) !== Object.prototype || typeof (v as { toJSON?: unknown }).toJSON === 'function') return JSON.stringify(v);
  let out = '{';
  let first = true;
  for (const [k, value] of Object.entries(v)) {
    const text = typeof value === 'function' || typeof value === 'symbol' ? undefined : json(value);
    if (text === undefined) continue;
    out += `${first ? '' : ','}${JSON.stringify(k)}:${text}`;
    first = false;
  }
  return `${out}}`;
}
