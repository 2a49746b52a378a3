// CycloneDX 1.5 SBOMs for the images `make image` builds: the npm packages the image's
// node_modules holds (package-lock.json, production only, as `npm ci --omit=dev` installs them,
// with the lockfile's integrity hashes), the Node runtime from .tools, the Debian packages unpacked
// into the root filesystem (the versions apt chose) and sluice itself. Generated offline from the
// same inputs the image is built from; it never reads the network and never guesses a version.
import { createHash } from 'node:crypto';
import { IMAGES } from './image-spec.ts';
import type { BuildInfo, Component } from './image-spec.ts';

interface LockPackage {
  version?: string;
  resolved?: string;
  integrity?: string;
  license?: string;
  dev?: boolean;
  optional?: boolean;
  os?: string[];
  cpu?: string[];
  link?: boolean;
}

export interface Lockfile {
  lockfileVersion: number;
  packages: Record<string, LockPackage>;
}

export interface SbomInputs {
  component: Component;
  info: BuildInfo;
  lock: Lockfile;
  /** `node --version` of the runtime copied into the image */
  nodeVersion: string;
  /** Debian packages unpacked into the image, with the versions used */
  debs: { name: string; version: string; arch: string }[];
  /** image manifest digest, when known */
  digest?: string;
  platform?: { os: string; cpu: string };
}

interface Component_ {
  type: string;
  'bom-ref': string;
  name: string;
  version: string;
  purl?: string;
  group?: string;
  hashes?: { alg: string; content: string }[];
  licenses?: { license: { id?: string; name?: string } }[];
  properties?: { name: string; value: string }[];
}

const SRI_ALGS: Record<string, string> = { sha512: 'SHA-512', sha384: 'SHA-384', sha256: 'SHA-256', sha1: 'SHA-1' };

/** The packages `npm ci --omit=dev` installs on this platform, by install path. */
export function productionPackages(lock: Lockfile, platform = { os: 'linux', cpu: 'x64' }): [string, LockPackage][] {
  if (lock.lockfileVersion < 2) throw new Error(`package-lock.json v${lock.lockfileVersion}: need v2 or v3 (a packages map)`);
  const fits = (list: string[] | undefined, value: string) => !list || list.some((v) => v === value || (v.startsWith('!') ? v.slice(1) !== value : false));
  return Object.entries(lock.packages)
    .filter(([path]) => path.startsWith('node_modules/') || path.includes('/node_modules/'))
    .filter(([, p]) => !p.dev && !p.link && fits(p.os, platform.os) && fits(p.cpu, platform.cpu))
    .sort(([a], [b]) => a.localeCompare(b));
}

function npmComponent(path: string, p: LockPackage): Component_ {
  const full = path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
  const scoped = full.startsWith('@');
  const [group, name] = scoped ? [full.slice(0, full.indexOf('/')), full.slice(full.indexOf('/') + 1)] : [undefined, full];
  const version = p.version ?? '0.0.0';
  const purl = `pkg:npm/${scoped ? `${encodeURIComponent(group!)}/` : ''}${encodeURIComponent(name)}@${encodeURIComponent(version)}`;
  const c: Component_ = { type: 'library', 'bom-ref': `${purl}#${path}`, name, version, purl, ...(group ? { group } : {}) };
  const sri = /^(sha\d+)-(.+)$/.exec(p.integrity ?? '');
  if (sri && SRI_ALGS[sri[1]!]) c.hashes = [{ alg: SRI_ALGS[sri[1]!]!, content: Buffer.from(sri[2]!, 'base64').toString('hex') }];
  if (p.license) c.licenses = [{ license: /^[A-Za-z0-9.+-]+$/.test(p.license) ? { id: p.license } : { name: p.license } }];
  c.properties = [{ name: 'sluice:install-path', value: `/app/${path}` }];
  return c;
}

/** A deterministic serial number: a UUID derived from what the SBOM describes. */
function serial(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  return `urn:uuid:${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export function cycloneDx(i: SbomInputs): Record<string, unknown> {
  const spec = IMAGES[i.component];
  const platform = i.platform ?? { os: 'linux', cpu: 'x64' };
  const npm = productionPackages(i.lock, platform).map(([path, p]) => npmComponent(path, p));
  const node = i.nodeVersion.replace(/^v/, '');
  const components: Component_[] = [
    { type: 'application', 'bom-ref': 'pkg:generic/nodejs@' + node, name: 'node', version: node, purl: `pkg:generic/nodejs@${node}`, licenses: [{ license: { id: 'MIT' } }] },
    ...i.debs.map((d) => ({ type: 'library', 'bom-ref': `pkg:deb/debian/${d.name}@${d.version}?arch=${d.arch}`, name: d.name, version: d.version, purl: `pkg:deb/debian/${d.name}@${encodeURIComponent(d.version)}?arch=${d.arch}&distro=debian-12` })),
    ...npm,
  ];
  const self = `pkg:oci/${spec.name}@${encodeURIComponent(i.digest ?? i.info.version)}`;
  return {
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    serialNumber: serial(`${spec.name}\0${i.info.version}\0${i.info.revision}\0${i.digest ?? ''}`),
    version: 1,
    metadata: {
      timestamp: new Date(i.info.created * 1000).toISOString(),
      tools: { components: [{ type: 'application', name: 'sluice charts/images/sbom.ts', version: i.info.version }] },
      component: {
        type: 'container',
        'bom-ref': self,
        name: spec.name,
        version: i.info.version,
        description: spec.description,
        purl: self,
        properties: [
          { name: 'sluice:revision', value: i.info.revision },
          { name: 'sluice:source', value: i.info.source },
        ],
      },
    },
    components,
    dependencies: [{ ref: self, dependsOn: components.map((c) => c['bom-ref']) }],
  };
}

/** Candidate versions apt would unpack (what build-images.ts downloads), from `apt-cache policy` text. */
export function aptCandidates(policyText: string): Map<string, string> {
  const out = new Map<string, string>();
  let current: string | undefined;
  for (const line of policyText.split('\n')) {
    const name = /^(\S+):$/.exec(line)?.[1];
    if (name) current = name;
    const candidate = /^\s+Candidate: (\S+)/.exec(line)?.[1];
    if (candidate && current && candidate !== '(none)') out.set(current, candidate);
  }
  return out;
}
