// One canonical request target: what RFC 9112/9113 do not allow is refused with a stable code,
// dot segments (encoded or not) are resolved, ambiguous encodings are refused, and everything
// else is forwarded byte for byte. The summary (policy input), the facts and the forwarded
// target are all the canonical one.
import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { deriveFacts } from '../../src/facts/derive-facts.ts';
import { liberalSegments } from '../../src/facts/request.ts';
import type { ConnectionInfo } from '../../src/proxy/connection-info.ts';
import { canonicalRequestTarget } from '../../src/proxy/request-target.ts';
import { summarizeRequest } from '../../src/proxy/request-summary.ts';

const tls: ConnectionInfo = { id: 'c', via: 'transparent', scheme: 'https', sni: 'github.com', openedAt: 0 };
const proxy: ConnectionInfo = { id: 'p', via: 'proxy', scheme: 'http', openedAt: 0 };

describe('canonicalRequestTarget', () => {
  test.each([
    ['/acme/app.git/git-receive-pack#/git-upload-pack', 'http.target_fragment'],
    ['/a?x=1#frag', 'http.target_fragment'],
    ['/a b', 'http.target_bad_char'],
    ['/a\tb', 'http.target_bad_char'],
    ['/a\u0000b', 'http.target_bad_char'],
    ['/a\u007fb', 'http.target_bad_char'],
    ['/a\u00e9', 'http.target_bad_char'],
    ['/acme\\app.git\\git-receive-pack', 'http.target_bad_char'],
    ['/a%zz', 'http.target_bad_escape'],
    ['/a%2', 'http.target_bad_escape'],
    ['/acme/app.git/git-receive-pack%00', 'http.target_bad_escape'],
    ['/..', 'http.target_above_root'],
    ['/a/../../etc', 'http.target_above_root'],
    ['/%2e%2e/x', 'http.target_above_root'],
    ['/acme/app.git/git-upload-pack%2F..%2Fgit-receive-pack', 'http.target_ambiguous'],
    ['/acme/app.git/git-upload-pack%2f%2e%2e%2fgit-receive-pack', 'http.target_ambiguous'],
    ['/acme/app.git/git-upload-pack/..%5Cgit-receive-pack', 'http.target_ambiguous'],
    ['/acme/app.git/git-upload-pack/..;/git-receive-pack', 'http.target_ambiguous'],
    ['/acme/app.git/x/%2e%2e;jsessionid=1/git-receive-pack', 'http.target_ambiguous'],
    ['//evil.example/acme/app.git/git-receive-pack', 'http.target_ambiguous'],
    ['//', 'http.target_ambiguous'],
    ['/a/..//x', 'http.target_ambiguous'],
    ['*', 'http.target_form'],
    ['github.com:443', 'http.target_form'],
    ['acme/app', 'http.target_form'],
    ['', 'http.target_form'],
  ])('refuses %j (%s)', (raw, code) => {
    expect(canonicalRequestTarget(raw)).toMatchObject({ ok: false, status: 400, code });
  });

  test.each([
    ['/acme/app.git/git-upload-pack/../git-receive-pack', '/acme/app.git/git-receive-pack'],
    ['/acme/app.git/git-upload-pack/%2e%2E/git-receive-pack', '/acme/app.git/git-receive-pack'],
    ['/acme/app.git/./git-receive-pack', '/acme/app.git/git-receive-pack'],
    ['/acme/app.git/.%2E/app.git/info/refs?service=git-receive-pack', '/acme/app.git/info/refs?service=git-receive-pack'],
    ['/a/b/..', '/a/'],
    ['/a/.', '/a/'],
    ['/', '/'],
    // forwarded byte for byte: encoded slashes without dots, escapes, empty segments, params, the query
    ['/@types%2fnode', '/@types%2fnode'],
    ['/api/v4/projects/group%2Fproject/issues', '/api/v4/projects/group%2Fproject/issues'],
    ['/acme//app.git//git-receive-pack', '/acme//app.git//git-receive-pack'],
    ['/a;b=c/x%41', '/a;b=c/x%41'],
    ['/s?q=100%&x=..%2F..', '/s?q=100%&x=..%2F..'],
    ['/v1/chat?', '/v1/chat?'],
  ])('%j → %j', (raw, canonical) => {
    const r = canonicalRequestTarget(raw);
    expect(r.ok && r.target.pathAndQuery).toBe(canonical);
  });

  test('absolute-form keeps its scheme and authority apart', () => {
    expect(canonicalRequestTarget('HTTP://GitHub.com:8080/a/../b?q')).toEqual({
      ok: true,
      target: { form: 'absolute', scheme: 'http', authority: 'GitHub.com:8080', path: '/b', query: 'q', pathAndQuery: '/b?q' },
    });
    expect(canonicalRequestTarget('http://github.com')).toMatchObject({ ok: true, target: { path: '/', pathAndQuery: '/' } });
  });
});

describe('summary, facts and forwarding use the canonical target', () => {
  test('a fragment-disguised push is refused before any fact is derived', () => {
    const r = summarizeRequest({ method: 'POST', url: '/acme/app.git/git-receive-pack#/git-upload-pack', headers: { host: 'github.com' } }, tls);
    expect(r).toMatchObject({ ok: false, status: 400, code: 'http.target_fragment' });
  });

  test('a dot-segment-disguised push is read, decided and forwarded as the push it is', () => {
    const r = summarizeRequest({ method: 'POST', url: '/acme/app.git/git-upload-pack/%2e%2e/git-receive-pack', headers: { host: 'github.com' } }, tls);
    if (!r.ok) throw new Error(r.code);
    expect(r.pathAndQuery).toBe('/acme/app.git/git-receive-pack');
    expect(r.summary.path).toBe('/acme/app.git/git-receive-pack');
    const facts = deriveFacts({ method: 'POST', host: r.summary.host, path: r.summary.path, query: r.summary.query, headers: {} });
    expect(facts.git).toMatchObject({ service: 'git-receive-pack', operation: 'push', phase: 'rpc', repo: 'acme/app' });
  });

  test('a header that replaces the target on some servers is refused', () => {
    for (const name of ['x-original-url', 'x-rewrite-url', 'x-override-url']) {
      const r = summarizeRequest({ method: 'POST', url: '/acme/app.git/git-upload-pack', headers: { host: 'github.com', [name]: '/acme/app.git/git-receive-pack' } }, tls);
      expect(r).toMatchObject({ ok: false, status: 400, code: 'http.target_override' });
    }
  });

  test('absolute-form through the proxy port is canonicalised the same way', () => {
    const r = summarizeRequest({ method: 'POST', url: 'http://github.com/acme/app.git/git-upload-pack/../git-receive-pack', headers: { host: 'github.com' } }, proxy);
    expect(r).toMatchObject({ ok: true, pathAndQuery: '/acme/app.git/git-receive-pack', summary: { path: '/acme/app.git/git-receive-pack', port: 80 } });
    expect(summarizeRequest({ method: 'GET', url: 'http://u:p@github.com/', headers: { host: 'github.com' } }, proxy)).toMatchObject({ ok: false, code: 'http.credentials_in_url' });
    expect(summarizeRequest({ method: 'GET', url: 'http://github.com/a#b', headers: { host: 'github.com' } }, proxy)).toMatchObject({ ok: false, code: 'http.target_fragment' });
  });
});

// Properties over generated targets built from the pieces that make targets ambiguous. Seeded, so
// a failure reproduces; fast-check shrinks it to the smallest target that breaks the property.
describe('canonical targets (properties)', () => {
  const piece = fc.constantFrom('/', '//', '.', '..', '%2e', '%2E', '%2f', '%2F', '%5c', ';', ';x=1', '?', '&', '=', '#', '%', '%zz', '%00', '%41', '\\', ' ', 'é', 'a', 'git-receive-pack', 'git-upload-pack', 'info', 'refs', 'app.git', 'service');
  const target = fc.array(piece, { maxLength: 12 }).map((parts) => `/${parts.join('')}`);
  const params = { seed: 0x5_1ce_16, numRuns: 3000 };

  test('never throws; a canonical target is canonical again, unchanged', () => {
    fc.assert(
      fc.property(target, (raw) => {
        const r = canonicalRequestTarget(raw);
        if (!r.ok) return;
        const again = canonicalRequestTarget(r.target.pathAndQuery);
        expect(again).toEqual(r);
        expect(r.target.path.startsWith('/')).toBe(true);
        expect(r.target.path.split('/').some((s) => /^(?:\.|%2e){1,2}$/i.test(s))).toBe(false);
      }),
      params,
    );
  });

  test('a WHATWG URL parser (what many servers use) reads an accepted target as the facts do', () => {
    fc.assert(
      fc.property(target, (raw) => {
        const r = canonicalRequestTarget(raw);
        if (!r.ok) return;
        const server = new URL(raw, 'http://upstream');
        expect(liberalSegments(server.pathname)).toEqual(liberalSegments(r.target.path));
        expect(server.search.replace(/^\?/, '')).toBe(new URL(r.target.pathAndQuery, 'http://upstream').search.replace(/^\?/, ''));
      }),
      params,
    );
  });
});
