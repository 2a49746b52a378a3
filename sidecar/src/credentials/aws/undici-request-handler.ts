// A smithy request handler that sends the STS client's requests through an undici dispatcher —
// normally the sidecar's own upstream agent — so STS is reached the way every other upstream is:
// the sidecar resolves the name (with its configured overrides) and verifies TLS against the
// system roots plus configured extra roots. It adds nothing to the request and logs nothing.
import type { Readable } from 'node:stream';
import type { HttpHandlerOptions, HttpRequest, HttpResponse } from '@smithy/types';
import type { Dispatcher } from 'undici';

/** undici writes these itself (and refuses `expect`): the connection's business, not the request's. */
const CONNECTION_HEADERS = new Set(['host', 'expect', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade']);

export class UndiciRequestHandler {
  readonly #dispatcher: Dispatcher;
  readonly #timeoutMs: number;
  readonly metadata = { handlerProtocol: 'http/1.1' };

  constructor(dispatcher: Dispatcher, timeoutMs: number) {
    this.#dispatcher = dispatcher;
    this.#timeoutMs = timeoutMs;
  }

  async handle(request: HttpRequest, options: HttpHandlerOptions = {}): Promise<{ response: HttpResponse }> {
    const port = request.port ? `:${request.port}` : '';
    const query = Object.entries(request.query ?? {})
      .flatMap(([k, v]) => (v === null ? [encodeURIComponent(k)] : (Array.isArray(v) ? v : [v]).map((x) => `${encodeURIComponent(k)}=${encodeURIComponent(x)}`)))
      .join('&');
    const signals = [AbortSignal.timeout(this.#timeoutMs)];
    if (options.abortSignal) signals.push(options.abortSignal as AbortSignal);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(request.headers)) if (!CONNECTION_HEADERS.has(k.toLowerCase())) headers[k] = v;
    const res = await this.#dispatcher.request({
      origin: `${request.protocol}//${request.hostname}${port}`,
      path: `${request.path}${query ? `?${query}` : ''}`,
      method: request.method,
      headers,
      body: (request.body as string | Buffer | Readable | undefined) ?? null,
      signal: AbortSignal.any(signals),
    });
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
    return { response: { statusCode: res.statusCode, headers: out, body: res.body } };
  }

  updateHttpClientConfig(): void {
    // Configuration comes from the dispatcher.
  }

  httpHandlerConfigs(): Record<string, never> {
    return {};
  }

  destroy(): void {
    // The dispatcher belongs to the sidecar.
  }
}
