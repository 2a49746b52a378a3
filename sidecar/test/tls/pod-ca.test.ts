// The pod CA and its leaves as a TLS client and OpenSSL see them: the CA is a CA (basic
// constraints, key usage, key identifier), leaves chain to it in a real handshake for DNS names
// and IP addresses, a CA mounted from a secret (made by openssl) issues leaves that verify, a key
// that does not fit the certificate is refused, and none of it loads an X.509 library.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createNetServer } from 'node:net';
import { TLSSocket, connect } from 'node:tls';
import { x509 } from '../../src/tls/x509.ts';
import { generatePodCa, loadPodCa } from '../../src/tls/pod-ca.ts';
import type { PodCa } from '../../src/tls/pod-ca.ts';
import { LeafCertificateCache, mintLeafCertificate } from '../../src/tls/leaf-certificates.ts';

const dir = mkdtempSync(join(tmpdir(), 'sluice-pod-ca-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A TLS handshake to a server presenting `host`'s leaf (from the sidecar's cache), verified by a
 * client that trusts only the pod CA and checks the name (SNI for a DNS name, the IP otherwise).
 */
async function handshake(ca: PodCa, host: string): Promise<{ authorized: boolean; subjectCn: string | undefined }> {
  const leaves = new LeafCertificateCache(ca, 8);
  const secureContext = await leaves.contextFor(host);
  // As the gateway serves an intercepted connection: a server-side TLSSocket on the cached context.
  const server = createNetServer((raw) => {
    const tls = new TLSSocket(raw, { isServer: true, secureContext });
    tls.on('error', () => undefined).once('secure', () => tls.end());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  try {
    const ip = /^[\d.]+$/.test(host);
    // The connection goes to 127.0.0.1; the name checked is `host` (node:tls checkServerIdentity).
    const socket = connect({ host: '127.0.0.1', port, ca: ca.certPem, ...(ip ? {} : { servername: host }) });
    await once(socket, 'secureConnect');
    const out = { authorized: socket.authorized, subjectCn: /CN=([^\n]+)/.exec(socket.getPeerX509Certificate()?.subject ?? '')?.[1] };
    socket.destroy();
    return out;
  } finally {
    server.close();
  }
}

describe('generated pod CA', () => {
  test('is a self-signed P-256 CA with critical basic constraints (pathlen 0), keyCertSign|cRLSign and a key identifier', async () => {
    const ca = await generatePodCa('sluice agents/agent-0');
    const cert = new X509Certificate(ca.certPem);
    expect(cert.ca).toBe(true);
    expect(cert.checkIssued(cert)).toBe(true);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.subject).toBe('CN=sluice agents/agent-0\nO=sluice');
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    // An independent parser reads the same extensions.
    const parsed = new x509.X509Certificate(ca.certPem);
    const bc = parsed.getExtension(x509.BasicConstraintsExtension)!;
    expect([bc.ca, bc.pathLength, bc.critical]).toEqual([true, 0, true]);
    const ku = parsed.getExtension(x509.KeyUsagesExtension)!;
    expect([ku.usages, ku.critical]).toEqual([x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true]);
    const ski = parsed.getExtension(x509.SubjectKeyIdentifierExtension)!;
    expect(ski.keyId).toBe(ca.keyId.toString('hex'));
    expect(await parsed.verify({ signatureOnly: true })).toBe(true);
    // OpenSSL agrees it is a CA it can verify a chain to.
    writeFileSync(join(dir, 'gen-ca.pem'), ca.certPem);
    expect(execFileSync('openssl', ['verify', '-CAfile', join(dir, 'gen-ca.pem'), join(dir, 'gen-ca.pem')], { encoding: 'utf8' })).toContain(': OK');
  });

  test('a subject with DN metacharacters is written as text, not parsed', async () => {
    const ca = await generatePodCa('sluice a,b=c/d+e');
    expect(new X509Certificate(ca.certPem).subject).toBe('CN=sluice a_b_c/d_e\nO=sluice');
  });
});

describe('leaves', () => {
  let ca: PodCa;
  beforeAll(async () => {
    ca = await generatePodCa('sluice leaves/agent-0');
    writeFileSync(join(dir, 'ca.pem'), ca.certPem);
  });

  test.each(['api.example.com', 'xn--bcher-kva.example', '127.0.0.1', '::1', '2001:db8::8:800:200c:417a', '::ffff:192.0.2.1'])('%s: OpenSSL verifies it as a TLS server certificate for that name', async (host) => {
    const leaf = await mintLeafCertificate(ca, host);
    const file = join(dir, `leaf-${host.replace(/[^a-z0-9]/gi, '_')}.pem`);
    writeFileSync(file, leaf.toString('pem'));
    const ip = host.includes(':') || /^[\d.]+$/.test(host);
    const verify = spawnSync('openssl', ['verify', '-CAfile', join(dir, 'ca.pem'), '-purpose', 'sslserver', ...(ip ? ['-verify_ip', host] : ['-verify_hostname', host]), file], { encoding: 'utf8' });
    expect(verify.stdout + verify.stderr).toContain(': OK');
    const cert = new X509Certificate(leaf.pem);
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(new X509Certificate(ca.certPem))).toBe(true);
    expect(ip ? cert.checkIP(host) : cert.checkHost(host)).toBeDefined();
    const parsed = new x509.X509Certificate(leaf.pem);
    expect(parsed.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId).toBe(ca.keyId.toString('hex'));
    expect(parsed.getExtension(x509.ExtendedKeyUsageExtension)!.usages).toEqual([x509.ExtendedKeyUsage.serverAuth]);
    expect(parsed.getExtension(x509.KeyUsagesExtension)!.usages).toBe(x509.KeyUsageFlags.digitalSignature);
    expect(parsed.getExtension(x509.BasicConstraintsExtension)!.ca).toBe(false);
  });

  test('a leaf for another name does not verify for this one', async () => {
    const leaf = await mintLeafCertificate(ca, 'other.example.com');
    const file = join(dir, 'other.pem');
    writeFileSync(file, leaf.pem);
    const verify = spawnSync('openssl', ['verify', '-CAfile', join(dir, 'ca.pem'), '-verify_hostname', 'api.example.com', file], { encoding: 'utf8' });
    expect(verify.status).not.toBe(0);
  });

  test('a leaf never outlives its CA', async () => {
    const now = new Date();
    const shortCa = await generatePodCa('short', now, 2);
    const leaf = await mintLeafCertificate(shortCa, 'api.example.com', now);
    expect(new Date(new X509Certificate(leaf.pem).validTo).getTime()).toBe(Math.floor(shortCa.cert.notAfter.getTime() / 1000) * 1000);
  });

  test('a TLS client that trusts only the pod CA completes a handshake for a DNS name and for 127.0.0.1', async () => {
    await expect(handshake(ca, 'api.example.com')).resolves.toMatchObject({ authorized: true, subjectCn: 'api.example.com' });
    await expect(handshake(ca, '127.0.0.1')).resolves.toMatchObject({ authorized: true, subjectCn: '127.0.0.1' });
  });
});

describe('CA mounted from a secret', () => {
  test('an openssl-made P-256 CA issues leaves that chain to it, with its own key identifier as authority', async () => {
    const secret = join(dir, 'secret');
    execFileSync('mkdir', ['-p', secret]);
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(secret, 'tls.key'), '-out', join(secret, 'tls.crt'), '-days', '30', '-subj', '/O=example/CN=Example Pod CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign'], { stdio: 'ignore' });
    const ca = await loadPodCa(secret);
    const leaf = await mintLeafCertificate(ca, 'api.example.com');
    writeFileSync(join(dir, 'mounted-leaf.pem'), leaf.pem);
    const verify = spawnSync('openssl', ['verify', '-CAfile', join(secret, 'tls.crt'), '-purpose', 'sslserver', '-verify_hostname', 'api.example.com', join(dir, 'mounted-leaf.pem')], { encoding: 'utf8' });
    expect(verify.stdout + verify.stderr).toContain(': OK');
    const mounted = new x509.X509Certificate(ca.certPem);
    expect(new x509.X509Certificate(leaf.pem).getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId).toBe(mounted.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId);
    expect(new X509Certificate(leaf.pem).issuer).toBe('O=example\nCN=Example Pod CA');
    await expect(handshake(ca, 'api.example.com')).resolves.toMatchObject({ authorized: true });
  });

  test('a key that is not the certificate\'s, or not P-256, is refused', async () => {
    const secret = join(dir, 'secret');
    const other = join(dir, 'wrong-key');
    execFileSync('mkdir', ['-p', other]);
    execFileSync('cp', [join(secret, 'tls.crt'), join(other, 'tls.crt')]);
    writeFileSync(join(other, 'tls.key'), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await expect(loadPodCa(other)).rejects.toThrow(/is not the key of/);
    writeFileSync(join(other, 'tls.key'), generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await expect(loadPodCa(other)).rejects.toThrow(/not an EC P-256 key/);
  });
});

test('minting the pod CA and a leaf loads no X.509 library (start-up footprint)', () => {
  const root = join(import.meta.dirname, '..', '..', '..');
  const code = `
    import { registerHooks } from 'node:module';
    const seen = [];
    registerHooks({ load(url, c, next) { seen.push(url); return next(url, c); } });
    const { generatePodCa } = await import(${JSON.stringify(join(root, 'sidecar/src/tls/pod-ca.ts'))});
    const { mintLeafCertificate } = await import(${JSON.stringify(join(root, 'sidecar/src/tls/leaf-certificates.ts'))});
    await mintLeafCertificate(await generatePodCa('x'), 'a.example');
    console.log(JSON.stringify(seen.filter((u) => u.includes('/node_modules/'))));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' });
  expect(JSON.parse(out)).toEqual([]);
});
