// A modelled coding-agent session for bench/policy's cached row: what an agent's policy inputs
// look like over time, built from the golden cases (so the decisions are the policy's real ones)
// with what varies in real traffic varied: LLM calls carry a prompt that grows and a new
// content-length every time (never repeat), package installs fetch some metadata again and
// mostly new tarballs, a controller polls the same list, S3 reads a working set of keys, every
// new connection asks its CONNECT decision again, a few requests carry a trace id. Every input
// gets a new session seq and bytes_out, as in the gateway. Deterministic (seeded), so every run
// sees the same trace; the hit rate a cache gets on it is a property of this model, not a
// measurement of real traffic. Bench code only.
import type { PolicyInput } from '../../api/src/index.ts';
import type { DecisionCase } from '../../policies/cases/cases.ts';
import { prng } from '../../testkit/prng.ts';

/** Weight per 100 requests and how each kind varies. */
const KINDS = [
  { weight: 20, name: 'llm call (prompt grows, new content-length)' },
  { weight: 6, name: 'git fetch discovery (same repos)' },
  { weight: 6, name: 'git upload-pack POST (new content-length)' },
  { weight: 10, name: 'npm metadata (300 packages, Zipf)' },
  { weight: 12, name: 'npm tarball (mostly new)' },
  { weight: 4, name: 'pypi index (100 projects)' },
  { weight: 10, name: 'kubernetes list pods (polling)' },
  { weight: 8, name: 's3 get object (1000 keys)' },
  { weight: 12, name: 'CONNECT of a new connection (3 hosts)' },
  { weight: 6, name: 'github API read with a trace id (always new)' },
  { weight: 6, name: 'unknown host denied (50 hosts)' },
] as const;

export const TRACE_KINDS: readonly string[] = KINDS.map((k) => `${k.weight}% ${k.name}`);

/** Zipf-like pick in [0, n): small indexes much more often (the packages every project uses). */
function zipf(random: () => number, n: number): number {
  return Math.min(n - 1, Math.floor(n ** random()) - 1);
}

const GET_HEADERS = { 'user-agent': 'npm/10.9.2 node/v24.11.0 linux x64 workspaces/false', accept: 'application/json', 'accept-encoding': 'gzip, deflate, br', 'npm-command': 'install' };

/** Returns a generator: call it for each next input of the session. */
export function agentTrace(cases: readonly DecisionCase[], seed = 23): () => PolicyInput {
  const byName = (name: string) => {
    const c = cases.find((x) => x.name === name);
    if (!c) throw new Error(`no golden case "${name}"`);
    return c.input;
  };
  const llm = byName('openai chat completion');
  const discovery = byName('git fetch discovery on github');
  const uploadPack = byName('git fetch upload-pack POST');
  const npmMeta = byName('npm install metadata');
  const tarball = byName('npm tarball');
  const pypi = byName('pypi simple index');
  const pods = byName('kubernetes list pods');
  const s3 = byName('s3 get object');
  const connects = ['connect to known host', 'connect to aws endpoint', 'connect to unknown host denied'].map(byName);
  const apiRead = byName('github API read');
  const unknown = byName('unknown host denied');
  const random = prng(seed);
  const total = KINDS.reduce((a, k) => a + k.weight, 0);
  let seq = 0;
  let bytesOut = 0;
  let promptBytes = 2048;
  let unique = 0;

  const make = (template: PolicyInput, request: Partial<PolicyInput['request']>, facts = template.facts): PolicyInput => {
    seq++;
    bytesOut += 700;
    return { request: { ...template.request, ...request }, facts, pod: template.pod, session: { ...template.session, seq, bytes_out: bytesOut } };
  };

  return () => {
    let pick = random() * total;
    let kind = 0;
    while (pick >= KINDS[kind]!.weight) pick -= KINDS[kind++]!.weight;
    switch (kind) {
      case 0: {
        promptBytes = random() < 0.1 ? 2048 : promptBytes + 300 + Math.floor(random() * 4000);
        const facts = { llm: { ...llm.facts.llm!, prompt_bytes: promptBytes } };
        return make(llm, { headers: { ...llm.request.headers, 'content-type': 'application/json', 'content-length': String(promptBytes + 180) } }, facts);
      }
      case 1: {
        const repo = ['acme/app', 'acme/lib', 'acme/infra'][Math.floor(random() * 3)]!;
        return make(discovery, { path: `/${repo}.git/info/refs` }, { git: { ...discovery.facts.git!, repo } });
      }
      case 2:
        return make(uploadPack, { headers: { ...uploadPack.request.headers, 'content-type': 'application/x-git-upload-pack-request', 'content-length': String(200 + Math.floor(random() * 5000)) } });
      case 3:
        return make(npmMeta, { path: `/pkg-${zipf(random, 300)}`, headers: GET_HEADERS });
      case 4: {
        // A tenth of the tarballs were fetched before in this session (a second install), the rest are new.
        const n = random() < 0.1 ? zipf(random, 300) : 1000 + unique++;
        return make(tarball, { path: `/pkg-${n}/-/pkg-${n}-1.0.${n % 7}.tgz`, headers: GET_HEADERS });
      }
      case 5:
        return make(pypi, { path: `/simple/project-${zipf(random, 100)}/` });
      case 6:
        return make(pods, {});
      case 7: {
        const key = `cache/${zipf(random, 1000)}.tgz`;
        return make(s3, { path: `/acme-build-cache/${key}` }, { aws: { ...s3.facts.aws!, key } });
      }
      case 8: {
        const c = connects[Math.floor(random() * connects.length)]!;
        return make(c, {});
      }
      case 9:
        return make(apiRead, { headers: { ...apiRead.request.headers, traceparent: `00-${(unique++).toString(16).padStart(32, '0')}-00f067aa0ba902b7-01` } });
      default:
        return make(unknown, { host: `host-${Math.floor(random() * 50)}.example` });
    }
  };
}
