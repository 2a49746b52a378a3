// Assembles a running sidecar from its config: policy engine (hot-reloaded bundle), pod CA and
// trust bundle, pod facts, DNS lockdown, the gateway's listeners and the admin port. The shell
// around the pure modules; everything here is wiring and lifecycle.
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import type { Logger } from 'pino';
import type { SidecarConfig } from './config/sidecar-config.ts';
import { FakeIpMap } from './dns/fake-ip-map.ts';
import { startDnsServer } from './dns/dns-server.ts';
import type { DnsServer } from './dns/dns-server.ts';
import { registerDnsMetrics } from './dns/dns-metrics.ts';
import { startAdminServer } from './admin-server.ts';
import { AuditRecorder, registerAuditMetrics } from './audit/index.ts';
import type { AuditRecord } from '../../api/src/index.ts';
import { SchemaError } from '../../api/src/index.ts';
import { buildInfo, registerBuildInfo } from '../../api/src/build-info.ts';
import { eventRecord, podOf } from './proxy/audit-records.ts';
import { createCredentials } from './credentials/index.ts';
import { startApprovals } from './approvals/index.ts';
import type { RunningApprovals } from './approvals/index.ts';
import { BundleWatcher } from './policy/bundle-watcher.ts';
import { policySource } from './policy/builtin-bundle.ts';
import { startConfigMapBundle } from './policy/bundle-configmap.ts';
import { startOciBundle } from './policy/bundle-oci-poller.ts';
import { remoteBundleEvents } from './policy/bundle-remote.ts';
import { PolicyEngine } from '../../lib/src/policy/engine.ts';
import type { ClusterPolicyRuntime } from './policy/cluster-runtime.ts';
import { registerPolicyMetrics } from './policy/policy-metrics.ts';
import { Gateway } from './proxy/gateway.ts';
import type { GatewayEvents } from './proxy/gateway.ts';
import { PodInfo } from './proxy/pod-info.ts';
import { parseResolvConfSearch } from './proxy/request-summary.ts';
import { registerProxyMetrics } from './proxy/proxy-metrics.ts';
import { frontFaults } from './proxy/server-events.ts';
import { createUpstreamAgent, upstreamSecureContext } from './proxy/upstream.ts';
import { LeafCertificateCache } from './tls/leaf-certificates.ts';
import { loadMasking } from './masking/index.ts';
import type { Feature } from './proxy/pipeline.ts';
import { generatePodCa, loadPodCa } from './tls/pod-ca.ts';
import type { PodCa } from './tls/pod-ca.ts';
import { writeTrustBundle } from './tls/trust-bundle.ts';

export interface RunningSidecar {
  sessionId: string;
  registry: Registry;
  engine: PolicyEngine;
  ca: PodCa;
  gateway: Gateway;
  podInfo: PodInfo;
  /** Command-level approval; undefined when off or without an API server identity. */
  approvals: RunningApprovals | undefined;
  addresses: { transparent?: AddressInfo; proxy?: AddressInfo; admin: AddressInfo; dns: { udp: AddressInfo; tcp: AddressInfo }[] };
  trust: { caFile: string; bundleFile: string };
  stop(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  events?: GatewayEvents;
  sessionId?: string;
  /**
   * Features of the request pipeline beyond sluice's own, between masking and credentials (tests
   * observe or stamp what is forwarded with a before-forward handler).
   */
  features?: readonly Feature[];
  /** Skip the DNS listener (the demo runs without root and without redirection). */
  dns?: boolean;
  transparent?: boolean;
  /** The organisation (and settings) from the cluster's SluicePolicy objects, already started (main.ts). */
  clusterPolicy?: ClusterPolicyRuntime;
}

/**
 * Milliseconds each start-up step took, in order, for the 'sidecar ready' log line (what
 * bench/startup reports): `boot` is process start to here (Node, module loading, config).
 */
function startupClock(): { mark(step: string): void; phases: Record<string, number> } {
  const phases: Record<string, number> = { boot: Math.round(performance.now()) };
  let last = performance.now();
  return {
    phases,
    mark(step) {
      const now = performance.now();
      phases[step] = Math.round((now - last) * 10) / 10;
      last = now;
    },
  };
}

export async function startSidecar(config: SidecarConfig, options: StartOptions = {}): Promise<RunningSidecar> {
  const startup = startupClock();
  const log = options.logger ?? pino({ name: 'sluice-sidecar' });
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  registerBuildInfo(registry, buildInfo('sidecar'));
  const policyMetrics = registerPolicyMetrics(registry);
  const proxyMetrics = registerProxyMetrics(registry);

  const podInfo = new PodInfo({ namespace: config.pod.namespace, name: config.pod.name, serviceAccount: config.pod.serviceAccount, dir: config.podInfoDir });
  await podInfo.start();
  startup.mark('metrics_podinfo');

  // The audit trail starts first: a restarted sidecar resumes its session from the spool, and
  // everything after this point (policy loads included) is recorded.
  const recorder = config.audit.enabled
    ? new AuditRecorder(
        {
          spoolDir: config.audit.spoolDir,
          pod: podOf(podInfo.identity),
          ...(podInfo.identity.creator ? { creator: podInfo.identity.creator } : {}),
          ...(options.sessionId ? { session: options.sessionId } : {}),
          spool: config.audit.spool,
          // Absent store: none (a warned local ring); both store and loki: refused by the recorder.
          ...(config.audit.store !== undefined ? { store: config.audit.store } : {}),
          ...(config.audit.loki ? { loki: config.audit.loki } : {}),
        },
        { metrics: registerAuditMetrics(registry), log: { info: (o, m) => log.info(o, m), warn: (o, m) => log.warn(o, m) } },
      )
    : undefined;
  if (recorder) await recorder.start();
  else log.warn('audit is disabled: requests are forwarded without an audit trail');
  startup.mark('audit_spool');
  const sessionId = recorder?.session ?? options.sessionId ?? randomUUID();
  /** Events outside a request's own path: recorded in order, a failure is the recorder's to count. */
  const note = (kind: AuditRecord['kind'], detail: Record<string, unknown>, requestId?: string) => {
    recorder?.record(eventRecord(kind, podInfo.identity, detail, requestId)).catch(() => undefined);
  };

  const engine = new PolicyEngine({ requireOrganisation: options.clusterPolicy !== undefined });
  policyMetrics.trackDecisionCache(() => engine.decisionCacheTotals);
  // A signed bundle from the release namespace's ConfigMap (policy.bundle release), else a file/the built-in library.
  if (config.policy.configMap && config.policy.oci) throw new SchemaError('invalid sidecar configuration', ['policy: configMap and oci are two bundle sources; set one']);
  const remoteEvents = remoteBundleEvents(engine, policyMetrics, note, log);
  const remoteBundle = config.policy.configMap
    ? await startConfigMapBundle(config, engine, remoteEvents, log)
    : config.policy.oci
      ? await startOciBundle(config, engine, remoteEvents, log)
      : undefined;
  const policy = remoteBundle ? undefined : policySource(config.policy);
  const watcher = policy && new BundleWatcher(
    policy.path,
    engine,
    {
      loaded: (meta) => {
        policyMetrics.loaded(meta.revision);
        note('policy_load', { result: 'loaded', revision: meta.revision, source: meta.source, ...(policy?.builtin ? { builtin: true } : {}), ...(meta.signature ? { signed: { key_id: meta.signature.keyId, algorithm: meta.signature.algorithm } } : {}) });
        log.info({ revision: meta.revision, source: meta.source }, 'policy bundle loaded');
      },
      failed: (err) => {
        policyMetrics.failed(err.code);
        note('policy_load', { result: 'rejected', code: err.code, reason: err.message, keeping: engine.revision || null });
        log.error({ code: err.code, err: err.message, keeping: engine.revision || null }, 'policy bundle rejected');
      },
    },
    { pollIntervalMs: config.policy.pollIntervalMs, verification: policy.verification },
  );
  await watcher?.start();
  const cluster = options.clusterPolicy?.attach({ engine, metrics: policyMetrics, note, log, config });
  startup.mark('policy');

  const ca = config.caDir ? await loadPodCa(config.caDir) : await generatePodCa(`sluice ${config.pod.namespace}/${config.pod.name}`);
  const trust = await writeTrustBundle(config.trustDir, ca.certPem);
  const leaves = new LeafCertificateCache(ca, config.limits.leafCacheSize);
  startup.mark('ca_trust');

  const fakeIps = new FakeIpMap(config.dns);
  const dnsServers: DnsServer[] = [];
  if (options.dns !== false) {
    const dnsMetrics = registerDnsMetrics(registry);
    dnsMetrics.track(fakeIps);
    for (const host of config.bind.dns) {
      dnsServers.push(
        await startDnsServer({
          port: config.ports.dns,
          host,
          map: fakeIps,
          metrics: dnsMetrics,
          faults: frontFaults(() => proxyMetrics.faults.inc({ phase: 'front' })),
          onQuery: (q) => note('dns', { name: q.name, type: q.type, result: q.result, transport: q.transport, ...(q.reason ? { reason: q.reason } : {}) }),
        }),
      );
    }
  }

  startup.mark('dns');
  const masking = await loadMasking(config.masking, registry);
  startup.mark('masking');
  const approvals = await startApprovals(config.approvals, { pod: config.pod, sessionId, podInfo, registry, logger: log, masker: masking.all });
  approvals?.onEvent((e) => note('approval', { ...e }, 'requestId' in e ? e.requestId : undefined));
  startup.mark('approvals');

  const upstreamTls = upstreamSecureContext(config.upstream.extraRootsFiles);
  const agent = createUpstreamAgent(config.upstream, upstreamTls);
  const grpcAgent = config.http2.enabled ? createUpstreamAgent(config.upstream, upstreamTls, { allowH2: true }) : undefined;
  const credentials = createCredentials(config.credentials, {
    registry,
    upstream: agent,
    pod: config.pod,
    log,
    events: {
      issued: (i) => note('credential', { result: 'issued', provider: i.provider, jit: i.jit, audience: i.audience, role: i.role, expires_at: new Date(i.expiresAt).toISOString() }),
      failed: (f) => note('credential', { result: 'failed', provider: f.provider, audience: f.audience, role: f.role, code: f.code, reason: f.reason }),
    },
  });
  const gateway = new Gateway({
    listen: {
      transparent: options.transparent === false ? undefined : { host: config.bind.transparent, port: config.ports.transparent },
      proxy: { host: config.bind.proxy, port: config.ports.proxy },
    },
    limits: config.limits,
    http2: config.http2,
    websocket: config.websocket,
    upstream: { ...config.upstream, secureContext: upstreamTls },
    facts: cluster?.facts ?? config.facts,
    masking: { maskers: masking.maskers, metrics: masking.metrics },
    engine,
    agent,
    ...(grpcAgent ? { grpcAgent } : {}),
    leaves,
    metrics: proxyMetrics,
    pod: () => podInfo.identity,
    killed: () => podInfo.killed,
    session: { id: sessionId },
    fakeIps,
    searchDomains: parseResolvConfSearch(await readFile(config.resolvConf, 'utf8').catch(() => '')),
    events: {
      ...options.events,
      refused: (r) => {
        note('refusal', { ...r });
        options.events?.refused?.(r);
      },
      malformed: (m) => {
        note('refusal', { ...m });
        options.events?.malformed?.(m);
      },
      tunnelled: (t) => {
        note('request', { passthrough: true, ...t });
        options.events?.tunnelled?.(t);
      },
    },
    ...(recorder ? { audit: { record: (rec: AuditRecord) => recorder.record(rec), pod: () => podInfo.identity } } : {}),
    // In phase order within each phase: credentials last, so a signature covers the body as it
    // leaves (after outbound masking).
    features: [...(approvals ? [approvals.feature] : []), masking.feature, ...(options.features ?? []), credentials.feature],
  });
  startup.mark('credentials_gateway');
  await gateway.listen();
  podInfo.onChange(() => {
    if (podInfo.killed) {
      const cut = gateway.cutAll();
      note('kill', { cut, annotation: 'sluice.io/kill' });
      log.warn({ cut }, 'kill switch on: open connections cut, every request denied');
    }
  });

  const admin = await startAdminServer({
    host: config.bind.admin,
    port: config.ports.admin,
    registry,
    ready: () => {
      const reasons: string[] = [];
      if (!engine.ready) reasons.push(engine.loaded ? 'no SluicePolicy in service' : 'no policy loaded');
      return { ready: reasons.length === 0, reasons };
    },
  });
  startup.mark('listen');
  log.info({ session: sessionId, addresses: gateway.addresses, admin: admin.address, startupMs: { ...startup.phases, total: Math.round(performance.now()) } }, 'sidecar ready');

  return {
    sessionId,
    registry,
    engine,
    ca,
    gateway,
    podInfo,
    approvals,
    trust,
    addresses: { ...gateway.addresses, admin: admin.address, dns: dnsServers.map((d) => ({ udp: d.udp, tcp: d.tcp })) },
    async stop() {
      watcher?.stop();
      await remoteBundle?.stop();
      await options.clusterPolicy?.stop();
      await approvals?.stop();
      podInfo.stop();
      await gateway.close();
      await Promise.all(dnsServers.map((d) => d.close()));
      admin.server.closeAllConnections();
      await new Promise<void>((resolve) => admin.server.close(() => resolve()));
      await credentials.close();
      await agent.close();
      await grpcAgent?.close();
      await recorder?.stop();
    },
  };
}
