// Kubernetes facts: the apiserver's own RequestInfo test table (k8s.io/apiserver v1.37
// requestinfo_test.go) plus the query-driven verbs, against the configured API hosts only.
import { describe, expect, test } from '@jest/globals';
import { deriveFacts, parseFactsConfig } from '../../src/facts/derive-facts.ts';

function k8s(method: string, url: string, host = 'kubernetes.default.svc') {
  const u = new URL(url, 'https://x');
  const query: Record<string, string[]> = {};
  for (const [k, v] of u.searchParams) (query[k] ??= []).push(v);
  return deriveFacts({ method, host, path: u.pathname, query, headers: {} }).k8s;
}

// method, url, verb, group, version, namespace, resource, subresource, name — as upstream expects them.
const UPSTREAM: Array<[string, string, string, string, string, string, string, string, string]> = [
  ['GET', '/api/v1/namespaces', 'list', '', 'v1', '', 'namespaces', '', ''],
  ['GET', '/api/v1/namespaces/other', 'get', '', 'v1', 'other', 'namespaces', '', 'other'],
  ['GET', '/api/v1/namespaces/other/pods', 'list', '', 'v1', 'other', 'pods', '', ''],
  ['GET', '/api/v1/namespaces/other/pods/foo', 'get', '', 'v1', 'other', 'pods', '', 'foo'],
  ['HEAD', '/api/v1/namespaces/other/pods/foo', 'get', '', 'v1', 'other', 'pods', '', 'foo'],
  ['GET', '/api/v1/pods', 'list', '', 'v1', '', 'pods', '', ''],
  ['HEAD', '/api/v1/pods', 'list', '', 'v1', '', 'pods', '', ''],
  ['GET', '/api/v1/proxy/namespaces/other/pods/foo', 'proxy', '', 'v1', 'other', 'pods', '', 'foo'],
  ['GET', '/api/v1/proxy/namespaces/other/pods/foo/subpath/not/a/subresource', 'proxy', '', 'v1', 'other', 'pods', '', 'foo'],
  ['GET', '/api/v1/watch/pods', 'watch', '', 'v1', '', 'pods', '', ''],
  ['GET', '/api/v1/pods?watch=true', 'watch', '', 'v1', '', 'pods', '', ''],
  ['GET', '/api/v1/pods?watch=false', 'list', '', 'v1', '', 'pods', '', ''],
  ['GET', '/api/v1/watch/namespaces/other/pods', 'watch', '', 'v1', 'other', 'pods', '', ''],
  ['GET', '/api/v1/namespaces/other/pods?watch=1', 'watch', '', 'v1', 'other', 'pods', '', ''],
  ['GET', '/api/v1/namespaces/other/pods?watch=0', 'list', '', 'v1', 'other', 'pods', '', ''],
  ['GET', '/api/v1/namespaces/other/pods/foo/status', 'get', '', 'v1', 'other', 'pods', 'status', 'foo'],
  ['GET', '/api/v1/namespaces/other/pods/foo/proxy/subpath', 'get', '', 'v1', 'other', 'pods', 'proxy', 'foo'],
  ['PUT', '/api/v1/namespaces/other/finalize', 'update', '', 'v1', 'other', 'namespaces', 'finalize', 'other'],
  ['PUT', '/api/v1/namespaces/other/status', 'update', '', 'v1', 'other', 'namespaces', 'status', 'other'],
  ['PATCH', '/api/v1/namespaces/other/pods/foo', 'patch', '', 'v1', 'other', 'pods', '', 'foo'],
  ['DELETE', '/api/v1/namespaces/other/pods/foo', 'delete', '', 'v1', 'other', 'pods', '', 'foo'],
  ['POST', '/api/v1/namespaces/other/pods', 'create', '', 'v1', 'other', 'pods', '', ''],
  ['DELETE', '/api/v1/nodes', 'deletecollection', '', 'v1', '', 'nodes', '', ''],
  ['DELETE', '/api/v1/namespaces', 'deletecollection', '', 'v1', '', 'namespaces', '', ''],
  ['DELETE', '/api/v1/namespaces/other/pods', 'deletecollection', '', 'v1', 'other', 'pods', '', ''],
  ['DELETE', '/apis/extensions/v1/namespaces/other/pods', 'deletecollection', 'extensions', 'v1', 'other', 'pods', '', ''],
  ['POST', '/apis/extensions/v1/namespaces/other/pods', 'create', 'extensions', 'v1', 'other', 'pods', '', ''],
  ['POST', '/apis/extensions/v1beta3/namespaces/other/pods', 'create', 'extensions', 'v1beta3', 'other', 'pods', '', ''],
];

describe('RequestInfo parity with the apiserver', () => {
  test.each(UPSTREAM)('%s %s', (method, url, verb, group, version, namespace, resource, subresource, name) => {
    const expected: Record<string, string> = { verb, api_group: group, api_version: version, resource };
    if (namespace) expected.namespace = namespace;
    if (subresource) expected.subresource = subresource;
    if (name) expected.name = name;
    expect(k8s(method, url)).toEqual(expected);
  });

  test.each(['/', '/api/version/', '/apis/group/version/', '/badprefix/version/resource', '/apis/version/resource', '/version', '/healthz', '/openapi/v2'])(
    'non-resource path %s has no facts',
    (url) => {
      expect(k8s('GET', url)).toBeUndefined();
    },
  );

  test('exec, attach and port-forward are subresources; the special verb path needs a resource', () => {
    expect(k8s('POST', '/api/v1/namespaces/ns/pods/p/exec?command=sh&stdin=true')).toEqual({ verb: 'create', api_group: '', api_version: 'v1', resource: 'pods', subresource: 'exec', namespace: 'ns', name: 'p' });
    expect(k8s('GET', '/api/v1/namespaces/ns/pods/p/exec')).toMatchObject({ verb: 'get', subresource: 'exec' });
    expect(k8s('GET', '/api/v1/watch')).toBeUndefined();
  });

  test('list with an exact metadata.name field selector names the object, like the apiserver', () => {
    expect(k8s('GET', '/api/v1/namespaces/ns/secrets?fieldSelector=metadata.name%3Dtoken')).toMatchObject({ verb: 'list', resource: 'secrets', name: 'token' });
    expect(k8s('GET', '/api/v1/namespaces/ns/secrets?fieldSelector=metadata.name%3D%3Dtoken&watch=true')).toMatchObject({ verb: 'watch', name: 'token' });
    expect(k8s('GET', '/api/v1/namespaces/ns/secrets?fieldSelector=metadata.name!%3Dtoken')).not.toHaveProperty('name');
    expect(k8s('GET', '/api/v1/namespaces/ns/secrets?watch=')).toMatchObject({ verb: 'watch' });
  });

  test('the path is percent-decoded as Go does before splitting; bad escapes have no facts', () => {
    expect(k8s('GET', '/api/v1/namespaces/ns/%73ecrets/x')).toMatchObject({ resource: 'secrets', name: 'x' });
    expect(k8s('GET', '/api/v1/namespaces/ns/secrets%2Fx')).toMatchObject({ resource: 'secrets', name: 'x' });
    expect(deriveFacts({ method: 'GET', host: 'kubernetes.default.svc', path: '/api/v1/namespaces/ns/secrets/%zz', query: {}, headers: {} }).k8s).toBeUndefined();
    expect(k8s('GET', '/api/v1/namespaces/ns/secrets/')).toMatchObject({ verb: 'list', resource: 'secrets' });
    expect(k8s('OPTIONS', '/api/v1/pods')).toMatchObject({ verb: '' });
  });

  test('only configured API hosts get k8s facts', () => {
    expect(k8s('GET', '/api/v1/pods', 'api.github.com')).toBeUndefined();
    expect(k8s('GET', '/api/v1/pods', 'kubernetes.default.svc.cluster.local:443')).toMatchObject({ verb: 'list' });
    const config = parseFactsConfig({ kubernetesHosts: ['10.96.0.1'] });
    expect(deriveFacts({ method: 'GET', host: '10.96.0.1', path: '/api/v1/pods', query: {}, headers: {} }, undefined, config).k8s).toMatchObject({ resource: 'pods' });
  });
});
