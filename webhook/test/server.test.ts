// The HTTP shell over real sockets: HTTPS reviews in and out, clear 400s for what it cannot read,
// a deny (never a crash) for a fault, health and metrics on their own port, and the serving
// certificate swapped without a restart when its Secret volume changes.
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import fastJsonPatch from 'fast-json-patch';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { Agent, request } from 'undici';
import { TestCA } from '../../e2e/support/kube/pki.ts';
import type { IssuedCert } from '../../e2e/support/kube/pki.ts';
import { parseWebhookConfig } from '../src/config.ts';
import { startWebhookServer } from '../src/server.ts';
import type { RunningWebhook } from '../src/server.ts';
import { baseConfigInput, loadPod } from '../../testkit/webhook/fixtures.ts';
import { admissionReview } from './support/reviews.ts';

// Response shapes differ per case (reviews, errors); tests read them loosely.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

let ca: TestCA;
let dir: string;
let server: RunningWebhook;
let dispatcher: Agent;
let generation = 0;

/** Writes the pair the way the kubelet updates a Secret volume: a new dir, then an atomic ..data swap. */
function writeSecretVolume(pair: IssuedCert): void {
  generation += 1;
  const data = `..${generation}`;
  mkdirSync(join(dir, data));
  writeFileSync(join(dir, data, 'tls.crt'), pair.certPem);
  writeFileSync(join(dir, data, 'tls.key'), pair.keyPem);
  symlinkSync(data, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  if (generation === 1) {
    symlinkSync('..data/tls.crt', join(dir, 'tls.crt'));
    symlinkSync('..data/tls.key', join(dir, 'tls.key'));
  }
}

async function post(path: string, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) {
  const res = await request(`https://127.0.0.1:${server.port}${path}`, { method: 'POST', body, headers, dispatcher });
  return { status: res.statusCode, json: (await res.body.json()) as Json };
}

async function servedCertificateSerial(): Promise<string> {
  const socket = connect({ host: '127.0.0.1', port: server.port, ca: ca.certPem, servername: 'localhost' });
  await once(socket, 'secureConnect');
  const serial = socket.getPeerCertificate().serialNumber;
  socket.destroy();
  return serial;
}

beforeAll(async () => {
  ca = await TestCA.create();
  dir = mkdtempSync(join(tmpdir(), 'sluice-webhook-tls-'));
  writeSecretVolume(await ca.issue('sluice-webhook', ['127.0.0.1', 'localhost']));
  const config = parseWebhookConfig({ ...baseConfigInput, server: { host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0, tlsDir: dir, bodyLimitBytes: 64 * 1024 } });
  server = await startWebhookServer(config, { registry: new Registry(), logger: pino({ level: 'silent' }) });
  dispatcher = new Agent({ connect: { ca: ca.certPem } });
});

afterAll(async () => {
  await server?.close();
  await dispatcher?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('reviews over HTTPS', () => {
  test('/mutate answers with a JSONPatch that yields the golden pod', async () => {
    const pod = loadPod('plain-pod.yaml');
    const review = admissionReview(pod, { uid: 'abc-123' });
    const res = await post('/mutate', JSON.stringify(review));
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'abc-123', allowed: true, patchType: 'JSONPatch' } });
    const patch = JSON.parse(Buffer.from(res.json.response.patch as string, 'base64').toString()) as fastJsonPatch.Operation[];
    const patched = fastJsonPatch.applyPatch(pod, patch, true, false).newDocument;
    expect(patched).toEqual(loadPod('plain-pod.patched.yaml'));
  });

  test('/mutate/namespace injects an unlabelled pod; /mutate does not', async () => {
    const pod = loadPod('namespace-opt-in.yaml');
    expect((await post('/mutate/namespace', JSON.stringify(admissionReview(pod)))).json.response.patch).toBeDefined();
    expect((await post('/mutate', JSON.stringify(admissionReview(pod)))).json.response).toEqual({ uid: expect.any(String), allowed: true });
  });

  test('/validate denies with code 403 and the rule, field and reason', async () => {
    const pod = loadPod('plain-pod.patched.yaml');
    pod.spec!.hostNetwork = true;
    const res = await post('/validate', JSON.stringify(admissionReview(pod)));
    expect(res.json.response).toMatchObject({ allowed: false, status: { code: 403, reason: 'Forbidden' } });
    expect(res.json.response.status.message).toMatch(/^sluice guard\.host_namespace: spec\.hostNetwork: /);
  });

  test('/validate handles exec into the sidecar', async () => {
    const review = admissionReview({ kind: 'PodExecOptions', apiVersion: 'v1', container: 'sluice-proxy', command: ['sh'] }, { operation: 'CONNECT', subResource: 'exec' });
    expect((await post('/validate', JSON.stringify(review))).json.response.allowed).toBe(false);
  });

  test('/validate/connect refuses a port-forward when it cannot read the target pod (fail closed); proxy needs no read', async () => {
    // This server has no Kubernetes API access (no kubeconfig, not in a pod).
    const forward = admissionReview({ kind: 'PodPortForwardOptions', apiVersion: 'v1', metadata: { name: 'coder-0' } }, { operation: 'CONNECT', subResource: 'portforward', namespace: 'team' });
    const res = await post('/validate/connect', JSON.stringify(forward));
    expect(res.json.response).toMatchObject({ allowed: false, status: { code: 403 } });
    expect(res.json.response.status.message).toMatch(/^sluice guard\.port_forward: portforward: cannot tell whether the pod is one sluice injected/);
    const proxy = admissionReview({ kind: 'PodProxyOptions', apiVersion: 'v1', metadata: { name: 'coder-0:8080' }, path: '/' }, { operation: 'CONNECT', subResource: 'proxy', namespace: 'team' });
    expect((await post('/validate/connect', JSON.stringify(proxy))).json.response.allowed).toBe(true);
  });
});

describe('what it cannot read is a 400, never a crash', () => {
  test.each([
    ['malformed JSON', '{"apiVersion": ', 400, /malformed JSON/],
    ['not an AdmissionReview', JSON.stringify({ apiVersion: 'v1', kind: 'Pod' }), 400, /apiVersion/],
    ['a request without uid', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { operation: 'CREATE' } }), 400, /request\.uid/],
    ['an object that is not a pod', JSON.stringify(admissionReview({ metadata: {}, spec: { containers: 'nope' } })), 400, /request\.object is not a Pod: spec\.containers/],
    ['exec options of the wrong type', JSON.stringify(admissionReview({ container: 5 }, { operation: 'CONNECT', subResource: 'exec' })), 400, /not exec options/],
    ['an oversized body', JSON.stringify({ pad: 'x'.repeat(100 * 1024) }), 413, /too large/],
  ])('%s', async (_what, body, status, message) => {
    const res = await post('/validate', body);
    expect(res.status).toBe(status);
    expect(res.json.error).toMatch(message);
  });

  test('an unknown path is a 404', async () => {
    expect((await post('/inject', '{}')).status).toBe(404);
  });

  test("the API server's ?timeout= query and a trailing slash reach the same review; GET is a 404", async () => {
    const body = JSON.stringify(admissionReview(loadPod('plain-pod.yaml'), { uid: 'q-1' }));
    for (const path of ['/mutate?timeout=10s', '/mutate/?timeout=10s']) {
      const res = await post(path, body);
      expect(res.status).toBe(200);
      expect(res.json.response).toMatchObject({ uid: 'q-1', allowed: true, patchType: 'JSONPatch' });
    }
    const get = await request(`https://127.0.0.1:${server.port}/mutate`, { method: 'GET', dispatcher });
    expect(get.statusCode).toBe(404);
    await get.body.dump();
  });

  test('a body streamed past the limit without a content-length is a 413, and the server keeps serving', async () => {
    const chunks = Readable.from(Array.from({ length: 100 }, () => Buffer.alloc(1024, 0x20)));
    const res = await request(`https://127.0.0.1:${server.port}/validate`, { method: 'POST', body: chunks, headers: { 'content-type': 'application/json' }, dispatcher });
    expect(res.statusCode).toBe(413);
    expect(((await res.body.json()) as Json).error).toMatch(/too large/);
    expect((await post('/validate', JSON.stringify(admissionReview(loadPod('plain-pod.patched.yaml'))))).json.response.allowed).toBe(true);
  });

  test('a compressed body is refused with 415 (the API server sends none)', async () => {
    const res = await post('/validate', '{}', { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(res.status).toBe(415);
    expect(res.json.error).toMatch(/content encoding/);
  });

  test('a review the code cannot handle is a deny with code 500, and the server keeps serving', async () => {
    const pod = loadPod('plain-pod.yaml') as unknown as { spec: { containers: Record<string, unknown>[] } };
    pod.spec.containers[0]!.env = 5; // not a list: the injector throws
    const res = await post('/mutate', JSON.stringify(admissionReview(pod, { uid: 'boom' })));
    expect(res.status).toBe(200);
    expect(res.json.response).toMatchObject({ uid: 'boom', allowed: false, status: { code: 500 } });
    expect((await post('/mutate', JSON.stringify(admissionReview(loadPod('plain-pod.yaml'))))).json.response.allowed).toBe(true);
  });
});

describe('health, metrics and certificate reload', () => {
  test('health and readiness on the metrics port', async () => {
    const base = `http://127.0.0.1:${server.metricsPort}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/sluice_webhook_reviews_total\{endpoint="mutate",operation="CREATE",result="patched"\} [1-9]/);
    expect(metrics).toMatch(/sluice_webhook_malformed_reviews_total\{endpoint="validate"\} [1-9]/);
    expect(metrics).toMatch(/sluice_webhook_internal_errors_total\{endpoint="mutate"\} 1/);
    expect(metrics).toMatch(/sluice_webhook_patch_bytes_count [1-9]/);
    expect(metrics).toMatch(/sluice_webhook_cert_expiry_timestamp_seconds [1-9]/);
  });

  test('a rotated Secret is served to new connections without a restart; a broken one is refused', async () => {
    const before = await servedCertificateSerial();
    const rotated = once(server.certs, 'load');
    writeSecretVolume(await ca.issue('sluice-webhook', ['127.0.0.1', 'localhost'], { days: 30 }));
    await rotated;
    const after = await servedCertificateSerial();
    expect(after).not.toBe(before);

    const refused = once(server.certs, 'refused');
    const other = await ca.issue('sluice-webhook', ['127.0.0.1']);
    const mine = await ca.issue('sluice-webhook', ['127.0.0.1']);
    writeSecretVolume({ certPem: other.certPem, keyPem: mine.keyPem }); // key of another certificate
    const [err] = (await refused) as [Error & { code: string }];
    expect(err.code).toBe('SLUICE_WEBHOOK_CERT_INVALID');
    expect(await servedCertificateSerial()).toBe(after);
    expect((await post('/mutate', JSON.stringify(admissionReview(loadPod('plain-pod.yaml'))))).status).toBe(200);
    const metrics = await (await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/sluice_webhook_cert_reloads_total\{result="success"\} 2/);
    expect(metrics).toMatch(/sluice_webhook_cert_reloads_total\{result="failure"\} [1-9]/);
  });
});
