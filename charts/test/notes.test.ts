// What `helm install` tells the user about the audit trail (templates/NOTES.txt, rendered by the
// real Helm with --dry-run=client): a release without a log store says so loudly and how to set
// one; a release with a store names it.
import { describe, expect, jest, test } from '@jest/globals';
import { CHART, NAMESPACE, RELEASE, helm, valuesFile } from './support/helm.ts';

jest.setTimeout(60_000);

async function notes(values: unknown): Promise<string> {
  const res = await helm(['install', RELEASE, CHART, '-n', NAMESPACE, '--dry-run=client', '-f', valuesFile(values)]);
  if (res.code !== 0) throw new Error(res.stderr);
  const at = res.stdout.indexOf('\nNOTES:\n');
  expect(at).toBeGreaterThan(0);
  return res.stdout.slice(at);
}

describe('NOTES.txt on the audit store', () => {
  test('the default values: a loud warning that no store is set, and how to set one', async () => {
    const text = await notes({});
    expect(text).toContain('*** WARNING: NO AUDIT LOG STORE ***');
    expect(text).toContain('sidecar.config.audit.store is none: audit events are NOT shipped anywhere.');
    expect(text).toContain('--set sidecar.config.audit.store.type=victorialogs --set sidecar.config.audit.store.url=');
    expect(text).not.toContain('Audit store:');
  });

  test('a VictoriaLogs store is named, without the warning', async () => {
    const text = await notes({ sidecar: { config: { audit: { store: { type: 'victorialogs', url: 'http://victorialogs.logging:9428' } } } } });
    expect(text).toContain('Audit store:     victorialogs at http://victorialogs.logging:9428 (sidecar.config.audit.store)');
    expect(text).not.toContain('WARNING: NO AUDIT LOG STORE');
  });

  test('a legacy loki block next to the default store: none is the store', async () => {
    const text = await notes({ sidecar: { config: { audit: { loki: { url: 'http://loki-gateway.logging' } } } } });
    expect(text).toContain('Audit store:     loki at http://loki-gateway.logging (sidecar.config.audit.loki');
    expect(text).not.toContain('WARNING: NO AUDIT LOG STORE');
  });
});
