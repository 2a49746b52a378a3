// GraphQL facts: what a GraphQL request asks, for the forge rules — which operation types its
// document defines (query, mutation, subscription) and whether it selects a field that returns
// file content (GitHub's Blob.text, GitLab's rawBlob/rawTextBlob, gist and snippet files). Read from
// a POST body `{"query": "..."}` (read whole, at most MAX_BODY bytes) or a GET `?query=`. It must
// never throw and never say less than the document asks: a document it cannot tokenize, a batch
// (a top-level array), a query sent twice, a non-string query or a body it cannot read whole gives
// no facts (unknown), never "no content".
import type { GraphqlFacts } from '../../../api/src/index.ts';
import { decodedWholeBody } from './body-prefix.ts';
import { declaredBodyLength, headerOf } from './request.ts';
import type { FactsRequest } from './request.ts';
import { defineDeriver } from './deriver.ts';

/** GraphQL documents are small; a larger body is unknown. */
export const MAX_GRAPHQL_BODY = 64 * 1024;

/**
 * Fields and types that carry file content. Field names cannot be hidden (an alias keeps the
 * field's name in the document, a fragment names its type), so their absence means the answer
 * carries no file content. Compared exactly: GraphQL names are case-sensitive.
 */
const CONTENT_NAMES = new Set([
  // GitHub: Blob { text }, GistFile { text }, the types themselves in fragments.
  'text',
  'Blob',
  'GistFile',
  // GitLab: repository { blobs(paths:) { nodes { rawBlob rawTextBlob plainData … } } }, snippets.
  'blobs',
  'rawBlob',
  'rawTextBlob',
  'plainData',
  'rawPlainData',
  'richData',
  'base64EncodedBlob',
  'RepositoryBlob',
  'SnippetBlob',
  // GitLab: CI/CD variable values.
  'ciVariables',
  'ciConfigVariables',
]);

export interface GraphqlRequestShape {
  /** The document is in the body (POST) rather than the query (GET). */
  inBody: boolean;
}

/** A GraphQL endpoint: a path whose last segment is `graphql` (`/graphql`, `/api/graphql`, `/api/v3/graphql`). */
export function classifyGraphqlRequest(req: FactsRequest): GraphqlRequestShape | undefined {
  if (!/\/graphql\/?$/i.test(req.path)) return undefined;
  const method = req.method.toUpperCase();
  if (method === 'POST') return { inBody: true };
  if ((method === 'GET' || method === 'HEAD') && Array.isArray(req.query.query)) return { inBody: false };
  return undefined;
}

export function graphqlBodyPrefixNeeded(shape: GraphqlRequestShape | undefined): number {
  return shape?.inBody ? MAX_GRAPHQL_BODY : 0;
}

/** The whole body (up to MAX_GRAPHQL_BODY): a `query` member may come anywhere, or twice. */
export function graphqlMoreBodyNeeded(req: FactsRequest, shape: GraphqlRequestShape | undefined, prefix: Buffer): number {
  if (!shape?.inBody || prefix.length >= MAX_GRAPHQL_BODY) return 0;
  const declared = declaredBodyLength(req);
  if (declared === undefined) return 1;
  return prefix.length >= declared ? 0 : Math.min(declared, MAX_GRAPHQL_BODY) - prefix.length;
}

/** Every value of the top-level member `query`, or undefined when the body is not one JSON object. */
function topLevelQueries(text: string): unknown[] | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  // JSON.parse keeps the last of a member sent twice; a server may keep the first: walk the text.
  const values: unknown[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      const s = JSON.parse(text.slice(i, end + 1)) as string;
      i = end;
      if (depth === 1 && expectKey) {
        expectKey = false;
        if (s === 'query') values.push(memberValue(text, i + 1));
      }
    } else if (c === '{' || c === '[') {
      depth++;
      if (depth === 1) expectKey = true;
    } else if (c === '}' || c === ']') depth--;
    else if (c === ',' && depth === 1) expectKey = true;
  }
  return values;
}

/** The JSON value after `:` starting at `at` when it is a string; a non-string stands as itself (unknown). */
function memberValue(text: string, at: number): unknown {
  let i = at;
  while (/[\s:]/.test(text[i] ?? '')) i++;
  if (text[i] !== '"') return null;
  let end = i + 1;
  while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
  return JSON.parse(text.slice(i, end + 1)) as unknown;
}

type Operation = GraphqlFacts['operations'][number];

const NAME = /[_A-Za-z][_0-9A-Za-z]*/y;

/** Operation types and content fields of a GraphQL document; undefined when it cannot be tokenized. */
export function readDocument(doc: string): GraphqlFacts | undefined {
  const operations = new Set<Operation>();
  let readsContent = false;
  let depth = 0;
  let atDefinition = true;
  for (let i = 0; i < doc.length; ) {
    const c = doc[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === ',' || c === '\uFEFF') {
      i++;
    } else if (c === '#') {
      while (i < doc.length && doc[i] !== '\n' && doc[i] !== '\r') i++;
    } else if (c === '"') {
      if (doc.startsWith('"""', i)) {
        let j = i + 3;
        for (;;) {
          if (j >= doc.length) return undefined;
          if (doc.startsWith('\\"""', j)) j += 4;
          else if (doc.startsWith('"""', j)) break;
          else j++;
        }
        i = j + 3;
      } else {
        let j = i + 1;
        for (;;) {
          if (j >= doc.length || doc[j] === '\n' || doc[j] === '\r') return undefined;
          if (doc[j] === '\\') j += 2;
          else if (doc[j] === '"') break;
          else j++;
        }
        i = j + 1;
      }
    } else if (c === '{') {
      if (atDefinition) operations.add('query'); // the shorthand `{ … }` is a query
      atDefinition = false;
      depth++;
      i++;
    } else if (c === '}') {
      depth--;
      if (depth < 0) return undefined;
      if (depth === 0) atDefinition = true;
      i++;
    } else if (c === '.' && doc.startsWith('...', i)) {
      i += 3;
    } else if ('!$&():=@[]|'.includes(c) || (c >= '0' && c <= '9') || c === '-' || c === '+' || c === '.') {
      i++;
    } else {
      NAME.lastIndex = i;
      const m = NAME.exec(doc);
      if (!m) return undefined;
      const name = m[0];
      i += name.length;
      if (atDefinition && depth === 0) {
        if (name === 'query' || name === 'mutation' || name === 'subscription') operations.add(name);
        else if (name !== 'fragment') return undefined; // type system definitions, extensions: not a request
        atDefinition = false;
      }
      if (CONTENT_NAMES.has(name)) readsContent = true;
    }
  }
  if (depth !== 0 || operations.size === 0) return undefined;
  return { operations: [...operations].sort(), reads_content: readsContent };
}

/** The facts, or undefined when the request's document cannot be read whole and unambiguously. */
export function graphqlFacts(req: FactsRequest, shape: GraphqlRequestShape, body: Buffer | undefined): GraphqlFacts | undefined {
  let docs: unknown[];
  if (!shape.inBody) {
    docs = req.query.query ?? [];
  } else {
    if (body === undefined || declaredBodyLength(req) !== body.length) return undefined;
    const type = headerOf(req, 'content-type')?.toLowerCase() ?? 'application/json';
    if (type.startsWith('application/graphql')) {
      const decoded = decodedWholeBody(req, body, MAX_GRAPHQL_BODY);
      if (decoded === undefined) return undefined;
      docs = [decoded.toString('utf8')];
    } else {
      const decoded = decodedWholeBody(req, body, MAX_GRAPHQL_BODY);
      if (decoded === undefined) return undefined;
      const queries = topLevelQueries(decoded.toString('utf8'));
      if (queries === undefined) return undefined;
      docs = queries;
    }
  }
  if (docs.length !== 1 || typeof docs[0] !== 'string') return undefined;
  return readDocument(docs[0]);
}

/** facts.graphql: the operation types a GraphQL document defines and whether it selects file content. */
export const graphqlDeriver = defineDeriver<'graphql', GraphqlRequestShape>({
  key: 'graphql',
  classify: (req) => classifyGraphqlRequest(req),
  bodyPrefixNeeded: (shape) => graphqlBodyPrefixNeeded(shape),
  moreBodyNeeded: (req, shape, prefix) => graphqlMoreBodyNeeded(req, shape, prefix),
  derive: (req, shape, body) => graphqlFacts(req, shape, body),
});
