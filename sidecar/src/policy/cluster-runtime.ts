// Wires the cluster's SluicePolicy objects into a running sidecar: waits for the first valid policy
// before the sidecar starts (its settings shape the sidecar), then keeps the engine's
// data.organisation and the facts settings that mirror it on the newest valid policy without a
// restart. A policy whose organisation or settings are invalid is refused with a stable code, an
// audit event, a metric and a log line, and the last good one stays in service. Settings that only
// take effect at start (listeners, audit store, …) are reported as needing a restart, never half
// applied. Until a first policy is in service the engine denies everything and /readyz fails.
import type { Logger } from 'pino';
import type { AuditRecord, EffectiveSluicePolicy, SluicePolicyProblem } from '../../../api/src/index.ts';
import { SchemaError } from '../../../api/src/index.ts';
import type { SidecarConfig } from '../config/sidecar-config.ts';
import { ClusterPolicyWatcher } from './cluster-policy.ts';
import type { ClusterPolicyEvents } from './cluster-policy.ts';
import type { FactsConfig } from '../facts/derive-facts.ts';
import { BundleError } from '../../../lib/src/policy/bundle-error.ts';
import type { PolicyEngine } from '../../../lib/src/policy/engine.ts';
import { LiveFactsConfig, factsFromOrganisation } from './organisation-facts.ts';
import type { PolicyMetrics } from './policy-metrics.ts';

const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export interface ClusterRuntimeDeps {
  engine: PolicyEngine;
  metrics: PolicyMetrics;
  note: (kind: AuditRecord['kind'], detail: Record<string, unknown>) => void;
  log: Logger;
  /** The config the sidecar started with. */
  config: SidecarConfig;
}

export interface AttachedClusterPolicy {
  /** Hand to the gateway: always the facts settings of the organisation in service. */
  facts: FactsConfig;
}

/** Turns a policy's settings into a full sidecar config, or throws SchemaError naming the fields. */
export type SettingsValidator = (settings: Readonly<Record<string, unknown>>) => SidecarConfig;

function problemsOf(err: unknown): SluicePolicyProblem[] {
  const message = err instanceof Error ? err.message : String(err);
  return [{ object: '', code: 'sluicepolicy.invalid', message }];
}

export class ClusterPolicyRuntime {
  readonly #watcher: ClusterPolicyWatcher;
  readonly #validate: SettingsValidator;
  readonly #log: Logger;
  #deps: ClusterRuntimeDeps | undefined;
  #facts: LiveFactsConfig | undefined;
  #startSettings = '';
  /** The config less what hot-reloads (facts), as JSON: equal means nothing waits for a restart. */
  static #fixedPart(config: SidecarConfig): string {
    return JSON.stringify({ ...config, facts: null });
  }
  #validated = new Map<string, SidecarConfig>();
  #firstResolve: ((p: { policy: EffectiveSluicePolicy; config: SidecarConfig }) => void) | undefined;
  readonly #first: Promise<{ policy: EffectiveSluicePolicy; config: SidecarConfig }>;

  constructor(watcherFactory: (events: ClusterPolicyEvents) => ClusterPolicyWatcher, validate: SettingsValidator, log: Logger) {
    this.#validate = validate;
    this.#log = log;
    this.#first = new Promise((resolve) => (this.#firstResolve = resolve));
    this.#watcher = watcherFactory({
      applied: (policy, ignored) => this.#applied(policy, ignored),
      rejected: (problems) => this.#rejected(problems),
      health: (healthy, err) => {
        this.#deps?.metrics.clusterConnected(healthy);
        if (healthy) this.#log.info('SluicePolicy watch connected');
        else this.#log.warn({ err: err?.message }, 'SluicePolicy watch lost contact with the API server; the policy in service stays');
      },
    });
  }

  /**
   * Reads with the pod's ServiceAccount (in a pod) or the configured kubeconfig. The Kubernetes
   * client loads only here, as for approvals (kube-identity.ts: no SDK for the pod's own identity).
   */
  static async create(config: SidecarConfig, validate: SettingsValidator, log: Logger): Promise<ClusterPolicyRuntime> {
    const { existsSync } = await import('node:fs');
    const { KubeClient } = await import('../../../lib/src/approvals/kube-client.ts');
    const { loadKubeIdentity } = await import('../../../lib/src/approvals/kube-identity.ts');
    const c = config.policy.cluster;
    const inCluster = !c.kubeconfig && existsSync(IN_CLUSTER_TOKEN);
    if (!c.kubeconfig && !inCluster) {
      throw new SchemaError('invalid sidecar configuration', [`policy.cluster: no service-account token at ${IN_CLUSTER_TOKEN} and no kubeconfig: the SluicePolicy objects cannot be read`]);
    }
    const rest = new KubeClient(await loadKubeIdentity({ kubeconfig: c.kubeconfig, context: c.context, inCluster }), c.apiTimeoutMs);
    return new ClusterPolicyRuntime(
      (events) => new ClusterPolicyWatcher(rest, { namespace: config.pod.namespace, watchSeconds: c.watchSeconds, namespaceResyncMs: c.namespaceResyncMs }, events),
      validate,
      log.child({ component: 'sluicepolicy' }),
    );
  }

  /** Starts watching; resolves with the first valid policy and the sidecar config it gives. */
  start(): Promise<{ policy: EffectiveSluicePolicy; config: SidecarConfig }> {
    this.#watcher.start();
    return this.#first;
  }

  get watcher(): ClusterPolicyWatcher {
    return this.#watcher;
  }

  /** Connects the running sidecar: the current policy goes into the engine now, later ones as they come. */
  attach(deps: ClusterRuntimeDeps): AttachedClusterPolicy {
    this.#deps = deps;
    this.#startSettings = ClusterPolicyRuntime.#fixedPart(deps.config);
    this.#facts = new LiveFactsConfig(deps.config.facts);
    deps.metrics.clusterConnected(this.#watcher.healthy);
    const current = this.#watcher.current;
    if (current) this.#install(current, []);
    return { facts: this.#facts.view() };
  }

  async stop(): Promise<void> {
    await this.#watcher.stop();
  }

  #applied(policy: EffectiveSluicePolicy, ignored: readonly SluicePolicyProblem[]): void {
    let config: SidecarConfig;
    try {
      config = this.#validate(policy.sidecar);
    } catch (err) {
      this.#rejected(problemsOf(err).map((p) => ({ ...p, object: policy.sources.map((s) => s.name).join(','), code: 'sluicepolicy.invalid', message: `sidecar settings: ${p.message}` })));
      return;
    }
    this.#validated.set(policy.revision, config);
    if (!this.#deps) {
      this.#log.info({ revision: policy.revision, objects: policy.sources.map((s) => s.name) }, 'SluicePolicy read');
      this.#firstResolve?.({ policy, config });
      this.#firstResolve = undefined;
      return;
    }
    this.#install(policy, ignored);
  }

  #install(policy: EffectiveSluicePolicy, ignored: readonly SluicePolicyProblem[]): void {
    const deps = this.#deps!;
    const config = this.#validated.get(policy.revision) ?? this.#validate(policy.sidecar);
    const facts = factsFromOrganisation(policy.organisation, config.facts);
    try {
      deps.engine.setOrganisation({ organisation: policy.organisation, revision: policy.revision });
    } catch (err) {
      const code = err instanceof BundleError ? err.code : 'bundle.bad_data';
      this.#rejected([{ object: policy.sources.map((s) => s.name).join(','), code: 'sluicepolicy.invalid', message: `${code}: ${(err as Error).message}` }]);
      return;
    }
    this.#facts!.set(facts);
    // Settings other than the facts shape listeners, stores and stages built at start.
    const restartRequired = ClusterPolicyRuntime.#fixedPart(config) !== this.#startSettings;
    deps.metrics.clusterLoaded(policy.revision, restartRequired);
    const objects = policy.sources.map((s) => ({ name: s.name, resource_version: s.resourceVersion, generation: s.generation }));
    deps.note('policy_load', {
      result: 'loaded',
      source: 'cluster',
      revision: deps.engine.revision,
      organisation_revision: policy.revision,
      objects,
      ...(ignored.length ? { ignored: ignored.map((p) => ({ object: p.object, code: p.code, reason: p.message })) } : {}),
      ...(restartRequired ? { settings: 'restart_required' } : {}),
    });
    deps.log.info({ revision: policy.revision, objects: objects.map((o) => o.name), restartRequired }, 'SluicePolicy in service');
    if (restartRequired) deps.log.warn('SluicePolicy sidecar settings changed: they apply when the sidecar restarts (new pods get them at once); the organisation applies now');
  }

  #rejected(problems: readonly SluicePolicyProblem[]): void {
    const deps = this.#deps;
    const keeping = deps?.engine.organisationRevision ?? null;
    for (const p of problems) {
      deps?.metrics.clusterFailed(p.code);
      deps?.note('policy_load', { result: 'rejected', source: 'cluster', code: p.code, object: p.object, reason: p.message, keeping });
      this.#log.error({ code: p.code, object: p.object, reason: p.message, keeping }, 'SluicePolicy refused; the last good policy stays in service');
    }
  }
}
