// The admission path's hand-written shape checks (admission-review.ts) against the zod schemas
// they stand in for: over a valid review and pod and every field of them set to each kind of bad
// value, parseAdmissionReview and podOf accept exactly what the schema accepts, return what it
// returns and refuse with its words; and a valid review is read in place, not copied.
import { describe, expect, test } from '@jest/globals';
import { AdmissionReview, PodShape, parseAdmissionReview, podOf } from '../src/admission-review.ts';
import { describeIssues } from '../../api/src/index.ts';
import { loadPod } from '../../testkit/webhook/fixtures.ts';
import { admissionReview } from './support/reviews.ts';

type Outcome = { ok: unknown } | { error: string };

function outcome(fn: () => unknown): Outcome {
  try {
    return { ok: fn() };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

/** A deep copy with the value at `path` replaced (`DELETE` removes the key). */
const DELETE = Symbol('delete');
function withValue(base: unknown, path: (string | number)[], value: unknown): unknown {
  if (!path.length) return value === DELETE ? undefined : value;
  const copy = structuredClone(base) as Record<string | number, unknown>;
  let at = copy;
  for (const key of path.slice(0, -1)) at = (at[key] ??= {}) as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (value === DELETE) delete at[last];
  else at[last] = value;
  return copy;
}

/** Each kind of value a field could hold, JSON's and a few only code can make. */
function badValues(): unknown[] {
  const sparse: unknown[] = [];
  sparse[1] = { name: 'x' };
  return [
    DELETE, null, '', 'x', 0, 5, true, false, [], ['x'], [{}], [{ name: '' }], [{ name: 'c' }], {}, { name: 'c' }, sparse,
    JSON.parse('{"__proto__": {"name": "c"}, "name": "c"}'), { constructor: 'x', name: 'c' }, Object.create(null), new Date(0),
    { group: '', version: 'v1', kind: 'Pod', resource: 'pods' }, 'CREATE', 'PATCH',
  ];
}

const REVIEW_PATHS: (string | number)[][] = [
  [], ['apiVersion'], ['kind'], ['request'], ['request', 'uid'], ['request', 'kind'], ['request', 'kind', 'group'], ['request', 'kind', 'version'],
  ['request', 'kind', 'kind'], ['request', 'resource'], ['request', 'resource', 'resource'], ['request', 'subResource'], ['request', 'name'],
  ['request', 'namespace'], ['request', 'operation'], ['request', 'userInfo'], ['request', 'userInfo', 'username'], ['request', 'userInfo', 'uid'],
  ['request', 'userInfo', 'groups'], ['request', 'userInfo', 'groups', 0], ['request', 'dryRun'], ['request', 'object'], ['request', 'extra'],
];

const POD_PATHS: (string | number)[][] = [
  [], ['metadata'], ['metadata', 'name'], ['metadata', 'namespace'], ['metadata', 'labels'], ['metadata', 'labels', 'sluice.io/inject'],
  ['metadata', 'labels', 'constructor'], ['metadata', 'annotations'], ['metadata', 'annotations', 'a'], ['spec'], ['spec', 'containers'],
  ['spec', 'containers', 0], ['spec', 'containers', 0, 'name'], ['spec', 'containers', 1], ['spec', 'initContainers'], ['spec', 'ephemeralContainers'],
  ['spec', 'volumes'], ['spec', 'volumes', 0], ['spec', 'volumes', 0, 'name'], ['spec', 'extra'],
];

const bySchema = {
  review(value: unknown): Outcome {
    const parsed = AdmissionReview.safeParse(value);
    return parsed.success ? { ok: parsed.data.request } : { error: `malformed AdmissionReview: ${describeIssues(parsed.error).join('; ')}` };
  },
  pod(value: unknown): Outcome {
    const parsed = PodShape.safeParse(value);
    return parsed.success ? { ok: parsed.data } : { error: `malformed AdmissionReview: request.object is not a Pod: ${describeIssues(parsed.error).join('; ')}` };
  },
};

describe('the hand-written checks decide as the schemas do', () => {
  // With every optional list and map present, so each has a valid value to spoil.
  const plainPod = loadPod('plain-pod.yaml');
  const pod = {
    ...plainPod,
    metadata: { ...plainPod.metadata, annotations: { a: 'b' } },
    spec: { ...plainPod.spec!, initContainers: [{ name: 'init' }], ephemeralContainers: [{ name: 'debug' }] },
  };
  const review = admissionReview(pod, { uid: 'r-1' });

  test('every field of an AdmissionReview, each kind of value', () => {
    let refused = 0;
    for (const path of REVIEW_PATHS) {
      for (const value of badValues()) {
        const candidate = withValue(review, path, value);
        const expected = bySchema.review(candidate);
        if ('error' in expected) refused++;
        expect({ path, value, got: outcome(() => parseAdmissionReview(candidate)) }).toEqual({ path, value, got: expected });
      }
    }
    expect(refused).toBeGreaterThan(200); // the variants do reach the refusals
  });

  test('every field of a Pod, each kind of value', () => {
    let refused = 0;
    for (const path of POD_PATHS) {
      for (const value of badValues()) {
        const candidate = withValue(pod, path, value);
        const expected = bySchema.pod(candidate);
        if ('error' in expected) refused++;
        expect({ path, value, got: outcome(() => podOf(candidate, 'object')) }).toEqual({ path, value, got: expected });
      }
    }
    expect(refused).toBeGreaterThan(200);
  });

  test("an own __proto__ key (which zod's copy drops) leaves the result as the schema has it", () => {
    const text = JSON.stringify(review).replace('"labels":{', '"labels":{"__proto__":{"sluice.io/inject":"true"},');
    const body = JSON.parse(text) as { request: { object: unknown } };
    const fromSchema = bySchema.pod(body.request.object);
    expect(fromSchema).toHaveProperty('ok');
    const got = podOf(body.request.object, 'object');
    expect(got).toEqual((fromSchema as { ok: unknown }).ok);
    expect(Object.hasOwn(got.metadata.labels!, '__proto__')).toBe(false);
  });
});

describe('a valid review is read in place', () => {
  test('parseAdmissionReview returns the request itself and podOf the pod itself (no copy per review)', () => {
    const pod = loadPod('plain-pod.patched.yaml');
    const body = JSON.parse(JSON.stringify(admissionReview(pod))) as { request: { object: unknown } };
    const request = parseAdmissionReview(body);
    expect(request).toBe(body.request);
    expect(podOf(request.object, 'object')).toBe(body.request.object);
  });
});
