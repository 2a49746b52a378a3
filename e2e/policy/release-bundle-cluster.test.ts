// policy.bundle release as the chart deploys it, against the real kube-apiserver + etcd: the
// SluicePolicy CRD and `default` object carry the organisation and the sidecar settings — the
// verification key included (sidecar.config.policy.verification) — and the custom bundle is the
// release namespace's ConfigMap. A real sidecar reading both with its namespace's ServiceAccount
// token waits for the SluicePolicy, loads the bundle with the key the SluicePolicy gave it, runs it
// with the organisation overlaid (revision <bundle>+org.<revision>), refuses a bundle signed by
// another key, and a SluicePolicy cannot point a sidecar at another bundle object.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { pino } from 'pino';
import { request } from 'undici';
import { SLUICE_POLICY_PATH } from '../../api/src/index.ts';
import { loadSidecarConfig, parseSidecarConfig } from '../../sidecar/src/config/sidecar-config.ts';
import { ClusterPolicyRuntime } from '../../sidecar/src/policy/cluster-runtime.ts';
import { template } from '../../charts/test/support/helm.ts';
import type { K8sObject } from '../../charts/test/support/helm.ts';
import { eventually } from '../support/kube/admission.ts';
import { KubeCluster } from '../support/kube/cluster.ts';
import { serviceAccountToken, tokenKubeconfig } from '../support/kube/tokens.ts';
import { startTestSidecar } from '../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../testkit/sidecar/test-sidecar.ts';
import { buildBundle, rsaKeyPair } from './signed-bundles.ts';
import type { KeyPair } from './signed-bundles.ts';

jest.setTimeout(120_000);

const RELEASE_NS = 'sluice-system';
const BUNDLE = 'sluice-policy-bundle';
const NS = 'team-x';
const CM_PATH = `/api/v1/namespaces/${RELEASE_NS}/configmaps`;

let cluster: KubeCluster;
let dir: string;
let key: KeyPair;
let otherKey: KeyPair;
let sidecar: TestSidecar | undefined;
let runtime: ClusterPolicyRuntime | undefined;

async function putBundle(bundle: Buffer): Promise<void> {
  const current = await cluster.request<{ metadata?: { resourceVersion?: string } }>('admin', 'GET', `${CM_PATH}/${BUNDLE}`);
  const body = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: BUNDLE, ...(current.status === 200 ? { resourceVersion: current.body.metadata?.resourceVersion } : {}) }, binaryData: { 'bundle.tar.gz': bundle.toString('base64') } };
  const res = current.status === 404 ? await cluster.request('admin', 'POST', CM_PATH, body) : await cluster.request('admin', 'PUT', `${CM_PATH}/${BUNDLE}`, body);
  if (res.status !== 200 && res.status !== 201) throw new Error(`bundle write refused: ${JSON.stringify(res.body)}`);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-release-cluster-'));
  key = rsaKeyPair(dir, 'signing');
  otherKey = rsaKeyPair(dir, 'other');
  const chart = await template({
    policy: { bundle: 'release' },
    sidecar: { config: { policy: { verification: { algorithm: 'RS256', publicKey: readFileSync(key.pub, 'utf8') } } } },
  });
  cluster = await KubeCluster.start({ namespaces: [{ name: NS, labels: { 'sluice.io/inject': 'true' } }, { name: RELEASE_NS }] });
  for (const crd of chart.filter((o) => o.kind === 'CustomResourceDefinition')) {
    const res = await cluster.create('admin', crd);
    if (res.status !== 201) throw new Error(`CRD refused: ${JSON.stringify(res.body)}`);
  }
  await eventually('the SluicePolicy CRD to be served', async () => ((await cluster.request('admin', 'GET', SLUICE_POLICY_PATH)).status === 200 ? true : undefined));
  const wanted = (o: K8sObject) => o.metadata.name.includes('policy-bundle') || o.metadata.name === 'sluice-policy-reader' || (o.kind === 'SluicePolicy' && o.metadata.name === 'default');
  for (const o of chart.filter(wanted)) {
    const res = await cluster.create('admin', o);
    if (res.status !== 201) throw new Error(`${o.kind} ${o.metadata.name} refused: ${JSON.stringify(res.body)}`);
  }
  await putBundle(buildBundle(dir, 'r-1', true, key));
}, 120_000);

afterAll(async () => {
  await sidecar?.stop();
  await runtime?.stop();
  await cluster?.stop();
});

describe('policy.bundle release with the organisation from SluicePolicy', () => {
  test('the sidecar takes the verification key from the SluicePolicy, the bundle from the release namespace, and runs both', async () => {
    const token = await serviceAccountToken(cluster, NS, 'default');
    const kubeconfig = join(dir, 'kubeconfig.yaml');
    writeFileSync(kubeconfig, tokenKubeconfig(cluster, token, NS), { mode: 0o600 });
    // What the webhook gives the pod (SLUICE_POLICY_SOURCE=cluster, SLUICE_POLICY_CONFIGMAP) — the kubeconfig stands in for the pod's token.
    const fromWebhook = { cluster: { enabled: true, kubeconfig }, configMap: { namespace: RELEASE_NS, name: BUNDLE } };
    const base = { pod: { namespace: NS, name: 'coder-0', serviceAccount: 'default' }, trustDir: join(dir, 'trust') };
    const boot = parseSidecarConfig({ ...base, policy: fromWebhook });
    runtime = await ClusterPolicyRuntime.create(
      boot,
      (settings) => parseSidecarConfig({ ...settings, ...base, policy: { ...((settings.policy as object | undefined) ?? {}), ...fromWebhook } }),
      pino({ level: 'silent' }),
    );
    const first = await runtime.start();
    expect(first.config.policy.verification?.algorithm).toBe('RS256');
    expect(first.config.policy.configMap).toEqual({ namespace: RELEASE_NS, name: BUNDLE, key: 'bundle.tar.gz' });
    sidecar = await startTestSidecar({ config: { pod: base.pod, policy: first.config.policy, audit: { spoolDir: join(dir, 'spool'), spool: { fsync: 'none' } } }, clusterPolicy: runtime });
    expect(sidecar.engine.ready).toBe(true);
    expect(sidecar.engine.revision).toMatch(/^r-1\+org\.[0-9a-f]{16}$/);
    const ready = await request(`${sidecar.adminUrl}/readyz`);
    await ready.body.dump();
    expect(ready.statusCode).toBe(200);

    // Signed, but not with the key the SluicePolicy gave: refused, the last good one kept.
    const m = () => sidecar!.registry.getSingleMetric('sluice_policy_loads_total')!.get();
    await putBundle(buildBundle(dir, 'o-1', true, otherKey));
    await eventually('the other-key bundle to be refused', async () => ((await m()).values.some((v) => v.labels.code === 'bundle.signature_invalid') ? true : undefined));
    expect(sidecar.engine.revision).toMatch(/^r-1\+org\./);
    await putBundle(buildBundle(dir, 'r-2', true, key));
    await eventually('r-2 in service', () => Promise.resolve(sidecar!.engine.revision.startsWith('r-2+org.') ? true : undefined));
  });

  test('a SluicePolicy cannot point sidecars at another bundle object or registry', () => {
    const env = { SLUICE_POD_NAMESPACE: NS, SLUICE_POD_NAME: 'p', SLUICE_SERVICE_ACCOUNT: 's', SLUICE_TRUST_DIR: '/t' };
    expect(() => loadSidecarConfig(env, { policy: { configMap: { namespace: NS, name: 'mine' } } })).toThrow(/sidecar\.policy\.configMap: not a SluicePolicy setting/);
    expect(() => loadSidecarConfig(env, { policy: { oci: { reference: 'evil.example/p:1' } } })).toThrow(/sidecar\.policy\.oci: not a SluicePolicy setting/);
  });
});
