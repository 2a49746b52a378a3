// `kubectl sluice policy eval|test|explain --cluster` against a real kube-apiserver: the organisation
// comes from SluicePolicy objects applied there (merged for the namespace by api/'s
// effectiveSluicePolicy, as the sidecars merge it), the running revision from a real sidecar's
// metrics read through the API server's pod proxy, a custom bundle from the namespace's policy
// ConfigMap. A local build of another revision is refused (exit 3) unless --allow-stale.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync, cpSync, mkdirSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ANNOTATION_STATUS, LABEL_INJECTED, SIDECAR_CONTAINER, SLUICE_POLICY_API_VERSION, SLUICE_POLICY_KIND, SLUICE_POLICY_PATH } from '../../api/src/index.ts';
import { clientBuild } from '../../cli/src/build-info.ts';
import { runCli } from '../../cli/src/main.ts';
import { agentInput } from '../../policies/cases/cases.ts';
import { eventually } from '../support/kube/admission.ts';
import { KubeCluster } from '../support/kube/cluster.ts';
import { defaultBundlePath, startTestSidecar } from '../../testkit/sidecar/test-sidecar.ts';
import { createTestCa, echoHandler, startHttpsUpstream } from '../../testkit/sidecar/upstreams.ts';
import { parseSidecarConfig } from '../../sidecar/src/config/sidecar-config.ts';
import { ClusterPolicyRuntime } from '../../sidecar/src/policy/cluster-runtime.ts';
import type { TestSidecar } from '../../testkit/sidecar/test-sidecar.ts';
import { buildBundle, repoRoot, rsaKeyPair } from './support.ts';
import type { BuiltBundle } from './support.ts';

const run = promisify(execFile);
let cluster: KubeCluster;
let sidecar: TestSidecar;
let running: BuiltBundle;
let custom: BuiltBundle;
let kubeconfig: string;
const EXAMPLE_ORG = JSON.parse(readFileSync(join(repoRoot, 'policies', 'data', 'organisation', 'data.json'), 'utf8')) as { name: string; aws: { buckets: string[] }; git: { owners: string[] } };

async function cli(args: string[], config = kubeconfig): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli([...args, '--kubeconfig', config], { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

function inputFile(namespace: string, bucket: string): string {
  const input = agentInput(
    { method: 'PUT', host: `${bucket}.s3.us-east-1.amazonaws.com`, path: '/report.csv' },
    { aws: { service: 's3', region: 'us-east-1', action: 's3:PutObject', bucket, key: 'report.csv', signed: true, resource_accounts: [] } },
  ) as unknown as { pod: { namespace: string } };
  input.pod.namespace = namespace;
  const file = join(mkdtempSync(join(tmpdir(), 'sluice-eval-')), 'input.json');
  writeFileSync(file, JSON.stringify(input));
  return file;
}

/** A non-loopback address of this machine: the API server does not proxy to loopback pods. */
function podAddress(): string {
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  throw new Error('no non-loopback IPv4 address: the pod proxy to a running sidecar cannot be exercised on this machine');
}

async function mustCreate(path: string, body: unknown): Promise<void> {
  const res = await cluster.request('admin', 'POST', path, body);
  if (res.status !== 201) throw new Error(`POST ${path}: ${res.status} ${JSON.stringify(res.body)}`);
}

function sluicePolicyCrd(): unknown {
  // The generated CRD when present; the API server validates against its schema.
  const file = join(repoRoot, 'api', 'crds', 'sluicepolicies.sluice.io.yaml');
  if (existsSync(file)) return parseYaml(readFileSync(file, 'utf8'));
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: 'sluicepolicies.sluice.io' },
    spec: {
      group: 'sluice.io',
      scope: 'Cluster',
      names: { kind: 'SluicePolicy', plural: 'sluicepolicies', singular: 'sluicepolicy', listKind: 'SluicePolicyList' },
      versions: [{ name: 'v1alpha1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } } } }],
    },
  };
}

beforeAll(async () => {
  running = buildBundle({ revision: 'c1c1c1c1c1c1' });
  custom = buildBundle({ revision: 'c2c2c2c2c2c2', extraRego: 'package sluice.extra\n\nmarker := true\n' });
  cluster = await KubeCluster.start({ namespaces: [{ name: 'agents', labels: { 'sluice.io/inject': 'true', team: 'data' } }, { name: 'team-b' }, { name: 'team-c' }, { name: 'team-s' }] });
  kubeconfig = cluster.kubeconfigPath('admin');
  await mustCreate('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', sluicePolicyCrd());
  await eventually('the SluicePolicy API is served', async () => ((await cluster.request('admin', 'GET', SLUICE_POLICY_PATH)).status === 200 ? true : undefined));
  // The organisation: the example's, with the bucket pattern a platform team would set; a binding adds one for team: data namespaces.
  const organisation = { ...EXAMPLE_ORG, name: 'globex', aws: { ...EXAMPLE_ORG.aws, buckets: ['globex-*'] }, git: { ...EXAMPLE_ORG.git, owners: [...EXAMPLE_ORG.git.owners, 'github.com/globex'] } };
  await mustCreate(SLUICE_POLICY_PATH, { apiVersion: SLUICE_POLICY_API_VERSION, kind: SLUICE_POLICY_KIND, metadata: { name: 'default' }, spec: { organisation } });
  await mustCreate(SLUICE_POLICY_PATH, {
    apiVersion: SLUICE_POLICY_API_VERSION,
    kind: SLUICE_POLICY_KIND,
    metadata: { name: 'data-team' },
    spec: { appliesTo: { namespaceSelector: { matchLabels: { team: 'data' } } }, namespace: { aws: { buckets: ['lake-*'] } } },
  });

  // agents: an injected pod whose sidecar (a real one, bundle revision c1c1…) runs at the pod's address.
  const ip = podAddress();
  sidecar = await startTestSidecar({ bundle: running.path, config: { bind: { proxy: '127.0.0.1', transparent: '127.0.0.1', admin: ip, dns: ['127.0.0.1'] } } });
  const adminPort = Number(new URL(sidecar.adminUrl).port);
  await mustCreate('/api/v1/namespaces/agents/pods', {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'coder-0', labels: { [LABEL_INJECTED]: 'true' }, annotations: { [ANNOTATION_STATUS]: JSON.stringify({ version: clientBuild().version }) } },
    spec: {
      initContainers: [{ name: SIDECAR_CONTAINER, image: 'sluice-sidecar', restartPolicy: 'Always', ports: [{ name: 'sluice-admin', containerPort: adminPort }] }],
      containers: [{ name: 'agent', image: 'agent' }],
    },
  });
  const status = await cluster.request('admin', 'PATCH', '/api/v1/namespaces/agents/pods/coder-0/status', { status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] } }, 'application/merge-patch+json');
  if (status.status !== 200) throw new Error(`pod status: ${status.status} ${JSON.stringify(status.body)}`);

  // team-b: a custom bundle in the namespace's policy ConfigMap, no pod yet.
  await mustCreate('/api/v1/namespaces/team-b/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'sluice-policy' }, binaryData: { 'bundle.tar.gz': readFileSync(custom.path).toString('base64') } });
}, 120_000);

afterAll(async () => {
  await sidecar?.stop();
  await cluster?.stop();
});

interface EvalOut {
  action: string;
  revision: string;
  decision: { code: string };
  cluster: { namespace: string; source: string; organisation: { revision: string; objects: string[] }; bundle: { revision: string; from: string }; running_revision?: { revision: string; from: string } };
}

describe('policy eval --cluster', () => {
  test('the organisation comes from the SluicePolicy objects: a write to the cluster organisation\u2019s bucket is allowed there, denied by the local example data', async () => {
    const local = await cli(['policy', 'eval', '-i', inputFile('agents', 'globex-reports'), '--bundle', running.path]);
    expect(local.code).toBe(0);
    expect(JSON.parse(local.out)).toMatchObject({ action: 'deny', decision: { code: 'cloud.s3_foreign_write_denied' } });
    const res = await cli(['policy', 'eval', '-i', inputFile('agents', 'globex-reports'), '--cluster', '--bundle', running.path]);
    expect([res.code, res.err]).toEqual([0, '']);
    const out = JSON.parse(res.out) as EvalOut;
    expect(out.action).toBe('allow');
    expect(out.revision).toBe(`c1c1c1c1c1c1+org.${out.cluster.organisation.revision}`);
    expect(out.cluster).toMatchObject({ namespace: 'agents', source: 'SluicePolicy', organisation: { objects: ['default', 'data-team'] }, running_revision: { revision: 'c1c1c1c1c1c1', from: 'running sidecar coder-0' } });
  });

  test('a binding\u2019s additions apply to the namespaces it selects only', async () => {
    const agents = await cli(['policy', 'eval', '-i', inputFile('agents', 'lake-raw'), '--cluster', '--bundle', running.path]);
    expect(JSON.parse(agents.out)).toMatchObject({ action: 'allow' });
    // team-c: neither binding nor pods; the same build asked explicitly, not compared (said on stderr)
    const teamC = await cli(['policy', 'eval', '-i', inputFile('team-c', 'lake-raw'), '--cluster', '--bundle', running.path]);
    expect(teamC.code).toBe(0);
    expect(JSON.parse(teamC.out)).toMatchObject({ action: 'deny', decision: { code: 'cloud.s3_foreign_write_denied' } });
    expect(teamC.err).toContain('cannot be compared with what the cluster runs');
  });

  test('the running sidecar reports another revision than the local build: refused as stale (exit 3) with how to get the right one; --allow-stale evaluates anyway', async () => {
    const stale = await cli(['policy', 'eval', '-i', inputFile('agents', 'globex-reports'), '--cluster']);
    expect(stale.code).toBe(3);
    expect(stale.out).toBe('');
    expect(stale.err).toMatch(/^error: stale local build: the sidecars in agents run policy revision c1c1c1c1c1c1 \(from running sidecar coder-0\), .*bundle\.tar\.gz is [0-9a-f]{12}\. To get c1c1c1c1c1c1: .*kubectl-sluice .*make policy.*--allow-stale/);
    const allowed = await cli(['policy', 'eval', '-i', inputFile('agents', 'globex-reports'), '--cluster', '--allow-stale']);
    expect(allowed.code).toBe(0);
    expect(allowed.err).toContain('warning: --allow-stale: stale local build');
    expect(JSON.parse(allowed.out)).toMatchObject({ action: 'allow' });
  });

  test('a namespace with its own bundle ConfigMap: evaluated with that bundle; a local build of another revision is refused', async () => {
    const res = await cli(['policy', 'eval', '-i', inputFile('team-b', 'globex-reports'), '--cluster']);
    expect([res.code, res.err]).toEqual([0, '']);
    const out = JSON.parse(res.out) as EvalOut;
    expect(out.cluster.bundle).toMatchObject({ revision: 'c2c2c2c2c2c2', from: 'ConfigMap team-b/sluice-policy' });
    expect(out.action).toBe('allow');
    const stale = await cli(['policy', 'eval', '-i', inputFile('team-b', 'globex-reports'), '--cluster', '--bundle', running.path]);
    expect(stale.code).toBe(3);
    expect(stale.err).toContain('run policy revision c2c2c2c2c2c2 (from ConfigMap team-b/sluice-policy)');
    expect(stale.err).toContain('omit --bundle');
  });

  test('no SluicePolicy named default: the sidecars have no valid policy, exit 1 naming the code; an unknown namespace exits 2', async () => {
    const saved = await cluster.request<{ spec: unknown }>('admin', 'GET', `${SLUICE_POLICY_PATH}/default`);
    expect((await cluster.request('admin', 'DELETE', `${SLUICE_POLICY_PATH}/default`)).status).toBe(200);
    try {
      const res = await cli(['policy', 'eval', '-i', inputFile('agents', 'globex-reports'), '--cluster', '--bundle', running.path]);
      expect(res.code).toBe(1);
      expect(res.err).toContain('give namespace agents no valid policy');
      expect(res.err).toContain('default: sluicepolicy.missing_default');
    } finally {
      await mustCreate(SLUICE_POLICY_PATH, { apiVersion: SLUICE_POLICY_API_VERSION, kind: SLUICE_POLICY_KIND, metadata: { name: 'default' }, spec: saved.body.spec });
    }
    expect(await cli(['policy', 'eval', '-i', inputFile('nowhere', 'x'), '--cluster'])).toMatchObject({ code: 2, err: 'error: namespace nowhere not found\n' });
    expect(await cli(['policy', 'eval', '-i', inputFile('agents', 'x'), '--allow-stale'])).toMatchObject({ code: 2, err: expect.stringContaining('--allow-stale goes with --cluster') });
  });
});

describe('policy eval --cluster with a signed custom bundle', () => {
  test('verified with the inline key the sidecars\u2019 settings carry; a bundle that is not signed by it is what the sidecars refuse (exit 1)', async () => {
    const key = rsaKeyPair();
    const signed = buildBundle({ revision: 'c5c5c5c5c5c5', signingKey: key.priv });
    await mustCreate(SLUICE_POLICY_PATH, {
      apiVersion: SLUICE_POLICY_API_VERSION,
      kind: SLUICE_POLICY_KIND,
      metadata: { name: 'team-s-signed' },
      spec: { appliesTo: { namespaces: ['team-s'] }, sidecar: { policy: { path: '/etc/sluice/policy', verification: { algorithm: 'RS256', publicKey: readFileSync(key.pub, 'utf8') } } } },
    });
    const cmPath = '/api/v1/namespaces/team-s/configmaps';
    await mustCreate(cmPath, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'sluice-policy' }, binaryData: { 'bundle.tar.gz': readFileSync(signed.path).toString('base64') } });
    const ok = await cli(['policy', 'eval', '-i', inputFile('team-s', 'globex-reports'), '--cluster']);
    expect([ok.code, ok.err]).toEqual([0, '']);
    expect(JSON.parse(ok.out)).toMatchObject({ action: 'allow', cluster: { bundle: { revision: 'c5c5c5c5c5c5', from: 'ConfigMap team-s/sluice-policy' } } });
    // an agent (or anyone) swaps in an unsigned bundle: the sidecars would refuse it, so does eval
    const unsigned = buildBundle({ revision: 'c6c6c6c6c6c6' });
    const put = await cluster.request('admin', 'PUT', `${cmPath}/sluice-policy`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'sluice-policy' }, binaryData: { 'bundle.tar.gz': readFileSync(unsigned.path).toString('base64') } });
    expect(put.status).toBe(200);
    const refused = await cli(['policy', 'eval', '-i', inputFile('team-s', 'globex-reports'), '--cluster']);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/^error: the sidecars in team-s refuse their bundle \(ConfigMap sluice-policy\): .*\(bundle\.unsigned\)/);
  }, 60_000);
});

describe('policy eval --cluster with little RBAC', () => {
  test('may list SluicePolicies and read the ConfigMaps only: labels and sidecars unknown are said; the default build is refused as unconfirmed, an explicit one evaluated', async () => {
    const rbac = '/apis/rbac.authorization.k8s.io/v1';
    await mustCreate(`${rbac}/clusterroles`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'sluicepolicy-reader' }, rules: [{ apiGroups: ['sluice.io'], resources: ['sluicepolicies'], verbs: ['list'] }] });
    await mustCreate(`${rbac}/clusterrolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'sluicepolicy-reader' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'sluicepolicy-reader' },
      subjects: [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: 'mallory@example.com' }],
    });
    await cluster.grant('outsider', 'agents', 'configmap-reader', [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }]);
    await eventually('the ClusterRoleBinding applies', async () => ((await cluster.request('outsider', 'GET', SLUICE_POLICY_PATH)).status === 200 ? true : undefined));
    const outsider = cluster.kubeconfigPath('outsider');
    const explicit = await cli(['policy', 'eval', '-i', inputFile('agents', 'globex-reports'), '--cluster', '--bundle', running.path], outsider);
    expect(explicit.code).toBe(0);
    expect(JSON.parse(explicit.out)).toMatchObject({ action: 'allow', cluster: { source: 'SluicePolicy', sidecars: [] } });
    expect(explicit.err).toContain('you may not read namespace agents: SluicePolicy bindings that select namespaces by label are not applied here');
    expect(explicit.err).toContain('you may not list pods in agents');
    const unconfirmed = await cli(['policy', 'eval', '-i', inputFile('agents', 'globex-reports'), '--cluster'], outsider);
    expect(unconfirmed.code).toBe(3);
    expect(unconfirmed.err).toContain("cannot confirm the cluster's policy revision");
    // a ConfigMap it may not read: whether the namespace has its own bundle is unknown, so nothing is evaluated
    const teamB = await cli(['policy', 'eval', '-i', inputFile('team-b', 'globex-reports'), '--cluster', '--bundle', running.path], outsider);
    expect(teamB.code).toBe(1);
    expect(teamB.err).toContain('cannot read ConfigMap team-b/sluice-policy');
  }, 60_000);
});

describe('policy explain --cluster on an event a sidecar recorded while running with the cluster\u2019s organisation', () => {
  test('reproduced with --cluster (its revision is the sidecar\u2019s bundle+org); without --cluster, exit 3 saying to pass it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-cluster-sidecar-'));
    const base = { pod: { namespace: 'team-c', name: 'coder-c', serviceAccount: 'default' }, trustDir: join(dir, 'trust'), policy: { cluster: { enabled: true, kubeconfig, namespaceResyncMs: 200 } } };
    const runtime = await ClusterPolicyRuntime.create(parseSidecarConfig(base), (settings) => parseSidecarConfig({ ...settings, ...base }), pino({ level: 'silent' }));
    await runtime.start();
    const ca = await createTestCa();
    const upstream = await startHttpsUpstream(ca, ['api.github.com'], echoHandler);
    const spool = join(dir, 'spool');
    const withOrg = await startTestSidecar({ resolve: { 'api.github.com:443': upstream.dial }, extraRootsFiles: [ca.caFile], config: { pod: base.pod, audit: { spoolDir: spool, spool: { fsync: 'none' } } }, clusterPolicy: runtime });
    try {
      // github.com/globex is the cluster organisation's owner (the example's is acme): an own-repo API write, held
      await run('curl', ['-sS', '-o', '/dev/null', '--cacert', withOrg.trust.caFile, '-x', withOrg.proxyUrl, '-X', 'POST', '-d', '{}', 'https://api.github.com/repos/globex/app/issues']).catch(() => undefined);
    } finally {
      await withOrg.stop();
      await upstream.close();
    }
    const replay = await cli(['replay', withOrg.sessionId, '--spool', spool, '-o', 'json']);
    const held = replay.out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { seq: number; kind: string; request?: { path: string }; decision?: { action: string; code: string; revision: string } }).find((e) => e.kind === 'request' && e.request?.path === '/repos/globex/app/issues')!;
    expect(held.decision).toMatchObject({ action: 'hold', code: 'git.api_write_requires_approval', revision: expect.stringMatching(/^[0-9a-f]{12}\+org\.[0-9a-f]{16}$/) });
    const args = ['policy', 'explain', '--session', withOrg.sessionId, '--seq', String(held.seq), '--spool', spool, '--bundle', defaultBundlePath];
    const res = await cli([...args, '--cluster', '-o', 'json']);
    expect(res.code).toBe(0);
    expect(JSON.parse(res.out)).toMatchObject({ reproduced: true, revision: 'match', evaluated: { revision: held.decision!.revision }, cluster: { namespace: 'team-c', source: 'SluicePolicy' } });
    const without = await cli(args);
    expect(without.code).toBe(3);
    expect(without.err).toContain("pass --cluster: the sidecar ran with the cluster's organisation");
  }, 60_000);
});

describe('policy test --cluster', () => {
  /** A library checkout: the real Rego and data, a team's own test of its organisation, built with revision c1c1…. */
  function library(revision: string): string {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-library-'));
    cpSync(join(repoRoot, 'policies', 'data'), join(dir, 'data'), { recursive: true });
    mkdirSync(join(dir, 'rego'));
    for (const f of readdirSync(join(repoRoot, 'policies', 'rego'))) if (f.endsWith('.rego') && !f.endsWith('_test.rego')) cpSync(join(repoRoot, 'policies', 'rego', f), join(dir, 'rego', f));
    writeFileSync(join(dir, 'rego', 'ours_test.rego'), 'package ours_test\n\ntest_our_buckets_are_listed if "globex-*" in data.organisation.aws.buckets\n');
    mkdirSync(join(dir, 'build'));
    cpSync(buildBundle({ revision }).path, join(dir, 'build', 'bundle.tar.gz'));
    return dir;
  }

  test('runs the library\u2019s tests with the organisation the cluster\u2019s sidecars use, and refuses a build of another revision', async () => {
    const dir = library('c1c1c1c1c1c1');
    const local = await cli(['policy', 'test', '--dir', dir]);
    expect(local.code).toBe(1);
    expect(local.out).toContain('test_our_buckets_are_listed');
    const res = await cli(['policy', 'test', '--dir', dir, '--cluster', '-n', 'agents']);
    expect(res.code).toBe(0);
    expect(res.out).toMatch(/PASS: 1\/1/);
    expect(res.err).toContain('testing with the organisation of namespace agents (SluicePolicy default, data-team');
    const other = library('0123456789ab');
    const stale = await cli(['policy', 'test', '--dir', other, '--cluster', '-n', 'agents']);
    expect(stale.code).toBe(3);
    expect(stale.err).toContain('stale local build: the sidecars in agents run policy revision c1c1c1c1c1c1');
  });
});

// Last: it removes the SluicePolicy API.
describe('a cluster without the SluicePolicy API (an install from before it)', () => {
  test('the organisation is the bundle\u2019s own data and the settings the sluice-sidecar ConfigMap\u2019s; said on stderr', async () => {
    expect((await cluster.request('admin', 'DELETE', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/sluicepolicies.sluice.io')).status).toBe(200);
    await eventually('the SluicePolicy API is gone', async () => ((await cluster.request('admin', 'GET', SLUICE_POLICY_PATH)).status === 404 ? true : undefined));
    const res = await cli(['policy', 'eval', '-i', inputFile('team-b', 'globex-reports'), '--cluster']);
    expect(res.code).toBe(0);
    expect(res.err).toContain('note: no SluicePolicy API in this cluster: the organisation is the bundle\'s own data, the settings the sluice-sidecar ConfigMap\'s');
    const out = JSON.parse(res.out) as EvalOut;
    expect(out).toMatchObject({ action: 'deny', decision: { code: 'cloud.s3_foreign_write_denied' }, revision: 'c2c2c2c2c2c2', cluster: { source: 'ConfigMap', bundle: { from: 'ConfigMap team-b/sluice-policy' } } });
  }, 30_000);
});
