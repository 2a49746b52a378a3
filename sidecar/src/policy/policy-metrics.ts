// Policy bundle health for SREs: which revision is live, loads by result, whether one is loaded.
import { Counter, Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import type { AreaCode, SluicePolicyErrorCode } from '../../../api/src/index.ts';

export interface PolicyMetrics {
  loaded(revision: string): void;
  /** a refused bundle, by its code (a label value: the catalogue's bundle.* rows) */
  failed(code: AreaCode<'bundle'>): void;
  /** A SluicePolicy revision in service; restartRequired: its sidecar settings differ from the ones the sidecar started with. */
  clusterLoaded(revision: string, restartRequired: boolean): void;
  clusterFailed(code: SluicePolicyErrorCode): void;
  clusterConnected(connected: boolean): void;
  /**
   * Where the decision cache's hit and miss totals are read when the registry is scraped: the
   * engine counts them in two plain integers, so a decision pays no metric call.
   */
  trackDecisionCache(read: () => { hits: number; misses: number }): void;
}

export function registerPolicyMetrics(registry: Registry): PolicyMetrics {
  const info = new Gauge({ name: 'sluice_policy_bundle_info', help: 'Loaded policy bundle (value 1) by revision', labelNames: ['revision'], registers: [registry] });
  const loads = new Counter({ name: 'sluice_policy_loads_total', help: 'Policy bundle load attempts by result and code', labelNames: ['result', 'code'], registers: [registry] });
  const ready = new Gauge({ name: 'sluice_policy_loaded', help: '1 when a valid policy bundle is in service', registers: [registry] });
  const lastLoad = new Gauge({ name: 'sluice_policy_last_load_timestamp_seconds', help: 'When the live bundle was loaded', registers: [registry] });
  const clusterInfo = new Gauge({ name: 'sluice_policy_cluster_info', help: 'SluicePolicy revision in service (value 1): the organisation and settings the cluster gives this namespace', labelNames: ['revision'], registers: [registry] });
  const clusterLoads = new Counter({ name: 'sluice_policy_cluster_loads_total', help: 'SluicePolicy revisions taken into service or refused, by result and code', labelNames: ['result', 'code'], registers: [registry] });
  const clusterConnected = new Gauge({ name: 'sluice_policy_cluster_connected', help: '1 while the SluicePolicy watch is connected to the API server', registers: [registry] });
  const restart = new Gauge({ name: 'sluice_policy_settings_restart_required', help: '1 when the SluicePolicy sidecar settings in the cluster differ from the ones the sidecar started with (they apply at its next start)', registers: [registry] });
  let cacheTotals: (() => { hits: number; misses: number }) | undefined;
  // Counters that only go up: each scrape adds what the engine counted since the last one. Both
  // series exist at 0 from start-up (registered without labels), before any decision.
  const seen = { hits: 0, misses: 0 };
  const cacheCounter = (field: 'hits' | 'misses', name: string, help: string) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const now = cacheTotals?.()[field] ?? seen[field];
        if (now > seen[field]) this.inc(now - seen[field]);
        seen[field] = now;
      },
    });
  cacheCounter('hits', 'sluice_policy_decision_cache_hits_total', 'Policy decisions answered from the decision cache (an input identical in every part the policy reads)');
  cacheCounter('misses', 'sluice_policy_decision_cache_misses_total', 'Policy decisions the cache could not answer (the WASM ran), on policies that have a cache');
  ready.set(0);
  return {
    trackDecisionCache(read) {
      cacheTotals = read;
    },
    clusterLoaded(revision, restartRequired) {
      clusterInfo.reset();
      clusterInfo.set({ revision }, 1);
      clusterLoads.inc({ result: 'success', code: 'ok' });
      restart.set(restartRequired ? 1 : 0);
    },
    clusterFailed(code) {
      clusterLoads.inc({ result: 'failure', code });
    },
    clusterConnected(connected) {
      clusterConnected.set(connected ? 1 : 0);
    },
    loaded(revision) {
      info.reset();
      info.set({ revision }, 1);
      loads.inc({ result: 'success', code: 'ok' });
      ready.set(1);
      lastLoad.setToCurrentTime();
    },
    failed(code) {
      loads.inc({ result: 'failure', code });
    },
  };
}
