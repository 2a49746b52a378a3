// Shared test inputs: the config the golden files were rendered with, a user, and pod loading.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { parseWebhookConfig } from '../../webhook/src/config.ts';
import type { WebhookConfig, WebhookConfigInput } from '../../webhook/src/config.ts';
import type { UserInfo } from '../../webhook/src/creator.ts';

export const TESTDATA = join(import.meta.dirname, '..', '..', 'webhook', 'test', 'testdata');

export const baseConfigInput: WebhookConfigInput = {
  injectorVersion: 'test',
  sidecar: {
    image: 'ghcr.io/sluice-dev/sluice:test',
    tokenAudiences: [{ audience: 'sts.amazonaws.com', path: 'aws' }, { audience: 'https://tokens.example.com/exchange' }],
  },
  guard: { staticCredentialSecrets: ['aws-static-keys', 'legacy-*'] },
};

export function testConfig(overrides: Partial<WebhookConfigInput> = {}): WebhookConfig {
  return parseWebhookConfig({ ...baseConfigInput, ...overrides });
}

export const alice: UserInfo = { username: 'alice@example.com', uid: 'oidc-7f3a', groups: ['developers', 'system:authenticated'] };

export function loadPod(file: string): V1Pod {
  return parseYaml(readFileSync(join(TESTDATA, file), 'utf8')) as V1Pod;
}
