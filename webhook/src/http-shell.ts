// The little HTTP the webhook needs, on node:http directly: the route of a request (query and a
// trailing slash ignored, as the API server appends ?timeout=), a JSON body read under a byte
// limit, and JSON/text answers with an exact content-length. It must never buffer more than the
// limit of a body nor throw on what a client sends: bad bodies are BodyError with their status.
import type { IncomingMessage, ServerResponse } from 'node:http';

export class BodyError extends Error {
  readonly status: 400 | 413 | 415;
  constructor(status: 400 | 413 | 415, message: string) {
    super(message);
    this.name = 'BodyError';
    this.status = status;
  }
}

/** The path of a request URL without its query and a trailing slash ('/' stays '/'). */
export function routePath(url: string | undefined): string {
  let path = url ?? '/';
  const q = path.indexOf('?');
  if (q >= 0) path = path.slice(0, q);
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/**
 * Reads the whole body (at most `limit` bytes) and parses it as JSON; an empty body is `{}` (as
 * express.json had it, so an empty review is a malformed review, not a parse error). Bodies the
 * webhook cannot read: 413 past the limit (declared or sent), 415 for a content-encoding (the API
 * server sends none), 400 for text that is not JSON.
 */
export async function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
    req.resume();
    throw new BodyError(415, `unsupported content encoding "${encoding}"`);
  }
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    req.resume();
    throw new BodyError(413, 'request entity too large');
  }
  const { chunks, size } = await new Promise<{ chunks: Buffer[]; size: number }>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      // Keep draining without keeping anything (the answer goes out on this connection, closed after it).
      req.off('data', onData);
      req.resume();
      chunks.length = 0;
      reject(new BodyError(413, 'request entity too large'));
    };
    req.on('data', onData);
    req.once('end', () => resolve({ chunks, size }));
    req.once('error', reject);
  });
  if (size === 0) return {};
  const text = (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new BodyError(400, `malformed JSON: ${(err as Error).message}`);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, close = false): void {
  sendText(res, status, 'application/json; charset=utf-8', JSON.stringify(body), close);
}

export function sendText(res: ServerResponse, status: number, contentType: string, text: string, close = false): void {
  const headers: Record<string, string | number> = { 'content-type': contentType, 'content-length': Buffer.byteLength(text) };
  if (close) headers.connection = 'close';
  res.writeHead(status, headers).end(text);
}
