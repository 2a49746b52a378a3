// The part of the `ws` package (8.x, installed with @kubernetes/client-node) the WebSocket tests
// use: a real client and a real server on the other side of sluice. There is no @types/ws here.
declare module 'ws' {
  import type { EventEmitter } from 'node:events';
  import type { ClientRequest, IncomingMessage } from 'node:http';
  import type { Duplex } from 'node:stream';
  import type { Socket } from 'node:net';

  export default class WebSocket extends EventEmitter {
    constructor(url: string, protocols?: string | string[], options?: { createConnection?: () => Socket; perMessageDeflate?: boolean; headers?: Record<string, string> });
    readonly protocol: string;
    readonly extensions: string;
    send(data: string | Buffer, options?: { binary?: boolean; fin?: boolean }): void;
    ping(data?: string | Buffer): void;
    close(code?: number, reason?: string): void;
    terminate(): void;
    once(event: 'open', listener: () => void): this;
    once(event: 'message', listener: (data: Buffer, binary: boolean) => void): this;
    once(event: 'close', listener: (code: number, reason: Buffer) => void): this;
    once(event: 'unexpected-response', listener: (req: ClientRequest, res: IncomingMessage) => void): this;
    once(event: 'error', listener: (err: Error) => void): this;
    on(event: 'message', listener: (data: Buffer, binary: boolean) => void): this;
    on(event: 'ping', listener: (data: Buffer) => void): this;
  }

  /** ws's own frame parser (lib/receiver.js): the reference the frame-reader fuzz target is compared with. */
  export class Receiver extends EventEmitter {
    constructor(options: { isServer?: boolean; maxPayload?: number; maxFragments?: number; allowSynchronousEvents?: boolean });
    write(chunk: Buffer): boolean;
    on(event: 'message', listener: (data: Buffer, binary: boolean) => void): this;
    on(event: 'ping' | 'pong', listener: (data: Buffer) => void): this;
    on(event: 'conclude', listener: (code: number, reason: Buffer) => void): this;
    on(event: 'error', listener: (err: Error) => void): this;
  }

  export class WebSocketServer extends EventEmitter {
    constructor(options: { noServer: true; perMessageDeflate?: boolean; handleProtocols?: (protocols: Set<string>, req: IncomingMessage) => string | false });
    readonly clients: Set<WebSocket>;
    handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, cb: (ws: WebSocket) => void): void;
    on(event: 'connection', listener: (ws: WebSocket, req: IncomingMessage) => void): this;
    close(): void;
  }
}
