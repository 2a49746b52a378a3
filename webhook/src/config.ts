// The webhook's typed configuration (Helm values later): what the injector renders into agent pods,
// what the guard forbids, and where the server listens. Validated once at start-up and deep-frozen;
// a bad value fails start-up naming the field. Nothing here reads files or the environment.
import { z } from 'zod';
import { DEFAULT_PROXY_UID, DEFAULT_SIDECAR_PORTS, deepFreeze, defaultTokenFileName, parseOrThrow } from '../../api/src/index.ts';
import { AgentRbacConfig } from './agent-rbac.ts';
import { ApprovalsWebhookConfig } from './approvals/config.ts';
import { InterceptionConfig } from './cni-mode.ts';
import { KubeAccessConfig } from './kube-reader.ts';
import { SelfCertConfig } from './self-cert.ts';
import { CreatorsConfig } from './workload-creator.ts';

const port = z.number().int().min(1).max(65535);
const quantity = z.string().regex(/^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$/, 'a Kubernetes quantity such as 100m or 64Mi');
const ResourceList = z.partialRecord(z.enum(['cpu', 'memory', 'ephemeral-storage']), quantity);
const Resources = z.object({ requests: ResourceList.optional(), limits: ResourceList.optional() }).strict();

/** A plain file name, never `.` or `..` (RE2-compatible: the chart's JSON Schema uses it too). */
const FILE_NAME = /^([A-Za-z0-9_-][A-Za-z0-9._-]*|\.[A-Za-z0-9_-][A-Za-z0-9._-]*|\.\.[A-Za-z0-9._-]+)$/;

export const TokenAudience = z
  .object({
    audience: z.string().min(1).describe('token audience'),
    /** File name under SLUICE_TOKEN_DIR; defaults to the audience with unsafe characters replaced by `_`. */
    path: z.string().regex(FILE_NAME, 'a plain file name').optional().describe('file name under /var/run/sluice/tokens (default: the audience, unsafe characters as _)'),
    expirationSeconds: z.number().int().min(600).max(86_400).default(3600).describe('token lifetime'),
  })
  .strict();

/** A Kubernetes object name (DNS subdomain), as Secrets and ConfigMaps have. */
const objectName = z
  .string()
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'a Kubernetes object name (lower-case DNS subdomain)');

const KeyToPath = z
  .object({
    key: z.string().min(1),
    path: z
      .string()
      .regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/, 'a relative path')
      .refine((p) => !p.split('/').some((part) => part === '..' || part === '.'), 'a relative path without . or ..'),
  })
  .strict();

/**
 * A Secret or ConfigMap of the pod's namespace mounted read-only into the sidecar only, at
 * `/etc/sluice/mounts/<name>`: the files the sidecar's settings name (static credentials, extra
 * upstream roots, masking rules, notification URLs). A mounted Secret is a static credential for
 * the guard: no agent container may mount it or read it from env.
 */
const mountFields = {
  name: z
    .string()
    .max(50)
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'a DNS label (lower-case letters, digits and -)')
    .describe('directory under /etc/sluice/mounts; the volume is sluice-mount-<name>'),
  items: z.array(KeyToPath).min(1).optional().describe('only these keys, at these paths (default: every key as a file)'),
  optional: z.boolean().default(false).describe('start the pod even when the Secret or ConfigMap does not exist'),
};
// Two strict shapes rather than a refine, so the chart's JSON Schema refuses both or neither too.
export const SidecarMount = z.union([
  z.object({ ...mountFields, secret: objectName.describe("a Secret in the pod's namespace") }).strict(),
  z.object({ ...mountFields, configMap: objectName.describe("a ConfigMap in the pod's namespace") }).strict(),
]);

/**
 * `spec.imagePullSecrets` entries the injector appends to every injected pod (de-duplicated, the
 * pod's own kept): the Secret must exist in the pod's namespace, where the kubelet reads it. The
 * guard treats them as sluice's: no agent container may mount one or read it from env.
 */
export const PullSecret = z.object({ name: objectName.describe('a kubernetes.io/dockerconfigjson Secret in the agent namespace') }).strict();

/** An env var for the sidecar. Plain values only: a Secret for the sidecar goes through `mounts`, which the guard protects. */
export const SidecarEnvVar = z
  .object({
    name: z
      .string()
      .regex(/^[-._a-zA-Z][-._a-zA-Z0-9]*$/, 'an environment variable name')
      // SLUICE_* is the webhook's contract with the sidecar (ports, UID, pod identity, directories):
      // an extra value would silently disagree with the interception rules or the mounts.
      .refine((n) => !n.toUpperCase().startsWith('SLUICE_'), 'SLUICE_* variables are set by the webhook; use sidecar.config (the settings ConfigMap) instead')
      .describe('variable name (not SLUICE_*)'),
    value: z.string().describe('value'),
  })
  .strict();

/** A field sluice decides: present at all is refused, naming why. */
const notOverridable = (why: string) => z.never({ error: why }).optional().describe(`not allowed: ${why}`);

const localProfile = (what: string) =>
  z.union([
    z.object({ type: z.literal('RuntimeDefault').describe("the container runtime's default profile") }).strict(),
    z
      .object({
        type: z.literal('Localhost').describe('a profile loaded on the node'),
        localhostProfile: z.string().min(1).describe(`${what} profile on the node`),
      })
      .strict(),
  ]);

/**
 * What may change in the sidecar's securityContext: only fields that confine it further. Its UID is
 * `proxyUID` (the one the interception rules exempt, never root, never an agent's: the guard refuses
 * agents with it), and it stays non-root, unprivileged, without privilege escalation, with every
 * capability dropped and a read-only root filesystem; Unconfined seccomp/AppArmor and SELinux types
 * outside the restricted Pod Security profile's are refused here, at start-up, not in a pod.
 */
export const SidecarSecurityContext = z
  .object({
    seccompProfile: localProfile('seccomp').optional().describe('RuntimeDefault (default) or a Localhost profile; never Unconfined'),
    appArmorProfile: localProfile('AppArmor').optional().describe('RuntimeDefault or a Localhost profile; never Unconfined'),
    seLinuxOptions: z
      .object({
        level: z.string().min(1).optional().describe('SELinux level (e.g. an MCS label s0:c123,c456)'),
        type: z.enum(['container_t', 'container_init_t', 'container_kvm_t', 'container_engine_t']).optional().describe('a type the restricted Pod Security profile allows'),
      })
      .strict()
      .optional()
      .describe('SELinux options (user and role are not allowed)'),
    runAsUser: notOverridable('the sidecar runs as sidecar.proxyUID, the UID the interception rules exempt (never root, never an agent UID): set proxyUID instead'),
    runAsGroup: notOverridable('the sidecar runs with group sidecar.proxyUID: set proxyUID instead'),
    runAsNonRoot: notOverridable('the sidecar always runs as non-root'),
    privileged: notOverridable('the sidecar never runs privileged'),
    allowPrivilegeEscalation: notOverridable('the sidecar never allows privilege escalation'),
    capabilities: notOverridable('the sidecar drops every capability and adds none'),
    readOnlyRootFilesystem: notOverridable('the sidecar always has a read-only root filesystem'),
    procMount: notOverridable('the sidecar keeps the default /proc mount'),
    windowsOptions: notOverridable('the sidecar is a Linux container'),
  })
  .strict();

const Ports = z
  .object({
    transparent: port.default(DEFAULT_SIDECAR_PORTS.transparent),
    proxy: port.default(DEFAULT_SIDECAR_PORTS.proxy),
    dns: port.default(DEFAULT_SIDECAR_PORTS.dns),
    admin: port.default(DEFAULT_SIDECAR_PORTS.admin),
  })
  .strict()
  .refine((p) => new Set([p.transparent, p.proxy, p.dns, p.admin]).size === 4, 'the four ports must differ');

const Sidecar = z
  .object({
    image: z.string().min(1),
    imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).default('IfNotPresent'),
    // From measurement (docs/e2e-cluster.md, bench/proxy): an idle sidecar holds ~143 MiB and ~395 MiB
    // under 16 connections of load; `node … init-network` needs ~68 MiB in a memory cgroup (64Mi was
    // OOMKilled on a real node, so no injected agent ever started) and took 9-16 s under a 100m CPU limit.
    resources: Resources.default({ requests: { cpu: '100m', memory: '160Mi' }, limits: { memory: '512Mi' } }),
    initResources: Resources.default({ requests: { cpu: '10m', memory: '96Mi' }, limits: { cpu: '1', memory: '128Mi' } }),
    /** UID and GID the sidecar runs as; the interception rules exempt it, so no agent may use it. */
    proxyUID: z.number().int().min(1).max(2_147_483_647).default(DEFAULT_PROXY_UID),
    ports: Ports.prefault({}),
    startupProbe: z
      .object({
        periodSeconds: z.number().int().min(1).default(1),
        failureThreshold: z.number().int().min(1).default(120),
        timeoutSeconds: z.number().int().min(1).default(1),
      })
      .strict()
      .prefault({}),
    /** One projected service-account token per audience the credential providers exchange. */
    tokenAudiences: z.array(TokenAudience).default([]),
    /**
     * ConfigMap (in the pod's namespace) holding a custom policy bundle, mounted at POLICY_DIR.
     * null: no policy volume, and the sidecar runs the default library built into its image.
     */
    policyConfigMap: z.string().min(1).nullable().default('sluice-policy'),
    /**
     * `<namespace>/<name>` of the one ConfigMap holding the signed custom bundle in sluice's release
     * namespace (the chart's policy.bundle release): the sidecar reads it from the API server
     * (SLUICE_POLICY_CONFIGMAP), nothing is mounted and nothing exists per agent namespace.
     */
    policyBundleObject: z
      .string()
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/, 'expected <namespace>/<name>')
      .nullable()
      .default(null),
    /**
     * The signed bundle pulled from an OCI registry (the chart's policy.bundle oci), given to the
     * sidecar as SLUICE_POLICY_OCI (JSON); the sidecar checks the fields.
     */
    policyOci: z
      .object({
        reference: z.string().min(3),
        pullSecretFile: z.string().min(1).optional(),
        caFile: z.string().min(1).optional(),
        pollIntervalMs: z.number().int().min(1000).optional(),
      })
      .strict()
      .nullable()
      .default(null),
    /**
     * ConfigMap (in the pod's namespace) whose `sidecar.yaml` holds the sidecar's runtime settings
     * (approvals, credentials, masking, upstream, audit). Mounted optional: a pod starts without it.
     */
    sidecarConfigMap: z.string().min(1).default('sluice-sidecar'),
    /**
     * Where the sidecar's runtime settings come from: `cluster`, the SluicePolicy objects the sidecar
     * watches (the chart's choice: no ConfigMap in agent namespaces, docs/policy.md), or `configMap`,
     * the per-namespace sidecarConfigMap mounted into both containers (deprecated).
     */
    settingsSource: z.enum(['cluster', 'configMap']).default('configMap'),
    /**
     * The fake-IP ranges, given to both sluice containers as env (the init container's interception
     * rules and the sidecar's DNS answers must agree); unset: the sidecar's defaults (or the settings file).
     */
    fakeIp: z
      .object({ ipv4Cidr: z.string().min(1).optional(), ipv6Cidr: z.string().min(1).nullable().optional() })
      .strict()
      .default({}),
    spoolSizeLimit: quantity.default('256Mi'),
    /** Secrets and ConfigMaps mounted into the sidecar only (MOUNTS_DIR, api/src/sidecar-contract.ts). */
    mounts: z.array(SidecarMount).default([]),
    /** Pull secrets for the sidecar image, appended to every injected pod's spec.imagePullSecrets. */
    imagePullSecrets: z.array(PullSecret).default([]),
    /** Extra env of the sidecar, after the webhook's own. */
    extraEnv: z.array(SidecarEnvVar).default([]),
    /** Tightens the sidecar's securityContext (render.ts merges it over the fixed one). */
    securityContext: SidecarSecurityContext.default({}),
  })
  .strict()
  .refine((s) => new Set(s.tokenAudiences.map(tokenFileName)).size === s.tokenAudiences.length, {
    message: 'token audiences must map to distinct file names',
    path: ['tokenAudiences'],
  })
  .refine((s) => new Set(s.mounts.map((m) => m.name)).size === s.mounts.length, { message: 'mount names must be unique', path: ['mounts'] })
  .refine((s) => new Set(s.extraEnv.map((e) => e.name)).size === s.extraEnv.length, { message: 'extraEnv names must be unique', path: ['extraEnv'] })
  .refine((s) => [s.policyBundleObject, s.policyConfigMap, s.policyOci].filter((v) => v !== null).length <= 1, { message: 'one policy source: policyBundleObject (release namespace), policyOci (a registry) or policyConfigMap (per namespace)', path: ['policyBundleObject'] });

const Guard = z
  .object({
    /** Secret names (exact, or a prefix ending in `*`) that hold static credentials agents must not see. */
    staticCredentialSecrets: z.array(z.string().min(1)).default([]),
    /** Capabilities no agent container may add (compared without the CAP_ prefix, case-insensitive). */
    forbiddenCapabilities: z.array(z.string().min(1)).default(['NET_ADMIN', 'NET_RAW', 'SYS_ADMIN', 'SYS_PTRACE', 'SYS_MODULE', 'BPF', 'ALL']),
    /** Refuse agent containers that run, or may run, as root (UID 0 or no runAsNonRoot). */
    forbidRootAgents: z.boolean().default(false),
    /** Whether `sluice.io/inject: "false"` on a pod opts it out inside an opted-in namespace. */
    allowPodOptOut: z.boolean().default(true),
  })
  .strict();

const Server = z
  .object({
    host: z.string().default('0.0.0.0'),
    port: z.number().int().min(0).max(65535).default(8443),
    metricsHost: z.string().default('0.0.0.0'),
    metricsPort: z.number().int().min(0).max(65535).default(9090),
    /** Mounted Secret directory holding the serving certificate; watched and reloaded on change. */
    tlsDir: z.string().min(1).default('/etc/sluice/webhook-tls'),
    certFile: z.string().min(1).default('tls.crt'),
    keyFile: z.string().min(1).default('tls.key'),
    bodyLimitBytes: z.number().int().min(1024).default(8 * 1024 * 1024),
  })
  .strict();

export const WebhookConfigSchema = z
  .object({
    /** Written into `sluice.io/status`; the pod records which injector produced it. */
    injectorVersion: z.string().min(1).default('dev'),
    /** sluice's own namespace: never injected, never guarded. */
    namespace: z.string().min(1).default('sluice-system'),
    sidecar: Sidecar,
    guard: Guard.prefault({}),
    /** Who installs the interception rules (webhook/src/cni-mode.ts). */
    interception: InterceptionConfig.prefault({}),
    server: Server.prefault({}),
    /** Who may decide ApprovalRequests (webhook/src/approvals). */
    approvals: ApprovalsWebhookConfig.prefault({}),
    /**
     * The approvals RoleBindings the webhook ensures in the namespace of every pod it injects
     * (webhook/src/agent-rbac.ts), so a labelled namespace needs no entry in agents.namespaces.
     * Absent: the namespace's RBAC is someone else's (the chart's per-namespace Roles).
     */
    agentRbac: AgentRbacConfig.optional(),
    /** Whose creations inherit their controller owner's creator stamp (webhook/src/workload-creator.ts). */
    creators: CreatorsConfig.prefault({}),
    /** How the webhook reads pods and owners with its own credentials (webhook/src/kube-reader.ts). */
    kube: KubeAccessConfig.prefault({}),
    /**
     * Certificate mode "self" (webhook/src/self-cert.ts): when set, the webhook keeps its CA and
     * serving certificate in this Secret, writes the pair into server.tlsDir and sets the caBundle
     * of the named registrations. Absent: the pair in server.tlsDir comes from elsewhere.
     */
    selfCert: SelfCertConfig.optional(),
  })
  .strict();

export type WebhookConfig = z.infer<typeof WebhookConfigSchema>;
export type WebhookConfigInput = z.input<typeof WebhookConfigSchema>;
export type TokenAudience = z.infer<typeof TokenAudience>;
export type SidecarMount = z.infer<typeof SidecarMount>;
export type SidecarSecurityContext = z.infer<typeof SidecarSecurityContext>;

export function tokenFileName(t: { audience: string; path?: string | undefined }): string {
  return t.path ?? defaultTokenFileName(t.audience);
}


/** Validates, applies defaults and freezes; throws SchemaError naming each bad field. */
export function parseWebhookConfig(value: unknown): Readonly<WebhookConfig> {
  return deepFreeze(parseOrThrow(WebhookConfigSchema, value, 'webhook config'));
}
