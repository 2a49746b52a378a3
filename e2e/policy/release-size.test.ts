// The installed Helm release with policy.bundle release does not grow with agents.namespaces:
// `helm install` against the real kube-apiserver with one agent namespace, then `helm upgrade`
// to fifty, and the release Secrets Helm stored for each revision measured (Kubernetes caps a
// Secret at 1 MiB; the old per-namespace bundle copy passed it at about seven namespaces).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, jest, test } from '@jest/globals';
import { CHART, HELM } from '../../charts/test/support/helm.ts';
import { KubeCluster } from '../support/kube/cluster.ts';

jest.setTimeout(240_000);

const NS = 'sluice-system';
const RELEASE = 'sluice';
const names = (n: number) => Array.from({ length: n }, (_, i) => `agents-${i + 1}`);

let cluster: KubeCluster;
let dir: string;
let env: NodeJS.ProcessEnv;

function helm(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(HELM, [...args, '--kubeconfig', cluster.kubeconfigPath('admin')], { env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr: stderr.split('\n').filter((l) => !l.includes('symbolic link')).join('\n') }));
  });
}

function values(namespaces: string[]): string {
  const file = join(dir, `values-${namespaces.length}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      agents: { namespaces },
      policy: { bundle: 'release' },
      sidecar: { config: { policy: { verification: { algorithm: 'ES256', publicKey: readFileSync(join(dir, 'key.pub'), 'utf8') } } } },
    }),
  );
  return file;
}

/** Bytes of the release Secret Helm stored for a revision (its data as the API server holds it). */
async function releaseSecretBytes(revision: number): Promise<number> {
  const res = await cluster.request<{ data?: Record<string, string> }>('admin', 'GET', `/api/v1/namespaces/${NS}/secrets/sh.helm.release.v1.${RELEASE}.v${revision}`);
  expect(res.status).toBe(200);
  return Object.values(res.body.data ?? {}).reduce((n, v) => n + Buffer.from(v, 'base64').length, 0);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-release-size-'));
  const { execFileSync } = await import('node:child_process');
  execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', join(dir, 'key.pem')], { stdio: 'pipe' });
  execFileSync('openssl', ['pkey', '-in', join(dir, 'key.pem'), '-pubout', '-out', join(dir, 'key.pub')], { stdio: 'pipe' });
  env = { ...process.env, HELM_CACHE_HOME: join(dir, 'cache'), HELM_CONFIG_HOME: join(dir, 'config'), HELM_DATA_HOME: join(dir, 'data') };
  cluster = await KubeCluster.start({ namespaces: [{ name: NS }, ...names(50).map((name) => ({ name }))] });
});

afterAll(async () => {
  await cluster?.stop();
});

test('policy.bundle release: the installed release Secret for 50 agent namespaces is about the size of the one for 1', async () => {
  const install = await helm(['install', RELEASE, CHART, '-n', NS, '-f', values(names(1))]);
  expect(install.stderr).toBe('');
  expect(install.code).toBe(0);
  const upgrade = await helm(['upgrade', RELEASE, CHART, '-n', NS, '-f', values(names(50))]);
  expect(upgrade.stderr).toBe('');
  expect(upgrade.code).toBe(0);
  const [one, fifty] = [await releaseSecretBytes(1), await releaseSecretBytes(2)];
  console.log(`policy.bundle release, installed release Secret: ${one} B with 1 agent namespace, ${fifty} B with 50 (${Math.round((fifty - one) / 49)} B per extra namespace)`);
  // The bundle's reader Role, binding and guard are in the release namespace once; only the approvals Role and binding are per namespace.
  expect((fifty - one) / 49).toBeLessThan(1024);
  // Helm stores the chart too (templates, values, the default library's files under files/): that part is there once.
  expect(fifty).toBeLessThan(512 * 1024);
  // Nothing of the bundle in agent namespaces.
  const cms = await cluster.request<{ items: { metadata: { name: string } }[] }>('admin', 'GET', '/api/v1/namespaces/agents-50/configmaps');
  expect(cms.body.items.map((i) => i.metadata.name).filter((n) => n.startsWith('sluice'))).toEqual([]);
  const reader = await cluster.request('admin', 'GET', `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/roles/sluice-policy-bundle-reader`);
  expect(reader.status).toBe(200);
});
