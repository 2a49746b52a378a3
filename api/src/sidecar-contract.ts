// The contract between the webhook, which renders sluice's containers into an agent pod, and what
// runs in them: the sidecar (`proxy`), its init container (`init-network` / `check-network`) and
// the CNI node agent, which reads the same env from the pod spec. Environment variable names, the
// directories and files under /var/run/sluice and /etc/sluice, the settings file, token file
// names, the sidecar's entry point, default ports and UID. The webhook writes them and the other
// side reads them from here, so a rename cannot leave one side behind. Pure data and one pure
// function: never import anything of sluice's here, never read the environment here.

/** The SLUICE_* variables the webhook sets on sluice's containers (and SLUICE_CA_DIR / SLUICE_IPV6, which only a platform sets). */
export const SIDECAR_ENV = {
  /** The sidecar's UID: the only one the interception rules exempt. Both containers. */
  proxyUID: 'SLUICE_PROXY_UID',
  transparentPort: 'SLUICE_TRANSPARENT_PORT',
  proxyPort: 'SLUICE_PROXY_PORT',
  dnsPort: 'SLUICE_DNS_PORT',
  adminPort: 'SLUICE_ADMIN_PORT',
  /** The pod's identity, from the downward API (fieldRef). */
  podName: 'SLUICE_POD_NAME',
  podNamespace: 'SLUICE_POD_NAMESPACE',
  podUID: 'SLUICE_POD_UID',
  serviceAccount: 'SLUICE_SERVICE_ACCOUNT',
  /** The DNS fake-IP ranges; set only when the chart names them, so both containers agree. */
  fakeIpv4Cidr: 'SLUICE_FAKE_IPV4_CIDR',
  /** A range, or FAKE_IPV6_NONE for an IPv4-only pod. */
  fakeIpv6Cidr: 'SLUICE_FAKE_IPV6_CIDR',
  /** The settings file (SETTINGS_FILE) when the settings come from a ConfigMap. */
  configFile: 'SLUICE_CONFIG_FILE',
  /** A mounted custom policy bundle (POLICY_DIR). Sidecar only, as the rest below. */
  policyPath: 'SLUICE_POLICY_PATH',
  /** `<namespace>/<name>` of the release namespace's signed bundle ConfigMap. */
  policyConfigMap: 'SLUICE_POLICY_CONFIGMAP',
  /** The OCI bundle settings, as JSON. */
  policyOci: 'SLUICE_POLICY_OCI',
  /** POLICY_SOURCE_CLUSTER: settings and organisation from the SluicePolicy objects; unset otherwise. */
  policySource: 'SLUICE_POLICY_SOURCE',
  podInfoDir: 'SLUICE_PODINFO_DIR',
  tokenDir: 'SLUICE_TOKEN_DIR',
  trustDir: 'SLUICE_TRUST_DIR',
  spoolDir: 'SLUICE_SPOOL_DIR',
  /** A mounted CA (tls.crt/tls.key); the webhook does not set it. */
  caDir: 'SLUICE_CA_DIR',
  /** "false": install IPv4 rules only (a node without ip6tables); the webhook does not set it. */
  ipv6: 'SLUICE_IPV6',
} as const;

export type SidecarEnvName = (typeof SIDECAR_ENV)[keyof typeof SIDECAR_ENV];

/** SIDECAR_ENV.fakeIpv6Cidr's value for "no IPv6 fake IPs". */
export const FAKE_IPV6_NONE = 'none';
/** SIDECAR_ENV.policySource's one value. */
export const POLICY_SOURCE_CLUSTER = 'cluster';

/** The sidecar's ports, as the webhook renders them and the sidecar listens on them. */
export interface SidecarPorts {
  readonly transparent: number;
  /** the explicit proxy (HTTP_PROXY/HTTPS_PROXY of the agents) */
  readonly proxy: number;
  readonly dns: number;
  /** probes and metrics; agents cannot reach it */
  readonly admin: number;
}

/** Both sides' defaults: a pod uses these unless the chart sets sidecar.ports. */
export const DEFAULT_SIDECAR_PORTS: SidecarPorts = Object.freeze({ transparent: 15001, proxy: 15080, dns: 15053, admin: 15090 });
/** Both sides' default sidecar UID (sidecar.proxyUID). */
export const DEFAULT_PROXY_UID = 1337;

/** Directories the webhook mounts and points the sidecar at. */
export const TRUST_DIR = '/var/run/sluice/trust';
export const TOKEN_DIR = '/var/run/sluice/tokens';
export const PODINFO_DIR = '/var/run/sluice/podinfo';
export const SPOOL_DIR = '/var/run/sluice/spool';
export const POLICY_DIR = '/etc/sluice/policy';
export const SETTINGS_DIR = '/etc/sluice/config';
/**
 * `sidecar.mounts[].name` is mounted read-only at `${MOUNTS_DIR}/<name>` in the sidecar: the files
 * its settings name (pull secret, private CA, static credentials) live there, and the CLI maps
 * such a path back to the Secret or ConfigMap it comes from.
 */
export const MOUNTS_DIR = '/etc/sluice/mounts';

/** Files the sidecar writes into TRUST_DIR and agents read (NODE_EXTRA_CA_CERTS; SSL_CERT_FILE and friends). */
export const TRUST_CA_FILE = 'ca.crt';
export const TRUST_BUNDLE_FILE = 'ca-bundle.crt';

/** The settings: key `sidecar.yaml` of the settings ConfigMap, in volume SETTINGS_VOLUME at SETTINGS_DIR. */
export const SETTINGS_VOLUME = 'sluice-config';
export const SETTINGS_KEY = 'sidecar.yaml';
export const SETTINGS_FILE = `${SETTINGS_DIR}/${SETTINGS_KEY}`;

/**
 * The sidecar image's entry point and its commands: sidecar/src/main.ts as the JavaScript twin the
 * image ships beside it (charts/images/strip-types.ts), so no sidecar start strips TypeScript.
 */
export const SIDECAR_ENTRYPOINT: readonly string[] = Object.freeze(['node', '/app/sidecar/src/main.js']);
export const SIDECAR_COMMANDS = { proxy: 'proxy', initNetwork: 'init-network', checkNetwork: 'check-network' } as const;

/**
 * The file name under TOKEN_DIR of the projected token for `audience` when the chart names no
 * file: the audience with every character outside [A-Za-z0-9._-] replaced by `_`.
 */
export function defaultTokenFileName(audience: string): string {
  return audience.replace(/[^A-Za-z0-9._-]/g, '_');
}
