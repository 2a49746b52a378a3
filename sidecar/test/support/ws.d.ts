// What @types/ws does not declare: ws's own frame parser (lib/receiver.js, exported by the package as
// Receiver), the reference the frame-reader fuzz target is compared with. Everything else the
// WebSocket tests use comes from @types/ws.
import type { EventEmitter } from 'node:events';

declare module 'ws' {
  export class Receiver extends EventEmitter {
    constructor(options: { isServer?: boolean; maxPayload?: number; maxFragments?: number; allowSynchronousEvents?: boolean });
    write(chunk: Buffer): boolean;
    on(event: 'message', listener: (data: Buffer, binary: boolean) => void): this;
    on(event: 'ping' | 'pong', listener: (data: Buffer) => void): this;
    on(event: 'conclude', listener: (code: number, reason: Buffer) => void): this;
    on(event: 'error', listener: (err: Error) => void): this;
  }
}
