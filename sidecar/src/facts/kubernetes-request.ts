// Kubernetes API facts, read from the URL exactly as the apiserver's RequestInfoFactory reads it
// (k8s.io/apiserver pkg/endpoints/request/requestinfo.go, v1.37), so policy sees the verb and
// resource the apiserver's own authorizer will see. It must not be "smarter" than the apiserver:
// any difference is a gap an agent can use. Non-resource paths (/version, /apis, /healthz) and
// paths Go's URL parser would reject yield no facts.
import type { K8sFacts } from '../../../api/src/index.ts';
import { decodePercent, hostName } from './request.ts';
import type { FactsRequest } from './request.ts';
import { defineDeriver } from './deriver.ts';

const API_PREFIXES = new Set(['api', 'apis']);
const GROUPLESS_PREFIXES = new Set(['api']);
const SPECIAL_VERBS = new Set(['proxy', 'watch']);
const SPECIAL_VERBS_NO_SUBRESOURCES = new Set(['proxy']);
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

const METHOD_VERBS: Readonly<Record<string, string>> = {
  POST: 'create',
  GET: 'get',
  HEAD: 'get',
  PUT: 'update',
  PATCH: 'patch',
  DELETE: 'delete',
};

/** Go's strings.Split(strings.Trim(path, "/"), "/") over the decoded path (req.URL.Path). */
function splitPath(path: string): string[] {
  let start = 0;
  let end = path.length;
  while (start < end && path[start] === '/') start++;
  while (end > start && path[end - 1] === '/') end--;
  return start === end ? [] : path.slice(start, end).split('/');
}

/** apimachinery's path-segment-name check: the name could be a single URL segment. */
function isPathSegmentName(name: string): boolean {
  return name !== '.' && name !== '..' && !name.includes('/') && !name.includes('%');
}

/** `metadata.name=x` (or `==`) as the only requirement on that field in a field selector. */
function exactNameFromFieldSelector(selector: string): string | undefined {
  let found: string | undefined;
  for (const term of selector.split(',')) {
    const m = /^\s*metadata\.name\s*(==?|!=)\s*(.*?)\s*$/.exec(term);
    if (!m) continue;
    if (m[1] === '!=' || found !== undefined) return undefined;
    found = m[2];
  }
  return found;
}

function watchRequested(values: string[] | undefined): boolean {
  if (!values || values.length === 0) return false;
  const v = values[0]!.toLowerCase();
  return v !== 'false' && v !== '0';
}

export function kubernetesFacts(req: FactsRequest): K8sFacts | undefined {
  const path = decodePercent(req.path);
  if (path === undefined) return undefined; // Go's http server answers 400 before authorization
  let parts = splitPath(path);
  if (parts.length < 3 || !API_PREFIXES.has(parts[0]!)) return undefined;
  const prefix = parts[0]!;
  parts = parts.slice(1);
  let apiGroup = '';
  if (!GROUPLESS_PREFIXES.has(prefix)) {
    if (parts.length < 3) return undefined;
    apiGroup = parts[0]!;
    parts = parts.slice(1);
  }
  const apiVersion = parts[0]!;
  parts = parts.slice(1);

  let verb: string;
  if (SPECIAL_VERBS.has(parts[0]!)) {
    if (parts.length < 2) return undefined; // the apiserver errors here
    verb = parts[0]!;
    parts = parts.slice(1);
  } else {
    verb = METHOD_VERBS[req.method.toUpperCase()] ?? '';
  }

  let namespace: string | undefined;
  if (parts[0] === 'namespaces' && parts.length > 1) {
    namespace = parts[1]!;
    if (parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2]!)) parts = parts.slice(2);
  }

  const resource = parts[0] ?? '';
  let name = parts.length >= 2 ? parts[1]! : '';
  const subresource = parts.length >= 3 && !SPECIAL_VERBS_NO_SUBRESOURCES.has(verb) ? parts[2]! : '';

  if (name === '' && verb === 'get') {
    verb = watchRequested(req.query.watch) ? 'watch' : 'list';
    const selector = req.query.fieldSelector?.[0];
    const exact = selector === undefined ? undefined : exactNameFromFieldSelector(selector);
    if (exact !== undefined && exact !== '' && isPathSegmentName(exact)) name = exact;
  }
  if (name === '' && verb === 'delete') verb = 'deletecollection';

  const facts: K8sFacts = { verb, api_group: apiGroup, api_version: apiVersion, resource };
  if (subresource !== '') facts.subresource = subresource;
  if (namespace !== undefined && namespace !== '') facts.namespace = namespace;
  if (name !== '') facts.name = name;
  return facts;
}

/** facts.k8s: for the configured API server hosts, the verb and resource as the apiserver reads them (no body). */
export const kubernetesDeriver = defineDeriver<'k8s', true>({
  key: 'k8s',
  classify: (req, config) => (config.kubernetesHosts.includes(hostName(req.host)) ? true : undefined),
  bodyPrefixNeeded: () => 0,
  moreBodyNeeded: () => 0,
  derive: (req) => kubernetesFacts(req),
});
