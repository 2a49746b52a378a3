// `kubectl sluice replay` and `verify` on a spool a real WebSocket conversation was recorded to
// (a real `ws` client and server through sluice's relay, a real recorder): the conversation is
// printed in the order it crossed, one message a line under the event that holds it, arrows for
// the direction, masked samples only, and how the connection ended; the chain verifies.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../src/main.ts';
import { nextMessage, openClient, startFront, startRecorder, startUpstream } from '../../testkit/sidecar/websocket-path.ts';
import type { Upstream } from '../../testkit/sidecar/websocket-path.ts';

const AWS_ID = 'AKIAQ4T7ZK2MWX3RPL6N';
let upstream: Upstream;
const dir = mkdtempSync(join(tmpdir(), 'sluice-replay-ws-'));

beforeAll(async () => {
  upstream = await startUpstream((ws, data) => ws.send(`re: ${data}`));
});

afterAll(async () => {
  await upstream.close();
  rmSync(dir, { recursive: true, force: true });
});

async function cli(args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await runCli(args, { out: (s) => (out += s), err: (s) => (out += s) });
  return { code, out };
}

test('replay shows a WebSocket conversation message by message, in order, masked; verify accepts the chain', async () => {
  const recorder = await startRecorder(dir);
  const front = await startFront({ upstreamPort: upstream.port, recorder, recordContent: true });
  const ws = await openClient(front);
  const a = nextMessage(ws);
  ws.send('hello there');
  await a;
  const b = nextMessage(ws);
  ws.send(`my key ${AWS_ID}`);
  await b;
  const end = front.nextEnd();
  ws.close(1000, 'bye');
  await end;
  await front.close();
  await recorder.stop({ drainTimeoutMs: 100 });

  const replay = await cli(['replay', 'ws-test', '--spool', dir]);
  expect(replay.code).toBe(0);
  expect(replay.out).not.toContain(AWS_ID);
  const wsLines = replay.out.split('\n').filter((l) => /^\s+[→←] ws #/.test(l));
  expect(wsLines.map((l) => l.replace(/\+\d+\.\d{3}s/, '+T').trim())).toEqual([
    '→ ws #1 +T text 11 B "hello there"',
    '← ws #2 +T text 15 B "re: hello there"',
    expect.stringMatching(/^→ ws #3 \+T text 27 B masked [a-z0-9-]+ "my key \[REDACTED:[^"]+"$/),
    // The upstream echoed what it received: already masked, so nothing to mask on the way back.
    '← ws #4 +T text 39 B "re: my key [REDACTED:aws-access-key-id]"',
    '→ ws #5 +T close 1000 5 B "bye"',
    '← ws #6 +T close 1000 5 B "bye"',
  ]);
  expect(replay.out).toMatch(/websocket end ws\.closed by (agent|upstream) close 1000 \(2 out, 2 in\)/);
  const verify = await cli(['verify', 'ws-test', '--spool', dir]);
  expect(verify.code).toBe(0);
});
