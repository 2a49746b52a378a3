// The one way providers talk to their token services (token endpoint, TokenRequest): a bounded
// undici request whose failures become CredentialErrors — unreachable, timed out, 5xx or 429 is
// `provider_unavailable` (503), any other refusal `provider_rejected` (502). Error messages carry
// the provider, the endpoint's origin and status and at most a standard error code, never a body
// that might echo a token.
import type { Dispatcher } from 'undici';
import { CredentialError } from './errors.ts';

const MAX_ANSWER_BYTES = 256 * 1024;

export interface ProviderCall {
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
}

export interface ProviderAnswer {
  status: number;
  text: string;
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(bad url)';
  }
}

/** Performs the call; rejects with `provider_unavailable` when no answer could be had. */
export async function callProvider(dispatcher: Dispatcher, call: ProviderCall, provider: string, timeoutMs: number): Promise<ProviderAnswer> {
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const res = await dispatcher.request({
      origin: new URL(call.url).origin,
      path: `${new URL(call.url).pathname}${new URL(call.url).search}`,
      method: call.method,
      headers: call.headers,
      body: call.body ?? null,
      signal,
    });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_ANSWER_BYTES) {
        res.body.destroy();
        throw new CredentialError('credentials.provider_rejected', provider, `${provider}: ${originOf(call.url)} answered more than ${MAX_ANSWER_BYTES} bytes`);
      }
      chunks.push(chunk);
    }
    return { status: res.statusCode, text: Buffer.concat(chunks).toString('utf8') };
  } catch (err) {
    if (err instanceof CredentialError) throw err;
    const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
    const code = e.code ?? e.cause?.code ?? (signal.aborted ? 'TIMEOUT' : e.name);
    throw new CredentialError('credentials.provider_unavailable', provider, `${provider}: cannot reach ${originOf(call.url)} (${code})`, { cause: err });
  }
}

/** The status of an answer as a CredentialError, or undefined for 2xx. `detail` is a short code. */
export function answerError(answer: ProviderAnswer, provider: string, url: string, detail?: string): CredentialError | undefined {
  if (answer.status >= 200 && answer.status < 300) return undefined;
  const unavailable = answer.status >= 500 || answer.status === 429;
  const what = `${provider}: ${originOf(url)} answered ${answer.status}${detail ? ` (${detail})` : ''}`;
  return new CredentialError(unavailable ? 'credentials.provider_unavailable' : 'credentials.provider_rejected', provider, what);
}

/** A short, safe error identifier from an OAuth/Kubernetes error body (`error`, `reason`), if any. */
export function errorCodeOf(text: string): string | undefined {
  try {
    const body = JSON.parse(text) as Record<string, unknown>;
    const code = body.error ?? body.reason;
    return typeof code === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(code) ? code : undefined;
  } catch {
    return undefined;
  }
}

/** Header values sluice injects must be one visible-ASCII token: no CR/LF or spaces to smuggle headers. */
export function isHeaderSafe(value: string): boolean {
  return value.length > 0 && value.length <= 16 * 1024 && /^[\x21-\x7e]+$/.test(value);
}
