// The Kubernetes REST client the sidecar runs on: a KubeIdentity (kube-identity.ts: the pod's
// service account or a kubeconfig; kube-rest.ts: a @kubernetes/client-node KubeConfig, for the
// CLI) says where the API server is and authenticates each call; undici sends it with a per-call
// deadline, and failures become ApprovalApiErrors that carry the API server's own message (an
// admission webhook's refusal, an RBAC denial). Watches stream newline-delimited events.
// It imports no Kubernetes SDK (that SDK costs ~75 MB of RSS and a large share of start-up), never
// logs a token and never retries on its own; callers decide.
import { request } from 'undici';
import type { Dispatcher } from 'undici';
import { ApprovalApiError } from './errors.ts';

/** Where the API server is and who calls it. */
export interface KubeIdentity {
  /** the API server's URL, without a trailing slash */
  readonly server: string;
  /** the kubeconfig user's name (for messages), if any */
  readonly user: string | undefined;
  /** the context's namespace, if it names one */
  readonly namespace: string | undefined;
  /** Headers and dispatcher for one call (a token file is re-read as the kubelet rotates it). */
  authenticate(url: URL, method: string): Promise<{ headers: Record<string, string>; dispatcher: Dispatcher | undefined }>;
}

interface Status {
  kind?: string;
  message?: string;
  reason?: string;
  code?: number;
}

function apiError(status: number, body: string, what: string): ApprovalApiError {
  let message = body.trim();
  try {
    const parsed = JSON.parse(body) as Status;
    if (parsed.message) message = parsed.message;
  } catch {
    // not a Status object: keep the text
  }
  message ||= `HTTP ${status}`;
  switch (status) {
    case 401:
    case 403:
      return new ApprovalApiError('SLUICE_APPROVAL_API_FORBIDDEN', message, status);
    case 404:
      return new ApprovalApiError('SLUICE_APPROVAL_API_NOT_FOUND', message, status);
    case 409:
      return new ApprovalApiError('SLUICE_APPROVAL_API_CONFLICT', message, status);
    default:
      return status >= 500 ? new ApprovalApiError('SLUICE_APPROVAL_API_UNREACHABLE', `${what}: ${message}`, status) : new ApprovalApiError('SLUICE_APPROVAL_API_REJECTED', message, status);
  }
}

function transportError(err: unknown, what: string, timedOut: boolean): ApprovalApiError {
  if (timedOut) return new ApprovalApiError('SLUICE_APPROVAL_API_TIMEOUT', `${what}: no answer from the API server in time`);
  const e = err as { code?: string; cause?: { code?: string }; message?: string };
  const code = e.cause?.code ?? e.code ?? '';
  return new ApprovalApiError('SLUICE_APPROVAL_API_UNREACHABLE', `${what}: API server unreachable (${code || e.message || 'error'})`);
}

/**
 * The longest watch event line read (an object is at most ~1.5 MiB in etcd; its event wraps it):
 * past it the watch ends with an error instead of buffering whatever the stream sends.
 */
export const WATCH_LINE_MAX_BYTES = 4 * 1024 * 1024;
/** The largest answer body read from one call (a list included); past it the call fails. */
export const CALL_BODY_MAX_BYTES = 64 * 1024 * 1024;

const WATCH_EVENT_TYPES: ReadonlySet<unknown> = new Set(['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK', 'ERROR']);

/** A parsed watch line that is an event: a known type and an object (never null, never an array). */
function isWatchEvent(v: unknown): v is WatchEvent<unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const e = v as { type?: unknown; object?: unknown };
  return WATCH_EVENT_TYPES.has(e.type) && typeof e.object === 'object' && e.object !== null && !Array.isArray(e.object);
}

/** A body's text, or an error once it passes `max` bytes (the rest is not read). */
async function boundedText(body: AsyncIterable<Buffer> & { destroy(): unknown }, max: number, what: string): Promise<string> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of body) {
    bytes += chunk.length;
    if (bytes > max) {
      body.destroy();
      throw new ApprovalApiError('SLUICE_APPROVAL_API_UNREACHABLE', `${what}: the API server's answer is larger than ${max} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** An abort signal that fires after `ms`, remembering whether it was the deadline that fired. */
function deadline(ms: number): { signal: AbortSignal; abort(): void; timedOut(): boolean; clear(): void } {
  const controller = new AbortController();
  let fired = false;
  const timer = setTimeout(() => {
    fired = true;
    controller.abort();
  }, ms);
  return { signal: controller.signal, abort: () => controller.abort(), timedOut: () => fired, clear: () => clearTimeout(timer) };
}

export interface CallOptions {
  query?: Record<string, string | undefined>;
  body?: unknown;
  contentType?: string;
  timeoutMs?: number;
}

export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

export interface WatchHandle {
  /** Ends when the stream ends (null: closed normally) or fails. */
  done: Promise<ApprovalApiError | null>;
  abort(): void;
}

export class KubeClient {
  readonly identity: KubeIdentity;
  readonly server: string;
  readonly #timeoutMs: number;

  constructor(identity: KubeIdentity, timeoutMs = 10_000) {
    this.identity = identity;
    this.server = identity.server.replace(/\/$/, '');
    this.#timeoutMs = timeoutMs;
  }

  get user(): string | undefined {
    return this.identity.user;
  }

  async #prepare(method: string, path: string, query: CallOptions['query']): Promise<{ url: URL; headers: Record<string, string>; dispatcher: Dispatcher | undefined }> {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    const { headers, dispatcher } = await this.identity.authenticate(url, method);
    return { url, headers, dispatcher };
  }

  /** One call; resolves the parsed JSON body of a 2xx answer, throws ApprovalApiError otherwise. */
  async call<T>(method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE', path: string, options: CallOptions = {}): Promise<T> {
    const what = `${method} ${path}`;
    const { url, headers, dispatcher } = await this.#prepare(method, path, options.query);
    const limit = deadline(options.timeoutMs ?? this.#timeoutMs);
    try {
      const res = await request(url, {
        method,
        dispatcher,
        signal: limit.signal,
        headers: {
          ...headers,
          accept: 'application/json',
          ...(options.body === undefined ? {} : { 'content-type': options.contentType ?? 'application/json' }),
        },
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
      });
      const text = await boundedText(res.body, CALL_BODY_MAX_BYTES, what);
      if (res.statusCode >= 300) throw apiError(res.statusCode, text, what);
      return JSON.parse(text) as T;
    } catch (err) {
      if (err instanceof ApprovalApiError) throw err;
      throw transportError(err, what, limit.timedOut());
    } finally {
      limit.clear();
    }
  }

  /**
   * Opens a watch; resolves once the API server has accepted it (HTTP 200), so the caller knows the
   * stream is live. `connectTimeoutMs` bounds the wait for that answer; after it, the stream may be
   * idle for as long as the server keeps it (timeoutSeconds).
   */
  async watch<T>(path: string, query: Record<string, string | undefined>, onEvent: (e: WatchEvent<T>) => void, connectTimeoutMs = this.#timeoutMs): Promise<WatchHandle> {
    const what = `watch ${path}`;
    const { url, headers, dispatcher } = await this.#prepare('GET', path, { ...query, watch: '1' });
    const limit = deadline(connectTimeoutMs);
    let res;
    try {
      // No body timeout: a quiet watch is healthy; the server ends it after timeoutSeconds.
      res = await request(url, { method: 'GET', dispatcher, signal: limit.signal, bodyTimeout: 0, headers: { ...headers, accept: 'application/json' } });
    } catch (err) {
      throw transportError(err, what, limit.timedOut());
    } finally {
      limit.clear();
    }
    if (res.statusCode !== 200) {
      let text: string;
      try {
        text = await boundedText(res.body, CALL_BODY_MAX_BYTES, what);
      } catch (err) {
        if (err instanceof ApprovalApiError) throw err;
        throw transportError(err, what, false);
      }
      throw apiError(res.statusCode, text, what);
    }
    const body = res.body;
    const done = new Promise<ApprovalApiError | null>((resolve) => {
      let finished = false;
      const finish = (err: ApprovalApiError | null) => {
        if (finished) return;
        finished = true;
        resolve(err);
      };
      // A line that is not a watch event (null, a number, garbage, an unknown type) or one longer
      // than WATCH_LINE_MAX_BYTES ends the watch with an error: the caller re-lists. Nothing the
      // stream sends may throw out of this handler (an uncaught exception ends the sidecar).
      const malformed = (why: string): void => {
        finish(new ApprovalApiError('SLUICE_APPROVAL_API_UNREACHABLE', `${what}: ${why}`));
        body.destroy();
      };
      const onLine = (text: string): void => {
        if (!text.trim()) return;
        let event: unknown;
        try {
          event = JSON.parse(text);
        } catch {
          malformed('a watch line that is not JSON');
          return;
        }
        if (!isWatchEvent(event)) {
          malformed('a watch line that is not an event');
          return;
        }
        if (event.type === 'ERROR') {
          const status = event.object as Status;
          finish(apiError(typeof status.code === 'number' ? status.code : 500, JSON.stringify(status), what));
          return;
        }
        try {
          onEvent(event as WatchEvent<T>);
        } catch (err) {
          malformed(`the watch's event handler failed: ${(err as Error)?.message ?? String(err)}`);
        }
      };
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      body.on('data', (chunk: Buffer) => {
        let start = 0;
        while (!finished) {
          const nl = chunk.indexOf(0x0a, start);
          if (nl < 0) break;
          if (pendingBytes + nl - start > WATCH_LINE_MAX_BYTES) return malformed(`a watch line longer than ${WATCH_LINE_MAX_BYTES} bytes`);
          const part = chunk.subarray(start, nl);
          const line = pendingBytes ? Buffer.concat([...pending, part]) : part;
          pending = [];
          pendingBytes = 0;
          start = nl + 1;
          onLine(line.toString('utf8'));
        }
        if (finished || start >= chunk.length) return;
        pending.push(chunk.subarray(start));
        pendingBytes += chunk.length - start;
        if (pendingBytes > WATCH_LINE_MAX_BYTES) malformed(`a watch line longer than ${WATCH_LINE_MAX_BYTES} bytes`);
      });
      body.once('end', () => {
        // A last line without its newline, as readline would have handed it over.
        if (!finished && pendingBytes) onLine(Buffer.concat(pending).toString('utf8'));
        finish(null);
      });
      // `on`, not `once`: an aborted body may emit more than one error, and an unheard one throws.
      body.on('error', (err) => finish(limit.signal.aborted ? null : transportError(err, what, false)));
      body.once('close', () => finish(null));
    });
    return {
      done,
      abort: () => {
        limit.abort();
        body.destroy();
      },
    };
  }
}
