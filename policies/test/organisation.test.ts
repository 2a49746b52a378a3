// The organisation data the default library ships with (policies/data/organisation) must be a
// valid Organisation in its parsed form: what `opa check --strict` types the library against is
// what the file holds, with no default left for Rego to guess.
import { expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Organisation } from '../../api/src/index.ts';
import type { OrganisationInput } from '../../api/src/index.ts';
import { DEFAULT_FACTS_CONFIG } from '../../sidecar/src/facts/derive-facts.ts';

const file = join(import.meta.dirname, '..', 'data', 'organisation', 'data.json');
const data = JSON.parse(readFileSync(file, 'utf8')) as unknown;

test('policies/data/organisation/data.json is a complete Organisation', () => {
  const parsed = Organisation.safeParse(data);
  expect(parsed.error?.issues ?? []).toEqual([]);
  expect(parsed.data).toEqual(data);
});

test('the example organisation is safe: no foreign bucket reads, no anonymous buckets, IAM writes denied, standard ports', () => {
  const org = Organisation.parse(data);
  expect(org.aws.readable_buckets).toEqual([]);
  expect(org.aws.anonymous_buckets).toEqual([]);
  expect(org.aws.iam_writes).toBe('deny');
  expect(org.network.ports).toEqual({ https: [443], http: [80] });
  expect(org.llm.providers.every((p) => p.credential === undefined)).toBe(true);
});

test('patterns and identifiers are checked', () => {
  const bad = (patch: (o: OrganisationInput) => void) => {
    const o = structuredClone(data) as OrganisationInput;
    patch(o);
    return Organisation.safeParse(o).success;
  };
  expect(bad((o) => (o.aws.accounts = ['12345']))).toBe(false);
  expect(bad((o) => (o.git.owners = ['acme']))).toBe(false);
  expect(bad((o) => (o.registries.read = ['*evil.example']))).toBe(false);
  expect(bad((o) => (o.aws.buckets = ['a*b']))).toBe(false);
  expect(bad((o) => (o.network.ports = { https: [0] }))).toBe(false);
  expect(bad((o) => (o.namespaces = { agents: { aws: { buckets: ['team-*'] } } }))).toBe(true);
  expect(bad((o) => Object.assign(o, { namespaces: { agents: { aws: { iam_writes: 'hold' } } } }))).toBe(false); // overrides only add to lists
});

test('the sidecar’s default facts config knows the hosts of the default organisation', () => {
  const org = Organisation.parse(data);
  for (const p of org.llm.providers) for (const h of p.hosts) expect([h, DEFAULT_FACTS_CONFIG.llmHosts[h]]).toEqual([h, p.name]);
  for (const h of org.kubernetes.api_servers) expect(DEFAULT_FACTS_CONFIG.kubernetesHosts).toContain(h);
  for (const s of org.aws.host_suffixes) expect(DEFAULT_FACTS_CONFIG.awsHostSuffixes).toContain(s);
});
