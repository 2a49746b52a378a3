// The Kubernetes REST client the sidecar runs on: a KubeIdentity (kube-identity.ts: the pod's
// service account or a kubeconfig; kube-rest.ts: a @kubernetes/client-node KubeConfig, for the
// CLI) says where the API server is and authenticates each call; undici sends it with a per-call
// deadline, and failures become ApprovalApiErrors that carry the API server's own message (an
// admission webhook's refusal, an RBAC denial). Watches stream newline-delimited events.
// It imports no Kubernetes SDK (that SDK costs ~75 MB of RSS and a large share of start-up), never
// logs a token and never retries on its own; callers decide.
import { createInterface } from 'node:readline';
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
      const text = await res.body.text();
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
    if (res.statusCode !== 200) throw apiError(res.statusCode, await res.body.text(), what);
    const body = res.body;
    const done = new Promise<ApprovalApiError | null>((resolve) => {
      let finished = false;
      const finish = (err: ApprovalApiError | null) => {
        if (finished) return;
        finished = true;
        resolve(err);
      };
      const lines = createInterface({ input: body, crlfDelay: Infinity });
      // readline re-emits its input's errors; unheard, they would throw.
      lines.on('error', () => undefined);
      lines.on('line', (line) => {
        if (!line) return;
        let event: WatchEvent<T>;
        try {
          event = JSON.parse(line) as WatchEvent<T>;
        } catch {
          return;
        }
        if (event.type === 'ERROR') {
          const status = event.object as Status;
          finish(apiError(status.code ?? 500, JSON.stringify(status), what));
          return;
        }
        onEvent(event);
      });
      // `on`, not `once`: an aborted body may emit more than one error, and an unheard one throws.
      body.on('error', (err) => finish(limit.signal.aborted ? null : transportError(err, what, false)));
      body.once('end', () => finish(null));
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
