// Start-up cost (issue 23): a sidecar that ships no protobuf Loki pushes and verifies no signed
// bundle never loads protobufjs or jose — they load when first used (loki-push.ts,
// bundle-signature.ts). A real sidecar is started in a child process (a fresh module graph, not
// jest's) that records every module Node resolves, then the first protobuf push body is encoded.
import { describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const REPO = join(import.meta.dirname, '..', '..', '..');

const SCRIPT = `
import { registerHooks } from 'node:module';
const seen = new Set();
registerHooks({
  resolve(specifier, context, next) {
    const r = next(specifier, context);
    const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(r.url);
    if (m) seen.add(m[1]);
    return r;
  },
});
const { startTestSidecar } = await import(${JSON.stringify(join(REPO, 'testkit', 'sidecar', 'test-sidecar.ts'))});
const sidecar = await startTestSidecar();
const atReady = [...seen];
await sidecar.stop();
const { encodePush } = await import(${JSON.stringify(join(REPO, 'sidecar', 'src', 'audit', 'loki-push.ts'))});
const body = encodePush([{ labels: { namespace: 'a', pod: 'b', session: 'c' }, entries: [{ ts: 1n, line: '{}' }] }], 'protobuf');
process.stdout.write(JSON.stringify({ atReady, afterPush: [...seen], bytes: body.body.length }));
`;

describe('modules loaded only when used', () => {
  test('a started sidecar has not loaded protobufjs or jose; the first protobuf push loads protobufjs', async () => {
    const { stdout } = await run(process.execPath, ['--no-warnings', '--input-type=module', '-e', SCRIPT], { cwd: REPO, timeout: 60_000 });
    const out = JSON.parse(stdout) as { atReady: string[]; afterPush: string[]; bytes: number };
    expect(out.atReady).toEqual(expect.arrayContaining(['pino', 'prom-client']));
    expect(out.atReady).not.toContain('protobufjs');
    expect(out.atReady).not.toContain('jose');
    expect(out.afterPush).toContain('protobufjs');
    expect(out.bytes).toBeGreaterThan(0);
  }, 90_000);
});
