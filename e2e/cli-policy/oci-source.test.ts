// `kubectl sluice policy eval --cluster` with policy.bundle oci, against a real kube-apiserver and a
// real registry (go-containerregistry's cmd/registry, tools/install.sh): the webhook's config names
// the reference, the pull secret and the registry CA as files under sidecar.mounts, which the CLI
// maps back to the agent namespace's Secret and ConfigMap and reads with its identity; it pulls the
// bundle with the registry client the sidecars use (lib/src/policy/bundle-oci.ts) through an HTTPS
// front that plays a hosted registry's token service (401 Bearer challenge; a token only for the
// pull secret's Basic credentials) and verifies it with the sidecars' key as the release mode does:
// what they refuse is refused with their codes (exit 1), never evaluated. Bundles are real
// `opa build --signing-key` builds of the default library. Traffic stays on loopback.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { request } from 'undici';
import { SLUICE_POLICY_API_VERSION, SLUICE_POLICY_KIND, SLUICE_POLICY_PATH } from '../../api/src/index.ts';
import { runCli } from '../../cli/src/main.ts';
import { agentInput } from '../../policies/cases/cases.ts';
import { eventually } from '../support/kube/admission.ts';
import { KubeCluster, freePort, startProcess, stopProcess, waitReady } from '../support/kube/cluster.ts';
import { tamperedBundle } from '../policy/signed-bundles.ts';
import { createTestCa, startHttpsUpstream } from '../../testkit/sidecar/upstreams.ts';
import type { TestCa, TestUpstream } from '../../testkit/sidecar/upstreams.ts';
import { buildBundle, repoRoot, rsaKeyPair } from './support.ts';
import type { BuiltBundle } from './support.ts';

const REGISTRY_BIN = join(repoRoot, '.tools', 'bin', 'registry');
const RELEASE_NS = 'sluice-system';
const CM_PATH = `/api/v1/namespaces/${RELEASE_NS}/configmaps`;
const REPO = 'acme/policy';
const USER = 'robot';
const PASSWORD = randomBytes(12).toString('hex');
const LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
const EXAMPLE_ORG = JSON.parse(readFileSync(join(repoRoot, 'policies', 'data', 'organisation', 'data.json'), 'utf8')) as Record<string, unknown>;

let cluster: KubeCluster;
let kubeconfig: string;
let registry: ChildProcess;
let backend: string;
let ca: TestCa;
let front: TestUpstream;
let host: string;
let reference: string;
let key: { priv: string; pub: string };
let signed: BuiltBundle;
let unsigned: BuiltBundle;
let otherKey: BuiltBundle;
const tokens = new Set<string>();
/** Basic credentials the token service was asked with (the pull secret reached it, or not). */
const tokenAsks: string[] = [];

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

async function put(path: string, name: string, body: Record<string, unknown>): Promise<void> {
  await cluster.request('admin', 'DELETE', `${path}/${name}`);
  await mustCreate(path, { ...body, metadata: { name } });
}

const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function call(method: string, url: string, body?: Buffer, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  const res = await request(url, { method: method as 'GET', body, headers });
  return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
}

async function pushBlob(bytes: Buffer): Promise<string> {
  const start = await call('POST', `${backend}/v2/${REPO}/blobs/uploads/`);
  expect(start.status).toBe(202);
  const location = new URL(String(start.headers.location), backend);
  location.searchParams.set('digest', digestOf(bytes));
  expect((await call('PUT', location.toString(), bytes, { 'content-type': 'application/octet-stream' })).status).toBe(201);
  return digestOf(bytes);
}

/** Pushes an artifact in OPA's OCI layout (an empty config, the layers) under the tag `prod`. */
async function push(layers: { bytes: Buffer; mediaType: string }[]): Promise<void> {
  const config = Buffer.from('{}');
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: await pushBlob(config), size: config.length },
      layers: await Promise.all(layers.map(async (l) => ({ mediaType: l.mediaType, digest: await pushBlob(l.bytes), size: l.bytes.length }))),
    }),
  );
  expect((await call('PUT', `${backend}/v2/${REPO}/manifests/prod`, manifest, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' })).status).toBe(201);
}

const pushBundle = (b: Buffer) => push([{ bytes: b, mediaType: LAYER }]);

/** A hosted registry's front: a token service that wants the pull secret, a Bearer-only API. */
function frontHandler(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', `https://${host}`);
  if (url.pathname === '/token') {
    tokenAsks.push(req.headers.authorization ?? '');
    if (req.headers.authorization !== `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` || url.searchParams.get('scope') !== `repository:${REPO}:pull`) {
      res.writeHead(401).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      return;
    }
    const token = randomBytes(16).toString('hex');
    tokens.add(token);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token }));
    return;
  }
  const bearer = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
  if (!bearer || !tokens.has(bearer)) {
    res.writeHead(401, { 'www-authenticate': `Bearer realm="https://${host}/token",service="registry.test",scope="repository:${REPO}:pull"` }).end();
    return;
  }
  void call(req.method ?? 'GET', `${backend}${url.pathname}`, undefined, { accept: String(req.headers.accept ?? '*/*') }).then((r) => {
    const headers: Record<string, string> = {};
    for (const h of ['content-type', 'docker-content-digest']) if (typeof r.headers[h] === 'string') headers[h] = r.headers[h];
    res.writeHead(r.status, headers).end(r.body);
  });
}

const dockerConfig = (password: string) => Buffer.from(JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${USER}:${password}`).toString('base64') } } })).toString('base64');

/** The agent namespace's pull secret, as the chart's docs have it created. */
async function pullSecret(password: string | undefined): Promise<void> {
  if (password === undefined) {
    await cluster.request('admin', 'DELETE', '/api/v1/namespaces/agents/secrets/registry-pull');
    return;
  }
  await put('/api/v1/namespaces/agents/secrets', 'registry-pull', { apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': dockerConfig(password) } });
}

/** The webhook's config.yaml as the chart renders it for policy.bundle oci with a pull secret and a CA. */
async function webhookConfig(): Promise<void> {
  const sidecar = {
    settingsSource: 'cluster',
    policyConfigMap: null,
    policyOci: { reference, pullSecretFile: '/etc/sluice/mounts/registry-pull/.dockerconfigjson', caFile: '/etc/sluice/mounts/registry-ca/ca.crt' },
    mounts: [
      { name: 'registry-pull', secret: 'registry-pull' },
      { name: 'registry-ca', configMap: 'registry-ca', items: [{ key: 'roots.pem', path: 'ca.crt' }] },
    ],
  };
  const res = await cluster.request('admin', 'PUT', `${CM_PATH}/sluice-webhook`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'sluice-webhook' }, data: { 'config.yaml': JSON.stringify({ sidecar }) } });
  if (res.status !== 200) throw new Error(`webhook config: ${res.status}`);
}

async function verificationKey(publicKey: string | null): Promise<void> {
  const res = await cluster.request('admin', 'PATCH', `${SLUICE_POLICY_PATH}/default`, { spec: { sidecar: { policy: publicKey === null ? null : { verification: { algorithm: 'RS256', publicKey } } } } }, 'application/merge-patch+json');
  expect(res.status).toBe(200);
}

beforeAll(async () => {
  key = rsaKeyPair();
  signed = buildBundle({ revision: 'b1b1b1b1b1b1', signingKey: key.priv });
  unsigned = buildBundle({ revision: 'b2b2b2b2b2b2' });
  otherKey = buildBundle({ revision: 'b3b3b3b3b3b3', signingKey: rsaKeyPair().priv });
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'sluice-cli-oci-'));
  registry = startProcess(REGISTRY_BIN, ['-port', String(port)], join(dir, 'registry.log'));
  backend = `http://127.0.0.1:${port}`;
  await waitReady('registry', registry, join(dir, 'registry.log'), 20_000, async () => (await call('GET', `${backend}/v2/`)).status === 200);
  ca = await createTestCa('sluice test registry CA');
  front = await startHttpsUpstream(ca, ['127.0.0.1'], (req, res) => frontHandler(req, res));
  host = front.dial;
  reference = `${host}/${REPO}:prod`;
  await pushBundle(readFileSync(signed.path));

  cluster = await KubeCluster.start({ namespaces: [{ name: RELEASE_NS }, { name: 'agents', labels: { 'sluice.io/inject': 'true' } }] });
  kubeconfig = cluster.kubeconfigPath('admin');
  const crd = parseYaml(readFileSync(join(repoRoot, 'api', 'crds', 'sluicepolicies.sluice.io.yaml'), 'utf8')) as unknown;
  await mustCreate('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
  await eventually('the SluicePolicy API is served', async () => ((await cluster.request('admin', 'GET', SLUICE_POLICY_PATH)).status === 200 ? true : undefined));
  await mustCreate(SLUICE_POLICY_PATH, {
    apiVersion: SLUICE_POLICY_API_VERSION,
    kind: SLUICE_POLICY_KIND,
    metadata: { name: 'default' },
    spec: { organisation: EXAMPLE_ORG, sidecar: { policy: { verification: { algorithm: 'RS256', publicKey: readFileSync(key.pub, 'utf8') } } } },
  });
  const labels = { 'app.kubernetes.io/part-of': 'sluice', 'app.kubernetes.io/component': 'webhook', 'app.kubernetes.io/name': 'sluice' };
  await mustCreate(`/apis/apps/v1/namespaces/${RELEASE_NS}/deployments`, {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'sluice-webhook', labels },
    spec: { replicas: 1, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: 'webhook', image: 'sluice-webhook' }] } } },
  });
  await mustCreate(CM_PATH, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'sluice-webhook' }, data: { 'config.yaml': '{}' } });
  await webhookConfig();
  await pullSecret(PASSWORD);
  await put('/api/v1/namespaces/agents/configmaps', 'registry-ca', { apiVersion: 'v1', kind: 'ConfigMap', data: { 'roots.pem': readFileSync(ca.caFile, 'utf8') } });
}, 240_000);

afterAll(async () => {
  await cluster?.stop();
  await front?.close();
  if (registry) await stopProcess(registry);
});

describe('policy.bundle oci', () => {
  test('eval --cluster pulls the bundle with the mounted pull secret and CA, verified with the sidecars\u2019 key, and evaluates it', async () => {
    tokenAsks.length = 0;
    const res = await cli(['policy', 'eval', '-i', inputFile('agents'), '--cluster']);
    expect([res.code, res.err]).toEqual([0, '']);
    const out = JSON.parse(res.out) as { revision: string; cluster: { bundle: { revision: string; from: string } } };
    expect(out.cluster.bundle).toMatchObject({ revision: 'b1b1b1b1b1b1', from: `registry ${reference}` });
    expect(out.revision).toMatch(/^b1b1b1b1b1b1\+org\./);
    // the pull secret's credentials reached the token service (and only it: the API took the token)
    expect(tokenAsks).toEqual([`Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`]);
    // check still names the reference
    const check = JSON.parse((await cli(['check', '-o', 'json'])).out) as { results: { category: string; status: string; message: string }[] };
    expect(check.results.filter((r) => r.category === 'policy-bundle')).toEqual([expect.objectContaining({ status: 'ok', message: expect.stringContaining(`pulled by every sidecar from ${reference} (policy.bundle oci)`) })]);
  }, 60_000);

  test('unsigned, signed by another key or tampered in the registry: refused with the sidecar\u2019s code (exit 1), never evaluated', async () => {
    const cases: [Buffer, RegExp][] = [
      [readFileSync(unsigned.path), /\(bundle\.unsigned\)/],
      [readFileSync(otherKey.path), /\(bundle\.signature_invalid\)/],
      [tamperedBundle(mkdtempSync(join(tmpdir(), 'sluice-tamper-')), readFileSync(signed.path)), /\(bundle\.(digest_mismatch|file_not_signed|signed_file_missing)\)/],
    ];
    try {
      for (const [bundle, code] of cases) {
        await pushBundle(bundle);
        const res = await cli(['policy', 'eval', '-i', inputFile('agents'), '--cluster']);
        expect(res.code).toBe(1);
        expect(res.out).toBe('');
        expect(res.err).toContain(`error: the sidecars in agents refuse their bundle (registry ${reference}): `);
        expect(res.err).toMatch(code);
      }
      // a local copy with --bundle: the registry's refused revision is not taken for what they run
      const copy = await cli(['policy', 'eval', '-i', inputFile('agents'), '--cluster', '--bundle', signed.path]);
      expect(copy.code).toBe(0);
      expect(copy.err).toContain(`note: registry ${reference} is refused by the sidecars' key (`);
      expect(JSON.parse(copy.out)).toMatchObject({ cluster: { bundle: { revision: 'b1b1b1b1b1b1', from: 'local' } } });
    } finally {
      await pushBundle(readFileSync(signed.path));
    }
  }, 120_000);

  test('an artifact that is not a bundle: refused with bundle.oci_manifest, as the sidecars record it', async () => {
    try {
      await push([{ bytes: Buffer.from('not a bundle'), mediaType: 'application/vnd.example.other' }]);
      const res = await cli(['policy', 'eval', '-i', inputFile('agents'), '--cluster']);
      expect(res.code).toBe(1);
      expect(res.err).toContain(`error: the sidecars in agents have no bundle to take from ${reference} (policy.bundle oci): `);
      expect(res.err).toContain('(bundle.oci_manifest)');
    } finally {
      await pushBundle(readFileSync(signed.path));
    }
  }, 60_000);

  test('the pull secret wrong or missing: bundle.source_unreachable (exit 1) saying why; --bundle evaluates a local copy with a note', async () => {
    try {
      await pullSecret('not-the-password');
      const wrong = await cli(['policy', 'eval', '-i', inputFile('agents'), '--cluster']);
      expect(wrong.code).toBe(1);
      expect(wrong.err).toContain('answered 401 (check the pull secret) (bundle.source_unreachable)');

      await pullSecret(undefined);
      const missing = await cli(['policy', 'eval', '-i', inputFile('agents'), '--cluster']);
      expect(missing.code).toBe(1);
      expect(missing.err).toContain('the pull secret (policy.oci.pullSecretFile): Secret agents/registry-pull does not exist');
      expect(missing.err).toContain('(bundle.source_unreachable)');

      const copy = await cli(['policy', 'eval', '-i', inputFile('agents'), '--cluster', '--bundle', signed.path]);
      expect(copy.code).toBe(0);
      expect(copy.err).toContain(`note: ${reference} could not be pulled (`);
      expect(JSON.parse(copy.out)).toMatchObject({ cluster: { bundle: { revision: 'b1b1b1b1b1b1', from: 'local' } } });
    } finally {
      await pullSecret(PASSWORD);
    }
  }, 60_000);

  test('sidecars without a verification key do not start with policy.bundle oci: eval refuses', async () => {
    await verificationKey(null);
    try {
      const res = await cli(['policy', 'eval', '-i', inputFile('agents'), '--cluster']);
      expect(res.code).toBe(1);
      expect(res.err).toContain(`refuse their bundle (registry ${reference}): policy.bundle oci needs policy.verification in their settings`);
    } finally {
      await verificationKey(readFileSync(key.pub, 'utf8'));
    }
  }, 60_000);
});
