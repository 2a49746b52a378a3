// GraphQL facts for the forge rules: operation types and whether a document reads file content,
// from the queries real clients send (gh's pull request listing, GitHub's object(expression:)
// blob read, GitLab's repository blobs), and every way a document could hide what it asks.
import { describe, expect, test } from '@jest/globals';
import { gzipSync } from 'node:zlib';
import { Facts, GraphqlFacts } from '../../../api/src/index.ts';
import { bodyPrefixNeeded, deriveFacts, moreBodyNeeded } from '../../src/facts/derive-facts.ts';
import { MAX_GRAPHQL_BODY, classifyGraphqlRequest, graphqlBodyPrefixNeeded, graphqlFacts, graphqlMoreBodyNeeded, readDocument } from '../../src/facts/graphql-request.ts';
import type { FactsRequest } from '../../src/facts/request.ts';

function post(body: string | Buffer, headers: Record<string, string> = {}, host = 'api.github.com', path = '/graphql'): { req: FactsRequest; body: Buffer } {
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  return { req: { method: 'POST', host, path, query: {}, headers: { 'content-type': 'application/json', 'content-length': String(buf.length), ...headers } }, body: buf };
}

function factsOf(p: { req: FactsRequest; body: Buffer }): GraphqlFacts | undefined {
  const shape = classifyGraphqlRequest(p.req);
  if (!shape) throw new Error('not classified');
  const f = graphqlFacts(p.req, shape, p.body);
  return f === undefined ? undefined : GraphqlFacts.parse(f);
}

const ghPrList = `query PullRequestList($owner: String!, $repo: String!, $limit: Int!, $endCursor: String, $state: [PullRequestState!] = OPEN) {
  repository(owner: $owner, name: $repo) {
    pullRequests(states: $state, first: $limit, after: $endCursor, orderBy: {field: CREATED_AT, direction: DESC}) {
      totalCount
      nodes { number title state url headRefName isDraft author { login } }
      pageInfo { hasNextPage endCursor }
    }
  }
}`;

const blobRead = `query { repository(owner: "acme", name: "app") { object(expression: "main:deploy/kubeconfig") { ... on Blob { text } } } }`;

describe('readDocument', () => {
  test('gh pr list: a query that reads no file content', () => {
    expect(readDocument(ghPrList)).toEqual({ operations: ['query'], reads_content: false });
  });

  test('GitHub object(expression:) … on Blob { text }, aliased, or through a named fragment', () => {
    expect(readDocument(blobRead)).toEqual({ operations: ['query'], reads_content: true });
    expect(readDocument('{ repository(owner:"a",name:"b") { o: object(expression:"HEAD:.npmrc") { ...F } } } fragment F on Blob { t: oid }')).toMatchObject({ reads_content: true });
    expect(readDocument('{ viewer { gists(first: 5) { nodes { files { name text } } } } }')).toMatchObject({ reads_content: true });
  });

  test('GitLab repository blobs and CI variables', () => {
    expect(readDocument('{ project(fullPath: "acme/app") { repository { blobs(paths: ["secrets/prod.env"]) { nodes { rawTextBlob } } } } }')).toMatchObject({ reads_content: true });
    expect(readDocument('{ project(fullPath: "acme/app") { ciVariables { nodes { key value } } } }')).toMatchObject({ reads_content: true });
  });

  test('content names inside strings, comments and block strings are not fields', () => {
    expect(readDocument('# text Blob rawBlob\n{ search(query: "text Blob", type: REPOSITORY, first: 1) { repositoryCount } }')).toEqual({ operations: ['query'], reads_content: false });
    expect(readDocument('query { repository(owner: "a", name: """ text \\""" Blob """) { id } }')).toEqual({ operations: ['query'], reads_content: false });
  });

  test('mutations and subscriptions are named, several operations each counted', () => {
    expect(readDocument('mutation { addStar(input: {starrableId: "x"}) { clientMutationId } }')).toEqual({ operations: ['mutation'], reads_content: false });
    expect(readDocument('query A { viewer { login } } mutation B { addStar(input: {starrableId: "x"}) { clientMutationId } }')).toEqual({ operations: ['mutation', 'query'], reads_content: false });
    expect(readDocument('subscription { x }')).toEqual({ operations: ['subscription'], reads_content: false });
  });

  test.each([
    ['an unterminated string', '{ repository(owner: "a) { id } }'],
    ['an unterminated block string', '{ a(b: """x) }'],
    ['unbalanced braces', '{ a { b }'],
    ['a stray closing brace', '{ a } }'],
    ['a type system definition', 'type Query { a: Int }'],
    ['no operation at all', 'fragment F on Blob { text }'],
    ['a character GraphQL does not have', '{ a ; text }'],
  ])('%s is unknown', (_name, doc) => {
    expect(readDocument(doc)).toBeUndefined();
  });
});

describe('requests', () => {
  test('only /graphql paths, POST or GET with ?query=', () => {
    expect(classifyGraphqlRequest({ method: 'POST', host: 'api.github.com', path: '/graphql', query: {}, headers: {} })).toEqual({ inBody: true });
    expect(classifyGraphqlRequest({ method: 'GET', host: 'gitlab.com', path: '/api/graphql', query: { query: ['{ a }'] }, headers: {} })).toEqual({ inBody: false });
    expect(classifyGraphqlRequest({ method: 'GET', host: 'gitlab.com', path: '/api/graphql', query: {}, headers: {} })).toBeUndefined();
    expect(classifyGraphqlRequest({ method: 'POST', host: 'api.github.com', path: '/repos/a/b/issues', query: {}, headers: {} })).toBeUndefined();
  });

  test('the body is read whole, up to 64 KiB', () => {
    const p = post(JSON.stringify({ query: ghPrList, variables: { owner: 'acme', repo: 'app', limit: 30 } }));
    const shape = classifyGraphqlRequest(p.req)!;
    expect(graphqlBodyPrefixNeeded(shape)).toBe(MAX_GRAPHQL_BODY);
    expect(graphqlMoreBodyNeeded(p.req, shape, p.body.subarray(0, 10))).toBe(p.body.length - 10);
    expect(graphqlMoreBodyNeeded(p.req, shape, p.body)).toBe(0);
    expect(factsOf(p)).toEqual({ operations: ['query'], reads_content: false });
    expect(graphqlFacts(p.req, shape, p.body.subarray(0, 20))).toBeUndefined(); // cut: unknown
  });

  test('a JSON-escaped field name is read as the server reads it', () => {
    expect(factsOf(post('{"query":"{ repository(owner:\\"a\\",name:\\"b\\") { object(expression:\\"HEAD:.env\\") { ... on \\u0042lob { \\u0074ext } } } }"}'))).toMatchObject({ reads_content: true });
  });

  test('a query sent twice, a batch, a non-string query, no query (persisted) are unknown', () => {
    expect(factsOf(post(JSON.stringify({ query: ghPrList }).replace(/}$/, `,"query":${JSON.stringify(blobRead)}}`)))).toBeUndefined();
    expect(factsOf(post(JSON.stringify([{ query: ghPrList }, { query: blobRead }])))).toBeUndefined();
    expect(factsOf(post('{"query":{"a":1}}'))).toBeUndefined();
    expect(factsOf(post('{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"ab"}}}'))).toBeUndefined();
  });

  test('a query nested in variables is not the document', () => {
    expect(factsOf(post(JSON.stringify({ variables: { query: blobRead }, query: ghPrList })))).toEqual({ operations: ['query'], reads_content: false });
  });

  test('application/graphql bodies and gzip-encoded JSON', () => {
    expect(factsOf(post(blobRead, { 'content-type': 'application/graphql' }))).toMatchObject({ reads_content: true });
    expect(factsOf(post(gzipSync(JSON.stringify({ query: blobRead })), { 'content-encoding': 'gzip' }))).toMatchObject({ reads_content: true });
  });

  test('GitLab GET ?query=', () => {
    const req: FactsRequest = { method: 'GET', host: 'gitlab.com', path: '/api/graphql', query: { query: ['{ project(fullPath: "acme/app") { name } }'] }, headers: {} };
    expect(graphqlFacts(req, classifyGraphqlRequest(req)!, undefined)).toEqual({ operations: ['query'], reads_content: false });
  });
});

describe('through deriveFacts, as the proxy asks', () => {
  test('a GraphQL POST buffers its body and gets facts.graphql; the same document cut short gets none', () => {
    const p = post(JSON.stringify({ query: blobRead }));
    expect(bodyPrefixNeeded(p.req)).toBe(MAX_GRAPHQL_BODY);
    expect(moreBodyNeeded(p.req, p.body)).toBe(0);
    expect(Facts.parse(deriveFacts(p.req, p.body)).graphql).toEqual({ operations: ['query'], reads_content: true });
    expect(deriveFacts(p.req, p.body.subarray(0, 30)).graphql).toBeUndefined();
  });
});
