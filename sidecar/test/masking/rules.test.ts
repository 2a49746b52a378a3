// Rules as data: selection by id (policy's decision.mask), rule files from platform teams (JSON and
// YAML) validated at load, validators, and the metrics the engine exports.
import { describe, expect, test } from '@jest/globals';
import { Registry } from 'prom-client';
import {
  BUILTIN_RULES,
  MaskerCache,
  MaskingRuleError,
  base62Crc32,
  createMasker,
  isWordlike,
  looksRandom,
  mergeRules,
  parseRuleFile,
  registerMaskingMetrics,
} from '../../src/masking/index.ts';

const r30 = 'Xy7Qw2Er4Ty6Ui8Op0As1Df3Gh5Jk9';
const ghp = `ghp_${r30}${base62Crc32(r30)}`;
const text = `GITHUB_TOKEN=${ghp}\nurl: postgres://app:Pa55w0rd-x@db:5432/app\n`;

describe('rule selection', () => {
  test('decision.mask picks rule ids; "*" means every rule; unknown ids are reported', () => {
    expect(createMasker(['github-pat-classic']).maskText(text).findings.map((f) => f.rule)).toEqual(['github-pat-classic']);
    expect(createMasker(['connection-string-password']).maskText(text).findings.map((f) => f.rule)).toEqual(['connection-string-password']);
    expect(createMasker('*').maskText(text).findings.map((f) => f.rule)).toEqual(['github-pat-classic', 'connection-string-password']);
    expect(createMasker([]).maskText(text).findings).toEqual([]);
    expect(createMasker(['github-pat-clasic']).unknownRuleIds).toEqual(['github-pat-clasic']);
  });

  test('the cache returns one compiled masker per selection, in any order', () => {
    const cache = new MaskerCache(BUILTIN_RULES, 2);
    const a = cache.get(['jwt', 'private-key']);
    expect(cache.get(['private-key', 'jwt'])).toBe(a);
    cache.get(['jwt']);
    cache.get(['private-key']);
    expect(cache.get(['jwt', 'private-key'])).not.toBe(a);
  });
});

describe('rule files', () => {
  const yaml = `rules:
  - id: acme-deploy-key
    description: ACME internal deploy keys
    confidence: high
    keywords: ["acme_dk_"]
    pattern: "acme_dk_[a-z0-9]{24}"
    maxLength: 32
  - id: acme-db-password
    kind: assignment
    description: ACME legacy config
    confidence: medium
    names: "^acme_db_secret$"
    value: "(?<secret>\\\\S{8,})"
    keepLength: true
`;

  test('a platform team adds rules in YAML without code', () => {
    const rules = mergeRules(BUILTIN_RULES, parseRuleFile(yaml, 'acme.yaml'));
    const m = createMasker(['acme-deploy-key', 'acme-db-password'], rules);
    const out = m.maskText('key acme_dk_0123456789abcdefghijklmn\nacme_db_secret = hunter22xyz\n');
    expect(out.output).toBe('key [REDACTED:acme-deploy-key]\nacme_db_secret = ***********\n');
  });

  test('JSON works too, and an added rule replaces a built-in of the same id', () => {
    const json = JSON.stringify({ rules: [{ id: 'jwt', description: 'off', confidence: 'low', keywords: ['never-seen-keyword'], pattern: 'x', maxLength: 1 }] });
    const rules = mergeRules(BUILTIN_RULES, parseRuleFile(json, 'r.json'));
    expect(rules.length).toBe(BUILTIN_RULES.length);
    expect(rules.find((r) => r.id === 'jwt')?.description).toBe('off');
  });

  test.each([
    ['rules: [{id: BAD ID, description: x, confidence: high, keywords: [a], pattern: a, maxLength: 1}]', 'masking.bad_rule', /rules\.0|0\.id/],
    ['rules: [{id: ok-id, description: x, confidence: high, keywords: [a], pattern: "(", maxLength: 1}]', 'masking.bad_regex', /ok-id: pattern/],
    ['rules: [{id: ok-id, description: x, confidence: high, keywords: [a], pattern: a, maxLength: 1, validator: nope}]', 'masking.bad_rule', /validator/],
    ['rules: [{id: a1, description: x, confidence: high, keywords: [a], pattern: a, maxLength: 1}, {id: a1, description: x, confidence: high, keywords: [a], pattern: a, maxLength: 1}]', 'masking.duplicate_rule', /a1/],
    ['just: text', 'masking.bad_rule_file', /rules/],
  ])('a bad rule file fails at load naming the problem: %s', (src, code, message) => {
    let err: unknown;
    try {
      parseRuleFile(src, 'bad.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MaskingRuleError);
    expect((err as MaskingRuleError).code).toBe(code);
    expect((err as MaskingRuleError).message).toMatch(message);
  });
});

describe('validators', () => {
  test('GitHub/npm checksums: a flipped character fails', () => {
    expect(createMasker(['github-pat-classic']).maskText(ghp).findings).toHaveLength(1);
    const flipped = ghp.slice(0, 10) + (ghp[10] === 'a' ? 'b' : 'a') + ghp.slice(11);
    expect(createMasker(['github-pat-classic']).maskText(flipped).findings).toHaveLength(0);
  });

  test('randomness gate separates identifiers from generated values', () => {
    for (const word of ['DynamoDBHttpAuthSchemeProvider', 'my-app-tls-secret-2', 'INACCESSIBLE_ENCRYPTION_CREDENTIALS', 'Wachtwoord', 'getStringIfConstant']) expect(isWordlike(word)).toBe(true);
    for (const rnd of ['q7Zt2Xw9LmB4nR8sK1vD6yH3', '3f9a1b2c4d5e6f708192a3b4c5d6e7f8', 'Zq8+Lm2/Vx7pKt4Rw9sNd3Hy6Jc1Bf5Gu0AeXoQi']) expect(looksRandom(rnd)).toBe(true);
    expect(looksRandom('aaaaaaaaaaaaaaaaaaaaaaaa')).toBe(false);
  });
});

describe('metrics', () => {
  test('redactions are counted by rule and direction, pack verdicts by verdict and reason', async () => {
    const registry = new Registry();
    const metrics = registerMaskingMetrics(registry);
    metrics.recordRedaction({ rule: 'jwt', direction: 'response', offset: 10, length: 100 });
    metrics.recordRedaction({ rule: 'jwt', direction: 'response', offset: 500, length: 100 });
    metrics.recordRedaction({ rule: 'private-key', direction: 'request', offset: 0, length: 1 });
    metrics.recordScannedBytes('response', 4096);
    metrics.recordPackVerdict({ verdict: 'unscannable', reason: 'pack.too_large', detail: 'x' });
    metrics.recordPackVerdict({ verdict: 'secrets', objects: 3, findings: [{ rule: 'npm-token', object: 'abc', type: 'blob', offset: 0, length: 40 }] });
    const text = await registry.metrics();
    expect(text).toContain('sluice_masking_redactions_total{rule="jwt",direction="response"} 2');
    expect(text).toContain('sluice_masking_redactions_total{rule="private-key",direction="request"} 1');
    expect(text).toContain('sluice_masking_redactions_total{rule="npm-token",direction="request"} 1');
    expect(text).toContain('sluice_masking_scanned_bytes_total{direction="response"} 4096');
    expect(text).toContain('sluice_masking_pack_verdicts_total{verdict="unscannable",reason="pack.too_large"} 1');
  });
});
