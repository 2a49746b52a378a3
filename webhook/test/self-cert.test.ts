// The pure parts of certificate mode "self" (webhook/src/self-cert.ts): what is issued, when a
// stored serving certificate is kept or re-issued, when a stored CA is unusable, the caBundle JSON
// patch, and the atomic file swap the server's ServingCertReloader reads. The API-server side
// (conflict-safe create, patching real registrations, repair) is in e2e/webhook/self-cert.test.ts.
import 'reflect-metadata'; // @peculiar/x509 (the RSA CA below) needs the Reflect API, as in self-cert.ts
import { X509Certificate, generateKeyPairSync, webcrypto } from 'node:crypto';
import { mkdtempSync, readFileSync, readlinkSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import * as x509 from '@peculiar/x509';
import { loadServingCert } from '../src/serving-cert.ts';
import { caBundleOf, caBundlePatch, caProblem, caRenewalDue, issueCA, issueServing, servingProblem, writeServingFiles } from '../src/self-cert.ts';

const DAY = 86_400_000;
const HOSTS = ['sluice-webhook', 'sluice-webhook.sluice-system.svc', '127.0.0.1'];
const now = new Date();
const ca = await issueCA('test CA', 3650, now);
const leaf = await issueServing(ca, HOSTS, 365, now);
const other = await issueCA('other CA', 3650, now);
const otherLeaf = await issueServing(other, HOSTS, 365, now);

describe('issuing', () => {
  test('the serving certificate is for the Service names and IPs, signed by the CA, for serverAuth only', () => {
    const c = new X509Certificate(leaf.cert);
    expect(c.verify(new X509Certificate(ca.caCert).publicKey)).toBe(true);
    expect(c.checkHost('sluice-webhook.sluice-system.svc')).toBe('sluice-webhook.sluice-system.svc');
    expect(c.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(c.ca).toBe(false);
    expect(c.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(new X509Certificate(ca.caCert).ca).toBe(true);
  });

  test('never outlives its CA', async () => {
    const shortCa = await issueCA('short CA', 10, now);
    const l = new X509Certificate((await issueServing(shortCa, HOSTS, 365, now)).cert);
    expect(new Date(l.validTo).getTime()).toBeLessThanOrEqual(new Date(new X509Certificate(shortCa.caCert).validTo).getTime());
  });
});

describe('keep or re-issue the stored serving certificate', () => {
  const bundle = { ...ca, ...leaf };
  test('a valid one for the same names is kept', () => {
    expect(servingProblem(bundle, HOSTS, 30, now)).toBeUndefined();
  });
  test.each([
    ['expiring within renewBeforeDays', (b: typeof bundle) => b, HOSTS, new Date(now.getTime() + 340 * DAY), /expires/],
    ['for other names', (b: typeof bundle) => b, ['sluice-webhook.other.svc'], now, /names/],
    ['signed by another CA', (b: typeof bundle) => ({ ...b, caCert: other.caCert }), HOSTS, now, /not signed/],
    ['with a key of another pair', (b: typeof bundle) => ({ ...b, key: otherLeaf.key }), HOSTS, now, /does not belong/],
    ['missing', (b: typeof bundle) => ({ ...b, cert: undefined }), HOSTS, now, /no serving/],
  ])('one %s is re-issued', (_what, edit, hosts, at, reason) => {
    expect(servingProblem(edit(bundle), hosts, 30, at)).toMatch(reason);
  });
});

describe('CA rotation', () => {
  test('is due once two thirds of the CA lifetime have passed', () => {
    expect(caRenewalDue(ca.caCert, new Date(now.getTime() + 2400 * DAY))).toBe(false);
    expect(caRenewalDue(ca.caCert, new Date(now.getTime() + 2440 * DAY))).toBe(true);
  });

  test('caBundle holds the new CA and, until it expires, the previous one', () => {
    expect(Buffer.from(caBundleOf(ca, now), 'base64').toString()).toBe(ca.caCert);
    const both = Buffer.from(caBundleOf({ caCert: other.caCert, previousCaCert: ca.caCert }, now), 'base64').toString();
    expect(both).toBe(`${other.caCert.trim()}\n${ca.caCert.trim()}\n`);
    expect(Buffer.from(caBundleOf({ caCert: other.caCert, previousCaCert: ca.caCert }, new Date(now.getTime() + 3651 * DAY)), 'base64').toString()).toBe(other.caCert);
  });

  test('a serving certificate of the previous CA is kept until every registration trusts the new one', () => {
    const rotating = { caCert: other.caCert, caKey: other.caKey, previousCaCert: ca.caCert, cert: leaf.cert, key: leaf.key };
    expect(servingProblem(rotating, HOSTS, 30, now, false)).toBeUndefined();
    expect(servingProblem(rotating, HOSTS, 30, now, true)).toMatch(/previous CA/);
    expect(servingProblem({ ...rotating, previousCaCert: undefined }, HOSTS, 30, now, false)).toMatch(/not signed/);
  });
});

describe('an unusable stored CA', () => {
  test('a good one is used', () => {
    expect(caProblem(ca, now)).toBeUndefined();
  });
  test.each([
    ['missing', {}, /no CA/],
    ['a leaf in ca.crt', { caCert: leaf.cert, caKey: leaf.key }, /not a CA/],
    ['a key of another CA', { caCert: ca.caCert, caKey: other.caKey }, /does not belong/],
    ['garbage', { caCert: 'not a certificate', caKey: ca.caKey }, /does not load/],
  ])('%s is refused', (_what, stored, reason) => {
    expect(caProblem(stored, now)).toMatch(reason);
  });
  test('an expired one is refused', () => {
    expect(caProblem(ca, new Date(now.getTime() + 3651 * DAY))).toMatch(/expired/);
  });
  test('an RSA CA (as Helm’s genCA makes, copied in from mode helm) is refused, so it is replaced rather than failing every issue', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keys = { privateKey: await webcrypto.subtle.importKey('pkcs8', privateKey.export({ type: 'pkcs8', format: 'der' }), { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, true, ['sign']), publicKey: await webcrypto.subtle.importKey('spki', publicKey.export({ type: 'spki', format: 'der' }), { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, true, ['verify']) };
    const rsaCa = await x509.X509CertificateGenerator.createSelfSigned({
      name: 'CN=sluice-webhook-ca',
      notBefore: now,
      notAfter: new Date(now.getTime() + 3650 * DAY),
      keys,
      signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
    });
    const stored = { caCert: rsaCa.toString('pem'), caKey: privateKey.export({ type: 'pkcs1', format: 'pem' }) as string };
    await expect(issueServing(stored, ['sluice-webhook.sluice-system.svc'], 365, now)).rejects.toThrow();
    expect(caProblem(stored, now)).toMatch(/not ECDSA P-256/);
  });
});

describe('the caBundle patch', () => {
  test('only webhooks whose caBundle differs, each write guarded by a test of the name at that index', () => {
    const reg = { webhooks: [{ name: 'a', clientConfig: { caBundle: 'X' } }, { name: 'b', clientConfig: {} }, { name: 'c' }] };
    expect(caBundlePatch(reg, 'X')).toEqual([
      { op: 'test', path: '/webhooks/1/name', value: 'b' },
      { op: 'add', path: '/webhooks/1/clientConfig/caBundle', value: 'X' },
      { op: 'test', path: '/webhooks/2/name', value: 'c' },
      { op: 'add', path: '/webhooks/2/clientConfig', value: { caBundle: 'X' } },
    ]);
  });
  test('nothing when every webhook holds it', () => {
    expect(caBundlePatch({ webhooks: [{ name: 'a', clientConfig: { caBundle: 'X' } }] }, 'X')).toEqual([]);
  });
});

describe('the files the server reads', () => {
  test('are swapped through ..data, load as a matching pair, and an unchanged pair is not rewritten', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-self-cert-'));
    const files = { certFile: 'tls.crt', keyFile: 'tls.key' };
    expect(writeServingFiles(dir, files, leaf)).toBe(true);
    expect(readlinkSync(join(dir, 'tls.crt'))).toBe(join('..data', 'tls.crt'));
    expect((await loadServingCert({ dir, ...files })).cert.toString()).toBe(leaf.cert);
    expect(writeServingFiles(dir, files, leaf)).toBe(false);
    const next = await issueServing(ca, HOSTS, 365, now);
    expect(writeServingFiles(dir, files, next)).toBe(true);
    expect(readFileSync(join(dir, 'tls.key'), 'utf8')).toBe(next.key);
    expect((await loadServingCert({ dir, ...files })).cert.toString()).toBe(next.cert);
    // The old version directory is gone: one ..data link and one version directory.
    expect(readdirSync(dir).filter((e) => e.startsWith('..')).length).toBe(2);
  });
});
