// The SluicePolicy example in docs/policy.md is one a cluster accepts and a sidecar runs: both
// objects parse, the binding applies to a namespace labelled team=payments and adds to the
// organisation, and the merged settings are valid sidecar settings.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from '@jest/globals';
import { parseAllDocuments } from 'yaml';
import { effectiveSluicePolicy } from '../../../api/src/index.ts';
import { loadSidecarConfig } from '../../src/config/sidecar-config.ts';

const doc = readFileSync(join(import.meta.dirname, '..', '..', '..', 'docs', 'policy.md'), 'utf8');
const block = /```yaml\n# sluicepolicy\.yaml\n([\s\S]*?)```/.exec(doc)?.[1];

test('docs/policy.md: the SluicePolicy example is valid and merges as documented', () => {
  expect(block).toBeDefined();
  const objects = parseAllDocuments(block!).map((d) => d.toJS() as unknown);
  const r = effectiveSluicePolicy(objects, { name: 'payments-prod', labels: { team: 'payments' } });
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  expect(r.policy.sources.map((s) => s.name)).toEqual(['default', 'payments']);
  expect(r.policy.organisation.namespaces['payments-prod']?.aws?.buckets).toEqual(['payments-*']);
  const config = loadSidecarConfig({ SLUICE_POD_NAMESPACE: 'payments-prod', SLUICE_POD_NAME: 'coder-0', SLUICE_SERVICE_ACCOUNT: 'coder', SLUICE_TRUST_DIR: '/t' }, r.policy.sidecar);
  expect(config.approvals.maxWaitMs).toBe(1_800_000);
  const other = effectiveSluicePolicy(objects, { name: 'web', labels: {} });
  expect(other.ok && other.policy.sources.map((s) => s.name)).toEqual(['default']);
});
