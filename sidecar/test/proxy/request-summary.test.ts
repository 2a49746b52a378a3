// The destination is what the request names, and every name a connection claimed must agree.
import { describe, expect, test } from '@jest/globals';
import { namesForResolved, parseResolvConfSearch, splitHostPort, summarizeRequest } from '../../src/proxy/request-summary.ts';
import type { ConnectionInfo } from '../../src/proxy/connection-info.ts';

const tls = (extra: Partial<ConnectionInfo> = {}): ConnectionInfo => ({ id: 'c', via: 'transparent', scheme: 'https', sni: 'github.com', openedAt: 0, ...extra });
const proxy: ConnectionInfo = { id: 'p', via: 'proxy', scheme: 'http', openedAt: 0 };

describe('splitHostPort', () => {
  test.each([
    ['github.com', 443, { host: 'github.com', port: 443 }],
    ['GitHub.COM.:8443', 443, { host: 'github.com', port: 8443 }],
    ['[2001:db8::1]:80', 443, { host: '2001:db8::1', port: 80 }],
    ['[2001:db8::1]', 443, { host: '2001:db8::1', port: 443 }],
  ])('%s', (authority, port, expected) => expect(splitHostPort(authority, port)).toEqual(expected));

  test.each(['', 'a b', 'host:99999', 'host:x', 'user@host', '[::1', 'h/x'])('rejects %j', (a) => expect(splitHostPort(a, 80)).toBeUndefined());
});

describe('summarizeRequest', () => {
  test('origin-form over TLS: host from Host, port from scheme, query parsed, credentials redacted', () => {
    const r = summarizeRequest({ method: 'GET', url: '/a/b?x=1&x=2&y=', headers: { host: 'github.com', authorization: 'Bearer secret', 'user-agent': 'git/2' } }, tls());
    expect(r).toEqual({
      ok: true,
      pathAndQuery: '/a/b?x=1&x=2&y=',
      summary: {
        method: 'GET',
        scheme: 'https',
        host: 'github.com',
        port: 443,
        path: '/a/b',
        query: { x: ['1', '2'], y: [''] },
        headers: { host: 'github.com', authorization: '[redacted]', 'user-agent': 'git/2' },
        ip_literal: false,
      },
    });
  });

  test('SNI and Host that disagree are domain fronting', () => {
    expect(summarizeRequest({ method: 'GET', url: '/', headers: { host: 'evil.example' } }, tls())).toMatchObject({ ok: false, code: 'net.sni_host_mismatch', status: 403 });
  });

  test('a CONNECT target and Host that disagree are refused', () => {
    const conn = tls({ via: 'proxy', connectTarget: { host: 'github.com', port: 443 } });
    expect(summarizeRequest({ method: 'GET', url: '/', headers: { host: 'other.example' } }, { ...conn, sni: undefined })).toMatchObject({ ok: false, code: 'net.connect_host_mismatch' });
  });

  test('a fake-IP connection must carry the name it resolved', () => {
    const conn: ConnectionInfo = { id: 'f', via: 'transparent', scheme: 'http', fakeIpName: 'registry.npmjs.org', openedAt: 0 };
    expect(summarizeRequest({ method: 'GET', url: '/', headers: { host: 'evil.example' } }, conn)).toMatchObject({ ok: false, code: 'net.dns_host_mismatch' });
    expect(summarizeRequest({ method: 'GET', url: '/', headers: { host: 'registry.npmjs.org' } }, conn)).toMatchObject({ ok: true });
  });

  test('absolute-form through the proxy port: URL host wins and must match Host', () => {
    const ok = summarizeRequest({ method: 'GET', url: 'http://github.com:8080/x?q', headers: { host: 'github.com:8080' } }, proxy);
    expect(ok).toMatchObject({ ok: true, pathAndQuery: '/x?q', summary: { host: 'github.com', port: 8080, scheme: 'http' } });
    expect(summarizeRequest({ method: 'GET', url: 'http://github.com/', headers: { host: 'evil.example' } }, proxy)).toMatchObject({ ok: false, code: 'net.host_mismatch' });
  });

  test('absolute-form with credentials, other schemes, or on a TLS connection is refused', () => {
    expect(summarizeRequest({ method: 'GET', url: 'http://u:p@github.com/', headers: { host: 'github.com' } }, proxy)).toMatchObject({ ok: false, code: 'http.credentials_in_url' });
    expect(summarizeRequest({ method: 'GET', url: 'ftp://github.com/', headers: { host: 'github.com' } }, proxy)).toMatchObject({ ok: false, code: 'http.bad_target' });
    expect(summarizeRequest({ method: 'GET', url: 'http://github.com/', headers: { host: 'github.com' } }, tls())).toMatchObject({ ok: false, code: 'http.bad_target' });
  });

  test('IP literals are flagged for the policy', () => {
    const r = summarizeRequest({ method: 'GET', url: '/', headers: { host: '[2001:db8::7]:8080' } }, { ...proxy, via: 'transparent' });
    expect(r).toMatchObject({ ok: true, summary: { host: '2001:db8::7', port: 8080, ip_literal: true } });
  });

  test('a missing or broken Host is a 400', () => {
    expect(summarizeRequest({ method: 'GET', url: '/', headers: {} }, proxy)).toMatchObject({ ok: false, status: 400, code: 'http.no_host' });
    expect(summarizeRequest({ method: 'GET', url: '/', headers: { host: 'a b' } }, proxy)).toMatchObject({ ok: false, status: 400, code: 'http.bad_host' });
  });
});

describe('fake-IP names and resolver search domains', () => {
  const search = parseResolvConfSearch('nameserver 10.96.0.10\nsearch agents.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n');

  test('reads the search line of resolv.conf', () => {
    expect(search).toEqual(['agents.svc.cluster.local', 'svc.cluster.local', 'cluster.local']);
  });

  test('a name expanded by the resolver may be used by the name the client asked for', () => {
    expect(namesForResolved('github.com.agents.svc.cluster.local', search)).toEqual(['github.com.agents.svc.cluster.local', 'github.com', 'github.com.agents', 'github.com.agents.svc']);
    const conn: ConnectionInfo = { id: 'f', via: 'transparent', scheme: 'http', fakeIpName: 'github.com.agents.svc.cluster.local', fakeIpNames: namesForResolved('github.com.agents.svc.cluster.local', search), openedAt: 0 };
    expect(summarizeRequest({ method: 'GET', url: '/', headers: { host: 'github.com' } }, conn)).toMatchObject({ ok: true });
    expect(summarizeRequest({ method: 'GET', url: '/', headers: { host: 'gitlab.com' } }, conn)).toMatchObject({ ok: false, code: 'net.dns_host_mismatch' });
  });

  test('an absolute name stays the only one', () => {
    expect(namesForResolved('registry.npmjs.org', search)).toEqual(['registry.npmjs.org']);
  });
});
