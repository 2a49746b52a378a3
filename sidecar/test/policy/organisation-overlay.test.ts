// The organisation from the cluster (SluicePolicy) in the engine and the facts settings: with it
// required, nothing is allowed and the engine is not ready until one is set; setting it swaps
// data.organisation in the live policy (the rest of the bundle's data kept) and survives a bundle
// reload; the facts settings that mirror it (LLM hosts, API server names, AWS suffixes) follow.
import { describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Organisation } from '../../../api/src/index.ts';
import { readBundle } from '../../../lib/src/policy/bundle.ts';
import { PolicyEngine, compileBundle } from '../../../lib/src/policy/engine.ts';
import { LiveFactsConfig, factsFromOrganisation } from '../../src/policy/organisation-facts.ts';
import { DEFAULT_FACTS_CONFIG, deriveFacts } from '../../src/facts/derive-facts.ts';
import { agentInput } from '../../../policies/cases/cases.ts';
import { defaultBundle } from '../../../testkit/policy/opa-build.ts';

const ACME = Organisation.parse(JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', '..', 'policies', 'data', 'organisation', 'data.json'), 'utf8')));
const read = (host: string) => agentInput({ method: 'GET', host, path: '/pkg/left-pad' });

function withRead(hosts: string[]): Organisation {
  return { ...ACME, registries: { ...ACME.registries, read: [...ACME.registries.read, ...hosts] } };
}

describe('the organisation overlay', () => {
  test('required and not yet set: every request denied (policy.no_organisation), not ready', async () => {
    const engine = new PolicyEngine({ requireOrganisation: true });
    await engine.load(await readBundle(defaultBundle));
    expect(engine.ready).toBe(false);
    const { decision, fault } = engine.evaluate(read('registry.npmjs.org'));
    expect(decision).toMatchObject({ allow: false, code: 'policy.no_organisation' });
    expect(fault).toBe('not_loaded');
    engine.setOrganisation({ organisation: ACME, revision: 'r1' });
    expect(engine.ready).toBe(true);
    expect(engine.evaluate(read('registry.npmjs.org')).decision.allow).toBe(true);
  });

  test('a new organisation decides the next request, and a reloaded bundle keeps it', async () => {
    const engine = new PolicyEngine({ requireOrganisation: true });
    const bundle = await readBundle(defaultBundle);
    await engine.load(bundle);
    engine.setOrganisation({ organisation: ACME, revision: 'r1' });
    expect(engine.evaluate(read('pkgs.example.test')).decision.allow).toBe(false);
    engine.setOrganisation({ organisation: withRead(['pkgs.example.test']), revision: 'r2' });
    const allowed = engine.evaluate(read('pkgs.example.test'));
    expect(allowed.decision).toMatchObject({ allow: true, code: 'registry.read' });
    expect(allowed.revision).toBe(`${bundle.revision}+org.r2`);
    engine.install(await compileBundle(bundle));
    expect(engine.evaluate(read('pkgs.example.test')).decision.allow).toBe(true);
    // The rest of the bundle's data is still there (credential file names, passthrough lists, …).
    engine.setOrganisation({ organisation: ACME, revision: 'r3' });
    expect(engine.evaluate(read('pkgs.example.test')).decision.allow).toBe(false);
    expect(engine.evaluate(read('registry.npmjs.org')).decision.allow).toBe(true);
  });
});

describe('facts follow the organisation', () => {
  test('LLM provider hosts, API server names and AWS host suffixes of the organisation are classified', () => {
    const org: Organisation = {
      ...ACME,
      llm: { providers: [...ACME.llm.providers, { name: 'corp-anthropic', hosts: ['llm.corp.example', '*.wild.example'], models: ['*'], key_header: 'x-api-key' }, { name: 'corp-gw', hosts: ['gw.corp.example'], models: ['*'], key_header: 'authorization' }] },
      kubernetes: { ...ACME.kubernetes, api_servers: [...ACME.kubernetes.api_servers, 'k8s.corp.example'] },
      aws: { ...ACME.aws, host_suffixes: ['amazonaws.com', 'corp-aws.example'] },
    };
    const facts = factsFromOrganisation(org, DEFAULT_FACTS_CONFIG);
    expect(facts.llmHosts).toMatchObject({ 'llm.corp.example': 'anthropic', 'gw.corp.example': 'openai', 'api.openai.com': 'openai' });
    expect(facts.llmHosts['*.wild.example']).toBeUndefined();
    expect(facts.kubernetesHosts).toContain('k8s.corp.example');
    expect(facts.awsHostSuffixes).toEqual(expect.arrayContaining(['amazonaws.com', 'amazonaws.com.cn', 'corp-aws.example']));
    const live = new LiveFactsConfig(DEFAULT_FACTS_CONFIG);
    const view = live.view();
    const k8sCall = { method: 'GET', host: 'k8s.corp.example', path: '/api/v1/namespaces/x/secrets', query: {}, headers: {} };
    expect(deriveFacts(k8sCall, undefined, view).k8s).toBeUndefined();
    live.set(facts);
    expect(deriveFacts(k8sCall, undefined, view).k8s).toMatchObject({ namespace: 'x', resource: 'secrets' });
  });
});
