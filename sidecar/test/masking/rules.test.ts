// Rules as data: selection by id (policy's decision.mask), rule files from platform teams (JSON and
// YAML) validated at load, validators, and the metrics the engine exports.
import { describe, expect, test } from '@jest/globals';
import { crc32 } from 'node:zlib';
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
import { hasCrc32HexSuffix, looksRandomHex } from '../../src/masking/validators.ts';

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
    // Catastrophic backtracking: nested quantifiers, overlapping alternatives.
    ['rules: [{id: tok, description: x, confidence: high, keywords: [tok_], pattern: "tok_(?:[a-z]+)+!", maxLength: 64}]', 'masking.slow_regex', /tok: pattern .*exponential/],
    ['rules: [{id: env, description: x, confidence: high, kind: assignment, names: "(x|x)*y", value: "(?<secret>\\\\S{8,})"}]', 'masking.slow_regex', /env: names/],
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

describe('vendor formats found by prefix, checksum or context', () => {
  const all = createMasker('*');
  const rulesIn = (s: string): string[] => all.maskText(s).findings.map((f) => f.rule);
  const h32 = 'a3cf4c4d2d6001aec3afa0ee0dd0bcd7';
  const h40 = '0724613d24efa1d2f37a419c65469025bb2bf541';
  const uuid = '9ea96563-1096-4365-8f6f-4a88497d01b7';

  test('validators: Atlassian CRC32 suffix, random hex bodies', () => {
    const head = `ATATT3xFfGF0${'Zq8Lm2Vx7pKt4Rw9sNd3Hy6Jc1Bf5Gu0AeXoQi_-'.repeat(4)}=`;
    const token = head + crc32(head).toString(16).toUpperCase().padStart(8, '0');
    expect(hasCrc32HexSuffix(token)).toBe(true);
    expect(hasCrc32HexSuffix(token.replace('Zq8', 'Zq9'))).toBe(false);
    expect(rulesIn(`auth('${token}')`)).toEqual(['atlassian-api-token']);
    expect(rulesIn(`auth('${token.replace('Zq8', 'Zq9')}')`)).toEqual([]);
    for (const v of [h32, h40, `dapi${h32}`, uuid]) expect(looksRandomHex(v)).toBe(true);
    for (const v of ['0'.repeat(32), '1234567890abcdef'.repeat(2), 'deadbeef'.repeat(4), 'fedcba9876543210'.repeat(2), h32.slice(1)]) expect(looksRandomHex(v)).toBe(false);
  });

  test('prefixed formats are found anywhere; fillers and wrong shapes are not', () => {
    expect(rulesIn(`sid SK${h32} created`)).toEqual(['twilio-api-key']);
    expect(rulesIn(`SK${'1234567890abcdef'.repeat(2)} SKxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx TASK${h32} SK${h32}0`)).toEqual([]);
    expect(rulesIn(`X-Shopify-Access-Token: shpat_${h32}`)).toEqual(['shopify-token']);
    expect(rulesIn(`token = dapi${h32}-2`)).toEqual(['databricks-token']);
    expect(rulesIn(`dapi${h32.slice(1)} DAPI${h32} rapidapi${h32}`)).toEqual([]);
    expect(rulesIn(`-F key=key-${h32}`)).toEqual(['mailgun-api-key']);
    expect(rulesIn(`pubkey-${h32} cache-key-${h32} key-3ax6xnjp29jd6fds4gc373sgvjxteol0`)).toEqual([]);
    const hrku = 'HRKU-AA61gQUMnmB39rlJERdL2OH1JXkqi1I5pMTXTt9E67iq_____w6yzgUfhxzV';
    expect(rulesIn(`password ${hrku}`)).toEqual(['heroku-api-key']);
    expect(rulesIn('HEROKU_API_KEY = getenv("HRKU-AAZq8Lm2Vx7pKt4Rw9sNd3Hy6Jc1Bf5Gu0AeXoQi_-k2")')).toEqual(['heroku-api-key']);
    expect(rulesIn(`HRKU-AA${'x'.repeat(58)} HRKU-AA61gQUMnmB39rlJERdL2OH1`)).toEqual([]);
  });

  test('Entra ID client secrets: the Q~ marker after three characters and a digit', () => {
    const secret = 'cFD9Q~HG9q-ZDrk_CjZcKQSEH5eI9GlMH_N2IDWP';
    expect(rulesIn(`"password": "${secret}"`)).toEqual(['azure-ad-client-secret']);
    expect(all.maskText(`AZURE_CLIENT_SECRET=${secret}\n`).output).toBe('AZURE_CLIENT_SECRET=[REDACTED:azure-ad-client-secret]\n');
    for (const near of ['cF9Q~HG9q-ZDrk_CjZcKQSEH5eI9GlMH_N2IDWP', 'cFDxQ~HG9q-ZDrk_CjZcKQSEH5eI9GlMH_N2IDWP', 'cFD9Q~HG9q-ZDrk_CjZcKQSEH5e', 'abc8Q~xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx']) {
      expect(rulesIn(`id ${near} in the log`)).toEqual([]);
    }
  });

  test('hex and UUID keys count only under their vendor names, and beat the generic rules there', () => {
    expect(rulesIn(`DD_API_KEY=${h32}\nDD_APP_KEY=${h40}\n`)).toEqual(['datadog-api-key', 'datadog-app-key']);
    expect(rulesIn(`curl -H "DD-API-KEY: ${h32}" -H "DD-APPLICATION-KEY: ${h40}"`)).toEqual(['datadog-api-key', 'datadog-app-key']);
    expect(rulesIn(`DD_GIT_COMMIT_SHA=${h40}\nDATADOG_HOST_ID=${h32}\nDD_API_KEY=${h40}\n`)).not.toContain('datadog-api-key');
    expect(rulesIn(`TWILIO_AUTH_TOKEN=${h32}`)).toEqual(['twilio-auth-token']);
    expect(rulesIn(`TWILIO_ACCOUNT_SID=AC${h32}`)).toEqual([]);
    expect(rulesIn(`HEROKU_API_KEY=${uuid}`)).toEqual(['heroku-api-key-legacy']);
    expect(rulesIn(`HEROKU_DYNO_ID=${uuid}\nrequest_id=${uuid}`)).toEqual([]);
    expect(rulesIn(`MAILGUN_API_KEY=${h32}-8ee6bc61-af1a11ee`)).toEqual(['mailgun-api-key']);
    expect(rulesIn(`curl --user 'api:${h32}-8ee6bc61-af1a11ee'`)).toEqual(['mailgun-api-key']);
    expect(rulesIn(`id ${h32}-8ee6bc61-af1a11ee`)).toEqual([]);
  });

  test('legacy Vault s. tokens only in a Vault context', () => {
    const s = 's.WLh2i8XhAzKfou4fVAr18WFJ';
    for (const text of [
      `VAULT_TOKEN=${s}`,
      `curl -H "X-Vault-Token: ${s}" https://vault:8200/v1/sys/health`,
      `{"auth":{"client_token":"${s}","accessor":"1W94XlGJd0JLuZo21uCx5UQc"}}`,
      `- name: VAULT_TOKEN\n  value: "${s}.nYaSB"`,
      `$ vault login -no-print ${s}`,
    ]) {
      expect({ text, rules: rulesIn(text) }).toEqual({ text, rules: ['vault-token'] });
    }
    expect(rulesIn(`mv ${s}.tmp done; accessor=${s.slice(2)}`)).toEqual([]);
  });

  test('PuTTY keys: private lines and MAC are redacted, header and public lines kept', () => {
    const ppk = [
      'PuTTY-User-Key-File-3: ssh-ed25519',
      'Encryption: none',
      'Comment: ed25519-key-20250101',
      'Public-Lines: 2',
      'AAAAC3NzaC1lZDI1NTE5AAAAIJXdwlYRkCJebgV/XSTDFsUMRCKVT7gT21k2OTM8',
      'qNb/',
      'Private-Lines: 1',
      'AAAAICXv+PhjJBwHEL0B1DmrJ8ubjioUnM27BiGU9lSTXK50',
      'Private-MAC: e98e870c692ca6917ca909455f41e10f15325858e98e870c692ca6917ca90945',
      '',
    ].join('\r\n');
    const out = all.maskText(ppk).output;
    expect(out).toBe(ppk.slice(0, ppk.indexOf('AAAAICXv')) + '[REDACTED:putty-private-key]\r\n');
    // Cut before the MAC (or with placeholders) it is not a key file.
    expect(rulesIn(ppk.slice(0, ppk.indexOf('Private-MAC')))).toEqual([]);
    expect(rulesIn(JSON.stringify({ ppk }))).toEqual(['putty-private-key']);
  });

  test('GitLab: newer prefixes, routable and instance-prefixed tokens; fillers are not', () => {
    for (const t of ['glrtr-8Z3rAx367z94drzLLIme', 'glffct-C_af25Kpuj30JySnBUuz', 'GR1348941tCy2s0nxFkHAy7Xq_cNi', 'glrt-t3_PVCgbLjwOikp3jtzXJ8Rtvnrz6W.01.ykg2tiblr']) {
      expect(all.maskText(`token = "${t}"`).output).toBe('token = "[REDACTED:gitlab-token]"');
    }
    expect(all.maskText('rejected SIE-glpat-t_J66wVMEuPM_PUfBsoZqDD8quE (401)').output).toBe('rejected SIE-[REDACTED:gitlab-token] (401)');
    expect(rulesIn('runner-01: "glrt-xxxxxxxxxxxxxxxxxxxx"\nGR1348941aaaaaaaaaaaaaaaaaaaa xglpat-t_J66wVMEuPM_PUfBsoZqDD8quE')).toEqual([]);
  });
});
