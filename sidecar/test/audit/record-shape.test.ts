// Differential tests of the recorder's hand-written record check (lib/src/audit/record-shape.ts)
// against the AuditEvent schema it stands in for: every field of full valid records set to every kind
// of bad value is refused by checkRecord exactly when the schema refuses it, with the schema's
// message; the fast check never passes what the schema refuses; the records the proxy builds take
// the fast path; and the golden records chain to the committed lines and hashes, byte for byte.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { AuditEvent, AwsFacts, Creator, Facts, GitFacts, GraphqlFacts, K8sFacts, LlmFacts, UpgradeFacts, describeIssues } from '../../../api/src/index.ts';
import type { AuditRecord } from '../../../api/src/index.ts';
import { chainEventLine, genesisHead, hashEvent } from '../../../lib/src/audit/chain.ts';
import type { ChainHead } from '../../../lib/src/audit/chain.ts';
import { AuditError } from '../../../lib/src/audit/errors.ts';
import { RECORD_KEYS, RecordSchema, checkRecord, recordHolds } from '../../../lib/src/audit/record-shape.ts';

const pod = { namespace: 'agents', name: 'agent-7f9c', service_account: 'agent' };

/** What the proxy records for a git push and its answer (the bench's typical event). */
function gitPair(): AuditRecord[] {
  const request = {
    method: 'POST',
    scheme: 'https',
    host: 'github.com',
    port: 443,
    path: '/org/repo.git/git-receive-pack',
    facts: { git: { service: 'git-receive-pack' as const, operation: 'push' as const, phase: 'rpc' as const, repo: 'org/repo' } },
  };
  const decision = { action: 'allow' as const, code: 'git.push_allowed', reason: 'allow-listed', revision: 'a1b2c3' };
  return [
    { kind: 'request', pod, creator: { username: 'alice', groups: ['dev'] }, request_id: 'r-1', request, decision, bytes: { in: 5120, out: 2048 }, timings: { policy: 0.08, total: 42.3 } },
    { kind: 'response', pod, request_id: 'r-1', request, decision, status: 200, masking: [{ rule: 'github_token', direction: 'response', offset: 120 }], bytes: { in: 1, out: 2 } },
  ];
}

/** A record with every field and every kind of facts filled in, each optional member present. */
function fullRecord(): Record<string, unknown> {
  return {
    kind: 'request',
    pod: { ...pod },
    creator: { username: 'alice', uid: 'u-1', groups: ['dev', 'system:authenticated'] },
    request_id: 'r-9',
    request: {
      method: 'POST',
      scheme: 'https',
      host: 'api.example.com',
      port: 443,
      path: '/graphql',
      facts: {
        git: { service: 'git-receive-pack', operation: 'push', phase: 'rpc', repo: 'org/repo', refs: [{ ref: 'refs/heads/main', old: 'a', new: 'b' }], push_options: ['ci.skip'] },
        aws: {
          service: 's3',
          region: 'eu-west-1',
          action: 's3:CopyObject',
          bucket: 'b',
          key: 'k',
          signed: true,
          copy_source_bucket: 'c',
          role_arn: 'arn:aws:iam::123456789012:role/r',
          role_account: '123456789012',
          with_decryption: false,
          resource_account: '123456789012',
          resource_accounts: ['123456789012'],
        },
        k8s: { verb: 'get', api_group: '', api_version: 'v1', resource: 'pods', subresource: 'log', namespace: 'n', name: 'p' },
        llm: { provider: 'openai', endpoint: 'chat.completions', operation: 'inference', model: 'gpt', prompt_bytes: 12, stream: true },
        graphql: { operations: ['query', 'mutation'], reads_content: false },
        upgrade: { protocol: 'websocket', subprotocols: ['graphql-ws'] },
      },
    },
    decision: { action: 'hold', code: 'approval.required', reason: 'needs a human', revision: 'r1', scope_used: 's' },
    status: 403,
    masking: [{ rule: 'aws_key', direction: 'request', offset: 0 }],
    bytes: { in: 0, out: 0 },
    timings: { policy: 0.1, total: 3 },
    body_sample: 'masked…',
    detail: { websocket: { v: 2, direction: 'out', messages: [] }, note: null, n: 1 },
  };
}

type Path = (string | number)[];

/** Every object, array and leaf below the root, by path (the root itself is []). */
function paths(v: unknown, at: Path = []): Path[] {
  const out: Path[] = [at];
  if (Array.isArray(v)) v.forEach((e, i) => out.push(...paths(e, [...at, i])));
  else if (typeof v === 'object' && v !== null) for (const k of Object.keys(v)) out.push(...paths((v as Record<string, unknown>)[k], [...at, k]));
  return out;
}

function parentOf(root: unknown, path: Path): Record<string | number, unknown> {
  let v = root as Record<string | number, unknown>;
  for (const p of path.slice(0, -1)) v = v[p] as Record<string | number, unknown>;
  return v;
}

function at(root: unknown, path: Path): unknown {
  return path.reduce<unknown>((v, p) => (v as Record<string | number, unknown>)[p], root);
}

const BAD_VALUES: [string, unknown][] = [
  ['null', null],
  ['undefined', undefined],
  ['empty string', ''],
  ['string', 'x'],
  ['long string', 'x'.repeat(70_000)],
  ['zero', 0],
  ['negative', -1],
  ['fraction', 1.5],
  ['NaN', NaN],
  ['Infinity', Infinity],
  ['-Infinity', -Infinity],
  ['unsafe integer', 2 ** 60],
  ['true', true],
  ['bigint', 10n],
  ['empty array', []],
  ['array of string', ['x']],
  ['array of number', [1]],
  ['array with a hole', [, 'x']], // eslint-disable-line no-sparse-arrays
  ['empty object', {}],
  ['object', { a: 'b' }],
  ['null-prototype object', Object.create(null)],
  ['date', new Date(0)],
  ['map', new Map()],
  ['function', () => 'x'],
  ['symbol', Symbol('s')],
  ['64 hex', 'a'.repeat(64)],
];

/** Ways to damage an object (beyond replacing it): extra keys, prototype games, symbol keys. */
const OBJECT_DAMAGE: [string, (o: Record<string, unknown>) => void][] = [
  ['extra key', (o) => (o.extra = 'x')],
  ['extra undefined key', (o) => (o.extra = undefined)],
  ['own __proto__ key', (o) => Object.defineProperty(o, '__proto__', { value: { polluted: true }, enumerable: true, writable: true, configurable: true })],
  ['own __proto__ string', (o) => Object.defineProperty(o, '__proto__', { value: 'x', enumerable: true, writable: true, configurable: true })],
  ['own constructor key', (o) => void Object.defineProperty(o, 'constructor', { value: 'x', enumerable: true, writable: true, configurable: true })],
  ['own constructor number', (o) => void Object.defineProperty(o, 'constructor', { value: 1, enumerable: true, writable: true, configurable: true })],
  ['symbol key', (o) => void Object.defineProperty(o, Symbol('s'), { value: 'x', enumerable: true })],
  ['symbol key with number', (o) => void Object.defineProperty(o, Symbol('s'), { value: 1, enumerable: true })],
  ['non-enumerable extra', (o) => Object.defineProperty(o, 'hidden', { value: 1, enumerable: false })],
  ['prototype swapped to null', (o) => void Object.setPrototypeOf(o, null)],
  ['prototype swapped to an array', (o) => void Object.setPrototypeOf(o, Array.prototype)],
  ['integer-like key', (o) => (o['1'] = 'x')],
  ['toJSON key', (o) => (o.toJSON = () => 'x')],
];

interface Mutant {
  what: string;
  value: unknown;
}

function mutants(base: () => Record<string, unknown>): Mutant[] {
  const out: Mutant[] = [];
  const shape = base();
  for (const path of paths(shape)) {
    const where = path.join('.') || '(record)';
    if (path.length > 0) {
      const last = path[path.length - 1] as string | number;
      for (const [name, bad] of BAD_VALUES) {
        const m = base();
        parentOf(m, path)[last] = bad;
        out.push({ what: `${where} = ${name}`, value: m });
      }
      const m = base();
      const parent = parentOf(m, path);
      if (Array.isArray(parent)) parent.splice(last as number, 1);
      else delete parent[last];
      out.push({ what: `${where} missing`, value: m });
    }
    const target = at(shape, path);
    if (typeof target === 'object' && target !== null && !Array.isArray(target)) {
      for (const [name, damage] of OBJECT_DAMAGE) {
        const m = base();
        damage(at(m, path) as Record<string, unknown>);
        out.push({ what: `${where}: ${name}`, value: m });
      }
    }
  }
  return out;
}

/** What the recorder did before the fast check: the schema alone. */
function schemaOutcome(v: unknown): string {
  const checked = RecordSchema.safeParse(v);
  return checked.success ? 'accepted' : `audit.bad_record: record does not match the audit event schema: ${describeIssues(checked.error).join('; ')}`;
}

function checkOutcome(v: unknown): string {
  try {
    checkRecord(v);
    return 'accepted';
  } catch (err) {
    if (!(err instanceof AuditError)) throw err;
    return `${err.code}: ${err.message}`;
  }
}

const BASES: [string, () => Record<string, unknown>][] = [
  ['full record', fullRecord],
  ['git request', () => structuredClone(gitPair()[0]) as unknown as Record<string, unknown>],
  ['git response', () => structuredClone(gitPair()[1]) as unknown as Record<string, unknown>],
];

describe('record check: hand-written against the schema', () => {
  it('the schema accepts the valid bases, and the fast check answers for them itself', () => {
    for (const [, base] of BASES) {
      expect(RecordSchema.safeParse(base()).success).toBe(true);
      expect(recordHolds(base())).toBe(true);
    }
    for (const rec of gitPair()) expect(recordHolds(rec)).toBe(true);
  });

  it.each(BASES)('%s: every damaged field is refused exactly when the schema refuses it, with its message', (_, base) => {
    const all = mutants(base);
    expect(all.length).toBeGreaterThan(300);
    const disagreements: string[] = [];
    let refused = 0;
    let fellBack = 0;
    for (const { what, value } of all) {
      const expected = schemaOutcome(value);
      if (checkOutcome(value) !== expected) disagreements.push(`${what}: check says ${checkOutcome(value)}, schema says ${expected}`);
      if (recordHolds(value) && expected !== 'accepted') disagreements.push(`${what}: fast check passed what the schema refuses`);
      if (expected !== 'accepted') refused++;
      else if (!recordHolds(value)) fellBack++;
    }
    expect(disagreements).toEqual([]);
    // Most damage is refused; what the schema still accepts (an absent optional field, an extra
    // undefined key, any value in detail) mostly passes the fast check without the schema.
    expect(refused).toBeGreaterThan(all.length / 2);
    expect(fellBack).toBeLessThan(all.length / 4);
  });

  it('a refused record costs its record() call an audit.bad_record error, never an exception of another kind', () => {
    for (const bad of [null, undefined, 'x', 1, [], { kind: 'request' }, { kind: 'nope', pod }, { kind: 'request', pod, timings: { t: NaN } }]) {
      expect(() => checkRecord(bad)).toThrow(AuditError);
      expect(recordHolds(bad)).toBe(false);
    }
  });

  it('knows exactly the keys of every strict object of the schema (a new schema field is not silently taken)', () => {
    const shapeKeys = (s: { shape: object }) => new Set(Object.keys(s.shape));
    const ev = AuditEvent.shape;
    const req = ev.request.unwrap();
    expect(RECORD_KEYS.record).toEqual(shapeKeys(RecordSchema));
    expect(RECORD_KEYS.pod).toEqual(shapeKeys(ev.pod));
    expect(RECORD_KEYS.creator).toEqual(shapeKeys(Creator));
    expect(RECORD_KEYS.request).toEqual(shapeKeys(req));
    expect(RECORD_KEYS.decision).toEqual(shapeKeys(ev.decision.unwrap()));
    expect(RECORD_KEYS.masking).toEqual(shapeKeys(ev.masking.unwrap().element));
    expect(RECORD_KEYS.bytes).toEqual(shapeKeys(ev.bytes.unwrap()));
    expect(RECORD_KEYS.facts).toEqual(shapeKeys(Facts));
    expect(RECORD_KEYS.git).toEqual(shapeKeys(GitFacts));
    expect(RECORD_KEYS.gitRef).toEqual(shapeKeys(GitFacts.shape.refs.unwrap().element));
    expect(RECORD_KEYS.aws).toEqual(shapeKeys(AwsFacts));
    expect(RECORD_KEYS.k8s).toEqual(shapeKeys(K8sFacts));
    expect(RECORD_KEYS.llm).toEqual(shapeKeys(LlmFacts));
    expect(RECORD_KEYS.graphql).toEqual(shapeKeys(GraphqlFacts));
    expect(RECORD_KEYS.upgrade).toEqual(shapeKeys(UpgradeFacts));
  });
});

describe('records through the check chain as before', () => {
  const testdata = join(import.meta.dirname, 'testdata');

  it('the golden records pass the check and chain to the committed lines and hashes, byte for byte', () => {
    const fixture = JSON.parse(readFileSync(join(testdata, 'chain-records.json'), 'utf8')) as { session: string; links: { id: string; now: string; record: AuditRecord }[] };
    const golden = readFileSync(join(testdata, 'chain-golden.ndjson'), 'utf8').trimEnd().split('\n');
    let head: ChainHead = genesisHead(fixture.session);
    const lines: string[] = [];
    for (const link of fixture.links) {
      checkRecord(link.record);
      const { event, line } = chainEventLine(head, link.record, { id: link.id, now: new Date(link.now) });
      expect(hashEvent(event)).toBe(event.hash);
      lines.push(line);
      head = event;
    }
    expect(lines).toEqual(golden);
  });

  it('the full record and the proxy records take the fast path and hash as the reference says', () => {
    let head: ChainHead = genesisHead('s-1');
    for (const rec of [fullRecord() as unknown as AuditRecord, ...gitPair()]) {
      expect(recordHolds(rec)).toBe(true);
      const { event, line } = chainEventLine(head, rec, { id: `e-${head.seq + 1}`, now: 1_700_000_000_000 });
      expect(JSON.parse(line)).toEqual(event);
      expect(hashEvent(event)).toBe(event.hash);
      head = event;
    }
  });
});
