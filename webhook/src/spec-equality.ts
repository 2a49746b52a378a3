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

function isQuantityField(path: readonly string[]): boolean {
  const last = path[path.length - 1];
  return last === 'sizeLimit' || QUANTITY_PARENTS.has(path[path.length - 2] ?? '');
}

function typeOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

/** Path (dotted, with [i] for arrays) of the first difference, or undefined when equal. */
export function firstDifference(actual: unknown, expected: unknown, path: string[] = []): string | undefined {
  const at = () => path.join('.').replace(/\.\[/g, '[');
  if (typeof actual === 'string' && typeof expected === 'string' && actual !== expected && isQuantityField(path)) {
    const a = quantityValue(actual);
    return a !== undefined && a === quantityValue(expected) ? undefined : at();
  }
  if (typeOf(actual) !== typeOf(expected)) return at();
  if (Array.isArray(actual)) {
    const e = expected as unknown[];
    if (actual.length !== e.length) return at();
    for (let i = 0; i < actual.length; i++) {
      const d = firstDifference(actual[i], e[i], [...path, `[${i}]`]);
      if (d !== undefined) return d;
    }
    return undefined;
  }
  if (actual && typeof actual === 'object') {
    const a = actual as Record<string, unknown>;
    const e = expected as Record<string, unknown>;
    const keys = new Set([...Object.keys(a), ...Object.keys(e)]);
    for (const k of keys) {
      const d = firstDifference(a[k], e[k], [...path, k]);
      if (d !== undefined) return d;
    }
    return undefined;
  }
  return actual === expected ? undefined : at();
}

export function sameSpec(actual: unknown, expected: unknown): boolean {
  return firstDifference(actual, expected) === undefined;
}
