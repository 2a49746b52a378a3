// Entry point of `make demo`.
import { join } from 'node:path';
import { runPolicySession } from './policy-session.ts';

const root = join(import.meta.dirname, '..', '..', '..');
await runPolicySession(join(root, 'policies', 'build', 'bundle.tar.gz'), (line) => process.stdout.write(line));
