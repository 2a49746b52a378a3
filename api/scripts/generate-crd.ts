// Writes api/crds/approvalrequests.sluice.io.yaml and sluicepolicies.sluice.io.yaml from the zod contracts (approval-crd.ts, sluice-policy-crd.ts).
// api/test/approval-crd.test.ts fails when the file is stale: run this and commit the result.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CRD_FILE, renderApprovalCrd } from './approval-crd.ts';
import { SLUICE_POLICY_CRD_FILE, renderSluicePolicyCrd } from './sluice-policy-crd.ts';

const dir = join(import.meta.dirname, '..', 'crds');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, CRD_FILE), renderApprovalCrd());
console.log(`wrote api/crds/${CRD_FILE}`);
writeFileSync(join(dir, SLUICE_POLICY_CRD_FILE), renderSluicePolicyCrd());
console.log(`wrote api/crds/${SLUICE_POLICY_CRD_FILE}`);
