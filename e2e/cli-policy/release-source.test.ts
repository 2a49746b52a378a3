// `kubectl sluice policy eval --cluster` and `kubectl sluice check` with the policy sources the chart's
// policy.bundle release and oci give the sidecars, against a real kube-apiserver: the webhook's
// config (its ConfigMap, named as its Deployment) says where the bundle is; with release the CLI
// reads the one ConfigMap in the release namespace (not the agent namespace's sluice-policy, which
// such sidecars never read), verifies it with the sidecars' key as the sidecar does, and refuses
// what they refuse with their codes (policy.bundle oci, pulled from a real registry: oci-source.test.ts).
// Bundles are real `opa build --signing-key` builds of the default library.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ANNOTATION_STATUS, LABEL_INJECTED, SIDECAR_CONTAINER, SLUICE_POLICY_API_VERSION, SLUICE_POLICY_KIND, SLUICE_POLICY_PATH } from '../../api/src/index.ts';
import { clientBuild } from '../../cli/src/build-info.ts';
import { runCli } from '../../cli/src/main.ts';
import { agentInput } from '../../policies/cases/cases.ts';
import { eventually } from '../support/kube/admission.ts';
import { KubeCluster } from '../support/kube/cluster.ts';
import { tamperedBundle } from '../policy/signed-bundles.ts';
import { startTestSidecar } from '../../testkit/sidecar/test-sidecar.ts';
import { buildBundle, repoRoot, rsaKeyPair } from './support.ts';
import type { BuiltBundle } from './support.ts';

const RELEASE_NS = 'sluice-system';
const OBJECT = 'sluice-policy-bundle';
const CM_PATH = `/api/v1/namespaces/${RELEASE_NS}/configmaps`;
let cluster: KubeCluster;
let kubeconfig: string;
let key: { priv: string; pub: string };
let signed: BuiltBundle;
let unsigned: BuiltBundle;
let otherKey: BuiltBundle;
const EXAMPLE_ORG = JSON.parse(readFileSync(join(repoRoot, 'policies', 'data', 'organisation', 'data.json'), 'utf8')) as Record<string, unknown>;

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli([...args, '--kubeconfig', kubeconfig], { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

function inputFile(namespace: string): string {
  const input = agentInput({ method: 'GET', host: 'api.github.com', path: '/repos/globex/app/issues' }) as unknown as { pod: { namespace: string } };
  input.pod.namespace = namespace;
  const file = join(mkdtempSync(join(tmpdir(), 'sluice-eval-')), 'input.json');
  writeFileSync(file, JSON.stringify(input));
  return file;
}

async function mustCreate(path: string, body: unknown): Promise<void> {
  const res = await cluster.request('admin', 'POST', path, body);
  if (res.status !== 201) throw new Error(`POST ${path}: ${res.status} ${JSON.stringify(res.body)}`);
}

/** Puts (creates or replaces) the release namespace's bundle ConfigMap. */
async function putBundle(content: { binaryData?: Record<string, string>; data?: Record<string, string> }): Promise<void> {
  await cluster.request('admin', 'DELETE', `${CM_PATH}/${OBJECT}`);
  await mustCreate(CM_PATH, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: OBJECT }, ...content });
}

const archive = (b: Buffer | string) => ({ binaryData: { 'bundle.tar.gz': (typeof b === 'string' ? readFileSync(b) : b).toString('base64') } });

/** The webhook's config.yaml as the chart renders it for a policy.bundle mode. */
async function webhookConfig(sidecar: Record<string, unknown>): Promise<void> {
  const text = JSON.stringify({ sidecar: { settingsSource: 'cluster', ...sidecar } });
  const res = await cluster.request('admin', 'PUT', `${CM_PATH}/sluice-webhook`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'sluice-webhook' }, data: { 'config.yaml': text } });
  if (res.status !== 200) throw new Error(`webhook config: ${res.status}`);
}

function policyResults(out: string): { status: string; message: string; hint?: string }[] {
  return (JSON.parse(out) as { results: { category: string; status: string; message: string; hint?: string }[] }).results.filter((r) => r.category === 'policy-bundle');
}

beforeAll(async () => {
  key = rsaKeyPair();
  signed = buildBundle({ revision: 'a1a1a1a1a1a1', signingKey: key.priv });
  unsigned = buildBundle({ revision: 'a2a2a2a2a2a2' });
  otherKey = buildBundle({ revision: 'a3a3a3a3a3a3', signingKey: rsaKeyPair().priv });
  cluster = await KubeCluster.start({ namespaces: [{ name: RELEASE_NS }, { name: 'agents', labels: { 'sluice.io/inject': 'true' } }] });
  kubeconfig = cluster.kubeconfigPath('admin');
  const crd = parseYaml(readFileSync(join(repoRoot, 'api', 'crds', 'sluicepolicies.sluice.io.yaml'), 'utf8')) as unknown;
  expect(existsSync(join(repoRoot, 'api', 'crds', 'sluicepolicies.sluice.io.yaml'))).toBe(true);
  await mustCreate('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
  await eventually('the SluicePolicy API is served', async () => ((await cluster.request('admin', 'GET', SLUICE_POLICY_PATH)).status === 200 ? true : undefined));
  await mustCreate(SLUICE_POLICY_PATH, {
    apiVersion: SLUICE_POLICY_API_VERSION,
    kind: SLUICE_POLICY_KIND,
    metadata: { name: 'default' },
    spec: { organisation: EXAMPLE_ORG, sidecar: { policy: { verification: { algorithm: 'RS256', publicKey: readFileSync(key.pub, 'utf8') } } } },
  });
  // The webhook as the chart installs it: its Deployment (labels the CLI looks for) and its config.
  const labels = { 'app.kubernetes.io/part-of': 'sluice', 'app.kubernetes.io/component': 'webhook', 'app.kubernetes.io/name': 'sluice' };
  await mustCreate(`/apis/apps/v1/namespaces/${RELEASE_NS}/deployments`, {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'sluice-webhook', labels },
    spec: { replicas: 1, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: 'webhook', image: 'sluice-webhook' }] } } },
  });
  await mustCreate(CM_PATH, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'sluice-webhook' }, data: { 'config.yaml': '{}' } });
  await webhookConfig({ policyConfigMap: null, policyBundleObject: `${RELEASE_NS}/${OBJECT}` });
  // A decoy: the per-namespace policy ConfigMap of the old mode, which release-mode sidecars never read.
  await mustCreate('/api/v1/namespaces/agents/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'sluice-policy' }, ...archive(unsigned.path) });
}, 240_000);

afterAll(async () => {
  await cluster?.stop();
});

describe('policy.bundle release', () => {
  test('eval --cluster evaluates with the release namespace\u2019s bundle, verified with the sidecars\u2019 key; check says it exists, is binaryData and verifies', async () => {
    await putBundle(archive(signed.path));
    const res = await cli(['policy', 'eval', '-i', inputFile('agents'), '--cluster']);
    expect([res.code, res.err]).toEqual([0, '']);
    const out = JSON.parse(res.out) as { revision: string; cluster: { bundle: { revision: string; from: string } } };
    expect(out.cluster.bundle).toMatchObject({ revision: 'a1a1a1a1a1a1', from: `ConfigMap ${RELEASE_NS}/${OBJECT}` });
    expect(out.revision).toMatch(/^a1a1a1a1a1a1\+org\./);

    const check = await cli(['check', '-o', 'json']);
    const results = policyResults(check.out);
    expect(results.map((r) => r.status)).toEqual(['ok', 'ok']);
    expect(results[0]!.message).toMatch(new RegExp(`^policy: ConfigMap ${RELEASE_NS}/${OBJECT} \\(policy.bundle release\\) holds binaryData bundle.tar.gz \\(\\d+\\.\\d KiB\\)$`));
    expect(results[1]!.message).toMatch(new RegExp(`^policy: ${RELEASE_NS}/${OBJECT} verifies with the key of namespace agents \\(RS256.*\\), revision a1a1a1a1a1a1$`));
  }, 60_000);

  test('unsigned, signed by another key or tampered: refused with the sidecar\u2019s code (exit 1), never evaluated; check fails with a fix', async () => {
    const cases: [Buffer | string, RegExp][] = [
      [unsigned.path, /\(bundle\.unsigned\)/],
      [otherKey.path, /\(bundle\.signature_invalid\)/],
      [tamperedBundle(mkdtempSync(join(tmpdir(), 'sluice-tamper-')), readFileSync(signed.path)), /\(bundle\.(digest_mismatch|file_not_signed|signed_file_missing)\)/],
    ];
    for (const [bundle, code] of cases) {
      await putBundle(archive(bundle));
      const res = await cli(['policy', 'eval', '-i', inputFile('agents'), '--cluster']);
      expect(res.code).toBe(1);
      expect(res.out).toBe('');
      expect(res.err).toMatch(new RegExp(`^error: the sidecars in agents refuse their bundle \\(ConfigMap ${RELEASE_NS}/${OBJECT}\\): `));
      expect(res.err).toMatch(code);
      const check = await cli(['check', '-o', 'json']);
      const bad = policyResults(check.out).find((r) => r.status === 'fail');
      expect(bad?.message).toMatch(code);
      expect(bad?.hint).toContain('--signing-key');
    }
  }, 120_000);

  test('with --bundle, a refused release bundle\u2019s revision is not taken for what the sidecars run (said on stderr)', async () => {
    await putBundle(archive(unsigned.path));
    const res = await cli(['policy', 'eval', '-i', inputFile('agents'), '--cluster', '--bundle', unsigned.path]);
    expect(res.code).toBe(0);
    expect(res.err).toContain(`note: ConfigMap ${RELEASE_NS}/${OBJECT} is refused by the sidecars' key (`);
    expect(res.err).toContain('(bundle.unsigned)): its revision a2a2a2a2a2a2 is not taken for what they run');
    expect(JSON.parse(res.out)).toMatchObject({ cluster: { bundle: { revision: 'a2a2a2a2a2a2', from: 'local' } } });
    expect(JSON.parse(res.out)).not.toHaveProperty('cluster.running_revision');
  }, 60_000);

  test('the object missing, or the archive as text data: refused with bundle.object_missing / bundle.object_no_archive; check fails with how to create it', async () => {
    await cluster.request('admin', 'DELETE', `${CM_PATH}/${OBJECT}`);
    const missing = await cli(['policy', 'eval', '-i', inputFile('agents'), '--cluster']);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain(`error: the sidecars in agents have no bundle to take from ConfigMap ${RELEASE_NS}/${OBJECT} (policy.bundle release)`);
    expect(missing.err).toContain('(bundle.object_missing)');
    let results = policyResults((await cli(['check', '-o', 'json'])).out);
    expect(results).toEqual([expect.objectContaining({ status: 'fail', message: expect.stringContaining('(bundle.object_missing)'), hint: expect.stringContaining(`kubectl -n ${RELEASE_NS} create configmap ${OBJECT} --from-file=bundle.tar.gz`) })]);

    await putBundle({ data: { 'bundle.tar.gz': 'not binary' } });
    const text = await cli(['policy', 'eval', '-i', inputFile('agents'), '--cluster']);
    expect(text.code).toBe(1);
    expect(text.err).toContain('holds bundle.tar.gz as text data; create it with --from-file so the archive is binaryData (bundle.object_no_archive)');
    results = policyResults((await cli(['check', '-o', 'json'])).out);
    expect(results).toEqual([expect.objectContaining({ status: 'fail', message: expect.stringContaining('(bundle.object_no_archive)') })]);
  }, 60_000);

  test('sidecars without a verification key do not start in release mode: eval refuses, check says so', async () => {
    await putBundle(archive(signed.path));
    const res = await cluster.request('admin', 'PATCH', `${SLUICE_POLICY_PATH}/default`, { spec: { sidecar: { policy: null } } }, 'application/merge-patch+json');
    expect(res.status).toBe(200);
    try {
      const evald = await cli(['policy', 'eval', '-i', inputFile('agents'), '--cluster']);
      expect(evald.code).toBe(1);
      expect(evald.err).toContain('policy.bundle release needs policy.verification in their settings');
      const results = policyResults((await cli(['check', '-o', 'json'])).out);
      expect(results[1]).toMatchObject({ status: 'fail', message: 'policy: the sidecars of namespace agents have no policy.verification key: with policy.bundle release they do not start' });
    } finally {
      await cluster.request('admin', 'PATCH', `${SLUICE_POLICY_PATH}/default`, { spec: { sidecar: { policy: { verification: { algorithm: 'RS256', publicKey: readFileSync(key.pub, 'utf8') } } } } }, 'application/merge-patch+json');
    }
  }, 60_000);
});

describe('policy.bundle release with a running sidecar that has not taken the ConfigMap\u2019s bundle', () => {
  test('eval --cluster refuses the ConfigMap\u2019s bundle as not what the sidecars run (exit 3, --allow-stale evaluates it); check warns on the pod', async () => {
    // A real sidecar at a non-loopback address (the API server does not proxy to loopback pods) running a1a1…
    const ip = Object.values(networkInterfaces()).flatMap((l) => l ?? []).find((a) => a.family === 'IPv4' && !a.internal)?.address;
    if (!ip) throw new Error('no non-loopback IPv4 address: the pod proxy to a running sidecar cannot be exercised on this machine');
    const sidecar = await startTestSidecar({ bundle: signed.path, config: { bind: { proxy: '127.0.0.1', transparent: '127.0.0.1', admin: ip, dns: ['127.0.0.1'] } } });
    try {
      await mustCreate('/api/v1/namespaces/agents/pods', {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'coder-0', labels: { [LABEL_INJECTED]: 'true' }, annotations: { [ANNOTATION_STATUS]: JSON.stringify({ version: clientBuild().version }) } },
        spec: {
          initContainers: [{ name: SIDECAR_CONTAINER, image: 'sluice-sidecar', restartPolicy: 'Always', ports: [{ name: 'sluice-admin', containerPort: Number(new URL(sidecar.adminUrl).port) }] }],
          containers: [{ name: 'agent', image: 'agent' }],
        },
      });
      const status = await cluster.request('admin', 'PATCH', '/api/v1/namespaces/agents/pods/coder-0/status', { status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] } }, 'application/merge-patch+json');
      expect(status.status).toBe(200);
      // the ConfigMap now holds a newer signed bundle the sidecar has not taken
      const newer = buildBundle({ revision: 'a4a4a4a4a4a4', signingKey: key.priv });
      await putBundle(archive(newer.path));

      const res = await cli(['policy', 'eval', '-i', inputFile('agents'), '--cluster']);
      expect(res.code).toBe(3);
      expect(res.err).toContain(`error: the sidecars in agents run policy revision a1a1a1a1a1a1 (from running sidecar coder-0), ConfigMap ${RELEASE_NS}/${OBJECT} holds a4a4a4a4a4a4: they have not taken it`);
      const allowed = await cli(['policy', 'eval', '-i', inputFile('agents'), '--cluster', '--allow-stale']);
      expect(allowed.code).toBe(0);
      expect(JSON.parse(allowed.out)).toMatchObject({ cluster: { bundle: { revision: 'a4a4a4a4a4a4', from: `ConfigMap ${RELEASE_NS}/${OBJECT}` } } });

      const check = JSON.parse((await cli(['check', '-o', 'json'])).out) as { results: { category: string; status: string; message: string; hint?: string }[] };
      const pod = check.results.find((r) => r.category === 'injected-pods' && r.message.startsWith('agents/coder-0'));
      expect(pod).toMatchObject({ status: 'warn', message: expect.stringContaining('policy a1a1a1a1a1a1'), hint: `runs policy a1a1a1a1a1a1, ConfigMap ${RELEASE_NS}/${OBJECT} holds a4a4a4a4a4a4: the sidecar has not taken it (it refused it, has not read it yet, or may not read it): read its policy_load events and logs` });
    } finally {
      await cluster.request('admin', 'DELETE', '/api/v1/namespaces/agents/pods/coder-0');
      await sidecar.stop();
    }
  }, 120_000);
});
