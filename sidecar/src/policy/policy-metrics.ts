// Policy bundle health for SREs: which revision is live, loads by result, whether one is loaded.
import { Counter, Gauge } from 'prom-client';
import type { Registry } from 'prom-client';

export interface PolicyMetrics {
  loaded(revision: string): void;
  failed(code: string): void;
}

export function registerPolicyMetrics(registry: Registry): PolicyMetrics {
  const info = new Gauge({ name: 'sluice_policy_bundle_info', help: 'Loaded policy bundle (value 1) by revision', labelNames: ['revision'], registers: [registry] });
  const loads = new Counter({ name: 'sluice_policy_loads_total', help: 'Policy bundle load attempts by result and code', labelNames: ['result', 'code'], registers: [registry] });
  const ready = new Gauge({ name: 'sluice_policy_loaded', help: '1 when a valid policy bundle is in service', registers: [registry] });
  const lastLoad = new Gauge({ name: 'sluice_policy_last_load_timestamp_seconds', help: 'When the live bundle was loaded', registers: [registry] });
  ready.set(0);
  return {
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
