// SluicePolicy (sluice.io/v1alpha1, cluster-scoped): where the organisation model and the
// sidecars' runtime settings live in a cluster, in objects agents cannot write (RBAC plus the
// sluice-policy-guard admission policy). The sidecar list-watches them and hot-reloads; the chart
// renders the `default` object from Helm values; `kubectl sluice policy eval --cluster` reads them
// through this contract. `effectiveSluicePolicy` is the one merge every reader uses, so a sidecar and
// the CLI can never disagree on what applies to a namespace. Pure: no I/O, no clock.
//
// Precedence (docs/policy.md, "The organisation in the cluster"):
//   1. the object named `default` is the base: it must carry `spec.organisation` and applies to
//      every namespace (it may carry `sidecar` settings and its organisation's `namespaces` map);
//   2. every other object is a binding: it must name the namespaces it applies to
//      (`appliesTo.namespaces` patterns and/or `appliesTo.namespaceSelector`, both must match when
//      both are set) and may add `namespace` (an organisation NamespaceOverride: every list is
//      appended) and `sidecar` settings; it must not carry an `organisation`;
//   3. matching bindings apply in ascending `priority`, then by name: organisation additions are
//      a union (order does not matter), sidecar settings deep-merge (objects key by key; lists and
//      scalars are replaced), so the highest priority (then the last name) wins a conflict.
// Any object that is invalid and could apply to the namespace makes the whole result an error: a
// reader keeps its last good policy rather than run on a partial one (fail closed).
// It must never hold a secret value: credentials are named, the sidecar resolves them.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Catalogued } from './codes.ts';
import { GROUP } from './labels.ts';
import { NamePattern, NamespaceOverride, Organisation } from './organisation.ts';
import type { Organisation as OrganisationT, NamespaceOverride as NamespaceOverrideT } from './organisation.ts';
import { describeIssues } from './validation.ts';

export const SLUICE_POLICY_GROUP = GROUP;
export const SLUICE_POLICY_VERSION = 'v1alpha1';
export const SLUICE_POLICY_API_VERSION = `${GROUP}/${SLUICE_POLICY_VERSION}`;
export const SLUICE_POLICY_KIND = 'SluicePolicy';
export const SLUICE_POLICY_PLURAL = 'sluicepolicies';
export const SLUICE_POLICY_CRD_NAME = `${SLUICE_POLICY_PLURAL}.${GROUP}`;
/** The base object's name: the chart renders it from Helm values. */
export const SLUICE_POLICY_DEFAULT_NAME = 'default';
/** The API path of the collection (cluster-scoped). */
export const SLUICE_POLICY_PATH = `/apis/${GROUP}/${SLUICE_POLICY_VERSION}/${SLUICE_POLICY_PLURAL}`;

const LabelKey = z.string().min(1).max(317);
export const LabelSelectorRequirement = z
  .object({
    key: LabelKey,
    operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
    values: z.array(z.string()).optional(),
  })
  .strict()
  .refine((r) => ((r.operator === 'In' || r.operator === 'NotIn') ? (r.values?.length ?? 0) > 0 : (r.values?.length ?? 0) === 0), {
    message: 'In and NotIn need values, Exists and DoesNotExist take none',
  });

/** A Kubernetes LabelSelector over the namespace's labels (an empty selector matches every namespace). */
export const LabelSelector = z
  .object({
    matchLabels: z.record(LabelKey, z.string()).optional(),
    matchExpressions: z.array(LabelSelectorRequirement).optional(),
  })
  .strict();

export const SluicePolicyAppliesTo = z
  .object({
    namespaces: z.array(NamePattern).min(1).optional().describe('namespace names (exact, prefix* or *)'),
    namespaceSelector: LabelSelector.optional().describe("a label selector over the namespace's labels"),
  })
  .strict()
  .refine((a) => a.namespaces !== undefined || a.namespaceSelector !== undefined, { message: 'name namespaces, a namespaceSelector or both' });

/**
 * Sidecar runtime settings, the former per-namespace `sluice-sidecar` ConfigMap's sidecar.yaml
 * (docs/configuration.md). The sidecar validates them against its own schema; here they are an
 * open mapping, minus what only the pod itself may say.
 */
export const SluiceSidecarSettings = z
  .record(z.string(), z.unknown())
  .refine((s) => !('pod' in s), { message: 'pod is the pod\u2019s own identity (downward API), not a setting' });

export const SluicePolicySpec = z
  .object({
    organisation: Organisation.optional().describe('the organisation model (api/src/organisation.ts); only in the object named default'),
    appliesTo: SluicePolicyAppliesTo.optional().describe('which namespaces a binding applies to; never on the default object'),
    priority: z.number().int().min(-1000).max(1000).default(0).describe('bindings apply in ascending priority, then by name; the last wins a settings conflict'),
    namespace: NamespaceOverride.optional().describe('organisation additions for the namespaces it applies to (every list appended)'),
    sidecar: SluiceSidecarSettings.optional().describe('sidecar runtime settings (deep-merged; lists and scalars replaced)'),
  })
  .strict();

export type LabelSelector = z.infer<typeof LabelSelector>;
export type SluicePolicyAppliesTo = z.infer<typeof SluicePolicyAppliesTo>;
export type SluiceSidecarSettings = z.infer<typeof SluiceSidecarSettings>;
export type SluicePolicySpec = z.infer<typeof SluicePolicySpec>;
/** The spec as written (defaults not applied), e.g. in a manifest. */
export type SluicePolicySpecInput = z.input<typeof SluicePolicySpec>;

export interface SluicePolicyMetadata {
  name?: string;
  resourceVersion?: string;
  generation?: number;
  uid?: string;
  [k: string]: unknown;
}

export interface SluicePolicy {
  apiVersion: typeof SLUICE_POLICY_API_VERSION;
  kind: typeof SLUICE_POLICY_KIND;
  metadata: SluicePolicyMetadata;
  spec: SluicePolicySpecInput;
}

/** The namespace a policy is computed for: its name and labels. */
export interface PolicyNamespace {
  name: string;
  labels?: Readonly<Record<string, string>> | undefined;
}

export type SluicePolicyErrorCode = Catalogued<
  | 'sluicepolicy.missing_default'
  | 'sluicepolicy.invalid'
  | 'sluicepolicy.organisation_outside_default'
  | 'sluicepolicy.default_has_applies_to'
  | 'sluicepolicy.binding_without_applies_to'
>;

export interface SluicePolicyProblem {
  /** metadata.name of the object ('' when it has none). */
  object: string;
  code: SluicePolicyErrorCode;
  message: string;
}

/** One object that took part in the result, for audit events and `policy explain`. */
export interface SluicePolicySource {
  name: string;
  resourceVersion: string;
  generation: number;
  priority: number;
}

export interface EffectiveSluicePolicy {
  namespace: string;
  /**
   * The organisation as the namespace's sidecar sees it: defaults applied, `namespaces` holding only
   * this namespace's entry (the default object's entry plus every matching binding's additions).
   */
  organisation: OrganisationT;
  /** Sidecar settings, merged; the sidecar validates them. */
  sidecar: Record<string, unknown>;
  /** default first, then the matching bindings in the order they applied. */
  sources: SluicePolicySource[];
  /** sha256 (16 hex) of organisation and settings: equal revisions mean equal effective policy. */
  revision: string;
}

export type EffectiveSluicePolicyResult =
  | { ok: true; policy: EffectiveSluicePolicy; ignored: SluicePolicyProblem[] }
  | { ok: false; problems: SluicePolicyProblem[] };

const ANY_OBJECT = z.object({ metadata: z.object({ name: z.string().optional() }).passthrough().optional(), spec: z.unknown() }).passthrough();

interface Parsed {
  name: string;
  source: SluicePolicySource;
  spec: SluicePolicySpec;
}

function objectName(raw: unknown): string {
  const parsed = ANY_OBJECT.safeParse(raw);
  return parsed.success ? (parsed.data.metadata?.name ?? '') : '';
}

/** Validates one object's spec, including the default/binding rules; never throws. */
export function parseSluicePolicy(raw: unknown): { ok: true; value: Parsed } | { ok: false; problem: SluicePolicyProblem } {
  const name = objectName(raw);
  const outer = ANY_OBJECT.safeParse(raw);
  const problem = (code: SluicePolicyErrorCode, message: string) => ({ ok: false as const, problem: { object: name, code, message } });
  if (!outer.success) return problem('sluicepolicy.invalid', 'not an object with metadata and spec');
  const result = SluicePolicySpec.safeParse(outer.data.spec ?? {});
  if (!result.success) return problem('sluicepolicy.invalid', `spec: ${describeIssues(result.error).join('; ')}`);
  const spec = result.data;
  const isDefault = name === SLUICE_POLICY_DEFAULT_NAME;
  if (isDefault && spec.appliesTo) return problem('sluicepolicy.default_has_applies_to', 'the default object applies to every namespace: remove appliesTo');
  if (isDefault && !spec.organisation) return problem('sluicepolicy.missing_default', 'the default object must carry spec.organisation');
  if (!isDefault && spec.organisation) return problem('sluicepolicy.organisation_outside_default', 'only the object named default carries spec.organisation; bindings add spec.namespace');
  if (!isDefault && !spec.appliesTo) return problem('sluicepolicy.binding_without_applies_to', 'a binding must name the namespaces it applies to (spec.appliesTo)');
  const meta = (outer.data.metadata ?? {}) as SluicePolicyMetadata;
  return {
    ok: true,
    value: {
      name,
      spec,
      source: { name, resourceVersion: String(meta.resourceVersion ?? ''), generation: Number(meta.generation ?? 0), priority: spec.priority },
    },
  };
}

/** Exact name, `prefix*` or `*`, as the policy library's lib.name_matches. */
export function namePatternMatches(pattern: string, name: string): boolean {
  return pattern.endsWith('*') ? name.startsWith(pattern.slice(0, -1)) : pattern === name;
}

/** Kubernetes LabelSelector semantics: every matchLabels pair and every expression must hold. */
export function labelSelectorMatches(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const value = labels[e.key];
    switch (e.operator) {
      case 'In':
        if (!has || !e.values!.includes(value!)) return false;
        break;
      case 'NotIn':
        if (has && e.values!.includes(value!)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}

/** Whether a binding applies to the namespace (the default object applies everywhere). */
export function appliesToNamespace(appliesTo: SluicePolicyAppliesTo | undefined, ns: PolicyNamespace): boolean {
  if (!appliesTo) return true;
  const labels = { 'kubernetes.io/metadata.name': ns.name, ...(ns.labels ?? {}) };
  if (appliesTo.namespaces && !appliesTo.namespaces.some((p) => namePatternMatches(p, ns.name))) return false;
  if (appliesTo.namespaceSelector && !labelSelectorMatches(appliesTo.namespaceSelector, labels)) return false;
  return true;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Union of two override trees: lists appended (duplicates dropped), objects merged key by key. */
function unionOverride(a: unknown, b: unknown): unknown {
  if (Array.isArray(a) && Array.isArray(b)) {
    const first = a as unknown[];
    const seen = new Set(first.map((x) => JSON.stringify(x)));
    return [...first, ...(b as unknown[]).filter((x) => !seen.has(JSON.stringify(x)))];
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const out: Record<string, unknown> = { ...a };
    for (const [k, v] of Object.entries(b)) out[k] = k in out ? unionOverride(out[k], v) : v;
    return out;
  }
  return b ?? a;
}

/** Settings merge: objects key by key, everything else (lists, scalars) replaced by the later value. */
export function mergeSidecarSettings(base: Readonly<Record<string, unknown>>, over: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const current = out[k];
    out[k] = isPlainObject(current) && isPlainObject(v) ? mergeSidecarSettings(current, v) : v;
  }
  return out;
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (isPlainObject(value)) {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * The effective organisation and sidecar settings for one namespace from every SluicePolicy in the
 * cluster (the objects as the API server returns them; order does not matter).
 */
export function effectiveSluicePolicy(objects: readonly unknown[], ns: PolicyNamespace): EffectiveSluicePolicyResult {
  const problems: SluicePolicyProblem[] = [];
  const ignored: SluicePolicyProblem[] = [];
  let base: Parsed | undefined;
  const bindings: Parsed[] = [];
  for (const raw of objects) {
    const parsed = parseSluicePolicy(raw);
    if (!parsed.ok) {
      // An invalid binding that certainly does not apply here cannot change this namespace's policy.
      const spec = ANY_OBJECT.safeParse(raw).data?.spec as { appliesTo?: unknown } | undefined;
      const appliesTo = SluicePolicyAppliesTo.safeParse(spec?.appliesTo);
      const certainlyElsewhere = parsed.problem.object !== SLUICE_POLICY_DEFAULT_NAME && appliesTo.success && !appliesToNamespace(appliesTo.data, ns);
      (certainlyElsewhere ? ignored : problems).push(parsed.problem);
      continue;
    }
    if (parsed.value.name === SLUICE_POLICY_DEFAULT_NAME) base = parsed.value;
    else if (appliesToNamespace(parsed.value.spec.appliesTo, ns)) bindings.push(parsed.value);
  }
  if (!base && !problems.some((p) => p.object === SLUICE_POLICY_DEFAULT_NAME)) {
    problems.push({ object: SLUICE_POLICY_DEFAULT_NAME, code: 'sluicepolicy.missing_default', message: `no SluicePolicy named ${SLUICE_POLICY_DEFAULT_NAME}: nothing is allowed until one is applied` });
  }
  if (problems.length || !base) return { ok: false, problems };
  bindings.sort((a, b) => a.spec.priority - b.spec.priority || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const org = base.spec.organisation!;
  let override: unknown = org.namespaces[ns.name] ?? {};
  let sidecar: Record<string, unknown> = { ...(base.spec.sidecar ?? {}) };
  for (const b of bindings) {
    if (b.spec.namespace) override = unionOverride(override, b.spec.namespace);
    if (b.spec.sidecar) sidecar = mergeSidecarSettings(sidecar, b.spec.sidecar);
  }
  const hasOverride = isPlainObject(override) && Object.keys(override).length > 0;
  const organisation: OrganisationT = { ...org, namespaces: hasOverride ? { [ns.name]: override as NamespaceOverrideT } : {} };
  const revision = createHash('sha256').update(canonical({ organisation, sidecar })).digest('hex').slice(0, 16);
  return { ok: true, ignored, policy: { namespace: ns.name, organisation, sidecar, sources: [base.source, ...bindings.map((b) => b.source)], revision } };
}
