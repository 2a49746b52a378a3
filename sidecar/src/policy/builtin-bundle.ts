// Where the sidecar's policy comes from: the bundle configured at policy.path (a custom bundle,
// signed when policy.verification is set), else the default library built into the image beside
// the code (policies/build/bundle.tar.gz, versioned with the sidecar, on its read-only root), so
// no per-namespace copy is needed. A configured path never falls back to the built-in one: a
// missing or refused custom bundle keeps the pod not ready (fail closed), it never downgrades.
import { join } from 'node:path';
import { SchemaError } from '../../../api/src/index.ts';
import { bundleVerification } from '../../../lib/src/policy/bundle-signature.ts';
import type { BundleVerification, PolicyVerificationConfig } from '../../../lib/src/policy/bundle-signature.ts';

/** The image copies policies/build/bundle.tar.gz to /app/policies/build/ (charts/images/image-spec.ts). */
export const BUILTIN_BUNDLE = join(import.meta.dirname, '..', '..', '..', 'policies', 'build', 'bundle.tar.gz');

export interface PolicySource {
  path: string;
  builtin: boolean;
  verification: BundleVerification | undefined;
}

export function policySource(policy: { path?: string | undefined; verification?: PolicyVerificationConfig | undefined }): PolicySource {
  if (policy.path === undefined) {
    if (policy.verification) {
      throw new SchemaError('invalid sidecar configuration', ['policy.verification: set policy.path to the signed bundle (the built-in default library is part of the image and is not re-verified)']);
    }
    return { path: BUILTIN_BUNDLE, builtin: true, verification: undefined };
  }
  return { path: policy.path, builtin: false, verification: bundleVerification(policy.verification) };
}
