// What goes into sluice's two container images and how their OCI metadata reads: the Debian
// packages of each, the users, entrypoints and labels, and the image config, manifest and index
// documents. Pure data and functions (build-images.ts does the downloading and writing); the
// Containerfile builds the same images for people with a Docker daemon, and
// charts/test/image.test.ts holds the two to the same user, entrypoint and labels.

export type Component = 'sidecar' | 'webhook';

/**
 * Debian bookworm packages, unpacked (never installed: no maintainer scripts run, no package
 * manager in the image). Node 24's binary needs libc, libstdc++ and libgcc; the sidecar image is
 * also the interception init container, which runs `ip` and `iptables-restore` (nft backend).
 */
export const BASE_PACKAGES = ['base-files', 'netbase', 'libc6', 'libgcc-s1', 'libstdc++6', 'gcc-12-base'];
export const NETWORK_PACKAGES = [
  'iptables',
  'libip4tc2',
  'libip6tc2',
  'libxtables12',
  'libnftnl11',
  'libmnl0',
  'libnetfilter-conntrack3',
  'libnfnetlink0',
  'iproute2',
  'libbpf1',
  'libelf1',
  'libbsd0',
  'libmd0',
  'libcap2',
  'zlib1g',
];

/** What Debian's maintainer scripts would have set up: the alternatives iptables uses. */
export const ALTERNATIVES: Readonly<Record<string, string>> = {
  'usr/sbin/iptables': 'xtables-nft-multi',
  'usr/sbin/iptables-restore': 'xtables-nft-multi',
  'usr/sbin/iptables-save': 'xtables-nft-multi',
  'usr/sbin/ip6tables': 'xtables-nft-multi',
  'usr/sbin/ip6tables-restore': 'xtables-nft-multi',
  'usr/sbin/ip6tables-save': 'xtables-nft-multi',
};

/** Paths dropped from unpacked packages: documentation and translations nothing at run time reads. */
export const DROPPED_PATHS = ['usr/share/doc', 'usr/share/man', 'usr/share/info', 'usr/share/locale', 'usr/share/lintian', 'usr/share/bug', 'usr/share/bash-completion'];

/** Repository paths never copied into /app: tests and their data. */
export const APP_EXCLUDED = /(^|\/)(test|testdata)(\/|$)/;

/** Files dropped from node_modules: source maps, type declarations and markdown (licences stay). */
export const DROPPED_MODULE_FILES = /\.(map|d\.ts|d\.mts|d\.cts|md|markdown)$/;

export interface ImageSpec {
  component: Component;
  name: string;
  description: string;
  /** uid:gid the image runs as by default */
  user: string;
  entrypoint: string[];
  cmd: string[];
  packages: string[];
  /** repository folders copied to /app (besides package.json and node_modules) */
  appDirs: string[];
  /** single repository files copied to the same path under /app (built artefacts such as the policy bundle) */
  appFiles: string[];
  /** environment of every process the image runs, besides PATH, NODE_ENV and SLUICE_REVISION */
  env: string[];
  /** appDirs whose TypeScript modules get a JavaScript twin (strip-types.ts), for an entrypoint that never loads Node's type stripper */
  stripTypes: string[];
}

/**
 * V8 flags of every Node process in the sidecar image (sidecar, init container, node agent): a
 * 2 MiB young generation (semi-space) instead of V8's default of up to 16 MiB. bench/startup: the
 * idle sidecar 118 -> 100 MB RSS (from the .ts sources: 142 -> 130 MB); 16 connections of plain-HTTP load through the explicit proxy
 * (audit fsync always, 4 interleaved rounds on a busy 2-core machine): RSS ~210 -> ~170 MB, median
 * ~990 requests per CPU-second either way (no throughput loss within the noise). A pod's own
 * NODE_OPTIONS (sidecar.extraEnv) replaces it.
 */
export const SIDECAR_NODE_OPTIONS = '--max-semi-space-size=2';

/**
 * The compiled default policy library (`make policy`), shipped in the sidecar image so it is
 * versioned with the sidecar and needs no per-namespace copy; the sidecar uses it when no custom
 * bundle is configured (sidecar/src/policy/builtin-bundle.ts reads it at /app/<this path>).
 */
export const POLICY_BUNDLE_FILE = 'policies/build/bundle.tar.gz';

export const IMAGES: Readonly<Record<Component, ImageSpec>> = {
  sidecar: {
    component: 'sidecar',
    name: 'sluice-sidecar',
    description: 'sluice egress sidecar and interception init container (Node 24)',
    // CONTRACTS.md: the sidecar runs as 1337; the init container overrides to root with NET_ADMIN.
    user: '1337:1337',
    // The JavaScript twin of sidecar/src/main.ts (stripTypes): no TypeScript stripping at start.
    entrypoint: ['node', '/app/sidecar/src/main.js'],
    cmd: ['proxy'],
    packages: [...BASE_PACKAGES, ...NETWORK_PACKAGES],
    // cni/src: the sluice node agent (interception.mode cni) runs from this image too.
    appDirs: ['api/src', 'lib/src', 'sidecar/src', 'cni/src'],
    appFiles: [POLICY_BUNDLE_FILE],
    env: [`NODE_OPTIONS=${SIDECAR_NODE_OPTIONS}`],
    // bench/startup: from the .js tree the idle sidecar holds ~30 MB less and starts with ~300 ms less CPU.
    stripTypes: ['api/src', 'lib/src', 'sidecar/src'],
  },
  webhook: {
    component: 'webhook',
    name: 'sluice-webhook',
    description: 'sluice admission webhook (Node 24)',
    // The chart's Deployment runs the webhook as 65532 (non-root, no home, no shell).
    user: '65532:65532',
    entrypoint: ['node', '/app/webhook/src/main.ts'],
    cmd: ['--config', '/etc/sluice/webhook/config.yaml'],
    packages: BASE_PACKAGES,
    appDirs: ['api/src', 'webhook/src'],
    appFiles: [],
    env: [],
    stripTypes: [],
  },
};

export const PASSWD = ['root:x:0:0:root:/root:/usr/sbin/nologin', 'sluice:x:1337:1337:sluice sidecar:/nonexistent:/usr/sbin/nologin', 'nonroot:x:65532:65532:nonroot:/nonexistent:/usr/sbin/nologin', ''].join('\n');
export const GROUP = ['root:x:0:', 'sluice:x:1337:', 'nonroot:x:65532:', ''].join('\n');

export interface BuildInfo {
  version: string;
  revision: string;
  /** seconds since the epoch: the commit time, so a rebuild of one revision is byte-identical */
  created: number;
  source: string;
}

export interface LayerRef {
  digest: string;
  diffId: string;
  size: number;
  comment: string;
}

export function labels(spec: ImageSpec, b: BuildInfo): Record<string, string> {
  return {
    'org.opencontainers.image.title': spec.name,
    'org.opencontainers.image.description': spec.description,
    'org.opencontainers.image.version': b.version,
    'org.opencontainers.image.revision': b.revision,
    'org.opencontainers.image.source': b.source,
    'org.opencontainers.image.licenses': 'Apache-2.0',
    'org.opencontainers.image.created': new Date(b.created * 1000).toISOString(),
  };
}

/** The image config (application/vnd.oci.image.config.v1+json). */
export function imageConfig(spec: ImageSpec, b: BuildInfo, layers: readonly LayerRef[]): Record<string, unknown> {
  const created = new Date(b.created * 1000).toISOString();
  return {
    created,
    architecture: 'amd64',
    os: 'linux',
    config: {
      User: spec.user,
      // SLUICE_REVISION feeds sluice_build_info{revision}.
      Env: ['PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin', 'NODE_ENV=production', `SLUICE_REVISION=${b.revision}`, ...spec.env],
      Entrypoint: spec.entrypoint,
      Cmd: spec.cmd,
      WorkingDir: '/app',
      Labels: labels(spec, b),
      StopSignal: 'SIGTERM',
    },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((l) => ({ created, created_by: `sluice charts/images/build-images.ts: ${l.comment}` })),
  };
}

export function manifest(config: { digest: string; size: number }, layers: readonly LayerRef[], annotations: Record<string, string>): Record<string, unknown> {
  return {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size })),
    annotations,
  };
}

/** index.json of the OCI layout; the ref name is what `podman load` / `skopeo` call the image. */
export function index(m: { digest: string; size: number }, ref: string): Record<string, unknown> {
  return {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: m.digest, size: m.size, platform: { architecture: 'amd64', os: 'linux' }, annotations: { 'org.opencontainers.image.ref.name': ref } }],
  };
}
