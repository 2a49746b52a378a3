// The node agent's socket under malformed requests: whatever a client writes (not JSON, the wrong
// shape, a second line after the first), the agent answers a refusal once, never runs a request
// it cannot read, and keeps answering the next connection. A crash here would stop every new pod
// on the node, so each case is followed by a well-formed request that must still be answered.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '../src/agent.ts';
import type { KubeGet } from '../src/kube.ts';

let dir: string;
let socket: string;
let server: Server;
const asked: string[] = [];
// No pod exists: a readable ADD is answered "not found" after exactly one API read.
const kube: KubeGet = { get: (path: string) => (asked.push(path), Promise.resolve(undefined)) };
const log = { info: () => undefined, warn: () => undefined };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-cni-socket-'));
  socket = join(dir, 'agent.sock');
  server = await serve(socket, { kube, log });
});
afterAll(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

function ask(bytes: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const c = connect(socket);
    let out = '';
    c.setEncoding('utf8');
    c.on('data', (d: string) => (out += d));
    c.on('error', reject);
    c.on('close', () => resolve(out.split('\n').filter(Boolean)));
    c.end(bytes);
  });
}

const add = (name: string) => JSON.stringify({ command: 'ADD', containerId: 'c1', netns: '/var/run/netns/x', ifname: 'eth0', pod: { namespace: 'agents', name, uid: 'u1' }, pid: 1 });

describe('node agent socket', () => {
  test.each([
    ['not JSON', '{oops\n', 'request is not JSON'],
    ['JSON null', 'null\n', 'request is not a sluice plugin request'],
    ['a pod that is not an object', '{"command":"ADD","containerId":"c","netns":"n","ifname":"i","pid":1,"pod":"agents/x"}\n', 'request is not a sluice plugin request'],
    ['a container id that is not a string', '{"command":"ADD","containerId":7,"netns":"n","ifname":"i","pid":1,"pod":{"namespace":"a","name":"b","uid":"c"}}\n', 'request is not a sluice plugin request'],
    ['no pid', '{"command":"ADD","containerId":"c","netns":"n","ifname":"i","pod":{"namespace":"a","name":"b","uid":"c"}}\n', 'request is not a sluice plugin request'],
  ])('%s: one refusal, nothing read from the API server, and the agent still answers', async (_what, bytes, message) => {
    asked.length = 0;
    const lines = await ask(bytes);
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toEqual({ ok: false, message });
    expect(asked).toEqual([]);
    const next = await ask(`${add('after')}\n`);
    expect(JSON.parse(next[0]!)).toMatchObject({ ok: false, message: 'pod agents/after not found in the API server' });
  });

  test('a second request on the same connection is never run', async () => {
    asked.length = 0;
    const lines = await ask(`${add('first')}\n${add('second')}\n`);
    expect(lines).toHaveLength(1);
    expect(asked).toEqual(['/api/v1/namespaces/agents/pods/first']);
  });
});
