// The whole story's agent image: what a coding agent's container typically carries — git (with
// its HTTPS transport), curl, python3 and the AWS CLI — written as an OCI archive without a daemon
// or a registry. Built from this machine's own binaries and their ldd closure (Debian's git,
// curl and python3.11) plus the AWS CLI from the tool cache's venv (tools/install.sh awscli),
// pruned to the services the story calls (S3, STS). Reused while its inputs (paths, sizes,
// mtimes, this file) are unchanged. It never pulls anything and writes only under its output
// directory; the host files are only read.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, cpSync, openSync, readSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { agentRootfs, writeImage } from './test-images.ts';
import type { TestImage } from './test-images.ts';

export const TOOLS_AGENT_IMAGE = 'sluice.local/e2e-tools-agent:1';

const ROOT = join(import.meta.dirname, '..', '..');
const PYTHON = '/usr/bin/python3.11';
const PYLIB = '/usr/lib/python3.11';
const GIT_CORE = '/usr/lib/git-core';
/** stdlib parts no agent script here uses (tests, GUIs, build config). */
const PYLIB_PRUNED = new Set(['test', 'idlelib', 'tkinter', 'turtledemo', 'ensurepip', 'lib2to3', 'config-3.11-x86_64-linux-gnu', 'pydoc_data']);
/** botocore service models kept: the ones the agent calls, and those the CLI's customizations rename or mark as preview at start (it fails without them). */
const AWS_SERVICES = new Set(['s3', 'sts', 'sdb', 'codedeploy', 'config', 'sagemaker-runtime', 'sms-voice']);

function awsVenv(): string {
  const aws = join(ROOT, '.tools', 'bin', 'aws');
  if (!existsSync(aws)) throw new Error(`${aws} is missing: tools/install.sh awscli`);
  return join(dirname(realpathSync(aws)), '..', 'venv');
}

/** Every ELF under `paths` (files, or directories walked for *.so). */
function elves(paths: string[]): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    const st = statSync(p);
    if (st.isDirectory()) for (const n of readdirSync(p)) walk(join(p, n));
    else if (p.endsWith('.so') || /\.so\./.test(p) || st.mode & 0o111) {
      const head = Buffer.alloc(4);
      const fd = openSync(p, 'r');
      try {
        readSync(fd, head, 0, 4, 0);
      } finally {
        closeSync(fd);
      }
      if (head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) out.push(p);
    }
  };
  for (const p of paths) walk(p);
  return out;
}

/** The shared libraries (and the loader) the ELF files need, as the paths the loader looks up. */
function lddClosure(files: string[]): string[] {
  const libs = new Set<string>();
  for (const f of files) {
    let out: string;
    try {
      out = execFileSync('ldd', [f], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      continue; // static, or not loadable here: nothing to add
    }
    for (const line of out.split('\n')) {
      const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
      if (m) libs.add(m[1]!);
    }
  }
  return [...libs].sort();
}

/** Copies `src` (following links) to the same place in `root`, its directory resolved as the host resolves it (usr-merge). */
function copyResolvedTo(root: string, src: string, dest = src): void {
  const target = join(root, realpathSync(dirname(dest)), basename(dest));
  mkdirSync(dirname(target), { recursive: true });
  cpSync(realpathSync(src), target, { dereference: true });
}

function buildRootfs(dir: string, probe: string): void {
  agentRootfs(dir, probe);
  // usr-merged like Debian: /lib and /lib64 are links into /usr.
  symlinkSync('usr/lib', join(dir, 'lib'));
  symlinkSync('usr/lib64', join(dir, 'lib64'));
  mkdirSync(join(dir, 'usr/bin'), { recursive: true });
  for (const b of ['/usr/bin/git', '/usr/bin/curl', PYTHON]) copyResolvedTo(dir, b);
  symlinkSync('python3.11', join(dir, 'usr/bin/python3'));
  // git's HTTPS transport and its exec path; the templates `git init`/`clone` copy.
  mkdirSync(join(dir, GIT_CORE.slice(1)), { recursive: true });
  symlinkSync('../../bin/git', join(dir, GIT_CORE.slice(1), 'git'));
  copyResolvedTo(dir, join(GIT_CORE, 'git-remote-http'));
  symlinkSync('git-remote-http', join(dir, GIT_CORE.slice(1), 'git-remote-https'));
  cpSync('/usr/share/git-core/templates', join(dir, 'usr/share/git-core/templates'), { recursive: true });
  cpSync(PYLIB, join(dir, PYLIB.slice(1)), { recursive: true, verbatimSymlinks: true, filter: (src) => !PYLIB_PRUNED.has(relative(PYLIB, src)) });
  // The AWS CLI: its site-packages less pip/setuptools, the docs examples and other services' models.
  const site = join(awsVenv(), 'lib', 'python3.11', 'site-packages');
  const models = join(site, 'awscli', 'botocore', 'data');
  cpSync(site, join(dir, 'opt/aws/site-packages'), {
    recursive: true,
    filter: (src) => {
      const rel = relative(site, src);
      if (/^(pip|setuptools|pkg_resources|_distutils_hack)(\/|$|-)/.test(rel) || rel === join('awscli', 'examples')) return false;
      const model = relative(models, src);
      return model === '' || model.startsWith('..') || model.includes('/') || !statSync(src).isDirectory() || AWS_SERVICES.has(model);
    },
  });
  cpSync(join(awsVenv(), 'bin', 'aws'), join(dir, 'opt/aws/aws'));
  writeFileSync(join(dir, 'usr/local/bin/aws'), '#!/bin/sh\nPYTHONPATH=/opt/aws/site-packages exec /usr/bin/python3 /opt/aws/aws "$@"\n');
  chmodSync(join(dir, 'usr/local/bin/aws'), 0o755);
  // Every shared library the binaries and the Python extension modules load.
  for (const lib of lddClosure(elves([join(dir, 'usr/bin'), join(dir, GIT_CORE.slice(1)), join(dir, PYLIB.slice(1), 'lib-dynload'), join(dir, 'opt/aws/site-packages')]))) {
    copyResolvedTo(dir, lib);
  }
  writeFileSync(join(dir, 'etc/nsswitch.conf'), 'passwd: files\ngroup: files\nhosts: files dns\n');
}

/** What the image is built from, cheaply: paths, sizes and mtimes of the host inputs, and this file. */
function inputsKey(): string {
  const h = createHash('sha256').update(readFileSync(import.meta.filename)).update(readFileSync(join(import.meta.dirname, 'test-images.ts')));
  const add = (p: string) => {
    const st = statSync(p);
    h.update(`${p}\0${st.size}\0${st.mtimeMs}\0`);
  };
  for (const p of ['/usr/bin/git', '/usr/bin/curl', PYTHON, join(GIT_CORE, 'git-remote-http'), '/usr/bin/busybox', join(awsVenv(), 'bin', 'aws'), join(awsVenv(), 'lib', 'python3.11', 'site-packages', 'awscli', '__init__.py'), join(PYLIB, 'os.py')]) add(p);
  return h.digest('hex').slice(0, 16);
}

/** Builds (or reuses) the tools agent image under `outDir`; `probe` is the static sluice-probe (test-images.ts builds it). */
export async function ensureToolsAgentImage(outDir = join(tmpdir(), 'sluice-e2e-cluster-images')): Promise<TestImage & { built: boolean }> {
  const dir = join(outDir, `tools-${inputsKey()}`);
  const image = { name: TOOLS_AGENT_IMAGE, archive: join(dir, 'tools-agent.oci.tar') };
  if (existsSync(image.archive)) return { ...image, built: false };
  const work = join(outDir, `.work-tools-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  mkdirSync(dir, { recursive: true });
  try {
    const probe = join(work, 'sluice-probe');
    execFileSync('gcc', ['-static', '-O2', '-s', '-o', probe, join(import.meta.dirname, 'images', 'probe.c')], { stdio: ['ignore', 'pipe', 'pipe'] });
    const root = join(work, 'rootfs');
    buildRootfs(root, probe);
    await writeImage(root, image.name, { entrypoint: ['/bin/sh'] }, image.archive, work);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return { ...image, built: true };
}
