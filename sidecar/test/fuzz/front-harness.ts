// The real sidecar behind the fuzzed HTTP fronts: a policy that allows github.com (port 80 and
// 443) except paths containing "deny", upstreams on loopback that record every request head as it
// arrives and every complete body, and the sidecar's own events — which requests entered the
// pipeline and finished, what was decided just before forwarding, which refusals were recorded.
// Short agent timeouts so an input the sidecar is still waiting on ends quickly.
import { readFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { get as httpsGet } from 'node:https';
import { buildBundle } from '../../../testkit/policy/opa-build.ts';
import { startTestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import { createTestCa, startHttpUpstream, startHttpsUpstream } from '../../../testkit/sidecar/upstreams.ts';
import type { RecordedRequest, TestUpstream } from '../../../testkit/sidecar/upstreams.ts';
import type { RequestContext } from '../../src/proxy/request-context.ts';

// Only github.com is ever allowed: anything else is denied, so no fuzzed Host reaches a real network.
const POLICY = `package sluice

default decision := {"allow": false, "code": "fuzz.deny", "reason": "fuzz policy: only github.com"}

decision := {"allow": true, "code": "fuzz.allow", "reason": "fuzz policy"} if {
  input.request.host == "github.com"
  not contains(input.request.path, "deny")
}
`;

export interface Decided {
  id: string;
  method: string;
  /** what goes upstream (origin-form) */
  path: string;
  /** the path the policy saw */
  summaryPath: string;
}

export interface Head {
  method: string;
  url: string;
  host: string | undefined;
  /** the sidecar request id the forwarding stage stamped on it (absent: not forwarded by a decision) */
  ctx: string | undefined;
}

export interface Marks {
  heads: number;
  complete: number;
  decided: number;
  done: number;
  malformed: number;
}

export interface FrontHarness {
  sidecar: TestSidecar;
  ca: string;
  heads: Head[];
  complete: RecordedRequest[];
  decided: Decided[];
  done: RequestContext[];
  malformed: { code: string; status: number; request_id?: string }[];
  mark(): Marks;
  /** Resolves once no request is in the sidecar's pipeline (bounded: rejects after 5 s). */
  quiet(): Promise<void>;
  close(): Promise<void>;
}

export async function startFrontHarness(): Promise<FrontHarness> {
  const heads: Head[] = [];
  const ok = (_req: IncomingMessage, res: ServerResponse) => res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 }).end('ok');
  const plain: TestUpstream = await startHttpUpstream(ok);
  const ca = await createTestCa();
  const tls: TestUpstream = await startHttpsUpstream(ca, ['github.com'], ok);
  for (const u of [plain, tls]) {
    u.server.prependListener('request', (req: IncomingMessage) => {
      if (req.headers['x-fuzz-barrier']) return;
      heads.push({ method: req.method ?? '', url: req.url ?? '', host: req.headers.host, ctx: req.headers['x-fuzz-ctx'] as string | undefined });
    });
  }
  const decided: Decided[] = [];
  const done: RequestContext[] = [];
  const malformed: FrontHarness['malformed'] = [];
  let active = 0;
  let waiters: (() => void)[] = [];
  const sidecar = await startTestSidecar({
    bundle: buildBundle(POLICY, 'fuzz'),
    resolve: { 'github.com:80': plain.dial, 'github.com:443': tls.dial },
    extraRootsFiles: [ca.caFile],
    config: { limits: { headersTimeoutMs: 400, keepAliveTimeoutMs: 400, requestBodyTimeoutMs: 400, firstBytesTimeoutMs: 400 } },
    events: {
      requestStart: () => active++,
      requestDone: (ctx) => {
        done.push(ctx);
        if (--active === 0) {
          const w = waiters;
          waiters = [];
          for (const f of w) f();
        }
      },
      malformed: (m) => malformed.push(m),
      upgradeDecided: (u) => malformed.push(u),
    },
    features: [
      {
        name: 'fuzz-observer',
        phases: {
          'before-forward': (ctx) => {
            decided.push({ id: ctx.id, method: ctx.upstream.method, path: ctx.upstream.path, summaryPath: ctx.summary.path });
            ctx.upstream.headers['x-fuzz-ctx'] = ctx.id;
          },
        },
      },
    ],
  });
  const both = () => [...plain.requests, ...tls.requests];
  return {
    sidecar,
    ca: sidecar.trust.caFile,
    heads,
    get complete() {
      return both();
    },
    decided,
    done,
    malformed,
    mark: () => ({ heads: heads.length, complete: both().length, decided: decided.length, done: done.length, malformed: malformed.length }),
    quiet: async () => {
      if (active > 0) {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`${active} request(s) still in the sidecar's pipeline after 5 s`)), 5000);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      // A request the sidecar aborted may still be on its way into an upstream: one round trip
      // to each upstream after it lets those bytes land first.
      await Promise.all([barrier(`http://${plain.dial}/`), barrier(`https://${tls.dial}/`, ca.caFile)]);
    },
    close: async () => {
      await sidecar.stop();
      await plain.close();
      await tls.close();
    },
  };
}

function barrier(url: string, caFile?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const get = url.startsWith('https') ? httpsGet : httpGet;
    const req = get(url, { headers: { 'x-fuzz-barrier': '1', host: 'github.com' }, servername: 'github.com', ...(caFile ? { ca: readFileSync(caFile) } : {}), agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve());
    });
    req.on('error', reject);
  });
}

/** The ids of every refusal and answer the sidecar recorded (pipeline answers and pre-pipeline refusals). */
export function recordedIds(h: FrontHarness, from: Marks): Set<string> {
  return new Set([...h.done.slice(from.done).map((c) => c.id), ...h.malformed.slice(from.malformed).flatMap((m) => (m.request_id ? [m.request_id] : []))]);
}
