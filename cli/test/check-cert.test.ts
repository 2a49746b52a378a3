// `kubectl sluice check` judges the webhook's serving certificate in every certificate mode: in
// mode self (the chart's default) the Deployment mounts an emptyDir and the webhook keeps the pair
// in a Secret its config.yaml names, and while it rotates its CA the registrations trust two CAs
// (the new one first) with the serving certificate still signed by the previous one.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { issueCA, issueServing } from '../../webhook/src/self-cert.ts';
import { servingCertCheck, servingSecretOf } from '../src/commands/check.ts';

const HOST = 'sluice-webhook.sluice-system.svc';
const HOSTS = ['sluice-webhook', 'sluice-webhook.sluice-system', HOST, `${HOST}.cluster.local`];
interface K8sObject {
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  spec?: { template: { spec: { volumes: { secret?: { secretName?: string } }[] } } };
}

/** The chart as Helm renders it: charts/test/golden/<name>.yaml, which charts/test/chart.test.ts holds equal to `helm template`. */
function rendered(golden: 'defaults' | 'helm-certs' | 'cert-manager'): { volumes: { secret?: { secretName?: string } }[]; configYaml: string } {
  const objs = parseAllDocuments(readFileSync(join(import.meta.dirname, '..', '..', 'charts', 'test', 'golden', `${golden}.yaml`), 'utf8')).map((d) => d.toJS() as K8sObject);
  const one = (kind: string) => objs.find((o) => o?.kind === kind && o.metadata.name === 'sluice-webhook')!;
  return { volumes: one('Deployment').spec!.template.spec.volumes, configYaml: one('ConfigMap').data!['config.yaml']! };
}

describe('the Secret holding the serving certificate', () => {
  test('the chart’s default (mode self): the Secret named in the webhook’s config, not a volume', () => {
    const { volumes, configYaml } = rendered('defaults');
    expect(volumes.some((v) => v.secret)).toBe(false);
    expect((parseYaml(configYaml) as { selfCert: { secretName: string } }).selfCert.secretName).toBe('sluice-webhook-certs');
    expect(servingSecretOf(volumes, configYaml)).toEqual({ name: 'sluice-webhook-certs', self: true });
  });

  test('modes helm and cert-manager: the mounted Secret volume', () => {
    for (const golden of ['helm-certs', 'cert-manager'] as const) {
      const { volumes, configYaml } = rendered(golden);
      expect(servingSecretOf(volumes, configYaml)).toEqual({ name: 'sluice-webhook-tls', self: false });
    }
  });

  test('neither: nothing to check', () => {
    expect(servingSecretOf([{}], 'server:\n  port: 8443\n')).toBeUndefined();
    expect(servingSecretOf([], undefined)).toBeUndefined();
  });
});

describe('servingCertCheck against a caBundle', () => {
  test('a certificate signed by the one CA is ok; by another CA it fails with the hint of its mode', async () => {
    const now = new Date();
    const ca = await issueCA('test CA', 3650, now);
    const other = await issueCA('other CA', 3650, now);
    const leaf = await issueServing(ca, HOSTS, 365, now);
    expect(servingCertCheck(leaf.cert, ca.caCert, HOST, now.getTime(), true)).toMatchObject({ status: 'ok' });
    expect(servingCertCheck(leaf.cert, other.caCert, HOST, now.getTime(), true)).toMatchObject({ status: 'fail', hint: expect.stringContaining('mode self') });
    expect(servingCertCheck(leaf.cert, other.caCert, HOST, now.getTime())).toMatchObject({ status: 'fail', hint: expect.stringContaining('helm upgrade') });
  });

  test('during a CA rotation (new CA first, previous second) a certificate from the previous CA is ok', async () => {
    const now = new Date();
    const previous = await issueCA('previous CA', 3650, now);
    const next = await issueCA('next CA', 3650, now);
    const leaf = await issueServing(previous, HOSTS, 365, now);
    // As webhook/src/self-cert.ts caBundleOf writes it while the registrations move to the new CA.
    const bundle = `${next.caCert.trim()}\n${previous.caCert.trim()}\n`;
    expect(servingCertCheck(leaf.cert, bundle, HOST, now.getTime(), true)).toMatchObject({ status: 'ok', message: expect.stringContaining(`serving certificate for ${HOST} valid until`) });
  });
});
