// loadSidecarConfig as an injected pod runs it: the webhook sets SLUICE_* env (taken here from the
// real rendering) and points SLUICE_CONFIG_FILE at sidecar.yaml of an optional ConfigMap volume. An
// absent ConfigMap (the file is missing) means defaults; a present but broken file stops start-up
// naming the file; settings the webhook sets through env win over the same settings in the file.
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { SchemaError } from '../../../api/src/index.ts';
import { parseWebhookConfig } from '../../../webhook/src/config.ts';
import { renderInjection } from '../../../webhook/src/render.ts';
import { loadSidecarConfig } from '../../src/config/sidecar-config.ts';
import { containerEnv } from '../../../testkit/config/settings-volume.ts';

const dir = mkdtempSync(join(tmpdir(), 'sluice-sidecar-config-'));
let counter = 0;

/** Writes a settings file the way a ConfigMap volume presents it (world-readable) and returns its path. */
function settingsFile(text: string): string {
  const path = join(dir, `sidecar-${++counter}.yaml`);
  writeFileSync(path, text);
  chmodSync(path, 0o644);
  return path;
}

/** The env the webhook renders for the sidecar, but for the settings file each test names itself. */
const injectedEnv = Object.fromEntries(
  Object.entries(containerEnv(renderInjection(parseWebhookConfig({ sidecar: { image: 'sluice:test' } })).sidecar)).filter(([name]) => name !== 'SLUICE_CONFIG_FILE'),
);

/** The SchemaError loadSidecarConfig throws (fails the test if it returns). */
function loadError(env: Record<string, string>): SchemaError {
  try {
    loadSidecarConfig(env);
  } catch (err) {
    if (err instanceof SchemaError) return err;
    throw err;
  }
  throw new Error('loadSidecarConfig accepted the configuration');
}

describe('an absent settings file means defaults', () => {
  const defaults = loadSidecarConfig(injectedEnv);

  test('no SLUICE_CONFIG_FILE: env only', () => {
    expect(defaults.pod).toEqual({ namespace: 'agents', name: 'coder-0', uid: 'uid-0', serviceAccount: 'coder' });
    expect(defaults.approvals.maxWaitMs).toBe(600_000);
    expect(defaults.credentials.aws.roles).toEqual([]);
  });

  test('the optional ConfigMap is absent: the mounted directory is empty (ENOENT)', () => {
    const empty = join(dir, 'empty-volume');
    mkdirSync(empty);
    expect(loadSidecarConfig({ ...injectedEnv, SLUICE_CONFIG_FILE: join(empty, 'sidecar.yaml') })).toEqual(defaults);
  });

  test('nothing mounted at all: the directory is missing too', () => {
    expect(loadSidecarConfig({ ...injectedEnv, SLUICE_CONFIG_FILE: join(dir, 'no-such-dir', 'sidecar.yaml') })).toEqual(defaults);
  });

  test('an empty or comment-only file is an empty mapping', () => {
    expect(loadSidecarConfig({ ...injectedEnv, SLUICE_CONFIG_FILE: settingsFile('') })).toEqual(defaults);
    expect(loadSidecarConfig({ ...injectedEnv, SLUICE_CONFIG_FILE: settingsFile('# set by the chart: sidecar.config\n') })).toEqual(defaults);
    expect(loadSidecarConfig({ ...injectedEnv, SLUICE_CONFIG_FILE: settingsFile('{}\n') })).toEqual(defaults);
  });
});

describe('file settings apply', () => {
  test('approvals, credentials, masking and upstream settings from the file', () => {
    const file = settingsFile(`
approvals:
  maxWaitMs: 120000
  notify: { url: https://hooks.slack.example.com/services/T0/B0/x, format: slack }
credentials:
  tokenFiles: { sts.amazonaws.com: aws }
  aws:
    region: eu-west-1
    endpoint: https://sts.eu-west-1.amazonaws.com
    roles:
      - { namespace: agents, serviceAccount: coder, roleArn: "arn:aws:iam::123456789012:role/agent-coder" }
  tokenExchange:
    internal-api:
      tokenEndpoint: https://idp.example.com/oauth2/token
      subjectTokenAudience: idp.example.com
      hosts: [api.example.com]
  static:
    legacy-ci: { file: /var/run/sluice/secrets/ci/token, scheme: token, hosts: [ci.example.com] }
masking:
  rulesFile: /etc/sluice/masking/rules.yaml
  passTypes: [application/zip, image/png]
upstream:
  extraRootsFiles: [/var/run/secrets/kubernetes.io/serviceaccount/ca.crt]
`);
    const c = loadSidecarConfig({ ...injectedEnv, SLUICE_CONFIG_FILE: file });
    expect(c.approvals.maxWaitMs).toBe(120_000);
    expect(c.approvals.notify.url).toBe('https://hooks.slack.example.com/services/T0/B0/x');
    // In a pod (KUBERNETES_SERVICE_HOST unset here) the file does not have to say inCluster.
    expect(c.approvals.inCluster).toBe(false);
    expect(c.credentials.aws).toMatchObject({ region: 'eu-west-1', endpoint: 'https://sts.eu-west-1.amazonaws.com' });
    expect(c.credentials.aws.roles).toEqual([{ namespace: 'agents', serviceAccount: 'coder', name: 'default', roleArn: 'arn:aws:iam::123456789012:role/agent-coder' }]);
    expect(c.credentials.tokenFiles).toEqual({ 'sts.amazonaws.com': 'aws' });
    expect(c.credentials.tokenExchange['internal-api']).toMatchObject({ tokenEndpoint: 'https://idp.example.com/oauth2/token', hosts: ['api.example.com'] });
    expect(c.credentials.static['legacy-ci']).toMatchObject({ scheme: 'token', hosts: ['ci.example.com'] });
    expect(c.masking).toMatchObject({ rulesFile: '/etc/sluice/masking/rules.yaml', passTypes: ['application/zip', 'image/png'] });
    expect(c.upstream.extraRootsFiles).toEqual(['/var/run/secrets/kubernetes.io/serviceaccount/ca.crt']);
    expect(Object.isFrozen(c.credentials.aws.roles[0])).toBe(true);
  });

  test('JSON is YAML too (what a generated ConfigMap may hold)', () => {
    const file = settingsFile(JSON.stringify({ approvals: { maxWaitMs: 30_000 }, credentials: { aws: { region: 'us-west-2' } } }));
    const c = loadSidecarConfig({ ...injectedEnv, SLUICE_CONFIG_FILE: file });
    expect([c.approvals.maxWaitMs, c.credentials.aws.region]).toEqual([30_000, 'us-west-2']);
  });

  test('inside a cluster, approvals use the pod identity unless the file turns it off', () => {
    const inPod = { ...injectedEnv, KUBERNETES_SERVICE_HOST: '10.0.0.1' };
    expect(loadSidecarConfig({ ...inPod, SLUICE_CONFIG_FILE: settingsFile('approvals: { maxWaitMs: 1000 }\n') }).approvals.inCluster).toBe(true);
    expect(loadSidecarConfig({ ...inPod, SLUICE_CONFIG_FILE: settingsFile('approvals: { inCluster: false }\n') }).approvals.inCluster).toBe(false);
  });
});

describe('env wins over the file', () => {
  test('pod, policy.path, trustDir, ports, proxyUID and the token directory come from the webhook’s env', () => {
    const file = settingsFile(`
pod: { namespace: forged, name: forged, uid: forged, serviceAccount: forged }
policy: { path: /tmp/attacker-policy, pollIntervalMs: 5000 }
trustDir: /tmp/attacker-trust
podInfoDir: /tmp/attacker-podinfo
proxyUID: 4242
ports: { transparent: 1, proxy: 2, dns: 3, admin: 4 }
credentials: { tokenDir: /tmp/attacker-tokens, providerTimeoutMs: 2000 }
`);
    const c = loadSidecarConfig({ ...injectedEnv, SLUICE_CONFIG_FILE: file });
    expect(c.pod).toEqual({ namespace: 'agents', name: 'coder-0', uid: 'uid-0', serviceAccount: 'coder' });
    expect(c.policy).toEqual({ path: '/etc/sluice/policy', pollIntervalMs: 5000, cluster: { enabled: false, apiTimeoutMs: 10_000, watchSeconds: 300, namespaceResyncMs: 30_000 } });
    expect(c.trustDir).toBe('/var/run/sluice/trust');
    expect(c.podInfoDir).toBe('/var/run/sluice/podinfo');
    expect(c.proxyUID).toBe(1337);
    expect(c.ports).toEqual({ transparent: 15001, proxy: 15080, dns: 15053, admin: 15090 });
    expect(c.credentials.tokenDir).toBe('/var/run/sluice/tokens');
    // The file's other settings in the same sections survive the overlay.
    expect(c.credentials.providerTimeoutMs).toBe(2000);
  });

  test('without the env the file’s own values are used (tests and local runs)', () => {
    const file = settingsFile('pod: { namespace: dev, name: local, serviceAccount: me }\npolicy: { path: /tmp/policy }\ntrustDir: /tmp/trust\n');
    const c = loadSidecarConfig({ SLUICE_CONFIG_FILE: file });
    expect([c.pod.namespace, c.policy.path, c.trustDir]).toEqual(['dev', '/tmp/policy', '/tmp/trust']);
  });
});

describe('a present but broken file stops start-up naming the file', () => {
  test.each([
    ['not YAML', 'approvals: { maxWaitMs: 1000\n', /SLUICE_CONFIG_FILE \(.+sidecar-\d+\.yaml\): .*(flow|collection|end)/i],
    ['a duplicate key', 'approvals: {}\napprovals: {}\n', /SLUICE_CONFIG_FILE \(.+\): .*(unique|duplicate)/i],
    ['a list instead of a mapping', '- approvals\n- credentials\n', /SLUICE_CONFIG_FILE \(.+\): expected a mapping of settings, got a list/],
    ['a scalar instead of a mapping', 'approvals\n', /SLUICE_CONFIG_FILE \(.+\): expected a mapping of settings, got string/],
  ])('%s', (_what, text, message) => {
    const file = settingsFile(text);
    const err = loadError({ ...injectedEnv, SLUICE_CONFIG_FILE: file });
    expect(err.issues).toHaveLength(1);
    expect(err.issues[0]).toContain(file);
    expect(err.issues[0]).toMatch(message);
  });

  test('a path that cannot be read as a file (a directory)', () => {
    const err = loadError({ ...injectedEnv, SLUICE_CONFIG_FILE: dir });
    expect(err.issues[0]).toBe(`SLUICE_CONFIG_FILE (${dir}): EISDIR: illegal operation on a directory, read`);
  });

  test('a bad value in the file names the field', () => {
    const err = loadError({ ...injectedEnv, SLUICE_CONFIG_FILE: settingsFile('approvals: { maxWaitMs: 0 }\ncredentials: { aws: { roles: [{ roleArn: nope }] } }\nmasking: { rulsFile: x }\n') });
    expect(err.issues.map((i) => i.split(':')[0])).toEqual(expect.arrayContaining(['approvals.maxWaitMs', 'credentials.aws.roles.0.roleArn', 'masking']));
    expect(err.message).toMatch(/rulsFile/);
  });
});

describe('settings from the cluster (SluicePolicy)', () => {
  const env = { SLUICE_POD_NAMESPACE: 'agents', SLUICE_POD_NAME: 'coder-0', SLUICE_SERVICE_ACCOUNT: 'coder', SLUICE_TRUST_DIR: '/t', SLUICE_POLICY_SOURCE: 'cluster', SLUICE_FAKE_IPV4_CIDR: '100.80.0.0/16', SLUICE_FAKE_IPV6_CIDR: 'none' };

  test('the webhook turns the source on; the policy\u2019s settings lie under the env; the fake-IP ranges come from env only', () => {
    const c = loadSidecarConfig(env, { approvals: { maxWaitMs: 1234 }, dns: { capacity: 1000 } });
    expect(c.policy.cluster.enabled).toBe(true);
    expect(c.approvals.maxWaitMs).toBe(1234);
    expect(c.dns).toMatchObject({ ipv4Cidr: '100.80.0.0/16', ipv6Cidr: null, capacity: 1000 });
    expect(c.pod).toMatchObject({ namespace: 'agents', name: 'coder-0' });
  });

  test('what only the webhook or the pod may say is refused, each field named', () => {
    const refused = ['pod', 'proxyUID', 'ports', 'trustDir', 'policy.path', 'policy.cluster', 'dns.ipv4Cidr', 'audit.spoolDir', 'credentials.tokenDir'];
    const settings = { pod: { name: 'x' }, proxyUID: 1, ports: { proxy: 1 }, trustDir: '/x', policy: { path: '/x', cluster: { enabled: false } }, dns: { ipv4Cidr: '10.0.0.0/8' }, audit: { spoolDir: '/x' }, credentials: { tokenDir: '/x' } };
    let message = '';
    try {
      loadSidecarConfig(env, settings);
    } catch (err) {
      message = (err as Error).message;
    }
    for (const field of refused) expect(message).toContain(`sidecar.${field}: not a SluicePolicy setting`);
  });

  test('an unknown source is refused', () => {
    expect(() => loadSidecarConfig({ ...env, SLUICE_POLICY_SOURCE: 'configmap' })).toThrow(/SLUICE_POLICY_SOURCE/);
  });
});
