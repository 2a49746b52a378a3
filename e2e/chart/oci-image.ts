// Reads sluice's OCI image archives (charts/images/build-images.ts) and runs them with crun,
// Debian's OCI runtime, the way a kubelet would: layers unpacked in order into a root filesystem,
// the image config's user, entrypoint, cmd and env, a read-only root, volumes as bind or tmpfs
// mounts, no capabilities unless asked, inside a network namespace the test created. crun here
// needs a private mount namespace without the cgroup2 mount (the machine runs hybrid cgroups);
// `unshare` provides that for the runtime alone.
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

export interface OciImage {
  dir: string;
  manifest: { config: { digest: string }; layers: { digest: string; size: number; mediaType: string }[] };
  config: {
    config: { User: string; Env: string[]; Entrypoint: string[]; Cmd: string[]; WorkingDir: string; Labels: Record<string, string> };
    rootfs: { diff_ids: string[] };
  };
  blob(digest: string): Buffer;
}

/** Unpacks an archive's OCI layout (not the layers) and parses index, manifest and config. */
export function openImage(archive: string): OciImage {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-oci-'));
  execFileSync('tar', ['-xf', archive, '-C', dir]);
  const blob = (digest: string) => readFileSync(join(dir, 'blobs', 'sha256', digest.replace(/^sha256:/, '')));
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(blob(index.manifests[0]!.digest).toString()) as OciImage['manifest'];
  const config = JSON.parse(blob(manifest.config.digest).toString()) as OciImage['config'];
  return { dir, manifest, config, blob };
}

export const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Paths in a layer with `<mode> <owner>/<group>`, from `tar -tvzf`. */
export function layerListing(image: OciImage, digest: string): Map<string, string> {
  const out = execFileSync('tar', ['-tvzf', join(image.dir, 'blobs', 'sha256', digest.replace(/^sha256:/, ''))], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  const entries = new Map<string, string>();
  for (const line of out.split('\n')) {
    const m = /^(\S+)\s+(\S+)\s+\d+\s+\S+\s+\S+\s+(.+?)(?: -> .*| link to .*)?$/.exec(line);
    if (m) entries.set(m[3]!.replace(/\/$/, ''), `${m[1]!} ${m[2]!}`);
  }
  return entries;
}

export function uncompressedDigest(image: OciImage, digest: string): string {
  return sha256(gunzipSync(image.blob(digest)));
}

export function unpackRootfs(image: OciImage, into: string): void {
  mkdirSync(into, { recursive: true });
  for (const l of image.manifest.layers) execFileSync('tar', ['-xzf', join(image.dir, 'blobs', 'sha256', l.digest.replace(/^sha256:/, '')), '-C', into, '--numeric-owner']);
}

/** crun can run containers here (root, crun installed, unshare available). */
export function crunUsable(): { ok: boolean; why: string } {
  if (process.getuid?.() !== 0) return { ok: false, why: 'not root' };
  for (const bin of ['/usr/bin/crun', '/usr/bin/unshare', '/usr/sbin/ip']) if (!existsSync(bin) && !existsSync(bin.replace('/usr/sbin', '/sbin'))) return { ok: false, why: `${bin} missing` };
  return { ok: true, why: '' };
}

export interface Mount {
  destination: string;
  source?: string;
  type: 'bind' | 'tmpfs';
  readOnly?: boolean;
}

export interface RunOptions {
  id: string;
  rootfs: string;
  netns: string;
  args?: string[];
  user?: { uid: number; gid: number };
  env?: Record<string, string>;
  mounts?: Mount[];
  capabilities?: string[];
}

/** A container started with crun; `stop()` kills it and removes its state. */
export interface RunningContainer {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

function ociSpec(image: OciImage, o: RunOptions): Record<string, unknown> {
  const [uid, gid] = image.config.config.User.split(':').map(Number) as [number, number];
  const env = [...image.config.config.Env, ...Object.entries(o.env ?? {}).map(([k, v]) => `${k}=${v}`)];
  const caps = (o.capabilities ?? []).map((c) => `CAP_${c}`);
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: o.user ?? { uid, gid },
      args: [...image.config.config.Entrypoint, ...(o.args ?? image.config.config.Cmd)],
      env,
      cwd: image.config.config.WorkingDir,
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      noNewPrivileges: true,
    },
    root: { path: o.rootfs, readonly: true },
    hostname: o.id,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      ...(o.mounts ?? []).map((m) =>
        m.type === 'tmpfs'
          ? { destination: m.destination, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', 'size=65536k'] }
          : { destination: m.destination, type: 'bind', source: m.source, options: ['rbind', m.readOnly === false ? 'rw' : 'ro'] },
      ),
    ],
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'network', path: `/var/run/netns/${o.netns}` }],
      maskedPaths: ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/sys/firmware'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

export function runContainer(image: OciImage, o: RunOptions): RunningContainer {
  const bundle = mkdtempSync(join(tmpdir(), `sluice-bundle-${o.id}-`));
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(ociSpec(image, o), null, 2));
  // Mount points crun creates must exist in the read-only root.
  for (const m of o.mounts ?? []) mkdirSync(join(o.rootfs, m.destination), { recursive: true });
  const child = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'umount /sys/fs/cgroup/unified 2>/dev/null; exec crun --cgroup-manager=disabled run --bundle "$0" "$1"', bundle, o.id], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    output: () => output,
    exited,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
      try {
        execFileSync('crun', ['delete', '--force', o.id], { stdio: 'ignore' });
      } catch {
        // already gone
      }
      rmSync(bundle, { recursive: true, force: true });
    },
  };
}

/** A network namespace with loopback up, removed by the returned function. */
export function createNetns(name: string): () => void {
  execFileSync('ip', ['netns', 'add', name]);
  execFileSync('ip', ['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
  return () => execFileSync('ip', ['netns', 'delete', name], { stdio: 'ignore' });
}

/** curl inside the namespace (the container's loopback); resolves with status and body. */
export function curlIn(netns: string, args: string[]): { status: number; body: string } {
  try {
    const out = execFileSync('ip', ['netns', 'exec', netns, 'curl', '-sS', '--max-time', '5', '-w', '\n%{http_code}', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const i = out.lastIndexOf('\n');
    return { status: Number(out.slice(i + 1)), body: out.slice(0, i) };
  } catch {
    return { status: 0, body: '' };
  }
}
