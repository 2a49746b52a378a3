// `sidecar.config` through the whole chart, rendered by the real Helm: it becomes sidecar.yaml in the
// sluice-sidecar ConfigMap of every agent namespace, the webhook's config names that ConfigMap, the
// sidecar the webhook renders mounts it where SLUICE_CONFIG_FILE points, and loadSidecarConfig reads
// back exactly what Helm wrote. The values schema for it is the sidecar's own config schema.
import { join } from 'node:path';
import { beforeAll, describe, expect, jest, test } from '@jest/globals';
import { parse as parseYaml } from 'yaml';
import { SidecarConfig } from '../../sidecar/src/config/sidecar-config.ts';
import { projectedTokenPath } from '../../sidecar/src/credentials/projected-token.ts';
import { loadAsMounted } from '../../sidecar/test/config/settings-volume.ts';
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

function settingsMap(objs: K8sObject[], namespace: string): ConfigMap {
  const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.namespace === namespace && o.metadata.name === SIDECAR_CONFIG_MAP);
  if (!cm) throw new Error(`no ConfigMap ${SIDECAR_CONFIG_MAP} in ${namespace}`);
  return cm as ConfigMap;
}

function injection(objs: K8sObject[]): { rendered: Rendered; sidecarConfigMap: string; tokenAudiences: { audience: string; path?: string | undefined }[] } {
  const config = parseWebhookConfig(parseYaml((find(objs, 'ConfigMap', 'sluice-webhook') as ConfigMap).data['config.yaml']!));
  return { rendered: renderInjection(config), sidecarConfigMap: config.sidecar.sidecarConfigMap, tokenAudiences: config.sidecar.tokenAudiences };
}

describe('sidecar.config', () => {
  test('every agent namespace gets it as sidecar.yaml in the sluice-sidecar ConfigMap', () => {
    for (const ns of ['agents', 'team-b']) {
      const cm = settingsMap(configured, ns);
      expect(Object.keys(cm.data)).toEqual(['sidecar.yaml']);
      // The chart's default audit.store (none) is merged in by Helm next to the user's settings.
      expect(parseYaml(cm.data['sidecar.yaml']!)).toEqual({ ...SETTINGS, audit: { store: 'none' } });
      expect(cm.data['sidecar.yaml']).toContain('maxSignedBodyBytes: 16777216');
    }
  });

  test('the webhook mounts that ConfigMap where SLUICE_CONFIG_FILE points, and the sidecar loads what Helm wrote', () => {
    const { rendered, sidecarConfigMap } = injection(configured);
    expect(sidecarConfigMap).toBe(SIDECAR_CONFIG_MAP);
    const volume = rendered.volumes.find((v) => v.configMap?.name === SIDECAR_CONFIG_MAP);
    // Required (issue 15): the kubelet does not start a pod without it, so a missing ConfigMap never means defaults.
    expect(volume?.configMap).toMatchObject({ optional: false, items: [{ key: 'sidecar.yaml', path: 'sidecar.yaml' }] });
    expect(rendered.sidecar.volumeMounts).toContainEqual(expect.objectContaining({ name: volume!.name, readOnly: true }));
    const loaded = loadAsMounted(rendered.sidecar, settingsMap(configured, 'agents').data);
    expect(loaded.approvals).toMatchObject({ maxWaitMs: 120_000, notify: { url: SETTINGS.approvals.notify.url } });
    expect(loaded.credentials.aws).toMatchObject({ region: 'eu-west-1', endpoint: 'https://sts.eu-west-1.amazonaws.com', maxSignedBodyBytes: 16_777_216 });
    expect(loaded.credentials.aws.roles).toEqual([{ ...SETTINGS.credentials.aws.roles[0], name: 'default' }]);
    expect(loaded.masking.passTypes).toEqual(['application/zip', 'image/png']);
    expect(loaded.upstream.extraRootsFiles).toEqual(SETTINGS.upstream.extraRootsFiles);
    // What the webhook sets through env is still the webhook's; no policy path by default (policy.bundle image: the library in the sidecar image).
    expect([loaded.pod.namespace, loaded.policy.path, loaded.trustDir]).toEqual(['agents', undefined, '/var/run/sluice/trust']);
  });

  test('the default file says one thing, audit.store: none; without the ConfigMap at all the sidecar starts on the same settings', () => {
    const cm = settingsMap(defaults, 'agents');
    expect(parseYaml(cm.data['sidecar.yaml']!)).toEqual({ audit: { store: 'none' } });
    const { rendered } = injection(defaults);
    const withFile = loadAsMounted(rendered.sidecar, cm.data);
    const without = loadAsMounted(rendered.sidecar, undefined);
    // Written out or left unset, the store is none (the sidecar warns either way).
    expect(resolveStore(withFile.audit)).toBe('none');
    expect(resolveStore(without.audit) ?? 'none').toBe('none');
    expect({ ...without, audit: { ...without.audit, store: 'none' } }).toEqual(withFile);
  });

  test('by default a token for sts.amazonaws.com is projected where the aws-sts provider reads it', () => {
    const { rendered, tokenAudiences } = injection(defaults);
    expect(tokenAudiences.map((t) => t.audience)).toContain('sts.amazonaws.com');
    const loaded = loadAsMounted(rendered.sidecar, settingsMap(defaults, 'agents').data);
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
