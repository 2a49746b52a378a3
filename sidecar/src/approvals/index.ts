// Command-level approval for the sidecar: wires the Kubernetes identity, the ApprovalRequest watch,
// the hold coordinator, notifications and metrics, and declares approvals' work in the request
// pipeline (`feature`: the hold phase). Docs: docs/approvals.md. startApprovals returns undefined
// when approvals are off or no API server identity is available; the pipeline then refuses holds
// ("no approval backend configured").
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Masker } from '../masking/index.ts';
import type { Feature } from '../proxy/pipeline.ts';
import type { PodInfo } from '../proxy/pod-info.ts';
import { ApprovalApi } from '../../../lib/src/approvals/approval-api.ts';
import { ApprovalWatcher } from './approval-watcher.ts';
import type { ApprovalsConfig } from './config.ts';
import { HoldCoordinator } from './hold-coordinator.ts';
import type { ApprovalEvent } from './hold-coordinator.ts';
import { approvalHold } from './hold-phase.ts';
import { podSelector } from '../../../lib/src/approvals/labels.ts';
import { registerApprovalMetrics } from './metrics.ts';
import { Notifier } from './notify.ts';

export { ApprovalsConfig } from './config.ts';
export type { ApprovalsConfigInput } from './config.ts';
export { registerApprovalMetrics } from './metrics.ts';
export type { ApprovalMetrics } from './metrics.ts';
export type { ApprovalEvent, HoldResult } from './hold-coordinator.ts';
export type { RequestApproval } from './hold-phase.ts';
export { APPROVAL_CODES } from '../../../lib/src/approvals/errors.ts';

export interface ApprovalsDeps {
  pod: { namespace: string; name: string; uid?: string | undefined };
  sessionId: string;
  podInfo: PodInfo;
  registry: Registry;
  logger: Logger;
  /** ms clock (tests) */
  clock?: () => number;
  /** The sidecar's masker for what ApprovalRequests show (built-in rules without it). */
  masker?: Masker | undefined;
}

export interface RunningApprovals {
  /** approvals: the hold phase (a held request waits for a human or a standing grant). */
  readonly feature: Feature;
  /** Approval steps (requested, decided, grant used, cut) for the audit trail. */
  onEvent(listener: (e: ApprovalEvent) => void): void;
  coordinator: HoldCoordinator;
  /** Is the API server's view current (holds possible)? */
  readonly healthy: boolean;
  stop(): Promise<void>;
}

const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** A short, typeable ApprovalRequest name: `<pod>-<6 hex>` (pod shortened to fit 63 characters). */
export function approvalName(pod: string, random: Buffer = randomBytes(3)): string {
  const base = pod.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 55).replace(/-+$/, '');
  return `${base || 'pod'}-${random.toString('hex')}`;
}

export async function startApprovals(config: ApprovalsConfig, deps: ApprovalsDeps): Promise<RunningApprovals | undefined> {
  const log = deps.logger.child({ component: 'approvals' });
  if (!config.enabled) return undefined;
  const inCluster = !config.kubeconfig && config.inCluster && existsSync(IN_CLUSTER_TOKEN);
  if (!config.kubeconfig && !inCluster) {
    log.warn(config.inCluster ? `approvals: no service-account token at ${IN_CLUSTER_TOKEN}; held requests are refused` : 'approvals: no kubeconfig and not in a pod; held requests are refused (no approval backend)');
    return undefined;
  }
  // The client loads only when approvals are on; @kubernetes/client-node only for a kubeconfig the light reader does not cover.
  const { KubeClient } = await import('../../../lib/src/approvals/kube-client.ts');
  const { loadKubeIdentity } = await import('../../../lib/src/approvals/kube-identity.ts');
  const rest = new KubeClient(await loadKubeIdentity({ kubeconfig: config.kubeconfig, context: config.context, inCluster }), config.apiTimeoutMs);
  const api = new ApprovalApi(rest);
  const metrics = registerApprovalMetrics(deps.registry);
  metrics.maxWaitSeconds.set(config.maxWaitMs / 1000);
  const notifier = Notifier.create(config.notify, { metrics, log: (msg, detail) => log.warn(detail, msg) });
  const listeners: ((e: ApprovalEvent) => void)[] = [];
  const coordinator: HoldCoordinator = new HoldCoordinator({
    api,
    namespace: deps.pod.namespace,
    podName: deps.pod.name,
    podUid: deps.pod.uid,
    serviceAccount: deps.podInfo.identity.service_account,
    session: deps.sessionId,
    maxWaitMs: config.maxWaitMs,
    retainFinishedMs: config.retainFinishedMs,
    maxConcurrentHolds: config.maxConcurrentHolds,
    apiGraceMs: config.apiGraceMs,
    metrics,
    clock: deps.clock,
    newName: () => approvalName(deps.pod.name),
    healthy: (): boolean => watcher.healthy,
    onCreated: (obj) => {
      log.info({ approval: obj.metadata.name, summary: obj.spec.request.summary }, 'request held for approval');
      void notifier?.notify(obj);
    },
    onEvent: (e) => {
      for (const l of listeners) l(e);
    },
    log: (level, msg, detail) => log[level](detail, msg),
  });
  const watcher: ApprovalWatcher = new ApprovalWatcher(api, { namespace: deps.pod.namespace, labelSelector: podSelector(deps.pod.name) }, coordinator);
  // Start waits at most apiTimeoutMs for the API server: allowed traffic must flow without it, and
  // holds fail closed until the first list succeeds.
  const firstSync = watcher.start().then(
    () => log.info('approvals: watching ApprovalRequests'),
    (err: Error) => log.warn({ err: err.message }, 'approvals: API server not reachable yet; holds are refused until it is'),
  );
  await Promise.race([firstSync, new Promise((r) => setTimeout(r, config.apiTimeoutMs).unref())]);
  // Finished requests of this pod are deleted after retainFinishedMs (cleanup.ts).
  const sweeper = setInterval(() => void coordinator.sweep(), Math.min(config.retainFinishedMs, 60_000));
  sweeper.unref();
  deps.podInfo.onChange(() => {
    if (!deps.podInfo.killed) return;
    const cut = coordinator.cutAll();
    if (cut) log.warn({ cut }, 'kill switch on: held requests cut');
  });
  return {
    feature: {
      name: 'approvals',
      phases: {
        hold: approvalHold({
          coordinator,
          pod: () => deps.podInfo.identity,
          podUid: deps.pod.uid,
          session: deps.sessionId,
          maxWaitMs: config.maxWaitMs,
          clock: deps.clock,
          masker: deps.masker,
        }),
      },
    },
    onEvent: (l) => listeners.push(l),
    coordinator,
    get healthy() {
      return watcher.healthy;
    },
    async stop() {
      clearInterval(sweeper);
      coordinator.stop();
      await watcher.stop();
      await notifier?.stop();
    },
  };
}
