// The one way sluice registers a handler on a server it runs for the agent (node:http, node:http2,
// net, tls, and the per-connection events they hand over: 'request', 'connect', 'upgrade',
// 'clientError', 'connection', 'session', 'stream', ...). An exception thrown out of such a handler
// is raised inside node's own event emission, where nothing catches it: the process exits and
// every agent connection in the pod goes with it. guardedHandler runs the handler; if it throws
// (or returns a promise that rejects) the socket, stream or session the event was about is
// destroyed, the fault is counted (sluice_request_faults_total{phase="front"}) and logged, and
// the process goes on. It never swallows a fault silently and never answers the agent itself (an
// answer could land inside another request's response on the same connection).
// Also here: whether node:http still has a response pending on a socket it hands over.

/** Something the event was about that can be destroyed: a socket, an HTTP/2 stream or session. */
export interface Destroyable {
  destroy(err?: Error): unknown;
}

export interface HandlerFaults {
  /** A handler for `event` threw: count and log it (the victim has been destroyed already). */
  fault(event: string, err: Error): void;
}

function destroyable(v: unknown): v is Destroyable {
  return typeof v === 'object' && v !== null && typeof (v as Destroyable).destroy === 'function';
}

/**
 * What to destroy for an event's arguments: an HTTP/2 compatibility request's stream, an
 * HTTP/1.1 request's socket (a request's own destroy may leave its connection to serve the
 * next pipelined one), else the first argument that can be destroyed (a socket, a stream, a
 * session; 'clientError' passes the error first).
 */
export function victimOf(args: readonly unknown[]): Destroyable | undefined {
  for (const a of args) {
    if (typeof a !== 'object' || a === null) continue;
    const stream = (a as { stream?: unknown }).stream;
    if (destroyable(stream)) return stream;
    const socket = (a as { socket?: unknown; method?: unknown }).socket;
    if (typeof (a as { method?: unknown }).method === 'string' && destroyable(socket)) return socket;
    if (destroyable(a) && !(a instanceof Error)) return a;
  }
  return undefined;
}

/**
 * `handler`, made unable to throw out of node's event emission (see the header). `victim` names
 * what to destroy when the event's arguments do not (a socket's own 'data' or 'secure'); a
 * victim of undefined (a datagram socket's 'message') destroys nothing: the fault is still counted.
 */
export function guardedHandler<A extends unknown[]>(event: string, handler: (...args: A) => unknown, faults: HandlerFaults, victim: (...args: A) => Destroyable | undefined = (...args) => victimOf(args)): (...args: A) => void {
  return (...args: A) => {
    const failed = (err: unknown) => {
      const e = err instanceof Error ? err : new Error(String(err));
      try {
        victim(...args)?.destroy();
      } catch {
        // a victim that cannot even be destroyed: the fault is still counted below
      }
      try {
        faults.fault(event, e);
      } catch {
        // the fault report itself must not throw out of the event either
      }
    };
    try {
      const r = handler(...args);
      if (r && typeof (r as Promise<unknown>).then === 'function') (r as Promise<unknown>).then(undefined, failed);
    } catch (err) {
      failed(err);
    }
  };
}

/** The faults of server event handlers as the gateway reports them: counted by phase `front` and logged. */
export function frontFaults(count: () => void): HandlerFaults {
  return {
    fault(event, err) {
      count();
      process.emitWarning(`sluice: a '${event}' handler failed (sidecar.internal_error); its connection was closed: ${err.message}`);
    },
  };
}

/**
 * Whether node:http still has a response pending on `socket`: a request on the connection whose
 * answer is not finished (pipelined requests are answered in order, the first one bound to the
 * socket). A CONNECT or upgrade that arrives then cannot take the socket over: its bytes would
 * land inside that response, and node would answer the pending one onto a socket it no longer owns.
 */
export function responsePending(socket: object): boolean {
  return (socket as { _httpMessage?: unknown })._httpMessage != null;
}
