// `sidecar.config` through the whole chart, rendered by the real Helm: it becomes spec.sidecar of the
// cluster-scoped SluicePolicy named default (nothing per agent namespace), the webhook's config
// says the settings come from the cluster, the sidecar the webhook renders mounts no settings
// ConfigMap and is told to read SluicePolicy objects, and loadSidecarConfig with what
// effectiveSluicePolicy gives an agent namespace reads back exactly what Helm wrote. The values
// schema for it is the sidecar's own config schema.
import { join } from 'node:path';
import { beforeAll, describe, expect, jest, test } from '@jest/globals';
import { parse as parseYaml } from 'yaml';
import { effectiveSluicePolicy } from '../../api/src/index.ts';
import { SidecarConfig, loadSidecarConfig } from '../../sidecar/src/config/sidecar-config.ts';
import type { SidecarConfig as SidecarConfigT } from '../../sidecar/src/config/sidecar-config.ts';
import { projectedTokenPath } from '../../sidecar/src/credentials/projected-token.ts';
import { containerEnv } from '../../testkit/config/settings-volume.ts';
import { parseWebhookConfig } from '../../webhook/src/config.ts';
import { renderInjection } from '../../webhook/src/render.ts';
import type { Rendered } from '../../webhook/src/render.ts';
import type { JsonSchema } from '../src/values-docs.ts';
import { resolveStore } from '../../sidecar/src/audit/config.ts';
import { SIDECAR_CONFIG_MAP, valuesJsonSchema } from '../src/values-schema.ts';
import { find, template } from './support/helm.ts';
import type { K8sObject } from './support/helm.ts';

jest.setTimeout(60_000);

type ConfigMap = K8sObject & { data: Record<string, string> };

/** What a platform team sets (docs/install.md): an AWS role, notifications, a longer wait, extra roots. */
const SETTINGS = {
  approvals: { maxWaitMs: 120_000, notify: { url: 'https://hooks.slack.example.com/services/T0/B0/x' } },
  credentials: {
    aws: {
      region: 'eu-west-1',
      endpoint: 'https://sts.eu-west-1.amazonaws.com',
      // Above 2^20: Helm must not turn it into 1.6777216e+07 on the way.
      maxSignedBodyBytes: 16_777_216,
      roles: [{ namespace: 'agents', serviceAccount: 'coder', roleArn: 'arn:aws:iam::123456789012:role/agent-coder' }],
    },
  },
  masking: { passTypes: ['application/zip', 'image/png'] },
  upstream: { extraRootsFiles: ['/var/run/secrets/kubernetes.io/serviceaccount/ca.crt'] },
};

let configured: K8sObject[] = [];
let defaults: K8sObject[] = [];

beforeAll(async () => {
  [configured, defaults] = await Promise.all([template({ agents: { namespaces: ['agents', 'team-b'] }, sidecar: { config: SETTINGS } }), template({ agents: { namespaces: ['agents'] } })]);
});

function policyObject(objs: K8sObject[]): K8sObject & { spec: { sidecar: Record<string, unknown>; organisation: unknown } } {
  return find(objs, 'SluicePolicy', 'default') as K8sObject & { spec: { sidecar: Record<string, unknown>; organisation: unknown } };
}

function injection(objs: K8sObject[]): { rendered: Rendered; tokenAudiences: { audience: string; path?: string | undefined }[]; settingsSource: string } {
  const config = parseWebhookConfig(parseYaml((find(objs, 'ConfigMap', 'sluice-webhook') as ConfigMap).data['config.yaml']!));
  return { rendered: renderInjection(config), tokenAudiences: config.sidecar.tokenAudiences, settingsSource: config.sidecar.settingsSource };
}

/** What a pod's sidecar in `namespace` starts with: its env, and the settings the SluicePolicy objects give it. */
function loadInPod(objs: K8sObject[], rendered: Rendered, namespace = 'agents'): SidecarConfigT {
  const effective = effectiveSluicePolicy(objs.filter((o) => o.kind === 'SluicePolicy'), { name: namespace });
  if (!effective.ok) throw new Error(JSON.stringify(effective.problems));
  return loadSidecarConfig({ ...containerEnv(rendered.sidecar, { 'metadata.name': 'coder-0', 'metadata.namespace': namespace, 'metadata.uid': 'uid-0', 'spec.serviceAccountName': 'coder' }) }, effective.policy.sidecar);
}

describe('sidecar.config', () => {
  test('it is spec.sidecar of the one SluicePolicy named default; no agent namespace gets a settings ConfigMap', () => {
    expect(configured.filter((o) => o.kind === 'ConfigMap' && o.metadata.name === SIDECAR_CONFIG_MAP)).toEqual([]);
    // The chart's default audit.store (none) is merged in by Helm next to the user's settings.
    expect(policyObject(configured).spec.sidecar).toEqual({ ...SETTINGS, audit: { store: 'none' } });
    expect(configured.filter((o) => o.kind === 'SluicePolicy').map((o) => o.metadata.name)).toEqual(['default']);
  });

  test('the webhook mounts no settings ConfigMap and points the sidecar at the cluster; the sidecar loads what Helm wrote', () => {
    const { rendered, settingsSource } = injection(configured);
    expect(settingsSource).toBe('cluster');
    expect(rendered.volumes.filter((v) => v.configMap?.name === SIDECAR_CONFIG_MAP)).toEqual([]);
    for (const c of [rendered.sidecar, rendered.initContainer]) expect(containerEnv(c).SLUICE_CONFIG_FILE).toBeUndefined();
    expect(containerEnv(rendered.sidecar).SLUICE_POLICY_SOURCE).toBe('cluster');
    // Any labelled namespace, listed in agents.namespaces or not, gets the same settings.
    for (const ns of ['agents', 'never-listed']) {
      const loaded = loadInPod(configured, rendered, ns);
      expect(loaded.policy.cluster.enabled).toBe(true);
      expect(loaded.approvals).toMatchObject({ maxWaitMs: 120_000, notify: { url: SETTINGS.approvals.notify.url } });
      expect(loaded.credentials.aws).toMatchObject({ region: 'eu-west-1', endpoint: 'https://sts.eu-west-1.amazonaws.com', maxSignedBodyBytes: 16_777_216 });
      expect(loaded.credentials.aws.roles).toEqual([{ ...SETTINGS.credentials.aws.roles[0], name: 'default' }]);
      expect(loaded.masking.passTypes).toEqual(['application/zip', 'image/png']);
      expect(loaded.upstream.extraRootsFiles).toEqual(SETTINGS.upstream.extraRootsFiles);
      // What the webhook sets through env is still the webhook's; no policy path by default (policy.bundle image: the library in the sidecar image).
      expect([loaded.pod.namespace, loaded.policy.path, loaded.trustDir]).toEqual([ns, undefined, '/var/run/sluice/trust']);
    }
  });

  test('the default says one thing, audit.store: none', () => {
    expect(policyObject(defaults).spec.sidecar).toEqual({ audit: { store: 'none' } });
    const { rendered } = injection(defaults);
    expect(resolveStore(loadInPod(defaults, rendered).audit)).toBe('none');
  });

  test('the fake-IP ranges go to both sluice containers as env, not into the SluicePolicy', async () => {
    const objs = await template({ sidecar: { config: { dns: { ipv4Cidr: '100.80.0.0/16', capacity: 1000 } } } });
    expect(policyObject(objs).spec.sidecar).toEqual({ dns: { capacity: 1000 }, audit: { store: 'none' } });
    const { rendered } = injection(objs);
    for (const c of [rendered.sidecar, rendered.initContainer]) expect(containerEnv(c).SLUICE_FAKE_IPV4_CIDR).toBe('100.80.0.0/16');
    expect(loadInPod(objs, rendered).dns).toMatchObject({ ipv4Cidr: '100.80.0.0/16', capacity: 1000 });
  });

  test('by default a token for sts.amazonaws.com is projected where the aws-sts provider reads it', () => {
    const { rendered, tokenAudiences } = injection(defaults);
    expect(tokenAudiences.map((t) => t.audience)).toContain('sts.amazonaws.com');
    const loaded = loadInPod(defaults, rendered);
    const tokens = rendered.volumes.find((v) => v.projected?.sources?.some((s) => s.serviceAccountToken?.audience === loaded.credentials.aws.audience));
    const source = tokens!.projected!.sources!.find((s) => s.serviceAccountToken?.audience === loaded.credentials.aws.audience)!.serviceAccountToken!;
    const mount = rendered.sidecar.volumeMounts!.find((m) => m.name === tokens!.name)!;
    expect(projectedTokenPath(loaded.credentials.tokenDir, loaded.credentials.aws.audience, loaded.credentials.tokenFiles)).toBe(join(mount.mountPath, source.path));
  });
});

describe('the values schema of sidecar.config', () => {
  const config = (valuesJsonSchema().properties!.sidecar!.properties!.config as JsonSchema & { properties: Record<string, JsonSchema> });

  test("it is the sidecar's config less what the webhook sets per pod through env", () => {
    const setByTheWebhook = ['pod', 'proxyUID', 'ports', 'podInfoDir', 'trustDir'];
    expect(Object.keys(config.properties).sort()).toEqual(Object.keys(SidecarConfig.shape).filter((k) => !setByTheWebhook.includes(k)).sort());
    expect(Object.keys(config.properties.policy!.properties!)).toEqual(['pollIntervalMs', 'verification']);
    expect(Object.keys(config.properties.credentials!.properties!)).not.toContain('tokenDir');
    expect(Object.keys(config.properties.audit!.properties!)).not.toContain('spoolDir');
    expect(config.additionalProperties).toBe(false);
  });
});
