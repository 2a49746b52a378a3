// Renders everything sluice owns inside an agent pod from config alone: the interception init
// container, the native sidecar, the sidecar's volumes, and the env and mount every agent container
// gets. Pure data in, data out. The output carries the fields the API server would default
// (terminationMessagePath, probe thresholds, defaultMode, …) so the guard can compare a stored pod's
// sidecar to this rendering field for field; it must never depend on the pod being injected.
import type { V1Container, V1EnvVar, V1Probe, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import {
  FAKE_IPV6_NONE,
  INIT_CONTAINER,
  MOUNTS_DIR,
  PODINFO_DIR,
  POLICY_DIR,
  POLICY_SOURCE_CLUSTER,
  SETTINGS_DIR,
  SETTINGS_FILE,
  SETTINGS_KEY,
  SETTINGS_VOLUME,
  SIDECAR_COMMANDS,
  SIDECAR_CONTAINER,
  SIDECAR_ENTRYPOINT,
  SIDECAR_ENV,
  SPOOL_DIR,
  TOKEN_DIR,
  TRUST_BUNDLE_FILE,
  TRUST_CA_FILE,
  TRUST_DIR,
  deepFreeze,
} from '../../api/src/index.ts';
import { renderCheckContainer } from './cni-mode.ts';
import { tokenFileName } from './config.ts';
import type { SidecarMount, WebhookConfig } from './config.ts';
import { restrictedSecurityContext } from './security-context.ts';

export const VOLUME_TRUST = 'sluice-trust';
export const VOLUME_TOKENS = 'sluice-tokens';
export const VOLUME_KUBE_API = 'sluice-kube-api-access';
export const VOLUME_PODINFO = 'sluice-podinfo';
export const VOLUME_POLICY = 'sluice-policy';
export const VOLUME_SPOOL = 'sluice-spool';
export const VOLUME_CONFIG = SETTINGS_VOLUME;

// The directories, file names and SLUICE_* names the sidecar reads: api/src/sidecar-contract.ts.
/** `sidecar.mounts[].name` is mounted at `${MOUNTS_DIR}/<name>` (api/) from volume `${VOLUME_MOUNT_PREFIX}<name>`. */
export const VOLUME_MOUNT_PREFIX = 'sluice-mount-';
/** Where client libraries look for the in-cluster service-account token (the sidecar's only). */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export const RESERVED_CONTAINERS: readonly string[] = [INIT_CONTAINER, SIDECAR_CONTAINER];

const SIDECAR_COMMAND = SIDECAR_ENTRYPOINT;
const DEFAULT_MODE = 420; // 0644, what the API server defaults for projected/configMap/downwardAPI
const KUBE_API_TOKEN_SECONDS = 3607; // the ServiceAccount admission plugin's own choice

export interface Rendered {
  initContainer: V1Container;
  sidecar: V1Container;
  /** The volumes sluice adds, in the order it adds them. */
  volumes: V1Volume[];
  /** Env every agent container gets unless it already sets the name (its own value wins). */
  agentEnv: V1EnvVar[];
  agentMount: V1VolumeMount;
}

function fieldEnv(name: string, fieldPath: string): V1EnvVar {
  return { name, valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath } } };
}

function httpProbe(path: string, port: number, p: { periodSeconds: number; failureThreshold: number; timeoutSeconds: number }): V1Probe {
  return {
    httpGet: { path, port, scheme: 'HTTP' },
    periodSeconds: p.periodSeconds,
    failureThreshold: p.failureThreshold,
    timeoutSeconds: p.timeoutSeconds,
    successThreshold: 1,
  };
}

function commonEnv(config: WebhookConfig): V1EnvVar[] {
  const { ports, proxyUID } = config.sidecar;
  return [
    { name: SIDECAR_ENV.proxyUID, value: String(proxyUID) },
    { name: SIDECAR_ENV.transparentPort, value: String(ports.transparent) },
    { name: SIDECAR_ENV.proxyPort, value: String(ports.proxy) },
    { name: SIDECAR_ENV.dnsPort, value: String(ports.dns) },
    { name: SIDECAR_ENV.adminPort, value: String(ports.admin) },
    fieldEnv(SIDECAR_ENV.podName, 'metadata.name'),
    fieldEnv(SIDECAR_ENV.podNamespace, 'metadata.namespace'),
    fieldEnv(SIDECAR_ENV.podUID, 'metadata.uid'),
    fieldEnv(SIDECAR_ENV.serviceAccount, 'spec.serviceAccountName'),
    // Both containers read the same settings: the interception rules the init container installs
    // depend on settings the sidecar also uses (the fake-IP ranges of `dns`).
    ...fakeIpEnv(config),
    ...(fromConfigMap(config) ? [{ name: SIDECAR_ENV.configFile, value: SETTINGS_FILE }] : []),
  ];
}

/** Set only when the config names them, so pods rendered without them keep the sidecar's defaults. */
function fakeIpEnv(config: WebhookConfig): V1EnvVar[] {
  const { ipv4Cidr, ipv6Cidr } = config.sidecar.fakeIp;
  return [
    ...(ipv4Cidr !== undefined ? [{ name: SIDECAR_ENV.fakeIpv4Cidr, value: ipv4Cidr }] : []),
    ...(ipv6Cidr !== undefined ? [{ name: SIDECAR_ENV.fakeIpv6Cidr, value: ipv6Cidr ?? FAKE_IPV6_NONE }] : []),
  ];
}

/** With settings from the cluster (SluicePolicy objects) no settings ConfigMap is mounted anywhere. */
function fromConfigMap(config: WebhookConfig): boolean {
  return config.sidecar.settingsSource === 'configMap';
}

/** Read-only in both sluice containers; agents never mount it (the guard refuses that). */
function configMount(): V1VolumeMount {
  return { name: VOLUME_CONFIG, mountPath: SETTINGS_DIR, readOnly: true };
}

function mountVolume(m: SidecarMount): V1Volume {
  const items = m.items?.map((i) => ({ key: i.key, path: i.path }));
  const name = `${VOLUME_MOUNT_PREFIX}${m.name}`;
  if ('secret' in m) return { name, secret: { secretName: m.secret, defaultMode: DEFAULT_MODE, optional: m.optional, ...(items ? { items } : {}) } };
  return { name, configMap: { name: m.configMap, defaultMode: DEFAULT_MODE, optional: m.optional, ...(items ? { items } : {}) } };
}

function renderVolumes(config: WebhookConfig): V1Volume[] {
  const s = config.sidecar;
  const volumes: V1Volume[] = [
    { name: VOLUME_TRUST, emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
    {
      // Replaces the ServiceAccount plugin's kube-api-access-* volume, which agents no longer get.
      name: VOLUME_KUBE_API,
      projected: {
        defaultMode: DEFAULT_MODE,
        sources: [
          { serviceAccountToken: { expirationSeconds: KUBE_API_TOKEN_SECONDS, path: 'token' } },
          { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
          { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
        ],
      },
    },
    {
      name: VOLUME_PODINFO,
      downwardAPI: {
        defaultMode: DEFAULT_MODE,
        items: [
          { path: 'labels', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.labels' } },
          { path: 'annotations', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.annotations' } },
        ],
      },
    },
    // Without a custom bundle ConfigMap the sidecar uses the library in its image: no volume at all.
    ...(s.policyConfigMap !== null ? [{ name: VOLUME_POLICY, configMap: { name: s.policyConfigMap, defaultMode: DEFAULT_MODE } }] : []),
    { name: VOLUME_SPOOL, emptyDir: { sizeLimit: s.spoolSizeLimit } },
    // Not optional, and the one key named: the kubelet does not start the pod while the ConfigMap
    // or its sidecar.yaml is missing, so a deleted or emptied ConfigMap never means "defaults"
    // (the sluice-settings-guard policy keeps agents from writing or deleting it).
    ...(fromConfigMap(config)
      ? [{ name: VOLUME_CONFIG, configMap: { name: s.sidecarConfigMap, defaultMode: DEFAULT_MODE, optional: false, items: [{ key: SETTINGS_KEY, path: SETTINGS_KEY }] } }]
      : []),
  ];
  if (s.tokenAudiences.length) {
    volumes.splice(2, 0, {
      name: VOLUME_TOKENS,
      projected: {
        defaultMode: DEFAULT_MODE,
        sources: s.tokenAudiences.map((t) => ({
          serviceAccountToken: { audience: t.audience, expirationSeconds: t.expirationSeconds, path: tokenFileName(t) },
        })),
      },
    });
  }
  return [...volumes, ...s.mounts.map(mountVolume)];
}

function renderSidecar(config: WebhookConfig): V1Container {
  const s = config.sidecar;
  const mounts: V1VolumeMount[] = [
    { name: VOLUME_TRUST, mountPath: TRUST_DIR },
    { name: VOLUME_KUBE_API, mountPath: SERVICE_ACCOUNT_DIR, readOnly: true },
    ...(s.tokenAudiences.length ? [{ name: VOLUME_TOKENS, mountPath: TOKEN_DIR, readOnly: true }] : []),
    { name: VOLUME_PODINFO, mountPath: PODINFO_DIR, readOnly: true },
    ...(s.policyConfigMap !== null ? [{ name: VOLUME_POLICY, mountPath: POLICY_DIR, readOnly: true }] : []),
    { name: VOLUME_SPOOL, mountPath: SPOOL_DIR },
    ...(fromConfigMap(config) ? [configMount()] : []),
    ...s.mounts.map((m) => ({ name: `${VOLUME_MOUNT_PREFIX}${m.name}`, mountPath: `${MOUNTS_DIR}/${m.name}`, readOnly: true })),
  ];
  return {
    name: SIDECAR_CONTAINER,
    image: s.image,
    imagePullPolicy: s.imagePullPolicy,
    command: [...SIDECAR_COMMAND, SIDECAR_COMMANDS.proxy],
    // A native sidecar: starts before every other init and app container, stops after them,
    // and does not keep a Job from completing.
    restartPolicy: 'Always',
    ports: [{ name: 'sluice-admin', containerPort: s.ports.admin, protocol: 'TCP' }],
    env: [
      ...commonEnv(config),
      ...(s.policyConfigMap !== null ? [{ name: SIDECAR_ENV.policyPath, value: POLICY_DIR }] : []),
      ...(s.policyBundleObject !== null ? [{ name: SIDECAR_ENV.policyConfigMap, value: s.policyBundleObject }] : []),
      ...(s.policyOci !== null ? [{ name: SIDECAR_ENV.policyOci, value: JSON.stringify(s.policyOci) }] : []),
      { name: SIDECAR_ENV.podInfoDir, value: PODINFO_DIR },
      { name: SIDECAR_ENV.tokenDir, value: TOKEN_DIR },
      { name: SIDECAR_ENV.trustDir, value: TRUST_DIR },
      { name: SIDECAR_ENV.spoolDir, value: SPOOL_DIR },
      // The organisation and settings from the SluicePolicy objects, read with the pod's token.
      ...(fromConfigMap(config) ? [] : [{ name: SIDECAR_ENV.policySource, value: POLICY_SOURCE_CLUSTER }]),
      // The platform's own (config.ts refuses SLUICE_* names and duplicates).
      ...s.extraEnv.map((e) => ({ name: e.name, value: e.value })),
    ],
    resources: structuredClone(s.resources),
    // /readyz passes only once the pod CA is written, so no agent container starts before trust exists.
    startupProbe: httpProbe('/readyz', s.ports.admin, s.startupProbe),
    readinessProbe: httpProbe('/readyz', s.ports.admin, { periodSeconds: 5, failureThreshold: 3, timeoutSeconds: 1 }),
    livenessProbe: httpProbe('/healthz', s.ports.admin, { periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 1 }),
    securityContext: {
      ...restrictedSecurityContext(s.proxyUID),
      // Only fields that confine it further (config.ts: SidecarSecurityContext).
      ...structuredClone(s.securityContext),
    },
    volumeMounts: mounts,
    terminationMessagePath: '/dev/termination-log',
    terminationMessagePolicy: 'File',
  };
}

function renderInitContainer(config: WebhookConfig): V1Container {
  const s = config.sidecar;
  return {
    name: INIT_CONTAINER,
    image: s.image,
    imagePullPolicy: s.imagePullPolicy,
    command: [...SIDECAR_COMMAND, SIDECAR_COMMANDS.initNetwork],
    env: commonEnv(config),
    resources: structuredClone(s.initResources),
    // The API server drops an empty list: none at all, so the stored pod compares equal.
    ...(fromConfigMap(config) ? { volumeMounts: [configMount()] } : {}),
    // The only container of the pod with NET_ADMIN/NET_RAW and root: it installs the interception
    // rules and exits before anything of the agent's runs.
    securityContext: {
      runAsUser: 0,
      runAsGroup: 0,
      runAsNonRoot: false,
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: false,
      capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    terminationMessagePath: '/dev/termination-log',
    terminationMessagePolicy: 'File',
  };
}

function renderAgentEnv(config: WebhookConfig): V1EnvVar[] {
  const bundle = `${TRUST_DIR}/${TRUST_BUNDLE_FILE}`;
  const proxy = `http://127.0.0.1:${config.sidecar.ports.proxy}`;
  const noProxy = 'localhost,127.0.0.1,::1';
  const env: [string, string][] = [
    ['SSL_CERT_FILE', bundle],
    ['REQUESTS_CA_BUNDLE', bundle],
    ['CURL_CA_BUNDLE', bundle],
    ['GIT_SSL_CAINFO', bundle],
    ['AWS_CA_BUNDLE', bundle],
    ['NODE_EXTRA_CA_CERTS', `${TRUST_DIR}/${TRUST_CA_FILE}`],
    ['HTTP_PROXY', proxy],
    ['HTTPS_PROXY', proxy],
    ['http_proxy', proxy],
    ['https_proxy', proxy],
    ['NO_PROXY', noProxy],
    ['no_proxy', noProxy],
    // Placeholders, not secrets: the sidecar re-signs AWS calls with minted credentials.
    ['AWS_ACCESS_KEY_ID', 'SLUICEPLACEHOLDER'],
    ['AWS_SECRET_ACCESS_KEY', 'sluice-placeholder'],
    ['AWS_EC2_METADATA_DISABLED', 'true'],
  ];
  return env.map(([name, value]) => ({ name, value }));
}

const cache = new WeakMap<WebhookConfig, Rendered>();

/** Everything sluice adds, rendered once per (frozen) config. Callers must not mutate the result. */
export function renderInjection(config: WebhookConfig): Rendered {
  let rendered = cache.get(config);
  if (!rendered) {
    rendered = {
      initContainer:
        config.interception.mode === 'cni'
          ? renderCheckContainer(config, { command: SIDECAR_COMMAND, env: commonEnv(config), configMount: fromConfigMap(config) ? configMount() : undefined })
          : renderInitContainer(config),
      sidecar: renderSidecar(config),
      volumes: renderVolumes(config),
      agentEnv: renderAgentEnv(config),
      agentMount: { name: VOLUME_TRUST, mountPath: TRUST_DIR, readOnly: true },
    };
    deepFreeze(rendered);
    cache.set(config, rendered);
  }
  return rendered;
}

/** Names of the volumes sluice owns (whatever the config renders, plus the optional token volume). */
const SLUICE_VOLUMES: readonly string[] = [VOLUME_TRUST, VOLUME_KUBE_API, VOLUME_TOKENS, VOLUME_PODINFO, VOLUME_POLICY, VOLUME_SPOOL, VOLUME_CONFIG];

/** Whether a volume name is reserved for sluice: its fixed volumes and every `sluice-mount-*`. */
export function isSluiceVolume(name: string): boolean {
  return SLUICE_VOLUMES.includes(name) || name.startsWith(VOLUME_MOUNT_PREFIX);
}
