// `make demo` before the data path is wired: a scripted agent session evaluated by the compiled
// default policy, one line per request with the decision and its reason.
import { decisionAction } from '../api/src/index.ts';
import { loadDecisionCases } from '../policies/cases/cases.ts';
import { readBundle } from '../lib/src/policy/bundle.ts';
import { PolicyEngine } from '../lib/src/policy/engine.ts';

const SESSION = [
  'git fetch discovery on github',
  'git fetch upload-pack POST',
  'npm install metadata',
  'pypi simple index',
  'openai chat completion',
  'dotenv on raw githubusercontent held',
  'kubernetes list pods',
  'kubernetes secret read held',
  's3 get object',
  's3 delete object held',
  'git push receive-pack POST is held',
  'npm publish denied',
  'gist creation denied',
  's3 put to a foreign bucket denied',
  'git push to a foreign repository denied',
  'unknown host post denied',
  'ipv4 literal denied',
];

const colour = { allow: '\x1b[32m', deny: '\x1b[31m', hold: '\x1b[33m' } as const;

export async function runPolicySession(bundlePath: string, write: (line: string) => void): Promise<void> {
  const engine = new PolicyEngine();
  await engine.load(await readBundle(bundlePath));
  const cases = new Map(loadDecisionCases().map((c) => [c.name, c]));
  write(`policy revision ${engine.revision} — scripted agent session (${SESSION.length} requests)\n`);
  for (const name of SESSION) {
    const c = cases.get(name);
    if (!c) throw new Error(`demo step "${name}" is not in policies/cases/decisions.yaml`);
    const { request } = c.input;
    const { decision } = engine.evaluate(c.input);
    const action = decisionAction(decision);
    const useColour = process.stdout.isTTY;
    const tag = useColour ? `${colour[action]}${action.toUpperCase().padEnd(5)}\x1b[0m` : action.toUpperCase().padEnd(5);
    write(`${tag} ${request.method.padEnd(6)} ${request.host}${request.path}\n      ${decision.code}: ${decision.reason}\n`);
  }
}
