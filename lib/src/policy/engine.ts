// Evaluates PolicyInput → Decision with the loaded WASM bundle. It must never throw into the
// request path and never allow what the policy would not: no bundle, an evaluation error or a
// decision that fails the api/ schema each become a deny whose code says why. An input identical
// to an earlier one in every part the policy reads is answered with that decision (decision-cache.ts,
// emptied on every bundle, data and organisation change); every other input runs the WASM.
import { loadPolicy } from '@open-policy-agent/opa-wasm';
import type { LoadedPolicy } from '@open-policy-agent/opa-wasm';
import { POLICY_ENTRYPOINT, engineDeny } from '../../../api/src/index.ts';
import type { Decision, PolicyInput } from '../../../api/src/index.ts';
import { BundleError } from './bundle.ts';
import type { PolicyBundle } from './bundle.ts';
import type { VerifiedSignature } from './bundle-signature.ts';
import { DecisionCache, PURE_BUILTINS } from './decision-cache.ts';
import type { DecisionCacheStats } from './decision-cache.ts';
import { DecisionReader, copyDecision } from './decision-reader.ts';
import { bundledInputReads } from './input-reads.ts';
import { importedBuiltins, unsupportedBuiltins } from './wasm-builtins.ts';
import type { WasmInstance, WasmMemory } from './wasm-builtins.ts';
import { evaluateJson, hasFastEval } from './wasm-eval.ts';

export const DENY_NOT_LOADED = engineDeny('policy.not_loaded', 'no policy loaded');
export const DENY_NO_ORGANISATION = engineDeny('policy.no_organisation', 'no SluicePolicy applies yet: every request is denied until the organisation is read from the cluster');

export interface LoadedBundle {
  revision: string;
  source: string;
  loadedAt: Date;
  /** The verified signature, when a signing key is configured. */
  signature?: VerifiedSignature;
}

export interface Evaluation {
  decision: Decision;
  revision: string;
  /** Set when the engine, not the policy, produced the decision (fail closed). */
  fault?: 'not_loaded' | 'eval_error' | 'malformed_decision';
}

interface Compiled {
  policy: LoadedPolicy;
  entrypoint: number;
  meta: LoadedBundle;
  /** The bundle's own data.json, kept so the organisation can be swapped into it. */
  data: unknown;
  /** ABI >= 1.2: evaluate through opa_eval directly (wasm-eval.ts) rather than the SDK's evaluate. */
  fast: boolean;
  reader: DecisionReader;
  /** Absent when the policy may read the whole input or call an impure builtin (`uncached` says which). */
  cache: DecisionCache | undefined;
  uncached?: string;
}

/** The organisation the cluster's SluicePolicy objects give (data.organisation), with their revision. */
export interface OrganisationOverlay {
  organisation: object;
  revision: string;
}

/** Compiles a bundle into a ready policy, or throws BundleError naming what is wrong. */
export async function compileBundle(bundle: PolicyBundle, now: () => Date = () => new Date()): Promise<Compiled> {
  let policy: LoadedPolicy;
  try {
    policy = await loadPolicy(bundle.wasm);
  } catch (err) {
    throw new BundleError('bundle.bad_wasm', `${bundle.source}: policy.wasm does not load (${messageOf(err)})`);
  }
  const imported = importedBuiltins(...wasmParts(policy));
  const missing = unsupportedBuiltins(imported);
  if (missing.length) {
    throw new BundleError(
      'bundle.unsupported_builtin',
      `${bundle.source}: policy calls builtin${missing.length > 1 ? 's' : ''} ${missing.join(', ')} which the WASM runtime does not provide`,
    );
  }
  const entrypoint = (policy.entrypoints as Record<string, number | undefined>)[POLICY_ENTRYPOINT];
  if (entrypoint === undefined) {
    throw new BundleError('bundle.no_entrypoint', `${bundle.source}: bundle was not built with entrypoint ${POLICY_ENTRYPOINT}`);
  }
  try {
    policy.setData(bundle.data as object);
  } catch (err) {
    throw new BundleError('bundle.bad_data', `${bundle.source}: data.json was refused (${messageOf(err)})`);
  }
  const meta: LoadedBundle = { revision: bundle.revision, source: bundle.source, loadedAt: now() };
  if (bundle.signature) meta.signature = bundle.signature;
  const compiled: Compiled = { policy, entrypoint, meta, data: bundle.data, fast: hasFastEval(policy), reader: new DecisionReader(), cache: undefined };
  const impure = imported.filter((name) => !PURE_BUILTINS.has(name));
  const reads = bundledInputReads(bundle.inputReads, bundle.wasm);
  if (impure.length) compiled.uncached = `the policy calls ${impure.join(', ')}`;
  else if (reads.whole !== undefined) compiled.uncached = reads.whole;
  else compiled.cache = new DecisionCache(reads.paths);
  return compiled;
}

export interface PolicyEngineOptions {
  /**
   * The organisation comes from the cluster (SluicePolicy): until one is set every request is
   * denied (policy.no_organisation) and the engine is not ready, whatever the bundle's data says.
   */
  requireOrganisation?: boolean;
  /** Answer inputs identical in what the policy reads from a cache (default true); false runs the WASM every time. */
  decisionCache?: boolean;
}

export interface DecisionCacheState extends DecisionCacheStats {
  enabled: boolean;
  /** Why a loaded policy gets no cache. */
  why?: string;
}

export class PolicyEngine {
  #current: Compiled | undefined;
  #overlay: OrganisationOverlay | undefined;
  readonly #requireOrganisation: boolean;
  readonly #useCache: boolean;
  // The pod part of the input is the same object for every request of a sidecar: serialised once.
  // Keyed by identity: a new pod object is serialised afresh. The cache keys on a number standing
  // for that text (one per distinct text, never reused) rather than on the text itself.
  readonly #pods = new WeakMap<object, { json: string; id: string }>();
  readonly #podIds = new Map<string, string>();
  #nextPodId = 0;
  // Hits and misses of the caches of bundles no longer in service: with the live one's they make
  // totals that never go down across bundle swaps (Prometheus counters, read on scrape).
  // Counted from what the live cache had already counted when it was installed (a bundle put back
  // into service twice is not counted twice).
  #retiredHits = 0;
  #retiredMisses = 0;
  #liveBase = { hits: 0, misses: 0 };

  constructor(options: PolicyEngineOptions = {}) {
    this.#requireOrganisation = options.requireOrganisation ?? false;
    this.#useCache = options.decisionCache ?? true;
  }

  /** Hits and misses of the loaded policy's decision cache (counted since that bundle was loaded). */
  get decisionCache(): DecisionCacheState {
    const current = this.#current;
    const cache = this.#useCache ? current?.cache : undefined;
    if (!cache) return { enabled: false, hits: 0, misses: 0, entries: 0, why: this.#useCache ? current?.uncached ?? 'no policy loaded' : 'turned off' };
    return { enabled: true, ...cache.stats };
  }

  /** Hits and misses of every decision cache this engine has had in service: they only grow. */
  get decisionCacheTotals(): { hits: number; misses: number } {
    const live = this.#current?.cache?.stats ?? this.#liveBase;
    return { hits: this.#retiredHits + live.hits - this.#liveBase.hits, misses: this.#retiredMisses + live.misses - this.#liveBase.misses };
  }

  get ready(): boolean {
    return this.#current !== undefined && (!this.#requireOrganisation || this.#overlay !== undefined);
  }

  get loaded(): LoadedBundle | undefined {
    return this.#current?.meta;
  }

  /** The bundle's revision, plus `+org.<revision>` while the cluster's organisation is in service. */
  get revision(): string {
    const bundle = this.#current?.meta.revision ?? '';
    return bundle && this.#overlay ? `${bundle}+org.${this.#overlay.revision}` : bundle;
  }

  get organisationRevision(): string | undefined {
    return this.#overlay?.revision;
  }

  /**
   * Puts the cluster's organisation into the live policy's data (data.organisation, the rest of the
   * bundle's data kept). Synchronous, like evaluate, so no decision ever sees half of it. Throws
   * BundleError (bundle.bad_data) when the WASM refuses it; the previous data then stays in service.
   */
  setOrganisation(overlay: OrganisationOverlay): void {
    const current = this.#current;
    if (current) {
      current.cache?.clear();
      try {
        applyData(current, overlay);
      } catch (err) {
        // Put the previous data back so the policy never runs on whatever the WASM half-accepted.
        restoreData(current, this.#overlay);
        throw err;
      }
    }
    this.#overlay = overlay;
  }

  /** Size of the WASM linear memory; flat over evaluations because each one starts from the heap pointer left after the data. */
  get wasmMemoryBytes(): number {
    const current = this.#current;
    return current ? wasmParts(current.policy)[1].buffer.byteLength : 0;
  }

  /** Swaps in a compiled bundle (with the cluster's organisation, when set); callers keep the old one when compileBundle throws. */
  install(compiled: Compiled): void {
    compiled.cache?.clear();
    if (this.#overlay) applyData(compiled, this.#overlay);
    const retired = this.#current?.cache?.stats;
    if (retired) {
      this.#retiredHits += retired.hits - this.#liveBase.hits;
      this.#retiredMisses += retired.misses - this.#liveBase.misses;
    }
    const base = compiled.cache?.stats;
    this.#liveBase = { hits: base?.hits ?? 0, misses: base?.misses ?? 0 };
    this.#current = compiled;
  }

  async load(bundle: PolicyBundle): Promise<LoadedBundle> {
    const compiled = await compileBundle(bundle);
    this.install(compiled);
    return compiled.meta;
  }

  evaluate(input: PolicyInput): Evaluation {
    const current = this.#current;
    if (!current) return { decision: DENY_NOT_LOADED, revision: '', fault: 'not_loaded' };
    if (this.#requireOrganisation && !this.#overlay) return { decision: DENY_NO_ORGANISATION, revision: current.meta.revision, fault: 'not_loaded' };
    const revision = this.revision;
    const cache = this.#useCache ? current.cache : undefined;
    let key: string | undefined;
    let resultSet: string;
    try {
      // Each part's JSON text is made once: the cache key is made of the very texts given to the module.
      const pod = this.#pod(input.pod);
      const json = { request: JSON.stringify(input.request), facts: JSON.stringify(input.facts), pod: pod.id, session: '' };
      if (cache) {
        if (cache.parts.includes('session')) json.session = JSON.stringify(input.session);
        key = cache.keyOf(json);
        const known = key === undefined ? undefined : cache.get(key);
        if (known !== undefined) return { decision: copyDecision(known), revision };
      }
      json.session ||= JSON.stringify(input.session);
      const text = `{"request":${json.request},"facts":${json.facts},"pod":${pod.json},"session":${json.session}}`;
      resultSet = current.fast
        ? evaluateJson(current.policy, current.entrypoint, text)
        : JSON.stringify(current.policy.evaluate(encoder.encode(text).buffer, current.entrypoint));
    } catch (err) {
      return {
        decision: engineDeny('policy.eval_error', `policy evaluation failed: ${messageOf(err)}`),
        revision,
        fault: 'eval_error',
      };
    }
    const read = current.reader.read(resultSet);
    if (read.decision === undefined) {
      return {
        decision: engineDeny('policy.malformed_decision', `malformed decision from policy: ${read.why}`),
        revision,
        fault: 'malformed_decision',
      };
    }
    // Only a decision small enough for the reader to keep is kept here (the same bound on bytes held);
    // a copy, since the caller gets this one.
    if (key !== undefined && read.json !== undefined) cache!.set(key, copyDecision(read.decision));
    return { decision: read.decision, revision };
  }

  #pod(pod: object): { json: string; id: string } {
    let known = this.#pods.get(pod);
    if (known === undefined) {
      const json = JSON.stringify(pod);
      // Bounded (a CLI run may build many pods): forgetting only means a text gets a new number.
      if (this.#podIds.size >= 1024) this.#podIds.clear();
      let id = this.#podIds.get(json);
      if (id === undefined) {
        id = `#${this.#nextPodId++}`;
        this.#podIds.set(json, id);
      }
      known = { json, id };
      this.#pods.set(pod, known);
    }
    return known;
  }
}

function applyData(compiled: Compiled, overlay: OrganisationOverlay): void {
  const base = compiled.data && typeof compiled.data === 'object' ? (compiled.data as Record<string, unknown>) : {};
  try {
    compiled.policy.setData({ ...base, organisation: overlay.organisation });
  } catch (err) {
    throw new BundleError('bundle.bad_data', `organisation ${overlay.revision} was refused by the policy (${messageOf(err)})`);
  }
}

function restoreData(compiled: Compiled, previous: OrganisationOverlay | undefined): void {
  compiled.cache?.clear();
  const base = compiled.data && typeof compiled.data === 'object' ? (compiled.data as Record<string, unknown>) : {};
  try {
    compiled.policy.setData(previous ? { ...base, organisation: previous.organisation } : base);
  } catch {
    // this data was accepted before
  }
}

const encoder = new TextEncoder();

// The SDK types these with DOM's WebAssembly namespace, which this project does not load.
function wasmParts(policy: LoadedPolicy): [WasmInstance, WasmMemory] {
  const parts = policy as unknown as { wasmInstance: WasmInstance; mem: WasmMemory };
  return [parts.wasmInstance, parts.mem];
}

function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'object' && err && 'message' in err) return String(err.message);
  return String(err);
}
