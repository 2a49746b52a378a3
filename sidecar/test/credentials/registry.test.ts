// The credential provider registry (sidecar/src/credentials/providers.ts) is the one list a provider
// is added to. This test fails when anything that names providers drifts from it: a provider module
// the registry does not list, the config schema's provider sections, what createCredentials builds,
// the `provider` metric label values (exported series and the metric catalogue behind
// docs/metrics.md), docs/credentials.md's provider table, and a provider named by the policy
// library, its tests, its golden cases or the docs' examples. It also pins that the config schema
// (read by the init container, the CNI agent and the chart generator) and the credentials module
// load no AWS SigV4 or SDK code: aws-sts's implementation comes with the first AWS request.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, test } from '@jest/globals';
import { Registry } from 'prom-client';
import { Agent } from 'undici';
import { LABEL_VALUES } from '../../../charts/src/metric-catalogue.ts';
import { CredentialsConfig } from '../../src/credentials/credentials-config.ts';
import { createCredentials } from '../../src/credentials/index.ts';
import { PROVIDER_MODULES, PROVIDER_NAMES } from '../../src/credentials/providers.ts';
import type { ProviderName } from '../../src/credentials/providers.ts';

const REPO = join(import.meta.dirname, '..', '..', '..');
const SRC = join(REPO, 'sidecar', 'src', 'credentials');

function filesUnder(dir: string, keep: (f: string) => boolean): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && keep(e.name))
    .map((e) => join(e.parentPath, e.name));
}

describe('credential provider registry', () => {
  test('names and config keys are unique; the type of a name is the set of registered names', () => {
    expect(new Set(PROVIDER_NAMES).size).toBe(PROVIDER_MODULES.length);
    expect(new Set(PROVIDER_MODULES.map((m) => m.configKey)).size).toBe(PROVIDER_MODULES.length);
    for (const n of PROVIDER_NAMES) expect(n).toMatch(/^[a-z0-9][a-z0-9-]{0,62}$/);
    // @ts-expect-error a name that is not registered is not a ProviderName
    const unknown: ProviderName = 'no-such-provider';
    expect(PROVIDER_NAMES).not.toContain(unknown);
  });

  test('every provider module in sidecar/src/credentials is in the registry', async () => {
    const declaring = filesUnder(SRC, (f) => f.endsWith('.ts')).filter((f) => /=\s*defineProvider\(/.test(readFileSync(f, 'utf8')));
    expect(declaring.length).toBeGreaterThanOrEqual(PROVIDER_MODULES.length);
    const listed = new Set<unknown>(PROVIDER_MODULES);
    const missing: string[] = [];
    for (const f of declaring) {
      const mod = (await import(pathToFileURL(f).href)) as Record<string, unknown>;
      for (const [name, value] of Object.entries(mod)) {
        const looksLikeProvider = typeof value === 'object' && value !== null && 'configKey' in value && 'create' in value;
        if (looksLikeProvider && !listed.has(value)) missing.push(`${relative(REPO, f)}: ${name}`);
      }
    }
    expect(missing).toEqual([]);
  });

  test('the credentials config has one section per provider, in registry order, each defaulting', () => {
    const keys = Object.keys(CredentialsConfig.shape);
    expect(keys.slice(-PROVIDER_MODULES.length)).toEqual(PROVIDER_MODULES.map((m) => m.configKey));
    const parsed = CredentialsConfig.parse({}) as Record<string, unknown>;
    for (const m of PROVIDER_MODULES) expect(parsed[m.configKey]).toEqual(m.config.parse(undefined));
    // A provider's section is validated by its module's schema, with the field named.
    expect(CredentialsConfig.safeParse({ static: { x: { file: '/f', hosts: [] } } }).error?.issues[0]?.path).toEqual(['static', 'x', 'hosts']);
  });

  test('createCredentials builds exactly the registered providers, with their jit flag', async () => {
    const upstream = new Agent();
    const credentials = createCredentials(CredentialsConfig.parse({}), { registry: new Registry(), upstream, pod: { namespace: 'ns', name: 'p', serviceAccount: 'sa' } });
    try {
      expect([...credentials.providers.keys()]).toEqual([...PROVIDER_NAMES]);
      for (const m of PROVIDER_MODULES) expect(credentials.providers.get(m.name)?.jit).toBe(m.jit);
    } finally {
      await credentials.close();
      await upstream.close();
    }
  });

  test('metrics: every provider has its series from start-up, and the catalogue (docs/metrics.md) lists exactly the registry', async () => {
    const registry = new Registry();
    const upstream = new Agent();
    const credentials = createCredentials(CredentialsConfig.parse({}), { registry, upstream, pod: { namespace: 'ns', name: 'p', serviceAccount: 'sa' } });
    try {
      const text = await registry.metrics();
      const labelled = (metric: string) => [...new Set([...text.matchAll(new RegExp(`^${metric}\\{[^}]*provider="([^"]+)"`, 'gm'))].map((m) => m[1]))];
      for (const metric of ['sluice_credentials_issued_total', 'sluice_credentials_injected_total', 'sluice_credentials_cache_hits_total', 'sluice_credentials_cache_misses_total', 'sluice_credentials_echoes_redacted_total', 'sluice_credentials_issue_seconds_count']) {
        expect([metric, labelled(metric)]).toEqual([metric, [...PROVIDER_NAMES]]);
      }
    } finally {
      await credentials.close();
      await upstream.close();
    }
    const documented = [...(LABEL_VALUES.sluice_credentials_issued_total?.provider ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1]);
    expect(documented).toEqual([...PROVIDER_NAMES]);
  });

  test("docs/credentials.md's provider table has one row per registered provider, in registry order", () => {
    const doc = readFileSync(join(REPO, 'docs', 'credentials.md'), 'utf8');
    const table = doc.slice(doc.indexOf('| provider | params in `decision.credential` |'));
    const rows = table.split('\n').slice(2);
    const names = rows.slice(0, rows.findIndex((l) => !l.startsWith('|'))).map((l) => /^\| `([^`]+)` \|/.exec(l)?.[1] ?? `unparsed row: ${l}`);
    expect(names).toEqual([...PROVIDER_NAMES]);
  });

  test('the policy library, its tests and golden cases, and the docs name only registered providers', () => {
    const sources = [
      ...filesUnder(join(REPO, 'policies', 'rego'), (f) => f.endsWith('.rego')),
      ...filesUnder(join(REPO, 'policies', 'cases'), (f) => f.endsWith('.yaml')),
      ...filesUnder(join(REPO, 'policies', 'data'), (f) => /\.(json|ya?ml)$/.test(f)),
      ...filesUnder(join(REPO, 'docs'), (f) => f.endsWith('.md')),
      ...filesUnder(join(REPO, 'api', 'src'), (f) => f.endsWith('.ts')),
    ];
    const named: { where: string; name: string }[] = [];
    for (const f of sources) {
      readFileSync(f, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          const where = `${relative(REPO, f)}:${i + 1}`;
          // {"provider": "x"} / { provider: x } on a line about a credential; credential.provider == "x"; golden `credential: x`.
          if (/credential/.test(line)) for (const m of line.matchAll(/\bprovider"?\s*:\s*"?([a-z0-9][a-z0-9.-]*)/g)) named.push({ where, name: m[1]! });
          for (const m of line.matchAll(/credential\.provider\s*==\s*"([^"]+)"/g)) named.push({ where, name: m[1]! });
          if (f.endsWith('.yaml')) for (const m of line.matchAll(/\bcredential:\s*([a-z0-9][a-z0-9.-]*)\s*[},]/g)) named.push({ where, name: m[1]! });
        });
    }
    // The scan finds what it must (so a broken pattern cannot pass silently): Rego, golden cases, docs.
    for (const n of ['aws-sts', 'kubernetes', 'static-secret']) expect(named.some((x) => x.name === n)).toBe(true);
    expect(named.some((x) => x.where.startsWith('policies/cases/'))).toBe(true);
    const known = new Set<string>(PROVIDER_NAMES);
    expect(named.filter((x) => !known.has(x.name))).toEqual([]);
  });

  test("loading the config schema or the credentials module loads no AWS SigV4 or SDK code (it comes with aws-sts's first request)", () => {
    const loaded = (module: string, pattern: RegExp) => {
      const script = [
        "import { registerHooks } from 'node:module';",
        'const seen = [];',
        'registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); seen.push(r.url); return r; } });',
        `await import(${JSON.stringify(pathToFileURL(join(REPO, module)).href)});`,
        'console.log(JSON.stringify(seen));',
      ].join('\n');
      const seen = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO, encoding: 'utf8' })) as string[];
      return [...new Set(seen.filter((u) => pattern.test(u)))];
    };
    const aws = /@smithy|@aws-sdk|credentials\/aws\/(resign|aws-sts-provider|assume-role)\.ts/;
    expect(loaded('sidecar/src/credentials/index.ts', aws)).toEqual([]);
    // The config schema (init container, CNI agent, chart generator) loads provider schemas only: no HTTP client either.
    expect(loaded('sidecar/src/config/sidecar-config.ts', new RegExp(`${aws.source}|/node_modules/undici/`))).toEqual([]);
  });
});
