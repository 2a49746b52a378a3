// The Node floor for bench/proxy: the least an explicit HTTP proxy on sluice's stack can do —
// node:http parsing absolute-form requests, undici (keep-alive Agent) to the upstream, the body
// piped back. No policy, no facts, no strict checks, no metrics: the gap between this row and
// sluice's is what sluice's own stages cost; the gap to direct is Node's HTTP stack.
//   node bench/proxy/node-floor.ts <listenPort> <upstreamIp>
// Prints one JSON line {"ready":true} once listening. Never used outside the benchmark.
import { createServer } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { Agent, buildConnector } from 'undici';

const [port, upstreamIp] = process.argv.slice(2);
if (!port || !upstreamIp) {
  console.error('usage: node-floor.ts <listenPort> <upstreamIp>');
  process.exit(2);
}

const base = buildConnector({});
// Every name goes to the benchmark upstream (sluice gets the same through its resolve map).
const agent = new Agent({ keepAliveTimeout: 4000, connect: (opts, cb) => base({ ...opts, hostname: upstreamIp }, cb) });

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
function endToEnd(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/');
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  if (!hasBody) req.resume();
  agent.request({ origin: url.origin, path: url.pathname + url.search, method: req.method ?? 'GET', headers: endToEnd(req.headers), body: hasBody ? req : null }).then(
    (up) => {
      res.writeHead(up.statusCode, endToEnd(up.headers));
      up.body.pipe(res);
    },
    (err: Error) => {
      res.writeHead(502).end(err.message);
    },
  );
});
server.keepAliveTimeout = 65_000;
server.listen(Number(port), '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ ready: true })}\n`));
process.once('SIGTERM', () => process.exit(0));
