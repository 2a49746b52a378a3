// lib/src/approvals/kube-client.ts against a hostile or broken API server (a loopback HTTP server
// that answers what no kube-apiserver would: a real one cannot be made to): a watch line that is
// not an event (null, a number, garbage) or is unbounded ends the watch with an error the
// list-watch loop answers by re-listing, never an exception thrown from the stream's handler (an
// uncaught exception ends the sidecar); a call's answer body is bounded. And the refusal to send
// a token to anything but an https API server reads the scheme as the URL parser does.
import { afterEach, describe, expect, it } from '@jest/globals';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { ApprovalApiError } from '../../lib/src/approvals/errors.ts';
import { CALL_BODY_MAX_BYTES, KubeClient, WATCH_LINE_MAX_BYTES } from '../../lib/src/approvals/kube-client.ts';
import type { WatchEvent } from '../../lib/src/approvals/kube-client.ts';
import { loadKubeIdentity } from '../../lib/src/approvals/kube-identity.ts';
import { ListWatch } from '../../sidecar/src/kube/list-watch.ts';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const client = (url: string): KubeClient =>
  new KubeClient({ server: url, user: undefined, namespace: undefined, authenticate: () => Promise.resolve({ headers: {}, dispatcher: undefined }) }, 5_000);

/** Resolves with the watch's end, or 'still open' after `ms`. */
function within<T>(p: Promise<T>, ms: number): Promise<T | 'still open'> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<'still open'>((resolve) => (timer = setTimeout(() => resolve('still open'), ms)))]).finally(() => clearTimeout(timer));
}

const good = JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'a', resourceVersion: '2' } } });

describe('watch lines that are not events', () => {
  it.each(['null', '42', '"text"', '[]', 'not json', '{"type":"ADDED"}', '{"type":"ADDED","object":null}', '{"type":"ADDED","object":[1]}', '{"type":"WHAT","object":{}}', '{"type":"ERROR","object":null}'])(
    '%s ends the watch with an error (no exception escapes, the good event before it was delivered)',
    async (bad) => {
      const { url } = await serve((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write(`${good}\n${bad}\n`);
      });
      const seen: WatchEvent<unknown>[] = [];
      const handle = await client(url).watch('/api/v1/configmaps', {}, (e) => seen.push(e));
      cleanups.push(() => handle.abort());
      const ended = await within(handle.done, 3_000);
      expect(ended).toBeInstanceOf(ApprovalApiError);
      expect(ended).toMatchObject({ code: 'SLUICE_APPROVAL_API_UNREACHABLE' });
      expect(seen).toEqual([JSON.parse(good)]);
    },
  );

  it('a line longer than WATCH_LINE_MAX_BYTES ends the watch instead of being buffered', async () => {
    const { url } = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(`{"type":"ADDED","object":{"x":"${'x'.repeat(WATCH_LINE_MAX_BYTES + 1024)}`);
    });
    const handle = await client(url).watch('/api/v1/configmaps', {}, () => undefined);
    cleanups.push(() => handle.abort());
    const ended = await within(handle.done, 5_000);
    expect(ended).toBeInstanceOf(ApprovalApiError);
    expect((ended as ApprovalApiError).message).toMatch(/longer than/);
  });

  it('a well-formed stream still delivers every event, lines split across writes and a last line without newline', async () => {
    const events = [good, JSON.stringify({ type: 'MODIFIED', object: { metadata: { name: 'a', resourceVersion: '3' } } }), JSON.stringify({ type: 'DELETED', object: { metadata: { name: 'a', resourceVersion: '4' } } })];
    const { url } = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const text = `${events[0]}\n\n${events[1]}\n${events[2]}`;
      res.write(text.slice(0, 10));
      setTimeout(() => res.write(text.slice(10, text.length - 5)), 20);
      setTimeout(() => res.end(text.slice(text.length - 5)), 40);
    });
    const seen: WatchEvent<unknown>[] = [];
    const handle = await client(url).watch('/api/v1/configmaps', {}, (e) => seen.push(e));
    expect(await within(handle.done, 3_000)).toBeNull();
    expect(seen).toEqual(events.map((e) => JSON.parse(e) as unknown));
  });

  it('the list-watch loop answers a bad line by re-listing, and keeps running', async () => {
    let lists = 0;
    let watches = 0;
    const { url } = await serve((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      if (!req.url!.includes('watch=1')) {
        lists++;
        res.end(JSON.stringify({ metadata: { resourceVersion: '1' }, items: [] }));
        return;
      }
      watches++;
      res.write(watches === 1 ? 'null\n' : `${good}\n`);
    });
    const health: boolean[] = [];
    const events: string[] = [];
    const lw = new ListWatch(client(url), { path: '/api/v1/configmaps', minBackoffMs: 10, maxBackoffMs: 20 }, { list: () => undefined, event: (type) => void events.push(type), health: (h) => void health.push(h) });
    cleanups.push(() => lw.stop());
    await lw.start();
    for (let i = 0; i < 200 && events.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(events).toEqual(['ADDED']);
    expect(lists).toBe(2);
    expect(watches).toBe(2);
  });
});

describe('call answers', () => {
  it(`a body larger than CALL_BODY_MAX_BYTES fails the call (${CALL_BODY_MAX_BYTES} bytes)`, async () => {
    const chunk = Buffer.alloc(1024 * 1024, 'x');
    const { url } = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('"');
      let sent = 0;
      const more = (): void => {
        while (sent <= CALL_BODY_MAX_BYTES) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end('"');
      };
      more();
    });
    await expect(client(url).call('GET', '/api/v1/configmaps')).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_API_UNREACHABLE', message: expect.stringMatching(/larger than/) });
  });
});

describe('the token goes only to an https API server', () => {
  it.each(['HTTP://127.0.0.1:1', ' http://127.0.0.1:1', 'Http://127.0.0.1:1', 'ftp://127.0.0.1:1', 'ws://127.0.0.1:1'])('%j is refused without insecure-skip-tls-verify', async (server) => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-kube-scheme-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'config.yaml');
    writeFileSync(
      file,
      toYaml({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'c', cluster: { server } }],
        users: [{ name: 'me', user: { token: 'secret-token' } }],
        contexts: [{ name: 'main', context: { cluster: 'c', user: 'me' } }],
        'current-context': 'main',
      }),
    );
    await expect(loadKubeIdentity({ kubeconfig: file })).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_API_REJECTED' });
  });
});
