// Loads the golden decision table and expands each case into a full PolicyInput, filling the
// fields a case does not care about with one fixed agent pod and session.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { PolicyInput } from '../../api/src/index.ts';
import type { Action, Facts } from '../../api/src/index.ts';

export interface DecisionCase {
  name: string;
  input: PolicyInput;
  expect: {
    action: Action;
    code: string;
    scope?: string;
    credential?: string;
    dlp?: string;
    reason_contains?: string;
  };
}

interface RawCase {
  name: string;
  request: { method: string; host: string; path: string; port?: number; scheme?: 'http' | 'https'; query?: Record<string, string[]>; headers?: Record<string, string>; ip_literal?: boolean };
  facts?: Facts;
  expect: DecisionCase['expect'];
}

export const casesFile = join(dirname(fileURLToPath(import.meta.url)), 'decisions.yaml');

export function agentInput(request: RawCase['request'], facts: Facts = {}): PolicyInput {
  return PolicyInput.parse({
    request: {
      scheme: request.scheme ?? 'https',
      port: request.port ?? 443,
      query: {},
      headers: { 'user-agent': 'git/2.39.5' },
      ip_literal: false,
      ...request,
    },
    facts,
    pod: {
      namespace: 'agents',
      name: 'coder-7f9c',
      service_account: 'coder',
      labels: { app: 'coder', 'sluice.io/inject': 'true' },
      annotations: {},
      creator: { username: 'alice@example.com', groups: ['developers'] },
    },
    session: { id: 'sess-demo', seq: 1, bytes_out: 0 },
  });
}

export function loadDecisionCases(file = casesFile): DecisionCase[] {
  const raw = parse(readFileSync(file, 'utf8')) as RawCase[];
  return raw.map((c) => ({ name: c.name, input: agentInput(c.request, c.facts), expect: c.expect }));
}
