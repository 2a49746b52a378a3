// Compares what sluice rendered with what the API server stored. Both are plain JSON; the only
// representation the server rewrites is a resource quantity ("0.5" is stored as "500m"), so
// quantities are compared by value. Reports the first differing field so a deny can name it.

const QUANTITY_SUFFIX: Record<string, number> = {
  '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/** The numeric value of a Kubernetes quantity, or undefined when it is not one. */
export function quantityValue(q: string): number | undefined {
  const m = /^([+-]?[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/.exec(q);
  if (!m) return undefined;
  return Number(m[1]) * (QUANTITY_SUFFIX[m[2] ?? ''] ?? NaN);
}

const QUANTITY_PARENTS = new Set(['requests', 'limits']);

/** `last` is the field's own key, `parent` its parent's (the last two segments of its path). */
function isQuantityField(parent: string | undefined, last: string | undefined): boolean {
  return last === 'sizeLimit' || QUANTITY_PARENTS.has(parent ?? '');
}

/** Stands for an array index as a node's key: never a quantity field nor a quantity parent. */
const INDEX = '[]';

/**
 * The segments below this node down to the first difference, innermost first (so each level pushes
 * one), or undefined when equal. The guard compares the whole rendered sidecar on every review of
 * an injected pod: nothing is allocated for the fields that are equal (an index's `[i]` segment is
 * made only for the one that is not).
 */
function difference(actual: unknown, expected: unknown, parent: string | undefined, last: string | undefined): string[] | undefined {
  if (actual === expected) return undefined;
  const ta = typeof actual;
  if (ta !== typeof expected) return [];
  if (ta === 'string') {
    if (!isQuantityField(parent, last)) return [];
    const a = quantityValue(actual as string);
    return a !== undefined && a === quantityValue(expected as string) ? undefined : [];
  }
  // Unequal primitives of one type (NaN included), or one of them null.
  if (ta !== 'object' || actual === null || expected === null) return [];
  const isArray = Array.isArray(actual);
  if (isArray !== Array.isArray(expected)) return [];
  if (isArray) {
    const a = actual as unknown[];
    const e = expected as unknown[];
    if (a.length !== e.length) return [];
    for (let i = 0; i < a.length; i++) {
      const d = difference(a[i], e[i], last, INDEX);
      if (d !== undefined) {
        d.push(`[${i}]`);
        return d;
      }
    }
    return undefined;
  }
  const a = actual as Record<string, unknown>;
  const e = expected as Record<string, unknown>;
  // The keys of both, the actual's first, each once.
  for (const k of Object.keys(a)) {
    const d = difference(a[k], e[k], last, k);
    if (d !== undefined) {
      d.push(k);
      return d;
    }
  }
  for (const k of Object.keys(e)) {
    if (Object.prototype.propertyIsEnumerable.call(a, k)) continue;
    const d = difference(a[k], e[k], last, k);
    if (d !== undefined) {
      d.push(k);
      return d;
    }
  }
  return undefined;
}

/** Path (dotted, with [i] for arrays) of the first difference, or undefined when equal. */
export function firstDifference(actual: unknown, expected: unknown, path: string[] = []): string | undefined {
  const d = difference(actual, expected, path[path.length - 2], path[path.length - 1]);
  return d === undefined ? undefined : [...path, ...d.reverse()].join('.').replace(/\.\[/g, '[');
}

export function sameSpec(actual: unknown, expected: unknown): boolean {
  return difference(actual, expected, undefined, undefined) === undefined;
}
