// Upstream servers for tests: HTTPS (and plain HTTP) servers on loopback that present
// certificates for the names the agent asks for (github.com, registry.npmjs.org, …), issued by
// a test CA the sidecar is told to trust. The sidecar's resolve overrides send those names here.
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generatePodCa } from '../../sidecar/src/tls/pod-ca.ts';
import { mintLeafCertificate } from '../../sidecar/src/tls/leaf-certificates.ts';
import type { PodCa } from '../../sidecar/src/tls/pod-ca.ts';

export interface TestCa {
  ca: PodCa;
  caFile: string;
}

export async function createTestCa(name = 'sluice test upstream CA'): Promise<TestCa> {
  const ca = await generatePodCa(name);
  const dir = mkdtempSync(join(tmpdir(), 'sluice-upstream-ca-'));
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, ca.certPem);
  return { ca, caFile };
}

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

export interface TestUpstream {
  server: Server;
  address: AddressInfo;
  /** host:port the sidecar should dial for this upstream */
  dial: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

/** An echo handler: answers JSON describing what it received (method, url, headers, body size). */
export const echoHandler = (req: IncomingMessage, res: ServerResponse, body: Buffer): void => {
  const text = JSON.stringify({ method: req.method, url: req.url, host: req.headers.host, bytes: body.length, authorization: req.headers.authorization ?? null });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
};

export type BodyHandler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

function recording(requests: RecordedRequest[], handler: BodyHandler): RequestListener {
  return (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(req, res, body);
    });
  };
}

async function listen(server: Server, host: string): Promise<AddressInfo> {
  await new Promise<void>((resolve) => server.listen(0, host, () => resolve()));
  return server.address() as AddressInfo;
}

/** An HTTPS upstream with a certificate for every name in `names` (SANs on one leaf each). */
export async function startHttpsUpstream(ca: TestCa, names: string[], handler: BodyHandler = echoHandler, host = '127.0.0.1'): Promise<TestUpstream> {
  const requests: RecordedRequest[] = [];
  const leaves = new Map<string, { cert: string }>();
  for (const name of names) leaves.set(name, { cert: (await mintLeafCertificate(ca.ca, name)).toString('pem') });
  const first = leaves.get(names[0]!)!;
  const server = createHttpsServer(
    {
      cert: first.cert,
      key: ca.ca.leafKeyPem,
      SNICallback: (servername, cb) => {
        const leaf = leaves.get(servername) ?? first;
        void import('node:tls').then((tls) => cb(null, tls.createSecureContext({ cert: leaf.cert, key: ca.ca.leafKeyPem })));
      },
    },
    recording(requests, handler),
  );
  const address = await listen(server, host);
  return { server, address, dial: `${host.includes(':') ? `[${host}]` : host}:${address.port}`, requests, close: () => closeServer(server) };
}

export async function startHttpUpstream(handler: BodyHandler = echoHandler, host = '127.0.0.1'): Promise<TestUpstream> {
  const requests: RecordedRequest[] = [];
  const server = createHttpServer(recording(requests, handler));
  const address = await listen(server, host);
  return { server, address, dial: `${host.includes(':') ? `[${host}]` : host}:${address.port}`, requests, close: () => closeServer(server) };
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
