// A loopback HTTP proxy in front of the real log store (its Loki push API) that injects faults into pushes: answer with a
// status instead of forwarding (500, 429), cut the connection, or rewrite the pushed entries (a
// tampered or deleted event reaching the store). Everything else is forwarded unchanged, so the
// store and the wire format stay real. It only ever listens on and connects to 127.0.0.1.
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { PROTOBUF_CONTENT_TYPE, decodePushBody, encodePush } from '../../../sidecar/src/audit/loki-push.ts';
import type { PushStream, StreamLabels } from '../../../sidecar/src/audit/loki-push.ts';

export type DecodedStream = ReturnType<typeof decodePushBody>[number];

export type FaultAction =
  | { kind: 'forward' }
  | { kind: 'status'; status: number; headers?: Record<string, string> }
  | { kind: 'reset' }
  | { kind: 'rewrite'; rewrite: (streams: DecodedStream[]) => DecodedStream[] };

export interface PushInfo {
  /** Push number, counting from 0. */
  n: number;
  contentType: string;
  entries: number;
}

function parseLabels(text: string): StreamLabels {
  const get = (k: string): string => new RegExp(`${k}="((?:[^"\\\\]|\\\\.)*)"`).exec(text)?.[1]?.replace(/\\(.)/g, '$1') ?? '';
  return { namespace: get('namespace'), pod: get('pod'), session: get('session') };
}

export class FaultProxy {
  readonly upstream: string;
  /** Decides each push's fate; default forwards everything. */
  fault: (push: PushInfo) => FaultAction = () => ({ kind: 'forward' });
  /** Status of every push as the shipper saw it, in order. */
  readonly outcomes: number[] = [];
  private readonly server: Server;
  private url_ = '';

  constructor(upstream: string) {
    this.upstream = upstream;
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        res.writeHead(502).end(String(err));
      });
    });
  }

  static async start(upstream: string): Promise<FaultProxy> {
    const proxy = new FaultProxy(upstream);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    proxy.url_ = `http://127.0.0.1:${(proxy.server.address() as AddressInfo).port}`;
    return proxy;
  }

  get url(): string {
    return this.url_;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let body: Uint8Array = Buffer.concat(chunks);
    const contentType = req.headers['content-type'] ?? '';
    const isPush = req.method === 'POST' && (req.url ?? '').startsWith('/loki/api/v1/push');
    if (isPush) {
      const streams = decodePushBody(contentType, body);
      const action = this.fault({ n: this.outcomes.length, contentType, entries: streams.reduce((n, s) => n + s.entries.length, 0) });
      if (action.kind === 'status') {
        this.outcomes.push(action.status);
        res.writeHead(action.status, action.headers).end('injected fault');
        return;
      }
      if (action.kind === 'reset') {
        this.outcomes.push(0);
        req.socket.destroy();
        return;
      }
      if (action.kind === 'rewrite') {
        const rewritten: PushStream[] = action.rewrite(streams).map((s) => ({ labels: parseLabels(s.labels), entries: s.entries }));
        body = encodePush(rewritten, contentType.startsWith(PROTOBUF_CONTENT_TYPE) ? 'protobuf' : 'json').body;
      }
    }
    const headers: Record<string, string> = {};
    for (const h of ['content-type', 'x-scope-orgid']) {
      const v = req.headers[h];
      if (typeof v === 'string') headers[h] = v;
    }
    const up = await request(`${this.upstream}${req.url ?? '/'}`, {
      method: (req.method ?? 'GET') as 'GET',
      headers,
      ...(req.method === 'GET' || req.method === 'HEAD' ? {} : { body }),
    });
    const text = Buffer.from(await up.body.arrayBuffer());
    if (isPush) this.outcomes.push(up.statusCode);
    const ct = up.headers['content-type'];
    res.writeHead(up.statusCode, typeof ct === 'string' ? { 'content-type': ct } : {}).end(text);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
