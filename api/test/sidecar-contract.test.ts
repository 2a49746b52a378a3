// The webhook→sidecar contract is written once (api/src/sidecar-contract.ts): no production code
// spells one of its variable names, directories or file names itself, so a rename on one side
// cannot leave the other behind; and what the webhook renders is what the sidecar, its init
// container and the CNI node agent read back.
import { describe, expect, test } from '@jest/globals';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { V1Container } from '@kubernetes/client-node';
import {
  DEFAULT_PROXY_UID,
  DEFAULT_SIDECAR_PORTS,
  PODINFO_DIR,
  POLICY_DIR,
  SETTINGS_DIR,
  SETTINGS_FILE,
  SETTINGS_KEY,
  SIDECAR_ENV,
  SPOOL_DIR,
  TOKEN_DIR,
  TRUST_BUNDLE_FILE,
  TRUST_DIR,
} from '../src/index.ts';
import { renderInjection } from '../../webhook/src/render.ts';
import { testConfig } from '../../testkit/webhook/fixtures.ts';
import { loadSidecarConfig } from '../../sidecar/src/config/sidecar-config.ts';
import { loadInterceptionSettings } from '../../lib/src/interception/settings.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const PRODUCTION = ['api/src', 'lib/src', 'sidecar/src', 'webhook/src', 'cni/src', 'cli/src', 'cli/bin', 'charts/src'];
const CONTRACT = 'api/src/sidecar-contract.ts';

function files(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)));
}

/** String literals (and template heads) outside comments, by file:line. */
function literals(file: string): { where: string; text: string }[] {
  const out: { where: string; text: string }[] = [];
  readFileSync(join(ROOT, file), 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (/^\s*(\/\/|\/\*|\*)/.test(line)) return;
      for (const m of line.matchAll(/(['"`])((?:(?!\1)[^\\]|\\.)*?)(\1|\$\{)/g)) out.push({ where: `${file}:${i + 1}`, text: m[2]! });
    });
  return out;
}

describe('the sidecar contract is written once', () => {
  const names = new Set<string>(Object.values(SIDECAR_ENV));
  const paths = [TRUST_DIR, TOKEN_DIR, PODINFO_DIR, SPOOL_DIR, POLICY_DIR, SETTINGS_DIR, SETTINGS_FILE];
  const fileNames = new Set([SETTINGS_KEY, TRUST_BUNDLE_FILE]);
  const all = PRODUCTION.flatMap(files).filter((f) => f !== CONTRACT);

  test('the scan sees the components', () => {
    expect(all.length).toBeGreaterThan(200);
    for (const c of ['webhook/src/render.ts', 'sidecar/src/config/sidecar-config.ts', 'cni/src/agent.ts', 'lib/src/interception/settings.ts']) expect(all).toContain(c);
  });

  test('no production code outside api/src/sidecar-contract.ts spells a SLUICE_* name, directory or file name of the contract', () => {
    const spelled = all.flatMap((f) =>
      literals(f)
        .filter(({ text }) => names.has(text) || fileNames.has(text) || paths.some((p) => text === p || text.startsWith(`${p}/`)))
        .map(({ where, text }) => `${where}: ${text}`),
    );
    expect(spelled).toEqual([]);
  });
});

describe('what the webhook renders, the sidecar side reads', () => {
  /** A container's env as the kubelet would give it (fieldRefs resolved to stand-ins). */
  function envOf(c: V1Container): Record<string, string> {
    const env: Record<string, string> = {};
    for (const e of c.env ?? []) env[e.name] = e.value ?? `from-${e.valueFrom?.fieldRef?.fieldPath ?? 'unknown'}`;
    return env;
  }

  test('every SLUICE_* variable the webhook sets is in the contract', () => {
    const config = testConfig({ sidecar: { image: 'sluice:test', policyConfigMap: 'p', fakeIp: { ipv4Cidr: '198.19.0.0/16', ipv6Cidr: null } } });
    const r = renderInjection(config);
    const set = [...r.sidecar.env!, ...r.initContainer.env!].map((e) => e.name).filter((n) => n.startsWith('SLUICE_'));
    expect(set.length).toBeGreaterThan(10);
    const contract: string[] = Object.values(SIDECAR_ENV);
    expect(set.filter((n) => !contract.includes(n))).toEqual([]);
  });

  test('non-default ports, UID and fake-IP ranges reach the sidecar and the interception settings unchanged', () => {
    const ports = { transparent: 16001, proxy: 16080, dns: 16053, admin: 16090 };
    expect(ports).not.toEqual(DEFAULT_SIDECAR_PORTS);
    const config = testConfig({ sidecar: { image: 'sluice:test', proxyUID: 4242, ports, fakeIp: { ipv4Cidr: '198.19.0.0/16', ipv6Cidr: null } } });
    const r = renderInjection(config);
    const sidecarEnv = { ...envOf(r.sidecar), [SIDECAR_ENV.configFile]: '' };
    const sidecar = loadSidecarConfig(sidecarEnv);
    expect(sidecar.proxyUID).toBe(4242);
    expect(sidecar.ports).toEqual(ports);
    expect(sidecar.dns.ipv4Cidr).toBe('198.19.0.0/16');
    expect(sidecar.dns.ipv6Cidr).toBeNull();
    expect(sidecar.trustDir).toBe(TRUST_DIR);
    expect(sidecar.podInfoDir).toBe(PODINFO_DIR);
    expect(sidecar.audit.spoolDir).toBe(SPOOL_DIR);
    expect(sidecar.credentials.tokenDir).toBe(TOKEN_DIR);
    expect(sidecar.policy.path).toBe(POLICY_DIR);
    for (const c of [r.sidecar, r.initContainer]) {
      const s = loadInterceptionSettings({ ...envOf(c), [SIDECAR_ENV.configFile]: '' });
      expect(s).toEqual({ proxyUID: 4242, ports, dns: expect.objectContaining({ ipv4Cidr: '198.19.0.0/16', ipv6Cidr: null }) });
    }
  });

  test('with the chart defaults both sides agree on the defaults', () => {
    const r = renderInjection(testConfig({ sidecar: { image: 'sluice:test' } }));
    const s = loadInterceptionSettings({ ...envOf(r.initContainer), [SIDECAR_ENV.configFile]: '' });
    expect(s.ports).toEqual(DEFAULT_SIDECAR_PORTS);
    expect(s.proxyUID).toBe(DEFAULT_PROXY_UID);
    expect(loadInterceptionSettings({}).ports).toEqual(DEFAULT_SIDECAR_PORTS);
    expect(loadInterceptionSettings({}).proxyUID).toBe(DEFAULT_PROXY_UID);
  });
});
