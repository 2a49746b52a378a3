// A custom signed policy bundle from the release namespace (policy.bundle release), against a real
// kube-apiserver + etcd (e2e/support/kube) with exactly what the chart renders for it (`helm
// template`: the reader Role and RoleBinding for every ServiceAccount, resourceNames only, and the
// bundle guard admission policy) and real `opa build --signing-key` bundles: a running sidecar,
// reading with its namespace's ServiceAccount token, starts not ready (every request denied) while no
// bundle exists, takes a signed bundle into service and a changed one without a restart (latency
// measured), refuses unsigned, other-key and tampered bundles (recorded: audit event, metric, code)
// keeping the last good one, keeps it when the object is deleted, and a labelled namespace the chart
// never listed reads the same object. An agent ServiceAccount that may write ConfigMaps — in its
// own namespace, or even cluster-wide — cannot change, replace or delete the bundle, and reads
// nothing else in the release namespace.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { ProxyAgent, request } from 'undici';
import { template } from '../../charts/test/support/helm.ts';
import type { K8sObject } from '../../charts/test/support/helm.ts';
import { eventually } from '../support/kube/admission.ts';
import { KubeCluster } from '../support/kube/cluster.ts';
import { serviceAccountToken, tokenKubeconfig } from '../support/kube/tokens.ts';
import { startTestSidecar } from '../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../testkit/sidecar/test-sidecar.ts';
import { createTestCa, startHttpsUpstream } from '../../testkit/sidecar/upstreams.ts';
import type { TestCa, TestUpstream } from '../../testkit/sidecar/upstreams.ts';
import { buildBundle, rsaKeyPair, tamperedBundle } from './signed-bundles.ts';
import type { KeyPair } from './signed-bundles.ts';

jest.setTimeout(120_000);

const RELEASE_NS = 'sluice-system';
const BUNDLE = 'sluice-policy-bundle';
const LISTED = 'agents';
const UNLISTED = 'team-b';
const HOST = 'pkgs.example.test';
const CM_PATH = `/api/v1/namespaces/${RELEASE_NS}/configmaps`;

let cluster: KubeCluster;
let dir: string;
let ca: TestCa;
let upstream: TestUpstream;
let key: KeyPair;
let otherKey: KeyPair;
const bundles: Record<string, Buffer> = {};
const running: { sidecar: TestSidecar; agent: ProxyAgent; spool: string }[] = [];

function configMap(bundle: Buffer, resourceVersion?: string): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: BUNDLE, namespace: RELEASE_NS, ...(resourceVersion ? { resourceVersion } : {}) }, binaryData: { 'bundle.tar.gz': bundle.toString('base64') } };
}

/** Replaces the bundle object through the API (as admin); resolves when the API server answered. */
async function put(bundle: Buffer): Promise<void> {
  const current = await cluster.request<{ metadata?: { resourceVersion?: string } }>('admin', 'GET', `${CM_PATH}/${BUNDLE}`);
  const res = current.status === 404
    ? await cluster.request('admin', 'POST', CM_PATH, configMap(bundle))
    : await cluster.request('admin', 'PUT', `${CM_PATH}/${BUNDLE}`, configMap(bundle, current.body.metadata?.resourceVersion));
  if (res.status !== 200 && res.status !== 201) throw new Error(`bundle write refused: ${res.status} ${JSON.stringify(res.body)}`);
}

function kubectl(args: string[], user = 'admin'): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('kubectl', ['--kubeconfig', cluster.kubeconfigPath(user), ...args], { encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function sidecarFor(namespace: string, serviceAccount: string, watchSeconds?: number): Promise<{ sidecar: TestSidecar; agent: ProxyAgent; spool: string }> {
  const token = await serviceAccountToken(cluster, namespace, serviceAccount);
  const kubeconfig = join(dir, `kubeconfig-${namespace}-${serviceAccount}-${running.length}.yaml`);
  writeFileSync(kubeconfig, tokenKubeconfig(cluster, token, namespace), { mode: 0o600 });
  const spool = join(dir, `spool-${namespace}-${running.length}`);
  const sidecar = await startTestSidecar({
    resolve: { [`${HOST}:443`]: upstream.dial },
    extraRootsFiles: [ca.caFile],
    config: {
      pod: { namespace, name: `coder-${running.length}`, serviceAccount },
      // What the webhook sets (SLUICE_POLICY_CONFIGMAP) and the chart's verification key; the kubeconfig stands in for the pod's token.
      policy: { configMap: { namespace: RELEASE_NS, name: BUNDLE }, verification: { algorithm: 'RS256', publicKeyFile: key.pub }, cluster: { kubeconfig, ...(watchSeconds ? { watchSeconds } : {}) } },
      audit: { spoolDir: spool, spool: { fsync: 'none' } },
    },
  });
  const agent = new ProxyAgent({ uri: sidecar.proxyUrl, requestTls: { ca: sidecar.ca.certPem } });
  const entry = { sidecar, agent, spool };
  running.push(entry);
  return entry;
}

/** The answer to a download through the sidecar; a refused CONNECT counts as its status. */
async function status(s: { agent: ProxyAgent }): Promise<number> {
  try {
    const res = await request(`https://${HOST}/pkg/left-pad-1.3.0.tgz`, { dispatcher: s.agent });
    await res.body.dump();
    return res.statusCode;
  } catch (err) {
    const refused = /Proxy response \((\d+)\)/.exec((err as Error).message);
    if (refused) return Number(refused[1]);
    throw err;
  }
}

async function failures(s: { sidecar: TestSidecar }, code: string): Promise<number> {
  const m = await s.sidecar.registry.getSingleMetric('sluice_policy_loads_total')?.get();
  return m?.values.find((v) => v.labels.result === 'failure' && v.labels.code === code)?.value ?? 0;
}

function policyLoads(s: { spool: string }): Record<string, unknown>[] {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else files.push(p);
    }
  };
  walk(s.spool);
  return files
    .flatMap((f) => readFileSync(f, 'utf8').split('\n'))
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((e) => e.kind === 'policy_load');
}

async function readyz(s: { sidecar: TestSidecar }): Promise<number> {
  const res = await request(`${s.sidecar.adminUrl}/readyz`);
  await res.body.dump();
  return res.statusCode;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-release-bundle-'));
  key = rsaKeyPair(dir, 'signing');
  otherKey = rsaKeyPair(dir, 'other');
  bundles.v1 = buildBundle(dir, 'r-1', true, key);
  bundles.v2 = buildBundle(dir, 'r-2', false, key);
  bundles.v3 = buildBundle(dir, 'r-3', true, key);
  bundles.unsigned = buildBundle(dir, 'u-1', true);
  bundles.otherKey = buildBundle(dir, 'o-1', true, otherKey);
  bundles.tampered = tamperedBundle(dir, bundles.v3);
  ca = await createTestCa();
  upstream = await startHttpsUpstream(ca, [HOST]);
  const chart = await template({
    agents: { namespaces: [LISTED] },
    policy: { bundle: 'release' },
    sidecar: { config: { policy: { verification: { algorithm: 'RS256', publicKey: readFileSync(key.pub, 'utf8') } } } },
  });
  cluster = await KubeCluster.start({
    namespaces: [
      { name: LISTED, labels: { 'sluice.io/inject': 'true' } },
      { name: UNLISTED, labels: { 'sluice.io/inject': 'true' } },
      { name: RELEASE_NS },
    ],
  });
  const picked = chart.filter((o: K8sObject) => o.metadata.name.includes('policy-bundle'));
  expect(picked.map((o) => o.kind).sort()).toEqual(['Role', 'RoleBinding', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);
  for (const o of picked) {
    const res = await cluster.create('admin', o);
    if (res.status !== 201) throw new Error(`${o.kind} refused: ${JSON.stringify(res.body)}`);
  }
  await cluster.request('admin', 'POST', `/api/v1/namespaces/${LISTED}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'coder' } });
  // Something else in the release namespace the agents must not read.
  await cluster.request('admin', 'POST', CM_PATH, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'sluice-webhook' }, data: { 'config.json': '{}' } });
}, 120_000);

afterAll(async () => {
  for (const r of running) {
    await r.agent.close();
    await r.sidecar.stop();
  }
  await upstream?.close();
  await cluster?.stop();
});

describe('policy.bundle release: one signed bundle in the release namespace', () => {
  test('no bundle yet: the sidecar starts not ready, denies everything and records why; the first signed bundle takes it into service', async () => {
    const s = await sidecarFor(LISTED, 'coder');
    expect(s.sidecar.engine.ready).toBe(false);
    expect(await readyz(s)).toBe(503);
    expect(await status(s)).toBe(403);
    expect(await failures(s, 'bundle.object_missing')).toBe(1);
    await put(bundles.v1!);
    await eventually('the first bundle to be in service', () => Promise.resolve(s.sidecar.engine.ready ? true : undefined));
    expect(s.sidecar.engine.revision).toBe('r-1');
    expect(await readyz(s)).toBe(200);
    expect(await status(s)).toBe(200);
    const loaded = policyLoads(s).find((e) => JSON.stringify(e).includes('"result":"loaded"'));
    expect(JSON.stringify(loaded)).toContain(`"source":"configmap ${RELEASE_NS}/${BUNDLE}"`);
    expect(JSON.stringify(loaded)).toContain('"signed":{"algorithm":"RS256","key_id":"default"}');
  });

  test('a changed bundle (kubectl, then the API) changes a running sidecar\u2019s decision without a restart', async () => {
    const s = running[0]!;
    const session = s.sidecar.sessionId;
    // kubectl as a platform engineer types it: from the start of the process to the new revision in service.
    const file = join(dir, 'bundle.tar.gz');
    writeFileSync(file, bundles.v2!);
    const viaKubectl: { fromStart: number; afterReturn: number }[] = [];
    for (const [bundle, revision, expected] of [[bundles.v2!, 'r-2', 403], [bundles.v1!, 'r-1', 200]] as const) {
      writeFileSync(file, bundle);
      const started = performance.now();
      const gen = await kubectl(['-n', RELEASE_NS, 'create', 'configmap', BUNDLE, `--from-file=bundle.tar.gz=${file}`, '--dry-run=client', '-o', 'yaml']);
      expect(gen.code).toBe(0);
      const manifest = join(dir, `cm-${revision}.yaml`);
      writeFileSync(manifest, gen.stdout);
      const applied = await kubectl(['apply', '--server-side', '--force-conflicts', '-f', manifest]);
      expect(applied.stderr).toBe('');
      const returned = performance.now();
      let inService = 0;
      for (let i = 0; i < 2000 && !inService; i++) {
        if (s.sidecar.engine.revision === revision) inService = performance.now();
        else await new Promise((r) => setTimeout(r, 5));
      }
      expect(inService).toBeGreaterThan(0);
      expect(await status(s)).toBe(expected);
      viaKubectl.push({ fromStart: Math.round(inService - started), afterReturn: Math.round(inService - returned) });
    }
    console.log(`bundle reload latency (kubectl create --dry-run | apply → new bundle in service), ms: ${JSON.stringify(viaKubectl)}`);
    // The reload alone: an update sent through the API → the new revision in service (watch event, verify, compile, swap).
    const direct: number[] = [];
    for (const [bundle, revision] of [[bundles.v2!, 'r-2'], [bundles.v1!, 'r-1'], [bundles.v2!, 'r-2'], [bundles.v1!, 'r-1']] as const) {
      const started = performance.now();
      const write = put(bundle);
      let inService = 0;
      for (let i = 0; i < 5000 && !inService; i++) {
        if (s.sidecar.engine.revision === revision) inService = performance.now();
        else await new Promise((r) => setTimeout(r, 1));
      }
      await write;
      expect(inService).toBeGreaterThan(0);
      direct.push(Math.round((inService - started) * 10) / 10);
    }
    console.log(`bundle reload latency (API update sent → new bundle in service), ms: ${JSON.stringify(direct)}`);
    expect(s.sidecar.sessionId).toBe(session);
    expect(await status(s)).toBe(200);
  });

  test('unsigned, other-key, tampered and text-data bundles are refused and recorded; the last good one stays', async () => {
    const s = running[0]!;
    for (const [bundle, code] of [
      [bundles.unsigned!, 'bundle.unsigned'],
      [bundles.otherKey!, 'bundle.signature_invalid'],
      [bundles.tampered!, 'bundle.digest_mismatch'],
    ] as const) {
      const before = await failures(s, code);
      await put(bundle);
      await eventually(`the sidecar to refuse (${code})`, async () => ((await failures(s, code)) > before ? true : undefined));
      expect(s.sidecar.engine.revision).toBe('r-1');
      expect(await status(s)).toBe(200);
      expect(await readyz(s)).toBe(200);
    }
    // The archive as text data (kubectl create --from-literal, a copy-paste): never decoded as a bundle.
    const current = await cluster.request<{ metadata?: { resourceVersion?: string } }>('admin', 'GET', `${CM_PATH}/${BUNDLE}`);
    const before = await failures(s, 'bundle.object_no_archive');
    const res = await cluster.request('admin', 'PUT', `${CM_PATH}/${BUNDLE}`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: BUNDLE, resourceVersion: current.body.metadata?.resourceVersion }, data: { 'bundle.tar.gz': 'not an archive' } });
    expect(res.status).toBe(200);
    await eventually('the sidecar to refuse text data', async () => ((await failures(s, 'bundle.object_no_archive')) > before ? true : undefined));
    expect(s.sidecar.engine.revision).toBe('r-1');
    await new Promise((r) => setTimeout(r, 200)); // records are appended after the load callback
    const rejected = JSON.stringify(policyLoads(s).filter((e) => JSON.stringify(e).includes('"result":"rejected"')));
    for (const code of ['bundle.object_missing', 'bundle.unsigned', 'bundle.signature_invalid', 'bundle.digest_mismatch', 'bundle.object_no_archive']) expect(rejected).toContain(`"code":"${code}"`);
    expect(rejected).toContain('"keeping":"r-1"');
    // A good one after refusals is taken.
    await put(bundles.v3!);
    await eventually('r-3 in service', () => Promise.resolve(s.sidecar.engine.revision === 'r-3' ? true : undefined));
  });

  test('a labelled namespace the chart never listed reads the same object with its own ServiceAccount', async () => {
    const b = await sidecarFor(UNLISTED, 'default');
    expect(b.sidecar.engine.revision).toBe('r-3');
    expect(await readyz(b)).toBe(200);
    expect(await status(b)).toBe(200);
  });

  test('an agent ServiceAccount that may write ConfigMaps (its namespace, then cluster-wide) cannot change, replace or delete the bundle', async () => {
    const s = running[0]!;
    await cluster.grant('serviceaccount:coder', LISTED, 'configmap-writer', [{ apiGroups: [''], resources: ['configmaps'], verbs: ['create', 'update', 'patch', 'delete', 'get', 'list'] }]);
    const token = await serviceAccountToken(cluster, LISTED, 'coder');
    // Its own namespace: a ConfigMap of the same name there means nothing to the sidecar.
    const own = await cluster.requestWithToken(token, 'POST', `/api/v1/namespaces/${LISTED}/configmaps`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: BUNDLE }, binaryData: { 'bundle.tar.gz': bundles.unsigned!.toString('base64') } });
    expect(own.status).toBe(201);
    // RBAC alone: it may read the one object and nothing else in the release namespace, and write none.
    expect((await cluster.requestWithToken(token, 'GET', `${CM_PATH}/${BUNDLE}`)).status).toBe(200);
    expect((await cluster.requestWithToken(token, 'GET', `${CM_PATH}/sluice-webhook`)).status).toBe(403);
    expect((await cluster.requestWithToken(token, 'GET', CM_PATH)).status).toBe(403);
    expect((await cluster.requestWithToken(token, 'PUT', `${CM_PATH}/${BUNDLE}`, configMap(bundles.v2!))).status).toBe(403);
    // Cluster-wide ConfigMap write (an `edit`-like ClusterRoleBinding): the admission policy refuses it anyway.
    await cluster.request('admin', 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'configmaps-everywhere' },
      rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['*'] }],
    });
    await cluster.request('admin', 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'configmaps-everywhere' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'configmaps-everywhere' },
      subjects: [{ kind: 'ServiceAccount', name: 'coder', namespace: LISTED }],
    });
    const current = await cluster.request<{ metadata?: { resourceVersion?: string } }>('admin', 'GET', `${CM_PATH}/${BUNDLE}`);
    // An older signed bundle (a rollback) would verify: only admission stops it.
    const update = await eventually('the bundle guard to answer', async () => {
      const res = await cluster.requestWithToken<{ message?: string }>(token, 'PUT', `${CM_PATH}/${BUNDLE}`, configMap(bundles.v2!, current.body.metadata?.resourceVersion));
      if (res.status === 200) throw new Error('the agent rewrote the policy bundle');
      return res.status === 403 && res.body.message?.includes('guard.sluice_settings_write') ? res : undefined;
    });
    const patch = await cluster.requestWithToken<{ message?: string }>(token, 'PATCH', `${CM_PATH}/${BUNDLE}`, { binaryData: { 'bundle.tar.gz': bundles.v2!.toString('base64') } }, 'application/merge-patch+json');
    const del = await cluster.requestWithToken<{ message?: string }>(token, 'DELETE', `${CM_PATH}/${BUNDLE}`);
    for (const res of [update, patch, del]) {
      expect(res.status).toBe(403);
      expect(res.body.message).toContain('sluice guard.sluice_settings_write');
      expect(res.body.message).toContain(`system:serviceaccount:${LISTED}:coder`);
    }
    // The same ServiceAccount may write any other ConfigMap there (the guard names this object alone).
    expect((await cluster.requestWithToken(token, 'PUT', `${CM_PATH}/sluice-webhook`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'sluice-webhook' }, data: { 'config.json': '{"x":1}' } })).status).toBe(200);
    expect(s.sidecar.engine.revision).toBe('r-3');
    expect(await status(s)).toBe(200);
  });

  test('when the API server ends the watch (its timeout), the sidecar watches again from where it was and misses no update', async () => {
    const s = await sidecarFor(LISTED, 'coder', 10);
    expect(s.sidecar.engine.revision).toBe('r-3');
    await new Promise((r) => setTimeout(r, 11_000)); // the first watch has ended by now
    await put(bundles.v2!);
    await eventually('r-2 through the second watch', () => Promise.resolve(s.sidecar.engine.revision === 'r-2' ? true : undefined));
    await put(bundles.v3!);
    await eventually('r-3 again', () => Promise.resolve(s.sidecar.engine.revision === 'r-3' ? true : undefined));
    await eventually('the first sidecar too', () => Promise.resolve(running[0]!.sidecar.engine.revision === 'r-3' ? true : undefined));
  });

  test('the object deleted: running sidecars keep the last good bundle (recorded); a new sidecar starts not ready', async () => {
    const s = running[0]!;
    const before = await failures(s, 'bundle.object_missing');
    expect((await kubectl(['-n', RELEASE_NS, 'delete', 'configmap', BUNDLE])).code).toBe(0);
    await eventually('the deletion to be recorded', async () => ((await failures(s, 'bundle.object_missing')) > before ? true : undefined));
    expect(s.sidecar.engine.revision).toBe('r-3');
    expect(await status(s)).toBe(200);
    const fresh = await sidecarFor(LISTED, 'coder');
    expect(fresh.sidecar.engine.ready).toBe(false);
    expect(await status(fresh)).toBe(403);
    await put(bundles.v3!);
    await eventually('the restored bundle in the new sidecar', () => Promise.resolve(fresh.sidecar.engine.revision === 'r-3' ? true : undefined));
  });
});
