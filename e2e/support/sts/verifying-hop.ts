// The front door of the test AWS: an HTTPS server for the AWS endpoint names (trusted by the
// sidecar through a test CA) in front of moto. moto answers AssumeRoleWithWebIdentity for any
// token, so the hop does what STS does first: it verifies the web identity token against the real
// kube-apiserver's JWKS (issuer, audience, expiry) and the role's allowed subject, refusing like
// STS (InvalidIdentityToken / ExpiredTokenException) — a wrong audience or an expired token fails.
// A verified call goes on signed as the hop's own IAM user (moto enforces IAM). The hop records
// the credentials STS issued, verifies presigned URLs and aws-chunked chunk signatures with the
// independent reference implementation (moto checks neither), and records every request it saw.
// Everything else goes to moto as it came; moto verifies its SigV4 signature with botocore.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { request } from 'undici';
import { startHttpsUpstream } from '../../../testkit/sidecar/upstreams.ts';
import type { TestCa, TestUpstream } from '../../../testkit/sidecar/upstreams.ts';
import { verifyServiceAccountToken } from './jwks.ts';
import type { Jwks } from './jwks.ts';
import { amzDate, tag } from './moto.ts';
import type { Moto } from './moto.ts';
import { refSignHeaders, refVerify, refVerifyChunked, signingKey } from './sigv4-reference.ts';
import type { RefCredentials } from './sigv4-reference.ts';

export interface HopOptions {
  ca: TestCa;
  moto: Moto;
  /** Host names the hop serves (STS, S3, virtual-hosted buckets). */
  names: string[];
  jwks: Jwks;
  issuer: string;
  /** The audience STS expects (an IAM OIDC provider's client id). */
  audience: string;
  /** roleArn → the token subjects its trust policy allows */
  trust: Record<string, string[]>;
  /** The IAM user the hop calls moto as for AssumeRoleWithWebIdentity. */
  hopUser: RefCredentials;
  /** The hop's clock (tests move it to make tokens expire). */
  now?: () => number;
  /** Address to listen on (default loopback; e2e/cluster binds the node's bridge address so pods reach it). */
  host?: string;
}

export interface HopRecord {
  method: string;
  host: string;
  url: string;
  headers: IncomingMessage['headers'];
  bodyBytes: number;
  /** what the hop concluded before forwarding */
  check: string;
  status?: number;
}

export class VerifyingHop {
  readonly records: HopRecord[] = [];
  /** Credentials STS handed out, by access key id. */
  readonly issued = new Map<string, RefCredentials & { subject: string; roleArn: string }>();
  /** Token checks that failed (reason), newest last. */
  readonly rejected: string[] = [];
  readonly #o: HopOptions;
  #upstream!: TestUpstream;

  constructor(o: HopOptions) {
    this.#o = o;
  }

  static async start(o: HopOptions): Promise<VerifyingHop> {
    const hop = new VerifyingHop(o);
    hop.#upstream = await startHttpsUpstream(o.ca, o.names, (req, res, body) => {
      hop.#handle(req, res, body).catch((err: Error) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`hop error: ${err.message}`);
      });
    }, o.host);
    return hop;
  }

  /** host:port for the sidecar's resolve overrides */
  get dial(): string {
    return this.#upstream.dial;
  }

  get port(): number {
    return this.#upstream.address.port;
  }

  /** Moves the hop's clock (a token that is valid for the sidecar is expired for the hop). */
  clockOffsetMs = 0;

  #now(): number {
    return (this.#o.now?.() ?? Date.now()) + this.clockOffsetMs;
  }

  async #handle(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
    const host = String(req.headers.host ?? '');
    const record: HopRecord = { method: req.method ?? '', host, url: req.url ?? '', headers: req.headers, bodyBytes: body.length, check: 'forwarded' };
    this.records.push(record);
    const headers = flat(req.headers);
    const form = String(headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded') ? new URLSearchParams(body.toString()) : undefined;
    if (form?.get('Action') === 'AssumeRoleWithWebIdentity') {
      await this.#assumeRole(form, headers, record, res);
      return;
    }
    const lookup = (akid: string) => this.issued.get(akid);
    let out = { path: req.url ?? '/', headers, body };
    if (/[?&]X-Amz-Signature=/.test(req.url ?? '')) {
      const verdict = refVerify({ method: req.method ?? 'GET', path: req.url ?? '/', headers, body }, lookup, this.#now());
      record.check = verdict.ok ? 'presigned verified' : `presigned refused: ${verdict.reason}`;
      if (!verdict.ok) return sendError(res, 403, 'SignatureDoesNotMatch', verdict.reason ?? '', record);
      // moto checks header signatures only: go on header-signed with the same credentials.
      const creds = this.issued.get(verdict.accessKeyId!)!;
      const path = stripPresign(req.url ?? '/');
      const toSign: Record<string, string> = { host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' };
      for (const [k, v] of Object.entries(headers)) if (k.startsWith('x-amz-')) toSign[k] = v;
      const signed = refSignHeaders({ method: req.method ?? 'GET', path, headers: toSign, body }, creds, verdict.scope!.split('/')[1]!, verdict.scope!.split('/')[2]!, amzDate(this.#now()));
      out = { path, headers: { ...headers, ...signed.headers }, body };
    } else if (headers['x-amz-content-sha256']?.startsWith('STREAMING-AWS4-HMAC-SHA256-PAYLOAD')) {
      const verdict = refVerify({ method: req.method ?? 'PUT', path: req.url ?? '/', headers, body }, lookup, this.#now());
      if (!verdict.ok) {
        record.check = `aws-chunked seed refused: ${verdict.reason}`;
      } else {
        const creds = this.issued.get(verdict.accessKeyId!)!;
        const [date, region, service] = verdict.scope!.split('/') as [string, string, string];
        const chunks = refVerifyChunked(body, signingKey(creds.secretAccessKey, date, region, service), verdict.longDate!, verdict.scope!, verdict.signature!);
        record.check = chunks.ok ? 'aws-chunked verified' : `aws-chunked refused: ${chunks.reason}`;
        if (!chunks.ok) return sendError(res, 403, 'SignatureDoesNotMatch', chunks.reason ?? '', record);
      }
    }
    await this.#forward(req.method ?? 'GET', out, res, record);
  }

  async #assumeRole(form: URLSearchParams, headers: Record<string, string>, record: HopRecord, res: ServerResponse): Promise<void> {
    if (headers.authorization) return sendError(res, 400, 'InvalidParameterValue', 'AssumeRoleWithWebIdentity must not be signed', record);
    const roleArn = form.get('RoleArn') ?? '';
    const check = verifyServiceAccountToken(form.get('WebIdentityToken') ?? '', this.#o.jwks, { issuer: this.#o.issuer, audience: this.#o.audience, now: this.#now() });
    if (!check.ok) {
      this.rejected.push(check.reason);
      return sendError(res, 400, check.code, check.reason, record);
    }
    if (!(this.#o.trust[roleArn] ?? []).includes(check.subject)) {
      this.rejected.push(`${check.subject} may not assume ${roleArn}`);
      return sendError(res, 403, 'AccessDenied', `Not authorized to perform sts:AssumeRoleWithWebIdentity`, record);
    }
    record.check = `web identity ${check.subject} verified`;
    const body = Buffer.from(form.toString());
    const signed = refSignHeaders({ method: 'POST', path: '/', headers: { host: 'sts.amazonaws.com', 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }, body }, this.#o.hopUser, 'us-east-1', 'sts', amzDate(this.#now()));
    const answer = await this.#forward('POST', { path: '/', headers: signed.headers, body }, res, record);
    if (answer.status === 200) {
      const text = answer.body.toString();
      this.issued.set(tag(text, 'AccessKeyId'), { accessKeyId: tag(text, 'AccessKeyId'), secretAccessKey: tag(text, 'SecretAccessKey'), sessionToken: tag(text, 'SessionToken'), subject: check.subject, roleArn });
    }
  }

  async #forward(method: string, out: { path: string; headers: Record<string, string>; body: Buffer }, res: ServerResponse, record: HopRecord): Promise<{ status: number; body: Buffer }> {
    const { expect: _e, 'transfer-encoding': _t, connection: _c, ...headers } = out.headers;
    headers['content-length'] = String(out.body.length);
    const upstream = await request(`${this.#o.moto.endpoint}${out.path}`, { method: method as 'GET', headers, body: out.body.length || !['GET', 'HEAD'].includes(method) ? out.body : null });
    const answer = Buffer.from(await upstream.body.arrayBuffer());
    const { connection: _c2, 'transfer-encoding': _t2, 'keep-alive': _k, ...h } = upstream.headers;
    record.status = upstream.statusCode;
    res.writeHead(upstream.statusCode, { ...(h as Record<string, string>), 'content-length': String(answer.length) });
    res.end(method === 'HEAD' ? undefined : answer);
    return { status: upstream.statusCode, body: answer };
  }

  async close(): Promise<void> {
    await this.#upstream.close();
  }
}

function flat(headers: IncomingMessage['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(',') : v;
  return out;
}

function stripPresign(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const kept = url
    .slice(q + 1)
    .split('&')
    .filter((p) => !/^X-Amz-(Algorithm|Credential|Date|Expires|SignedHeaders|Signature|Security-Token)=/i.test(p));
  return kept.length ? `${url.slice(0, q)}?${kept.join('&')}` : url.slice(0, q);
}

function sendError(res: ServerResponse, status: number, code: string, message: string, record: HopRecord): void {
  record.check = `refused: ${code}`;
  record.status = status;
  const xml = `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${message.replace(/[<&>]/g, '')}</Message></Error><RequestId>hop</RequestId></ErrorResponse>`;
  res.writeHead(status, { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(xml) }).end(xml);
}
