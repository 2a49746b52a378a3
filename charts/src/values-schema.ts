// The chart's values, described once: types, defaults and a sentence per value. From this model
// `charts/src/generate.ts` writes values.schema.json (so a typo or a wrong type fails
// `helm install` naming the field), values.yaml (defaults with the descriptions as comments) and
// the README's values table. It never reads files or the cluster; edit here, then regenerate.
import { z } from 'zod';
import { SidecarConfig } from '../../sidecar/src/config/sidecar-config.ts';
import { DEFAULT_PROXY_UID, DEFAULT_SIDECAR_PORTS, Organisation } from '../../api/src/index.ts';
import { PullSecret, SidecarEnvVar, SidecarMount, SidecarSecurityContext, TokenAudience } from '../../webhook/src/config.ts';
import type { JsonSchema } from './values-docs.ts';
import { ALERT_NAMES } from './alerts.ts';

const quantity = z.string().regex(/^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$/, 'a Kubernetes quantity such as 100m or 64Mi');
const port = z.number().int().min(1).max(65535);
const duration = z.string().regex(/^([0-9]+(ms|s|m|h))+$/, 'a duration such as 30s or 1h');
/** An http(s) URL, or empty for the chart's own default (RE2: values.schema.json uses it too). */
const urlOrEmpty = z.string().regex(/^(https?:\/\/[^\s]+)?$/, 'an http(s) URL, or empty');
const labelMap = (what: string) => z.record(z.string(), z.string()).default({}).describe(what);

const resourceList = (requests: Record<string, string>, what: string) =>
  z
    .strictObject({
      cpu: quantity.optional().describe('CPU'),
      memory: quantity.optional().describe('memory'),
      'ephemeral-storage': quantity.optional().describe('ephemeral storage'),
    })
    .default(requests)
    .describe(what);

const resources = (requests: Record<string, string>, limits: Record<string, string>, what: string) =>
  z
    .strictObject({
      requests: resourceList(requests, 'requests'),
      limits: resourceList(limits, 'limits'),
    })
    .prefault({})
    .describe(what);

const image = (repository: string, what: string) =>
  z
    .strictObject({
      repository: z.string().min(1).default(repository).describe('image repository'),
      tag: z.string().default('').describe("image tag; empty means the chart's appVersion"),
      digest: z
        .string()
        .regex(/^(sha256:[0-9a-f]{64})?$/, 'sha256:<64 hex digits>')
        .default('')
        .describe('image digest (sha256:…); when set it is used instead of the tag'),
      pullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).default('IfNotPresent').describe('imagePullPolicy'),
    })
    .prefault({})
    .describe(what);

const Toleration = z.strictObject({
  key: z.string().optional().describe('taint key'),
  operator: z.enum(['Exists', 'Equal']).optional().describe('Exists or Equal'),
  value: z.string().optional().describe('taint value'),
  effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute', '']).optional().describe('taint effect'),
  tolerationSeconds: z.number().int().optional().describe('for NoExecute'),
});

/** A Kubernetes object passed through as it is (the API server checks it): see PASSTHROUGH_PATHS. */
const k8sObject = () => z.looseObject({});

/** Spread over zones, then nodes, without ever blocking scheduling; the template adds the webhook's labelSelector and matchLabelKeys. */
const DEFAULT_SPREAD = [
  { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway' },
  { maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway' },
];

/** The restricted Pod Security profile, as the webhook image runs (UID/GID 65532 of the distroless base). */
const DEFAULT_POD_SECURITY_CONTEXT = { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } };
const DEFAULT_SECURITY_CONTEXT = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  privileged: false,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

const pullSecrets = (what: string) =>
  z
    .array(z.strictObject({ name: z.string().min(1).describe('Secret name') }))
    .default([])
    .describe(what);

const PolicyRule = z.strictObject({
  apiGroups: z.array(z.string()).describe('API groups'),
  resources: z.array(z.string()).describe('resources'),
  verbs: z.array(z.string()).min(1).describe('verbs'),
  resourceNames: z.array(z.string()).optional().describe('resource names'),
});

/**
 * What `sidecar.config` may hold: the sidecar's own config schema (sidecar/src/config), so Helm
 * refuses what the sidecar would refuse at start-up and a new sidecar section is accepted as soon
 * as it exists — less what the webhook sets for each pod through SLUICE_* env, which would win over
 * the file anyway (loadSidecarConfig): pod identity, ports, UID and the mounted directories.
 * Input shape: anything with a default may be left out, as in the sidecar's file.
 */
export const SidecarSettings = SidecarConfig.omit({ pod: true, proxyUID: true, ports: true, podInfoDir: true, trustDir: true }).extend({
  // cluster is the webhook's to turn on (SLUICE_POLICY_SOURCE); a SluicePolicy cannot set it either.
  policy: SidecarConfig.shape.policy.omit({ path: true, cluster: true, configMap: true, oci: true }).optional(),
  credentials: SidecarConfig.shape.credentials.unwrap().omit({ tokenDir: true }).optional(),
  // The spool is the webhook's emptyDir (SLUICE_SPOOL_DIR); the rest of the audit settings are the chart user's.
  audit: SidecarConfig.shape.audit.unwrap().omit({ spoolDir: true }).optional(),
});

/** The name of the ConfigMap holding the sidecar's settings (the webhook mounts it in every injected pod). */
export const SIDECAR_CONFIG_MAP = 'sluice-sidecar';

const Webhook = z
  .strictObject({
    image: image('ghcr.io/sluice-dev/sluice-webhook', 'the admission webhook image'),
    replicas: z.number().int().min(1).default(2).describe('webhook replicas; keep ≥ 2 (failurePolicy is Fail: no webhook, no agent pods)'),
    antiAffinity: z
      .enum(['soft', 'hard', 'none'])
      .default('soft')
      .describe('spread replicas over nodes: soft (preferred), hard (required) or none'),
    podDisruptionBudget: z
      .strictObject({
        enabled: z.boolean().default(true).describe('create a PodDisruptionBudget when replicas > 1'),
        minAvailable: z.number().int().min(1).default(1).describe('replicas that must stay up during voluntary disruptions'),
      })
      .prefault({})
      .describe('PodDisruptionBudget'),
    resources: resources({ cpu: '50m', memory: '96Mi' }, { memory: '256Mi' }, 'webhook container resources'),
    timeoutSeconds: z.number().int().min(1).max(30).default(5).describe('how long the API server waits for an admission answer'),
    excludedNamespaces: z
      .array(z.string().min(1))
      .default(['kube-system', 'kube-public', 'kube-node-lease'])
      .describe("namespaces never injected or guarded (the release namespace is always added)"),
    logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info').describe('log level'),
    topologySpreadConstraints: z
      .array(k8sObject())
      .default(DEFAULT_SPREAD)
      .describe(
        'topology spread of webhook pods (default: over zones, then nodes, ScheduleAnyway); an entry without labelSelector gets the webhook pods\' selector and matchLabelKeys [pod-template-hash]; [] for none',
      ),
    affinity: k8sObject()
      .default({})
      .describe('affinity of webhook pods, as Kubernetes writes it; the podAntiAffinity of webhook.antiAffinity is added unless this sets podAntiAffinity'),
    podSecurityContext: k8sObject()
      .default(DEFAULT_POD_SECURITY_CONTEXT)
      .describe('pod securityContext of webhook pods (default: restricted Pod Security); on OpenShift set runAsUser, runAsGroup and fsGroup to null'),
    securityContext: k8sObject()
      .default(DEFAULT_SECURITY_CONTEXT)
      .describe('securityContext of the webhook container (default: restricted Pod Security, read-only root filesystem)'),
    extraEnv: z
      .array(z.looseObject({ name: z.string().min(1).describe('variable name') }))
      .default([])
      .describe('extra env of the webhook container (e.g. NODE_OPTIONS), as Kubernetes EnvVars (value or valueFrom)'),
    nodeSelector: labelMap('node selector for webhook pods'),
    tolerations: z.array(Toleration).default([]).describe('tolerations for webhook pods'),
    priorityClassName: z.string().default('').describe('priority class of webhook pods (system-cluster-critical is a good choice)'),
    podAnnotations: labelMap('extra annotations on webhook pods'),
    podLabels: labelMap('extra labels on webhook pods'),
  })
  .prefault({})
  .describe('the admission webhook (injector and guard)');

const Sidecar = z
  .strictObject({
    image: image('ghcr.io/sluice-dev/sluice-sidecar', 'the sidecar image (also the interception init container)'),
    proxyUID: z.number().int().min(1).max(2_147_483_647).default(DEFAULT_PROXY_UID).describe('UID and GID of the sidecar; no agent may use it'),
    ports: z
      .strictObject({
        transparent: port.default(DEFAULT_SIDECAR_PORTS.transparent).describe('redirected TCP'),
        proxy: port.default(DEFAULT_SIDECAR_PORTS.proxy).describe('explicit HTTP(S) proxy'),
        dns: port.default(DEFAULT_SIDECAR_PORTS.dns).describe('DNS (UDP and TCP)'),
        admin: port.default(DEFAULT_SIDECAR_PORTS.admin).describe('health, readiness and /metrics'),
      })
      .prefault({})
      .describe('sidecar ports inside the agent pod'),
    // Measured: docs/e2e-cluster.md (init container OOMKilled at 64Mi on a real node), bench/startup (idle RSS with
    // approvals and credentials configured, the image's NODE_OPTIONS) and bench/proxy (RSS under load).
    resources: resources({ cpu: '100m', memory: '128Mi' }, { memory: '512Mi' }, 'sidecar container resources (an idle sidecar holds ~95 MiB with approvals and credentials configured; under load see bench/proxy)'),
    initResources: resources({ cpu: '10m', memory: '96Mi' }, { cpu: '1', memory: '128Mi' }, 'interception init container resources (init-network needs ~68 MiB)'),
    startupProbe: z
      .strictObject({
        periodSeconds: z.number().int().min(1).default(1).describe('seconds between probes'),
        failureThreshold: z.number().int().min(1).default(120).describe('probes before the pod is restarted'),
        timeoutSeconds: z.number().int().min(1).default(1).describe('probe timeout'),
      })
      .prefault({})
      .describe('startup probe of the sidecar (agents start only after it passes)'),
    tokenAudiences: z
      .array(TokenAudience)
      .default([{ audience: 'sts.amazonaws.com', expirationSeconds: 3600 }])
      .describe(
        'projected service-account tokens for the credential providers, one file per audience: sts.amazonaws.com for aws-sts (credentials.aws.audience), plus each token exchange subjectTokenAudience',
      ),
    spoolSizeLimit: quantity.default('256Mi').describe('size limit of the audit spool emptyDir'),
    mounts: z
      .array(SidecarMount)
      .default([])
      .describe(
        'Secrets and ConfigMaps of the agent namespace mounted read-only into the sidecar only, at /etc/sluice/mounts/<name>, for the files sidecar.config names (static secrets, extra roots, masking rules, notification URLs); agents may not mount or read a Secret listed here',
      ),
    imagePullSecrets: z
      .array(PullSecret)
      .default([])
      .describe(
        "pull secrets for the sidecar image, appended to every injected pod's spec.imagePullSecrets (the pod's own kept); each Secret must exist in every agent namespace (docs/install.md); agents may not mount or read them",
      ),
    extraEnv: z.array(SidecarEnvVar).default([]).describe('extra env of the sidecar (plain values; SLUICE_* is the webhook\'s; Secrets go through mounts)'),
    securityContext: SidecarSecurityContext.default({}).describe(
      'tightens the sidecar\'s securityContext: seccompProfile/appArmorProfile (RuntimeDefault or Localhost), seLinuxOptions (level; a restricted type); UID (proxyUID), non-root, no capabilities, no escalation and a read-only root filesystem are fixed',
    ),
    // The default is not the sidecar's defaults spelled out (the sidecar applies its own; zod's
    // default is returned as it is, never parsed) but one explicit choice: no audit log store.
    // The sidecar keeps a bounded local ring and warns at every start; NOTES.txt says so loudly.
    config: SidecarSettings.default({ audit: { store: 'none' } } as z.output<typeof SidecarSettings>).describe(
      `runtime settings of every injected sidecar (approvals, credentials, masking, upstream, audit, …), written into spec.sidecar of the SluicePolicy named default (no ${SIDECAR_CONFIG_MAP} ConfigMap in agent namespaces any more); the schema is the sidecar's own config less what the webhook sets per pod; dns.ipv4Cidr/ipv6Cidr go to both sluice containers as env (see docs/policy.md)`,
    ),
  })
  .prefault({})
  .describe('the egress sidecar injected into agent pods');

const Guard = z
  .strictObject({
    staticCredentialSecrets: z
      .array(z.string().min(1))
      .default([])
      .describe('Secrets (exact names or prefix-*) agents may not mount or read from env'),
    forbiddenCapabilities: z
      .array(z.string().min(1))
      .default(['NET_ADMIN', 'NET_RAW', 'SYS_ADMIN', 'SYS_PTRACE', 'SYS_MODULE', 'BPF', 'ALL'])
      .describe('capabilities no agent container may add'),
    forbidRootAgents: z.boolean().default(false).describe('refuse agent containers that run, or may run, as root'),
    allowPodOptOut: z
      .boolean()
      // Off by default: an agent that may create pods would otherwise start an unguarded one just by
      // labelling it sluice.io/inject=false in its own opted-in namespace.
      .default(false)
      .describe('a pod labelled sluice.io/inject=false opts out inside an opted-in namespace (lets anyone who may create pods there start one without sluice)'),
  })
  .prefault({})
  .describe('guardrails the webhook enforces on agent pods');

const Agents = z
  .strictObject({
    namespaces: z
      .array(z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'a namespace name'))
      .default([])
      .describe('agent namespaces the chart provisions: the sidecar Role for approvals and the approver RoleBindings (optional: the sluice.io/inject label alone protects a namespace; policy and settings come from the SluicePolicy objects, and in a namespace not listed the webhook binds the same approvals rules when it injects the first pod)'),
    serviceAccounts: z
      .array(z.string().min(1))
      .default([])
      .describe('agent service accounts bound to the sidecar Role (and to the sidecar ClusterRole by the webhook in namespaces not listed); empty binds every service account of the namespace'),
    extraSidecarRules: z.array(PolicyRule).default([]).describe('extra RBAC rules for the sidecar Role and ClusterRole (e.g. for a credential provider)'),
  })
  .prefault({})
  .describe('namespaces where agents run');

const groups = z.array(z.string().min(1)).min(1);

const Approvals = z
  .strictObject({
    approverGroups: groups
      .default(['sluice-approvers'])
      .describe('groups (as the API server authenticates them: OIDC/SAML groups) that may decide held requests; bound to the approver ClusterRole in every agent namespace'),
    namespaces: z
      .record(z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'a namespace name'), z.strictObject({ approverGroups: groups.describe('groups that may decide in this namespace') }))
      .default({})
      .describe('per-namespace approver groups, replacing approverGroups there (webhook and RoleBinding alike)'),
    maxTTL: z
      .string()
      .regex(/^[0-9]+[smh]$/, 'a duration such as 30m or 8h')
      .default('24h')
      .describe('longest ttl-scoped grant an approver may give'),
    grantKillSwitch: z.boolean().default(true).describe('let approvers patch agent pods to set the kill switch (kubectl sluice kill)'),
  })
  .prefault({})
  .describe('who may approve held requests');

const Policy = z
  .strictObject({
    bundle: z
      .enum(['image', 'configMap', 'release', 'oci'])
      .default('image')
      .describe(
        'image: the sidecar runs the default library built into its image (nothing per namespace; the release does not grow with agents.namespaces); release: a custom signed bundle in one ConfigMap of the release namespace (release.configMapName), read by every sidecar from the API server with a watch and verified with sidecar.config.policy.verification (required); nothing per namespace; oci: a custom signed bundle pulled by every sidecar from an OCI registry (oci.reference, OPA\'s OCI layout), polled, verified the same way; configMap: the sidecar mounts configMapName from the pod\'s namespace (a custom bundle per namespace, signed when sidecar.config.policy.verification is set)',
      ),
    writerServiceAccountNamespaces: z
      .array(z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'a namespace name'))
      .default([])
      .describe('namespaces whose ServiceAccounts may write SluicePolicy objects (a GitOps controller: argocd, flux-system); every other ServiceAccount is refused at admission whatever its RBAC'),
    create: z.boolean().default(true).describe('bundle configMap: create the ConfigMap in every agent namespace from override (or the chart\'s copy of the default library); false: you create it (e.g. binaryData bundle.tar.gz, a signed bundle)'),
    configMapName: z
      .string()
      .regex(/^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/)
      .default('sluice-policy')
      .describe('bundle configMap: name of the policy bundle ConfigMap the sidecar mounts'),
    release: z
      .strictObject({
        configMapName: z
          .string()
          .regex(/^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/)
          .default('sluice-policy-bundle')
          .describe('bundle release: the ConfigMap in the release namespace whose binaryData bundle.tar.gz is the signed bundle (every ServiceAccount may read this one object; no ServiceAccount outside policy.writerServiceAccountNamespaces may write it)'),
        bundleBase64: z
          .string()
          .regex(/^[A-Za-z0-9+/=\s]*$/, 'base64')
          .default('')
          .describe('bundle release: the signed bundle.tar.gz, base64 (--set-file with a base64 file): the chart creates the ConfigMap; empty: you create it (kubectl create configmap --from-file=bundle.tar.gz)'),
      })
      .prefault({})
      .describe('bundle release: where the signed bundle lives'),
    oci: z
      .strictObject({
        reference: z
          .string()
          .default('')
          .describe('bundle oci: registry.example.com/path/name:tag or …@sha256:<digest> of a signed OPA bundle (one application/vnd.oci.image.layer.v1.tar+gzip layer, as `oras push` or OPA publish it)'),
        pollSeconds: z.number().int().min(1).max(86400).default(60).describe('bundle oci: how often each sidecar compares the manifest digest (the layer is pulled only when it changed)'),
        pullSecretFile: z
          .string()
          .default('')
          .describe('bundle oci: a .dockerconfigjson file in the sidecar with the registry\'s pull credentials (mount the Secret with sidecar.mounts, e.g. /etc/sluice/mounts/<name>/.dockerconfigjson); empty: anonymous'),
        caFile: z.string().default('').describe('bundle oci: a PEM file in the sidecar with extra roots for the registry (a private CA, through sidecar.mounts); the system roots stay trusted'),
      })
      .prefault({})
      .describe('bundle oci: where the signed bundle is pulled from'),
    override: z
      .strictObject({
        wasmBase64: z.string().default('').describe('policy.wasm, base64 (e.g. --set-file with a base64 file)'),
        dataJson: z.string().default('').describe('data.json'),
        manifest: z.string().default('').describe('.manifest (JSON with the revision)'),
        inputReads: z.string().default('').describe('sluice.input-reads (optional; `make policy` writes it): which input paths the policy reads, bound to policy.wasm; without it the sidecar evaluates every request (no decision cache)'),
      })
      .prefault({})
      .describe('your own bundle (wasmBase64, dataJson and manifest: all three or none; inputReads optional); empty uses the default library built from policies/'),
  })
  .prefault({})
  .describe('the policy bundle');

const IssuerRef = z.strictObject({
  name: z.string().min(1).describe('issuer name'),
  kind: z.enum(['Issuer', 'ClusterIssuer']).default('Issuer').describe('Issuer or ClusterIssuer'),
  group: z.string().default('cert-manager.io').describe('issuer API group'),
});

const Certificates = z
  .strictObject({
    mode: z
      .enum(['helm', 'self', 'cert-manager'])
      .default('self')
      .describe(
        'self (default): the webhook creates its CA and serving certificate in a Secret and sets the caBundle of its own registrations itself, so the chart renders no key material and `helm template` is deterministic (Argo CD, Flux); helm: a self-signed CA generated by the chart once and kept across upgrades (needs a live install: `helm template` renders a new CA each time); cert-manager: Certificates and CA injection',
      ),
    caValidityDays: z.number().int().min(30).default(3650).describe('helm and self modes: validity of the generated CA'),
    validityDays: z.number().int().min(7).default(365).describe('helm and self modes: validity of the serving certificate'),
    renewBeforeDays: z
      .number()
      .int()
      .min(1)
      .default(30)
      .describe('helm and self modes: the serving certificate is re-issued from the same CA this close to expiry (helm: on an upgrade; self: by the running webhook)'),
    resyncSeconds: z
      .number()
      .int()
      .min(5)
      .max(3600)
      .default(60)
      .describe('self mode: how often the webhook re-checks its Secret and the caBundle of its registrations (a blanked caBundle is repaired within this)'),
    certManager: z
      .strictObject({
        issuerRef: IssuerRef.nullable().default(null).describe('issuer to use; null creates a self-signed CA Issuer for sluice'),
        duration: duration.default('8760h').describe('serving certificate duration'),
        renewBefore: duration.default('720h').describe('renew this long before expiry'),
      })
      .prefault({})
      .describe('cert-manager mode'),
  })
  .prefault({})
  .describe("the webhook's serving certificate");

const Monitoring = z
  .strictObject({
    serviceMonitor: z
      .strictObject({
        enabled: z.boolean().default(false).describe('create a ServiceMonitor for the webhook (Prometheus Operator)'),
        interval: duration.default('30s').describe('scrape interval'),
        labels: labelMap('labels your Prometheus selects ServiceMonitors by'),
      })
      .prefault({})
      .describe('webhook scraping'),
    podMonitor: z
      .strictObject({
        enabled: z.boolean().default(false).describe('create a PodMonitor for the sidecars (port sluice-admin)'),
        interval: duration.default('30s').describe('scrape interval'),
        labels: labelMap('labels your Prometheus selects PodMonitors by'),
      })
      .prefault({})
      .describe('sidecar scraping'),
    prometheusRule: z
      .strictObject({
        enabled: z.boolean().default(false).describe('create the PrometheusRule with sluice alerts'),
        labels: labelMap('labels your Prometheus selects rules by'),
        runbookBaseURL: urlOrEmpty
          .default('')
          .describe('base of every runbook_url annotation (<base>/<Alert>.md); empty: the runbooks of the installed version, <docs.baseURL>/runbooks'),
        disabledAlerts: z
          .array(z.enum(ALERT_NAMES))
          .default([])
          .describe('alert names to leave out (one of the alerts in docs/runbooks; a misspelt name fails the install)'),
      })
      .prefault({})
      .describe('alerts'),
    dashboards: z
      .strictObject({
        enabled: z.boolean().default(false).describe("create dashboard ConfigMaps for Grafana's sidecar"),
        namespace: z.string().default('').describe('namespace of the dashboard ConfigMaps; empty is the release namespace'),
        label: z.string().min(1).default('grafana_dashboard').describe("label Grafana's sidecar watches"),
        labelValue: z.string().default('1').describe('value of that label'),
        folder: z.string().default('sluice').describe('grafana_folder annotation (folder in Grafana)'),
      })
      .prefault({})
      .describe('Grafana dashboards'),
  })
  .prefault({})
  .describe('Prometheus Operator objects and Grafana dashboards');

/** interception.mode and the sluice node agent (cni/, charts/sluice/templates/cni-*.yaml, docs/cni.md). */
const Interception = z
  .strictObject({
    mode: z
      .enum(['init', 'cni'])
      .default('init')
      .describe(
        'who installs each agent pod\'s interception rules: init = a root init container with NET_ADMIN/NET_RAW (agent namespaces must allow Pod Security privileged); cni = the sluice node agent (a privileged DaemonSet in the release namespace) through a chained CNI plugin, and injected pods pass Pod Security restricted (docs/cni.md)',
      ),
    cni: z
      .strictObject({
        confDir: z.string().min(1).default('/etc/cni/net.d').describe("the node's CNI configuration directory (the runtime's conf_dir)"),
        binDir: z.string().min(1).default('/opt/cni/bin').describe("the node's CNI plugin directory (the runtime's bin_dir); the agent copies its plugin there"),
        socketDir: z.string().min(1).default('/var/run/sluice-cni').describe('host directory of the Unix socket the plugin asks the agent on'),
        exemptNamespaces: z
          .array(z.string().min(1))
          .default([])
          .describe('namespaces whose pods start even when the node agent is down (kube-system and the release namespace always are); every other new pod waits for the agent'),
        resources: resources({ cpu: '10m', memory: '96Mi' }, { memory: '256Mi' }, 'node agent resources'),
        priorityClassName: z.string().default('system-node-critical').describe('priority class of the node agent pods (empty: none)'),
        tolerations: z
          .array(Toleration)
          .default([{ operator: 'Exists' }])
          .describe('tolerations of the node agent: by default every node, tainted or not (an untolerated node runs injected pods without interception, and their check refuses them)'),
        nodeSelector: labelMap('nodeSelector of the node agent'),
      })
      .prefault({})
      .describe('the sluice node agent (DaemonSet) in mode cni'),
  })
  .prefault({})
  .describe('how agent pods are intercepted');

export const ChartValues = z
  .strictObject({
    global: z
      .looseObject({
        imagePullSecrets: z
          .array(z.union([z.string().min(1), z.strictObject({ name: z.string().min(1).describe('Secret name') })]))
          .optional()
          .describe('pull secrets (names or {name}) for the webhook pods, as a parent chart shares them; added to imagePullSecrets'),
      })
      .default({})
      .describe('values shared with a parent chart when sluice is a subchart (Helm passes them down; sluice reads imagePullSecrets only)'),
    nameOverride: z.string().default('').describe('replaces the chart name in object names'),
    fullnameOverride: z.string().default('').describe('replaces the release-derived prefix of object names'),
    imagePullSecrets: pullSecrets('pull secrets for the webhook pods (in the release namespace); for injected pods see sidecar.imagePullSecrets'),
    webhook: Webhook,
    sidecar: Sidecar,
    interception: Interception,
    guard: Guard,
    agents: Agents,
    approvals: Approvals,
    policy: Policy,
    organisation: Organisation.optional().describe(
      'the organisation model (docs/policy.md) written into the SluicePolicy named default; absent: the default library\'s example organisation "acme" (set your own)',
    ),
    certificates: Certificates,
    crds: z
      .strictObject({
        install: z.boolean().default(true).describe('install the ApprovalRequest CRD with the chart'),
        keep: z.boolean().default(true).describe('keep the CRD (and every ApprovalRequest) on helm uninstall'),
      })
      .prefault({})
      .describe('CustomResourceDefinitions'),
    admissionPolicy: z
      .strictObject({
        enabled: z.boolean().default(true).describe('install the ValidatingAdmissionPolicies (guardrails evaluated in the API server)'),
      })
      .prefault({})
      .describe('ValidatingAdmissionPolicy'),
    networkPolicy: z
      .strictObject({
        enabled: z.boolean().default(true).describe('restrict traffic to the webhook pods'),
        metricsFrom: z
          .array(z.looseObject({}))
          .default([])
          .describe('NetworkPolicy peers allowed to scrape the webhook metrics port; empty allows any'),
        apiServerPorts: z
          .array(z.number().int().min(1).max(65535))
          .min(1)
          .default([443, 6443])
          .describe('TCP ports the webhook may reach the Kubernetes API server on (it reads pods and workload owners; the Service port and the endpoint port after DNAT)'),
        apiServerPeers: z
          .array(z.looseObject({}))
          .default([])
          .describe('NetworkPolicy peers (e.g. an ipBlock of the control plane) the webhook may reach on apiServerPorts; empty allows any destination on those ports'),
      })
      .prefault({})
      .describe('NetworkPolicy for the webhook'),
    monitoring: Monitoring,
    docs: z
      .strictObject({
        baseURL: urlOrEmpty
          .default('')
          .describe(
            'where NOTES.txt and the alerts\' runbook links point; empty: the docs of the installed version, https://github.com/sluice-dev/sluice/blob/v<appVersion>/docs (a mirror or an internal copy otherwise)',
          ),
      })
      .prefault({})
      .describe('links to the documentation'),
  })
  .describe('sluice Helm chart values');

export type ChartValues = z.infer<typeof ChartValues>;

/** The defaults: what `helm install` uses with no values. */
export function defaultValues(): ChartValues {
  return ChartValues.parse({});
}

/** Paths whose values are Kubernetes objects passed through as they are (checked by the API server), and `global` (a parent chart's). */
export const PASSTHROUGH_PATHS = [
  'global',
  'networkPolicy.metricsFrom[]',
  'networkPolicy.apiServerPeers[]',
  'webhook.topologySpreadConstraints[]',
  'webhook.affinity',
  'webhook.podSecurityContext',
  'webhook.securityContext',
  'webhook.extraEnv[]',
  // A credential provider's own fields (api/src/organisation.ts: provider plus its settings).
  'organisation.llm.providers[].credential',
];

/**
 * Values whose schema belongs to another component and is documented there: one row in the values
 * table, no per-field descriptions required (the sidecar's schema has none; docs/*.md explain it).
 */
export const EMBEDDED_SCHEMA_PATHS = ['sidecar.config', 'organisation'];

/** values.schema.json as Helm reads it (draft 2020-12, additionalProperties: false on every object). */
export function valuesJsonSchema(): JsonSchema {
  return z.toJSONSchema(ChartValues, { io: 'input', target: 'draft-2020-12' }) as JsonSchema;
}
