// The sidecar's typed configuration: validated once at start-up (a bad value stops the process
// with a message naming the field and what was expected) and frozen, so the rest of the program
// reads a plain object and never re-checks. Sources, later winning: defaults, an optional
// YAML/JSON file (SLUICE_CONFIG_FILE, local runs and tests), the `sidecar` settings of the
// cluster's SluicePolicy objects (SLUICE_POLICY_SOURCE=cluster, set by the webhook; see
// policy/cluster-policy.ts), SLUICE_* environment variables (set by the webhook).
import { z } from 'zod';
import { POLICY_SOURCE_CLUSTER, SIDECAR_ENV, SchemaError, deepFreeze, describeIssues, mergeSidecarSettings } from '../../../api/src/index.ts';
import { FactsConfig } from '../facts/derive-facts.ts';
import { readSettingsFile, setIfDefined, settingsSection as section } from '../../../lib/src/config/settings-sources.ts';
import type { Env } from '../../../lib/src/config/settings-sources.ts';
import { FakeIpConfig, ProxyUID, SidecarPortSettings, withInterceptionEnv } from '../../../lib/src/interception/settings.ts';
import { MaskingConfig } from '../masking/masking-config.ts';
import { SidecarAuditSettings } from '../audit/config.ts';
import { ApprovalsConfig } from '../approvals/config.ts';
import { CredentialsConfig } from '../credentials/credentials-config.ts';
import { PolicyVerificationConfig } from '../../../lib/src/policy/bundle-signature.ts';
import { WebSocketSettings } from '../websocket/settings.ts';

// The UID, the ports and the fake-IP ranges (`dns`) are the interception settings' schemas
// (lib/src/interception/settings.ts): the init container and the CNI node agent read them too.
const Millis = z.number().int().min(1).max(24 * 60 * 60 * 1000);

export const SidecarConfig = z
  .object({
    pod: z
      .object({
        namespace: z.string().min(1),
        name: z.string().min(1),
        uid: z.string().optional(),
        serviceAccount: z.string().min(1),
      })
      .strict(),
    /** The sidecar's own UID: the only one whose traffic is not redirected. */
    proxyUID: ProxyUID,
    ports: SidecarPortSettings.prefault({}),
    /** Addresses to bind. Redirected traffic arrives on loopback or a fake IP, so '::' for those. */
    bind: z
      .object({
        transparent: z.string().default('::'),
        proxy: z.string().default('::'),
        dns: z.array(z.string()).default(['127.0.0.1', '::1']),
        admin: z.string().default('0.0.0.0'),
      })
      .strict()
      .prefault({}),
    policy: z
      .object({
        /** A custom bundle (file or directory); absent: the default library built into the image. */
        path: z.string().min(1).optional(),
        pollIntervalMs: Millis.default(2000),
        /** When set, only bundles signed with this key load (docs/policy.md, Distribution). */
        verification: PolicyVerificationConfig.optional(),
        /**
         * A signed bundle read from the API server: one ConfigMap in sluice's release namespace,
         * listed and watched by name (policy.bundle release in the chart; the webhook sets
         * SLUICE_POLICY_CONFIGMAP). Needs verification; never falls back to the built-in library.
         */
        configMap: z
          .object({
            namespace: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/),
            name: z.string().regex(/^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/),
            key: z.string().min(1).default('bundle.tar.gz'),
          })
          .strict()
          .optional(),
        /**
         * A signed bundle pulled from an OCI registry (OPA's layout: one tar+gzip layer), polled
         * with a manifest digest comparison (policy.bundle oci in the chart; the webhook sets
         * SLUICE_POLICY_OCI). Needs verification; never falls back to the built-in library.
         */
        oci: z
          .object({
            /** registry.example.com/path/name:tag or …@sha256:<hex> */
            reference: z.string().min(3),
            /** A mounted kubernetes.io/dockerconfigjson (.dockerconfigjson) with the registry's pull credentials. */
            pullSecretFile: z.string().min(1).optional(),
            /** PEM with extra roots for the registry (a private CA). */
            caFile: z.string().min(1).optional(),
            pollIntervalMs: z.number().int().min(1000).max(24 * 60 * 60 * 1000).default(60_000),
          })
          .strict()
          .optional(),
        /**
         * The organisation and these settings from the cluster's SluicePolicy objects, watched and
         * hot-reloaded (docs/policy.md, The organisation in the cluster). The webhook turns it on.
         */
        cluster: z
          .object({
            enabled: z.boolean().default(false),
            /** Outside a pod (tests, local runs): whose identity reads the objects. In a pod: the pod's ServiceAccount. */
            kubeconfig: z.string().min(1).optional(),
            context: z.string().min(1).optional(),
            apiTimeoutMs: Millis.default(10_000),
            watchSeconds: z.number().int().min(10).max(3600).default(300),
            /** How often the namespace's labels are re-read for namespaceSelector bindings. */
            namespaceResyncMs: Millis.default(30_000),
          })
          .strict()
          .prefault({}),
      })
      .strict(),
    /** Downward API volume with `labels` and `annotations` (kill switch, creator stamp). */
    podInfoDir: z.string().optional(),
    /** Where agents read the pod CA and the trust bundle. */
    trustDir: z.string().min(1),
    /** Mounted CA (tls.crt/tls.key); without it a CA is generated at start. */
    caDir: z.string().optional(),
    upstream: z
      .object({
        /** PEM files with extra roots for upstream verification (private registries, tests). */
        extraRootsFiles: z.array(z.string()).default([]),
        /** name[:port] → address:port the sidecar dials instead of resolving (tests, demo, split DNS). */
        resolve: z.record(z.string(), z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^:]+):\d+$/, 'expected address:port')).default({}),
        connectTimeoutMs: Millis.default(10_000),
        headersTimeoutMs: Millis.default(300_000),
        bodyTimeoutMs: Millis.default(300_000),
        keepAliveTimeoutMs: Millis.default(4_000),
      })
      .strict()
      .prefault({}),
    limits: z
      .object({
        /** Request header block bigger than this → 431. */
        maxHeaderBytes: z.number().int().min(1024).max(1024 * 1024).default(32 * 1024),
        /** Slow headers → 408. */
        headersTimeoutMs: Millis.default(15_000),
        /** Idle keep-alive connections from the agent are closed after this. */
        keepAliveTimeoutMs: Millis.default(65_000),
        /**
         * A request body the sidecar is reading that stalls (no byte from the agent) this long → 408.
         * Time the sidecar itself holds a request (policy, approval, a slow upstream) never counts.
         */
        requestBodyTimeoutMs: Millis.default(60_000),
        /** Time allowed for a redirected connection to show its first bytes. */
        firstBytesTimeoutMs: Millis.default(10_000),
        /** Cached leaf certificates (one per destination host). */
        leafCacheSize: z.number().int().min(16).max(100_000).default(2048),
      })
      .strict()
      .prefault({}),
    /**
     * HTTP/2 towards the agent on intercepted TLS, negotiated through ALPN (curl, git, gRPC and
     * most SDKs prefer it). Upstream requests go out as HTTP/1.1, except gRPC, which needs HTTP/2
     * end to end.
     */
    http2: z
      .object({
        enabled: z.boolean().default(true),
        maxConcurrentStreams: z.number().int().min(1).max(1000).default(100),
      })
      .strict()
      .prefault({}),
    /** Upgraded (WebSocket) connections: message limits, idle timeout and lifetime, rates, how messages are recorded (docs/datapath.md). */
    websocket: WebSocketSettings.prefault({}),
    /** The pod's resolv.conf: its search domains tell which names a fake IP may be used for. */
    resolvConf: z.string().default('/etc/resolv.conf'),
    facts: FactsConfig.prefault({}),
    dns: FakeIpConfig.prefault({}),
    /** Secret masking in responses and outbound DLP (docs/masking.md). */
    masking: MaskingConfig.prefault({}),
    /** The hash-chained audit trail: spool, and shipping to Loki or VictoriaLogs, or a local ring with store none (docs/audit.md). */
    audit: SidecarAuditSettings.prefault({}),
    /** Command-level approval (docs/approvals.md). */
    approvals: ApprovalsConfig.prefault({}),
    /** Just-in-time credentials (docs/credentials.md). */
    credentials: CredentialsConfig.prefault({}),
  })
  .strict();

export type SidecarConfig = z.infer<typeof SidecarConfig>;
export type SidecarConfigInput = z.input<typeof SidecarConfig>;


export function parseSidecarConfig(input: unknown): SidecarConfig {
  const result = SidecarConfig.safeParse(input);
  if (!result.success) throw new SchemaError('invalid sidecar configuration', describeIssues(result.error));
  return deepFreeze(result.data);
}

/** Builds the config from SLUICE_CONFIG_FILE (optional), then the cluster's settings (when given), overlaid with SLUICE_* env vars. */
export function loadSidecarConfig(env: Env = process.env, clusterSettings?: Readonly<Record<string, unknown>>): SidecarConfig {
  if (clusterSettings) {
    const refused = clusterSettingsProblems(clusterSettings);
    if (refused.length) throw new SchemaError('invalid SluicePolicy sidecar settings', refused);
  }
  return parseSidecarConfig(mergeConfigSources(env, clusterSettings));
}

/**
 * Settings a SluicePolicy may not carry, each with why: what the webhook sets for each pod (the
 * pod's identity, UID, ports, directories), the fake-IP ranges the init container installed rules
 * for before the sidecar read anything, and where the policy itself comes from.
 */
const NOT_FROM_CLUSTER: readonly [string[], string][] = [
  [['pod'], 'the pod\u2019s identity comes from the downward API'],
  [['proxyUID'], 'set by the webhook (sidecar.proxyUID in the chart)'],
  [['ports'], 'set by the webhook (sidecar.ports in the chart)'],
  [['bind'], 'the listeners are the pod\u2019s, not a policy setting'],
  [['podInfoDir'], 'a directory the webhook mounts'],
  [['trustDir'], 'a directory the webhook mounts'],
  [['caDir'], 'a directory the webhook mounts'],
  [['resolvConf'], 'the pod\u2019s own file'],
  [['policy', 'path'], 'the bundle location is the chart\u2019s policy.bundle'],
  [['policy', 'cluster'], 'this very source is the webhook\u2019s to turn on'],
  [['policy', 'configMap'], 'the bundle location is the chart\u2019s policy.bundle'],
  [['policy', 'oci'], 'the bundle location is the chart\u2019s policy.bundle'],
  [['dns', 'ipv4Cidr'], 'the init container installs interception rules for the fake-IP ranges before the sidecar reads anything: set it in the chart (sidecar.fakeIp)'],
  [['dns', 'ipv6Cidr'], 'the init container installs interception rules for the fake-IP ranges before the sidecar reads anything: set it in the chart (sidecar.fakeIp)'],
  [['audit', 'spoolDir'], 'a directory the webhook mounts'],
  [['credentials', 'tokenDir'], 'a directory the webhook mounts'],
];

export function clusterSettingsProblems(settings: Readonly<Record<string, unknown>>): string[] {
  const out: string[] = [];
  for (const [path, why] of NOT_FROM_CLUSTER) {
    let node: unknown = settings;
    for (const key of path) node = node && typeof node === 'object' && !Array.isArray(node) ? (node as Record<string, unknown>)[key] : undefined;
    if (node !== undefined) out.push(`sidecar.${path.join('.')}: not a SluicePolicy setting (${why})`);
  }
  return out;
}

function mergeConfigSources(env: Env, clusterSettings?: Readonly<Record<string, unknown>>): Record<string, unknown> {
  let base = readSettingsFile(env);
  if (clusterSettings) base = mergeSidecarSettings(base, clusterSettings);
  const E = SIDECAR_ENV;
  const pod = section(base, 'pod');
  setIfDefined(pod, 'namespace', env[E.podNamespace]);
  setIfDefined(pod, 'name', env[E.podName]);
  setIfDefined(pod, 'uid', env[E.podUID]);
  setIfDefined(pod, 'serviceAccount', env[E.serviceAccount]);
  const policy = section(base, 'policy');
  setIfDefined(policy, 'path', env[E.policyPath]);
  const configMap = env[E.policyConfigMap];
  if (configMap) {
    const m = /^([^/]+)\/([^/]+)$/.exec(configMap);
    if (!m) throw new SchemaError('invalid sidecar configuration', [`${E.policyConfigMap}: expected <namespace>/<name>, got "${configMap}"`]);
    policy.configMap = { ...section(policy, 'configMap'), namespace: m[1], name: m[2] };
  }
  const ociJson = env[E.policyOci];
  if (ociJson) {
    let oci: unknown;
    try {
      oci = JSON.parse(ociJson);
    } catch {
      throw new SchemaError('invalid sidecar configuration', [`${E.policyOci}: not JSON`]);
    }
    policy.oci = oci;
  }
  const source = env[E.policySource];
  if (source === POLICY_SOURCE_CLUSTER) policy.cluster = { ...section(policy, 'cluster'), enabled: true };
  else if (source !== undefined && source !== '') {
    throw new SchemaError('invalid sidecar configuration', [`${E.policySource}: expected "${POLICY_SOURCE_CLUSTER}" or unset, got "${source}"`]);
  }
  const approvals = section(base, 'approvals');
  if (approvals.inCluster === undefined && env.KUBERNETES_SERVICE_HOST) approvals.inCluster = true;
  // The UID, the ports and the fake-IP ranges as the init container and the CNI agent read them.
  const merged: Record<string, unknown> = { ...withInterceptionEnv(base, env), pod, policy, approvals };
  setIfDefined(merged, 'podInfoDir', env[E.podInfoDir]);
  setIfDefined(merged, 'trustDir', env[E.trustDir]);
  setIfDefined(merged, 'caDir', env[E.caDir]);
  const audit = section(base, 'audit');
  setIfDefined(audit, 'spoolDir', env[E.spoolDir]);
  merged.audit = audit;
  const credentials = section(base, 'credentials');
  setIfDefined(credentials, 'tokenDir', env[E.tokenDir]);
  merged.credentials = credentials;
  return merged;
}
