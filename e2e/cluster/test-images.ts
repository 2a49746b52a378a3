// The node's own test images, written as OCI image archives without a daemon or a registry, the
// way charts/images/build-images.ts writes sluice's (its deterministic tar-layer.ts): the pod
// sandbox (`pause`, static C) and the agent images (busybox-static from Debian plus the static
// `sluice-probe`, which performs the running-pod attacks). Inputs are hashed, so a second run
// reuses the archives. It never pulls anything and writes only under its output directory.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { listTree, writeLayer } from '../../charts/images/tar-layer.ts';

const SRC = join(import.meta.dirname, 'images');
const BUSYBOX = '/usr/bin/busybox';

/** An image the node imports: its archive and the name pods use (`imagePullPolicy: Never`). */
export interface TestImage {
  name: string;
  archive: string;
}

export interface TestImages {
  pause: TestImage;
  /** busybox + sluice-probe; no USER (root unless the pod says otherwise) */
  agent: TestImage;
  /** the same files, built with `USER 1337:1337`: the sidecar's UID (attack image) */
  agentUid1337: TestImage;
}

export const IMAGE_NAMES = {
  pause: 'sluice.local/e2e-pause:1',
  agent: 'sluice.local/e2e-agent:1',
  agentUid1337: 'sluice.local/e2e-agent-uid1337:1',
} as const;

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function gccStatic(source: string, out: string): void {
  execFileSync('gcc', ['-static', '-O2', '-s', '-Wall', '-Wextra', '-o', out, source], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** One single-layer image written as an OCI layout, archived as an uncompressed tar. */
export async function writeImage(rootfs: string, name: string, config: { user?: string; entrypoint: string[] }, out: string, work: string): Promise<void> {
  const layout = join(work, `layout-${createHash('sha256').update(name).digest('hex').slice(0, 8)}`);
  const blobs = join(layout, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const tmpLayer = join(work, 'layer.tar.gz');
  const layer = await writeLayer(listTree(rootfs), 0, tmpLayer);
  renameSync(tmpLayer, join(blobs, layer.digest.slice(7)));
  const created = new Date(0).toISOString();
  const imageConfig = Buffer.from(
    JSON.stringify({
      created,
      architecture: 'amd64',
      os: 'linux',
      config: { ...(config.user ? { User: config.user } : {}), Env: ['PATH=/usr/local/bin:/usr/bin:/bin'], Entrypoint: config.entrypoint, WorkingDir: '/' },
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
      history: [{ created, created_by: 'sluice e2e/cluster/test-images.ts' }],
    }),
  );
  writeFileSync(join(blobs, sha256(imageConfig).slice(7)), imageConfig);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(imageConfig), size: imageConfig.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer.digest, size: layer.size }],
    }),
  );
  writeFileSync(join(blobs, sha256(manifest).slice(7)), manifest);
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const tag = name.slice(name.lastIndexOf(':') + 1);
  writeFileSync(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: sha256(manifest),
          size: manifest.length,
          platform: { architecture: 'amd64', os: 'linux' },
          // containerd names the imported image after this annotation.
          annotations: { 'io.containerd.image.name': name, 'org.opencontainers.image.ref.name': tag },
        },
      ],
    }),
  );
  // The archive is the layout as a plain tar (blobs are compressed already).
  const gz = join(work, 'archive.tar.gz');
  await writeLayer(listTree(layout), 0, gz);
  await pipeline(createReadStream(gz), createGunzip(), createWriteStream(`${out}.partial`));
  renameSync(`${out}.partial`, out);
  rmSync(gz);
  rmSync(layout, { recursive: true, force: true });
}

export function agentRootfs(dir: string, probe: string): void {
  for (const d of ['bin', 'usr/local/bin', 'etc', 'tmp', 'proc', 'sys', 'dev', 'var/run']) mkdirSync(join(dir, d), { recursive: true });
  chmodSync(join(dir, 'tmp'), 0o1777);
  copyFileSync(BUSYBOX, join(dir, 'bin/busybox'));
  chmodSync(join(dir, 'bin/busybox'), 0o755);
  for (const applet of execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean)) {
    if (applet !== 'busybox') symlinkSync('busybox', join(dir, 'bin', applet));
  }
  copyFileSync(probe, join(dir, 'usr/local/bin/sluice-probe'));
  chmodSync(join(dir, 'usr/local/bin/sluice-probe'), 0o755);
  writeFileSync(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nsluice:x:1337:1337:looks like the sidecar:/:/bin/sh\nagent:x:1000:1000:agent:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n');
  writeFileSync(join(dir, 'etc/group'), 'root:x:0:\nsluice:x:1337:\nagent:x:1000:\nnogroup:x:65534:\n');
}

/** Builds (or reuses, keyed by the inputs' hash) the node's test images under `outDir`. */
export async function ensureTestImages(outDir = join(tmpdir(), 'sluice-e2e-cluster-images')): Promise<TestImages> {
  if (!existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} is missing: tools/apt.sh installs busybox-static`);
  const h = createHash('sha256');
  for (const f of ['pause.c', 'probe.c']) h.update(readFileSync(join(SRC, f)));
  h.update(readFileSync(BUSYBOX)).update(readFileSync(import.meta.filename));
  const key = h.digest('hex').slice(0, 16);
  const dir = join(outDir, key);
  const images: TestImages = {
    pause: { name: IMAGE_NAMES.pause, archive: join(dir, 'pause.oci.tar') },
    agent: { name: IMAGE_NAMES.agent, archive: join(dir, 'agent.oci.tar') },
    agentUid1337: { name: IMAGE_NAMES.agentUid1337, archive: join(dir, 'agent-uid1337.oci.tar') },
  };
  if ([images.pause, images.agent, images.agentUid1337].every((i) => existsSync(i.archive))) return images;
  const work = join(outDir, `.work-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  mkdirSync(dir, { recursive: true });
  try {
    const pauseRoot = join(work, 'pause-root');
    mkdirSync(pauseRoot);
    gccStatic(join(SRC, 'pause.c'), join(pauseRoot, 'pause'));
    await writeImage(pauseRoot, images.pause.name, { entrypoint: ['/pause'] }, images.pause.archive, work);
    const probe = join(work, 'sluice-probe');
    gccStatic(join(SRC, 'probe.c'), probe);
    const agentRoot = join(work, 'agent-root');
    agentRootfs(agentRoot, probe);
    await writeImage(agentRoot, images.agent.name, { entrypoint: ['/bin/sh'] }, images.agent.archive, work);
    await writeImage(agentRoot, images.agentUid1337.name, { user: '1337:1337', entrypoint: ['/bin/sh'] }, images.agentUid1337.archive, work);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return images;
}
