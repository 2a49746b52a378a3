// Entry point of `make demo`: the policy on its own, then the real sidecar in front of a
// scripted agent.
import { join } from 'node:path';
import { runPolicySession } from './policy-session.ts';
import { runProxySession } from './proxy-session.ts';

const root = join(import.meta.dirname, '..');
const write = (line: string) => process.stdout.write(line);
if (process.argv.includes('--policy-only')) {
  await runPolicySession(join(root, 'policies', 'build', 'bundle.tar.gz'), write);
} else {
  await runProxySession(write);
}
