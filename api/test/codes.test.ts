// Keeps api/src/codes.ts honest: every `area.code` literal in the sources that emit codes (the
// sidecar, webhook, CLI, CNI plugin, api contracts, lib and the Rego library) must be a row of the
// catalogue, and every row must be emitted by some source. Where a code is typed `Code` (error
// classes, refusals, webhook rules, bundle/source/audit/credential/upstream codes) tsc already
// refuses an uncatalogued one; this scan also covers what stays a string because a policy code
// (a custom bundle's) flows through it too (answers, refusals, the decision code) and the Rego library.
import { describe, expect, test } from '@jest/globals';
import { existsSync, lstatSync, readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { CODES, codeAreas, codeEntry, codeStatus, isCode } from '../src/codes.ts';
import type { AreaCode, Catalogued, Code } from '../src/codes.ts';

const REPO = join(import.meta.dirname, '..', '..');

/** Areas a code may start with. A literal `'<area>.<word>'` in a scanned file is a code. Areas
 *  here with no catalogue row yet (network, webhook, cred) are names a new code would plausibly
 *  take; listing them makes such a code fail here instead of slipping by. */
const AREAS = [...new Set([...codeAreas(), 'network', 'webhook', 'cred'])].sort();

/** Literals of a code area that are not codes: file names (a key file, the bundle's wasm, the config). */
const NOT_A_CODE = /\.(ya?ml|json|wasm|crt|key|pem|ts|js|mts|proto|rego|gz|md)$/;

const TS_ROOTS = ['sidecar/src', 'webhook/src', 'cli/src', 'cni/src', 'api/src', 'lib/src'];
const REGO_ROOT = 'policies/rego';
const SELF = 'api/src/codes.ts';

export interface CodeLiteral {
  /** the code, or for a template literal (`dlp.secret_in_${where}`) its constant prefix */
  readonly code: string;
  readonly template: boolean;
  readonly at: string;
}

const literal = new RegExp(`(['"\`])((?:${AREAS.join('|')})\\.[a-z0-9_]+)(\\$\\{|\\1)`, 'g');

/** The code literals of one file; comment lines are skipped (a code named in prose is not emitted). */
export function codeLiterals(text: string, file: string): CodeLiteral[] {
  const out: CodeLiteral[] = [];
  const comment = file.endsWith('.rego') ? /^\s*#/ : /^\s*(\/\/|\/\*|\*)/;
  text.split('\n').forEach((line, i) => {
    if (comment.test(line)) return;
    for (const m of line.matchAll(literal)) {
      const code = m[2]!;
      if (NOT_A_CODE.test(code)) continue;
      out.push({ code, template: m[3] === '${', at: `${file}:${i + 1}` });
    }
  });
  return out;
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    const st = lstatSync(p);
    return st.isDirectory() ? walk(p) : st.isFile() ? [p] : [];
  });
}

function sourceFiles(): string[] {
  const ts = TS_ROOTS.flatMap((r) => walk(join(REPO, r))).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
  const rego = walk(join(REPO, REGO_ROOT)).filter((f) => f.endsWith('.rego') && !f.endsWith('_test.rego'));
  return [...ts, ...rego].map((f) => relative(REPO, f)).filter((f) => f !== SELF);
}

const literals = sourceFiles().flatMap((f) => codeLiterals(readFileSync(join(REPO, f), 'utf8'), f));

describe('the code catalogue (api/src/codes.ts)', () => {
  test('the scan finds the sources and their codes', () => {
    // a scan that silently finds nothing would pass every check below
    expect(literals.length).toBeGreaterThan(250);
  });

  test('every code literal in the sources is in the catalogue', () => {
    const missing = literals
      .filter((l) => (l.template ? !CODES.some((c) => c.code.startsWith(l.code)) : !codeEntry(l.code)))
      .map((l) => `${l.at}: ${l.template ? `template \`${l.code}\${…}\` matches no code` : `'${l.code}'`}`);
    expect({ notInTheCatalogue: missing, fix: 'add a row to CODES in api/src/codes.ts (code, kind, by, status, doc) or use a catalogued code' }).toEqual({
      notInTheCatalogue: [],
      fix: expect.any(String),
    });
  });

  test('every catalogue row is emitted by some source', () => {
    const emitted = (code: string) => literals.some((l) => (l.template ? code.startsWith(l.code) : l.code === code));
    const stale = CODES.filter((c) => !emitted(c.code)).map((c) => c.code);
    expect({ emittedByNoSource: stale, fix: 'remove the row from api/src/codes.ts, or emit it' }).toEqual({ emittedByNoSource: [], fix: expect.any(String) });
  });

  test('rows are unique, well formed, documented, and name runbooks that exist', () => {
    const seen = new Set<string>();
    const problems: string[] = [];
    for (const c of CODES) {
      if (seen.has(c.code)) problems.push(`${c.code}: listed twice`);
      seen.add(c.code);
      if (!/^[a-z0-9]+\.[a-z0-9_]+$/.test(c.code)) problems.push(`${c.code}: not area.lower_snake`);
      if (c.doc.trim().length < 10) problems.push(`${c.code}: doc too short`);
      if (c.status !== undefined && (c.status < 400 || c.status > 599)) problems.push(`${c.code}: status ${c.status} is not an error status`);
      if (c.runbook && !existsSync(join(REPO, 'docs', 'runbooks', `${c.runbook}.md`))) problems.push(`${c.code}: runbook docs/runbooks/${c.runbook}.md does not exist`);
      if (c.by === 'policy' && !['allow', 'deny', 'hold'].includes(c.kind)) problems.push(`${c.code}: a policy code is allow, deny or hold`);
    }
    expect(problems).toEqual([]);
  });

  test('the Rego library decides with exactly the policy rows of the catalogue', () => {
    const rego = new Set(literals.filter((l) => l.at.startsWith(`${REGO_ROOT}/`)).map((l) => l.code));
    const policyRows = new Set(CODES.filter((c) => c.by === 'policy').map((c) => c.code));
    expect([...rego].filter((c) => !policyRows.has(c)).sort()).toEqual([]);
    expect([...policyRows].filter((c) => !rego.has(c)).sort()).toEqual([]);
  });

  test('docs/metrics.md names only codes that exist (an `area.*` or `area.prefix_*` wildcard must match one)', () => {
    const doc = readFileSync(join(REPO, 'docs', 'metrics.md'), 'utf8');
    const named = [...doc.matchAll(new RegExp(`\`((?:${AREAS.join('|')})\\.[a-z0-9_]*\\*?)\``, 'g'))].map((m) => m[1]!);
    const wrong = named.filter((n) => (n.endsWith('*') ? !CODES.some((c) => c.code.startsWith(n.slice(0, -1))) : !codeEntry(n)));
    expect([...new Set(wrong)]).toEqual([]);
    // and the generated list names every code
    expect(CODES.filter((c) => !doc.includes(`\`${c.code}\``)).map((c) => c.code)).toEqual([]);
  });
});

test('Code is the union of the catalogued codes (make test typechecks this file)', () => {
  const known: Code = 'net.no_server_name';
  // @ts-expect-error net.opaque_tunnel is not a code sluice emits
  const unknown: Code = 'net.opaque_tunnel';
  expect([isCode(known), isCode(unknown)]).toEqual([true, false]);
  // a kind narrows it: a refusal is not an error answer, a policy hold is not a deny
  const refusal: Code<'refusal'> = 'net.not_http';
  // @ts-expect-error http.bad_chunk is an error answer, not a refusal
  const notRefusal: Code<'refusal'> = 'http.bad_chunk';
  const hold: Code<'hold'> = 'k8s.write_held';
  // @ts-expect-error k8s.write_held is a hold, not a deny
  const notDeny: Code<'deny'> = 'k8s.write_held';
  const audit: AreaCode<'audit'> = 'audit.spool_full';
  // @ts-expect-error approval.denied is not an audit code
  const notAudit: AreaCode<'audit'> = 'approval.denied';
  type Ok = Catalogued<'audit.spool_full' | 'audit.spool_io'>;
  // @ts-expect-error audit.spool_ful is a typo
  type Typo = Catalogued<'audit.spool_full' | 'audit.spool_ful'>;
  const ok: Ok = 'audit.spool_io';
  const typo: Typo = 'audit.spool_full';
  // each is a catalogued code; what the lines marked @ts-expect-error pin is their type (tsc fails when one stops failing)
  expect([refusal, notRefusal, hold, notDeny, audit, notAudit, ok, typo].filter((c) => !isCode(c))).toEqual([]);
});

test('the statuses agents get where the sidecar answers with the catalogue row stay what they were', () => {
  // Before issue 22 these were literals beside the code (credentials/errors.ts, hold-coordinator.ts,
  // upstream.ts, http-front.ts, request-summary.ts, request-target.ts); now the row is the status, so
  // a row edited here changes what an agent gets: this pins it.
  const before: Record<string, number> = {
    'credentials.provider_unavailable': 503, 'credentials.provider_rejected': 502, 'credentials.subject_token_unavailable': 503,
    'credentials.not_configured': 502, 'credentials.unknown_provider': 502, 'credentials.host_not_allowed': 502,
    'credentials.plaintext_refused': 403, 'credentials.secret_unavailable': 503, 'credentials.aws_signature_unsupported': 501,
    'credentials.aws_signature_malformed': 400, 'credentials.aws_presign_expired': 403, 'credentials.aws_body_too_large': 413,
    'credentials.aws_body_invalid': 400, 'credentials.aws_bucket_owner_conflict': 403, 'credentials.internal_error': 502,
    'approval.denied': 403, 'approval.expired': 403, 'approval.deleted': 403, 'pod.killed': 403,
    'approval.forbidden': 503, 'approval.unavailable': 503, 'approval.too_many_holds': 503, 'approval.sidecar_stopping': 503,
    'upstream.tls_verify_failed': 502, 'upstream.timeout': 504, 'upstream.dns_failed': 502, 'upstream.connect_failed': 502, 'upstream.error': 502,
    'http.header_too_large': 431, 'http.headers_timeout': 408, 'http.request_timeout': 408, 'http.bad_expect': 417,
    'http.ambiguous_length': 400, 'http.bad_content_length': 400, 'http.bad_transfer_encoding': 400, 'http.bad_header': 400,
    'http.bad_chunk': 400, 'http.malformed': 400,
    'http.bad_target': 400, 'http.credentials_in_url': 400, 'http.no_host': 400, 'http.bad_host': 400,
    'net.sni_host_mismatch': 403, 'net.connect_host_mismatch': 403, 'net.dns_host_mismatch': 403,
  };
  const now = Object.fromEntries(Object.keys(before).map((c) => [c, codeEntry(c)?.status]));
  expect(now).toEqual(before);
});

test('codeStatus is the status of the catalogue row, and refuses a code without one', () => {
  expect([codeStatus('credentials.aws_signature_unsupported'), codeStatus('http.bad_expect'), codeStatus('upstream.timeout'), codeStatus('policy.eval_error')]).toEqual([501, 417, 504, 403]);
  expect(() => codeStatus('net.not_http')).toThrow('net.not_http has no HTTP status');
});

describe('the literal scan', () => {
  test('finds codes in quotes and code prefixes in templates, and skips comments and file names', () => {
    const ts = [
      "answer(ctx, { status: 403, code: 'dlp.brand_new', kind: 'deny' });",
      '// a comment naming \'net.not_http\' emits nothing',
      " * 'tls.in_a_doc_comment'",
      "const key = readFileSync('tls.key'); const c = \"http.bad_host\";",
      'const code = `dlp.secret_in_${where}`;',
      "const host = 'sluice.approval.pending'; const path = 'status.state';",
    ].join('\n');
    expect(codeLiterals(ts, 'x.ts')).toEqual([
      { code: 'dlp.brand_new', template: false, at: 'x.ts:1' },
      { code: 'http.bad_host', template: false, at: 'x.ts:4' },
      { code: 'dlp.secret_in_', template: true, at: 'x.ts:5' },
    ]);
    const rego = ['# deny("k8s.in_comment", "…")', 'verdicts contains lib.verdict(90, lib.deny("k8s.brand_new", "why")) if {'].join('\n');
    expect(codeLiterals(rego, 'p.rego')).toEqual([{ code: 'k8s.brand_new', template: false, at: 'p.rego:2' }]);
  });
});
