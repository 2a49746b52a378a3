// The sidecar and webhook images `make image` builds (charts/images): OCI archives whose blobs
// match their digests, configs that run as non-root with version and revision labels, contents
// that hold what the processes need and nothing of the development tree, layers shared between
// the two, a Containerfile that agrees — and then both images started with crun (Debian's OCI
// runtime) the way a kubelet would: read-only root, the chart's volumes, the sidecar ready on its
// admin port and denying through its proxy, its init container installing the interception rules
// with the image's own iptables, the webhook serving the chart-generated certificate and injecting.
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { parse as parseYaml } from 'yaml';
import { ensureImages } from '../../charts/images/build-images.ts';
import type { ImagesJson } from '../../charts/images/build-images.ts';
import { IMAGES } from '../../charts/images/image-spec.ts';
import type { Component } from '../../charts/images/image-spec.ts';
import { REPO, find, template } from '../../charts/test/support/helm.ts';
import type { K8sObject } from '../../charts/test/support/helm.ts';
import { podCreateReview } from './agent-pod.ts';
import { createNetns, crunUsable, curlIn, layerListing, openImage, runContainer, sha256, uncompressedDigest, unpackRootfs } from './oci-image.ts';
import type { OciImage } from './oci-image.ts';

jest.setTimeout(300_000);

let built: ImagesJson;
const images = {} as Record<Component, OciImage>;
const listings = {} as Record<Component, Map<string, string>>;

beforeAll(async () => {
  built = (await ensureImages()).images;
  for (const c of ['sidecar', 'webhook'] as const) {
    const entry = built.images.find((i) => i.component === c)!;
    images[c] = openImage(join(REPO, entry.archive));
    listings[c] = new Map();
    for (const l of images[c].manifest.layers) for (const [k, v] of layerListing(images[c], l.digest)) listings[c].set(k, v);
  }
});

afterAll(() => {
  for (const i of Object.values(images)) rmSync(i.dir, { recursive: true, force: true });
});

describe.each(['sidecar', 'webhook'] as const)('the %s image', (c) => {
  test('every blob matches its digest and every layer its diff_id', () => {
    const img = images[c];
    expect(sha256(img.blob(img.manifest.config.digest))).toBe(img.manifest.config.digest);
    img.manifest.layers.forEach((l, i) => {
      expect(l.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
      expect(sha256(img.blob(l.digest))).toBe(l.digest);
      expect(uncompressedDigest(img, l.digest)).toBe(img.config.rootfs.diff_ids[i]);
    });
  });

  test('config: non-root user, entrypoint and labels with version and revision', () => {
    const cfg = images[c].config.config;
    const spec = IMAGES[c];
    expect(cfg.User).toBe(spec.user);
    expect(Number(cfg.User.split(':')[0])).toBeGreaterThan(0);
    expect(cfg.Entrypoint).toEqual(spec.entrypoint);
    expect(cfg.Cmd).toEqual(spec.cmd);
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
    expect(cfg.Labels['org.opencontainers.image.version']).toBe(pkg.version);
    expect(cfg.Labels['org.opencontainers.image.revision']).toMatch(/^[0-9a-f]{40}(-dirty)?$/);
    expect(cfg.Labels['org.opencontainers.image.revision']).toBe(built.revision);
    expect(cfg.Labels['org.opencontainers.image.title']).toBe(spec.name);
  });

  test('contents: node, the app and production modules, owned by root, nothing of the development tree', () => {
    const files = listings[c];
    for (const p of ['usr/local/bin/node', `app/${c}/src/main.ts`, 'app/api/src/index.ts', 'app/package.json', 'app/node_modules/prom-client/package.json', 'app/node_modules/zod/package.json', 'etc/passwd', 'lib64/ld-linux-x86-64.so.2']) {
      expect([p, files.has(p)]).toEqual([p, true]);
    }
    expect(files.get('usr/local/bin/node')).toMatch(/^-rwxr-xr-x root\/root$/);
    expect(files.get('tmp')).toMatch(/^drwxrwxrwt/);
    const paths = [...files.keys()];
    for (const dev of ['app/node_modules/jest', 'app/node_modules/typescript', 'app/node_modules/eslint', 'app/node_modules/@swc', 'app/node_modules/@grafana', 'usr/share/doc']) expect(paths.some((p) => p === dev || p.startsWith(`${dev}/`))).toBe(false);
    expect(paths.filter((p) => p.startsWith('app/node_modules/') && /\.map$|\.d\.ts$/.test(p))).toEqual([]);
    expect(paths.filter((p) => /(^|\/)(test|testdata|demo)\//.test(p) && p.startsWith('app/') && !p.startsWith('app/node_modules/'))).toEqual([]);
    expect([...files.values()].filter((v) => !v.endsWith('root/root'))).toEqual([]);
    // No setuid or setgid program: nothing in the image can gain privileges.
    expect([...files.entries()].filter(([, v]) => /^-.{2}[sS]|^-.{5}[sS]/.test(v)).map(([p]) => p)).toEqual([]);
  });
});

describe('both images', () => {
  test('the sidecar image has the interception tools; the webhook image does not', () => {
    for (const p of ['usr/sbin/iptables-restore', 'usr/sbin/ip6tables-restore', 'usr/sbin/xtables-nft-multi', 'bin/ip']) expect([p, listings.sidecar.has(p)]).toEqual([p, true]);
    for (const p of ['usr/sbin/iptables-restore', 'bin/ip', 'app/sidecar/src/main.ts']) expect([p, listings.webhook.has(p)]).toEqual([p, false]);
    expect(listings.sidecar.has('app/webhook/src/main.ts')).toBe(false);
  });

  test('the sidecar image carries the default policy library `make policy` built, byte for byte; the webhook image does not', () => {
    const bundle = 'app/policies/build/bundle.tar.gz';
    expect(listings.sidecar.get(bundle)).toMatch(/^-rw-r--r-- root\/root$/);
    expect(listings.webhook.has(bundle)).toBe(false);
    const layer = images.sidecar.manifest.layers.at(-1)!;
    const inImage = execFileSync('tar', ['-xzOf', '-', bundle], { input: images.sidecar.blob(layer.digest), maxBuffer: 64 * 1024 * 1024 });
    expect(inImage.equals(readFileSync(join(REPO, 'policies', 'build', 'bundle.tar.gz')))).toBe(true);
  });

  test('share the node runtime and node_modules layers', () => {
    const digests = (c: Component) => images[c].manifest.layers.map((l) => l.digest);
    const shared = digests('sidecar').filter((d) => digests('webhook').includes(d));
    expect(shared).toHaveLength(2);
  });

  test('stay small: under 80 MiB compressed each', () => {
    for (const i of built.images) expect(i.compressedSize).toBeLessThan(80 * 1024 * 1024);
  });

  test('the Containerfile builds the same users, entrypoints and labels', () => {
    const text = readFileSync(join(REPO, 'charts', 'images', 'Containerfile'), 'utf8').replace(/\\\n\s*/g, ' ');
    for (const c of ['sidecar', 'webhook'] as const) {
      const stage = text.split(/^FROM /m).find((s) => new RegExp(`AS ${c}\\n`).test(s))!;
      const spec = IMAGES[c];
      expect(/^USER (.+)$/m.exec(stage)?.[1]).toBe(spec.user);
      expect(JSON.parse(/^ENTRYPOINT (.+)$/m.exec(stage)![1]!)).toEqual(spec.entrypoint);
      expect(JSON.parse(/^CMD (.+)$/m.exec(stage)![1]!)).toEqual(spec.cmd);
      expect(stage).toContain(`org.opencontainers.image.title="${spec.name}"`);
      for (const d of [...spec.appDirs, ...spec.appFiles]) expect(text).toContain(`COPY ${d} /app/${d}`);
    }
    for (const label of ['version', 'revision', 'source', 'licenses']) expect(text).toContain(`org.opencontainers.image.${label}=`);
  });
});

// crun runs here (root, Debian's crun, unshare): both images are started. Where it cannot, this
// block is skipped (the reason is printed) and the config and contents checks above stand alone.
const runtime = crunUsable();
/** The env the webhook gives the sidecar and its init container (CONTRACTS.md). */
const SIDECAR_ENV = {
  SLUICE_PROXY_UID: '1337',
  SLUICE_POD_NAME: 'coder-0',
  SLUICE_POD_NAMESPACE: 'agents',
  SLUICE_POD_UID: 'uid-0',
  SLUICE_SERVICE_ACCOUNT: 'coder',
  SLUICE_POLICY_PATH: '/etc/sluice/policy',
  SLUICE_PODINFO_DIR: '/var/run/sluice/podinfo',
  SLUICE_TRUST_DIR: '/var/run/sluice/trust',
  SLUICE_SPOOL_DIR: '/var/run/sluice/spool',
  SLUICE_TOKEN_DIR: '/var/run/sluice/tokens',
  // Nothing is mounted there: a pod whose optional settings ConfigMap is absent starts on defaults.
  SLUICE_CONFIG_FILE: '/etc/sluice/config/sidecar.yaml',
};
if (!runtime.ok) console.warn(`images not started with crun: ${runtime.why}; checked config and contents only`);
const netns = `sluice-img-${process.pid}`;

(runtime.ok ? describe : describe.skip)('started with crun, as a kubelet would', () => {
  let removeNetns: () => void = () => undefined;
  const work = mkdtempSync(join(tmpdir(), 'sluice-image-run-'));

  beforeAll(() => {
    removeNetns = createNetns(netns);
  });

  afterAll(() => {
    removeNetns();
    rmSync(work, { recursive: true, force: true });
  });

  async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 30_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const v = probe();
      if (v !== undefined) return v;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  test('the sidecar: non-root on a read-only root, ready with the policy bundle, denying through its proxy', async () => {
    const rootfs = join(work, 'sidecar-rootfs');
    unpackRootfs(images.sidecar, rootfs);
    // As a ConfigMap volume presents it: world-readable files, whatever the checkout's modes.
    const policy = join(work, 'policy');
    cpSync(join(REPO, 'policies', 'build', 'bundle'), policy, { recursive: true });
    for (const f of readdirSync(policy, { withFileTypes: true, recursive: true })) chmodSync(join(f.parentPath, f.name), f.isDirectory() ? 0o755 : 0o644);
    const podinfo = join(work, 'podinfo');
    mkdirSync(podinfo);
    writeFileSync(join(podinfo, 'labels'), 'sluice.io/inject="true"\n');
    writeFileSync(join(podinfo, 'annotations'), 'sluice.io/creator="{\\"username\\":\\"alice\\",\\"groups\\":[]}"\n');
    const container = runContainer(images.sidecar, {
      id: `sluice-sidecar-${process.pid}`,
      rootfs,
      netns,
      env: SIDECAR_ENV,
      mounts: [
        { destination: '/etc/sluice/policy', type: 'bind', source: policy },
        { destination: '/var/run/sluice/podinfo', type: 'bind', source: podinfo },
        { destination: '/var/run/sluice/trust', type: 'tmpfs' },
        { destination: '/var/run/sluice/spool', type: 'tmpfs' },
      ],
    });
    try {
      await until('the sidecar to be ready', () => (curlIn(netns, ['http://127.0.0.1:15090/readyz']).status === 200 ? true : undefined)).catch((err: Error) => {
        throw new Error(`${err.message}\n${container.output()}`);
      });
      const metrics = curlIn(netns, ['http://127.0.0.1:15090/metrics']).body;
      expect(metrics).toMatch(/^sluice_policy_loaded 1$/m);
      expect(metrics).toMatch(/^sluice_policy_bundle_info\{revision="[^"]+"\} 1$/m);
      const denied = curlIn(netns, ['-x', 'http://127.0.0.1:15080', '-D', '-', 'http://example.org/']);
      expect(denied.status).toBe(403);
      expect(denied.body.toLowerCase()).toContain('x-sluice-decision');
      const ps = execFileSync('ip', ['netns', 'pids', netns], { encoding: 'utf8' }).trim().split('\n');
      const uids = ps.map((pid) => /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
      expect(uids).toContain('1337');
      expect(uids).not.toContain('0');
    } finally {
      await container.stop();
    }
  });

  test('the sidecar without a policy path or volume: ready on the default library built into the image', async () => {
    const podinfo = join(work, 'podinfo-builtin');
    mkdirSync(podinfo);
    writeFileSync(join(podinfo, 'labels'), 'sluice.io/inject="true"\n');
    const env: Record<string, string> = { ...SIDECAR_ENV };
    delete env.SLUICE_POLICY_PATH;
    const container = runContainer(images.sidecar, {
      id: `sluice-sidecar-builtin-${process.pid}`,
      rootfs: join(work, 'sidecar-rootfs'),
      netns,
      env,
      mounts: [
        { destination: '/var/run/sluice/podinfo', type: 'bind', source: podinfo },
        { destination: '/var/run/sluice/trust', type: 'tmpfs' },
        { destination: '/var/run/sluice/spool', type: 'tmpfs' },
      ],
    });
    try {
      await until('the sidecar to be ready', () => (curlIn(netns, ['http://127.0.0.1:15090/readyz']).status === 200 ? true : undefined)).catch((err: Error) => {
        throw new Error(`${err.message}\n${container.output()}`);
      });
      const revision = (JSON.parse(readFileSync(join(REPO, 'policies', 'build', 'bundle', '.manifest'), 'utf8')) as { revision: string }).revision;
      expect(curlIn(netns, ['http://127.0.0.1:15090/metrics']).body).toContain(`sluice_policy_bundle_info{revision="${revision}"} 1`);
      expect(curlIn(netns, ['-x', 'http://127.0.0.1:15080', 'http://example.org/']).status).toBe(403);
    } finally {
      await container.stop();
    }
  });

  test('the init container: root with NET_ADMIN installs the interception rules with the image’s own iptables', async () => {
    const container = runContainer(images.sidecar, {
      id: `sluice-init-${process.pid}`,
      rootfs: join(work, 'sidecar-rootfs'),
      netns,
      args: ['init-network'],
      user: { uid: 0, gid: 0 },
      capabilities: ['NET_ADMIN', 'NET_RAW'],
      env: SIDECAR_ENV,
    });
    const code = await container.exited;
    await container.stop();
    expect([code, container.output()]).toEqual([0, expect.stringContaining('interception rules installed')]);
    const rules = execFileSync('ip', ['netns', 'exec', netns, 'iptables-save'], { encoding: 'utf8' });
    expect(rules).toContain('SLUICE_NAT');
    expect(rules).toMatch(/--uid-owner 1337/);
  });

  test('the webhook: the chart’s ConfigMap and generated certificate mounted, it serves the Service name and injects', async () => {
    // certificates.mode helm (not the default, self): the chart-generated pair is mounted as the pod would mount it.
    const objects = await template({ certificates: { mode: 'helm' } });
    const cm = find(objects, 'ConfigMap', 'sluice-webhook') as K8sObject & { data: { 'config.yaml': string } };
    const tls = find(objects, 'Secret', 'sluice-webhook-tls') as K8sObject & { data: Record<string, string> };
    const configDir = join(work, 'webhook-config');
    const tlsDir = join(work, 'webhook-tls');
    mkdirSync(configDir);
    mkdirSync(tlsDir);
    writeFileSync(join(configDir, 'config.yaml'), cm.data['config.yaml']);
    for (const [k, v] of Object.entries(tls.data)) writeFileSync(join(tlsDir, k), Buffer.from(v, 'base64'), { mode: 0o644 });
    expect(parseYaml(cm.data['config.yaml'])).toMatchObject({ server: { port: 8443, metricsPort: 9090 } });
    const rootfs = join(work, 'webhook-rootfs');
    unpackRootfs(images.webhook, rootfs);
    const container = runContainer(images.webhook, {
      id: `sluice-webhook-${process.pid}`,
      rootfs,
      netns,
      mounts: [
        { destination: '/etc/sluice/webhook', type: 'bind', source: configDir },
        { destination: '/etc/sluice/webhook-tls', type: 'bind', source: tlsDir },
      ],
    });
    try {
      await until('the webhook to be ready', () => (curlIn(netns, ['http://127.0.0.1:9090/readyz']).status === 200 ? true : undefined)).catch((err: Error) => {
        throw new Error(`${err.message}\n${container.output()}`);
      });
      const review = podCreateReview();
      writeFileSync(join(work, 'review.json'), JSON.stringify(review));
      const host = 'sluice-webhook.sluice-system.svc';
      const res = curlIn(netns, ['--cacert', join(tlsDir, 'ca.crt'), '--resolve', `${host}:8443:127.0.0.1`, '-H', 'content-type: application/json', '--data-binary', `@${join(work, 'review.json')}`, `https://${host}:8443/mutate/namespace`]);
      expect(res.status).toBe(200);
      const answer = JSON.parse(res.body) as { response: { allowed: boolean; patch: string } };
      expect(answer.response.allowed).toBe(true);
      expect(Buffer.from(answer.response.patch, 'base64').toString()).toContain('ghcr.io/sluice-dev/sluice-sidecar:0.1.0');
    } finally {
      await container.stop();
    }
  });
});
