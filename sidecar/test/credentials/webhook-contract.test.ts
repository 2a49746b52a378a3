// The contract between the webhook and the credentials code, checked on a pod the real injector
// mutates: agents get the placeholder keys and no service-account token of any kind; only the
// sidecar mounts the projected tokens, at the SLUICE_TOKEN_DIR the sidecar reads, under the file
// names the sidecar looks for (default mapping or the configured `path` via tokenFiles); the
// sidecar's own API token sits where the kubernetes provider expects it by default.
import { describe, expect, test } from '@jest/globals';
import type { V1Container } from '@kubernetes/client-node';
import fastJsonPatch from 'fast-json-patch';
import { planInjection } from '../../../webhook/src/inject.ts';
import { tokenFileName as webhookTokenFileName } from '../../../webhook/src/config.ts';
import { alice, loadPod, testConfig } from '../../../testkit/webhook/fixtures.ts';
import { loadSidecarConfig } from '../../src/config/sidecar-config.ts';
import { projectedTokenPath, tokenFileName } from '../../src/credentials/projected-token.ts';

const config = testConfig();
const plan = planInjection(loadPod('plain-pod.yaml'), { namespace: 'agents', namespaceOptedIn: false, userInfo: alice }, config);
if (plan.kind !== 'patch') throw new Error(`expected a patch, got ${plan.kind}`);
const pod = fastJsonPatch.applyPatch(structuredClone(loadPod('plain-pod.yaml')), structuredClone(plan.patch) as fastJsonPatch.Operation[], true, false).newDocument;
const sidecar = pod.spec!.initContainers!.find((c) => c.name === 'sluice-proxy')!;
const agents = pod.spec!.containers;
const env = (c: V1Container) => Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? `(from ${Object.keys(e.valueFrom ?? {}).join()})`]));
const tokenVolumes = (pod.spec!.volumes ?? []).filter((v) => (v.projected?.sources ?? []).some((s) => s.serviceAccountToken)).map((v) => v.name);

describe('webhook ⇄ credentials', () => {
  test('agents hold only the placeholder keys and mount no token volume', () => {
    expect(pod.spec!.automountServiceAccountToken).toBe(false);
    for (const c of agents) {
      expect(env(c)).toMatchObject({ AWS_ACCESS_KEY_ID: 'SLUICEPLACEHOLDER', AWS_SECRET_ACCESS_KEY: 'sluice-placeholder' });
      expect((c.volumeMounts ?? []).filter((m) => tokenVolumes.includes(m.name))).toEqual([]);
    }
  });

  test('the sidecar reads its projected tokens where the webhook puts them, under the same names', () => {
    const e = env(sidecar);
    const loaded = loadSidecarConfig({ ...e, SLUICE_POD_NAMESPACE: 'agents', SLUICE_POD_NAME: 'p', SLUICE_SERVICE_ACCOUNT: 'sa' });
    const mount = sidecar.volumeMounts!.find((m) => m.mountPath === e.SLUICE_TOKEN_DIR);
    expect(mount).toBeDefined();
    expect(loaded.credentials.tokenDir).toBe(e.SLUICE_TOKEN_DIR);
    const projected = pod.spec!.volumes!.find((v) => v.name === mount!.name)!.projected!.sources!.map((s) => s.serviceAccountToken!);
    const tokenFiles: Record<string, string> = {};
    for (const t of config.sidecar.tokenAudiences) if (t.path) tokenFiles[t.audience] = t.path;
    for (const t of projected) {
      expect(projectedTokenPath(loaded.credentials.tokenDir, t.audience!, tokenFiles)).toBe(`${e.SLUICE_TOKEN_DIR}/${t.path}`);
    }
    for (const a of ['sts.amazonaws.com', 'https://tokens.example.com/exchange', 'vault://x y']) expect(tokenFileName(a)).toBe(webhookTokenFileName({ audience: a }));
  });

  test('the sidecar\'s own API token is where the kubernetes provider looks by default', () => {
    const loaded = loadSidecarConfig({ SLUICE_POD_NAMESPACE: 'a', SLUICE_POD_NAME: 'p', SLUICE_SERVICE_ACCOUNT: 's', SLUICE_POLICY_PATH: '/p', SLUICE_TRUST_DIR: '/t' });
    const dir = loaded.credentials.kubernetes.tokenFile.replace(/\/token$/, '');
    expect(sidecar.volumeMounts!.some((m) => m.mountPath === dir)).toBe(true);
    expect(loaded.credentials.kubernetes.caFile).toBeUndefined();
  });
});
