// Git smart-HTTP facts: which service (upload-pack = fetch, receive-pack = push), which phase
// (the `info/refs` advertisement or the POST that moves objects), which repository, and for a
// push the ref updates from the request body. Works for GitHub/GitLab/Gitea/Bitbucket/Azure
// shapes because it reads only the protocol's fixed path suffixes. A push gates what the
// upstream executes, so the path is read as liberally as any server could read it (encoded
// slashes, `;params`, case) and an ambiguous `service` counts as receive-pack: a request some
// server would run as a push is never classified as a fetch. Refs it cannot read exactly are
// left out (unknown), never guessed.
import type { GitFacts } from '../../../api/src/index.ts';
import { bodyEncoding, decodedBodyPrefix } from './body-prefix.ts';
import { parseReceivePackCommands } from './git-receive-pack.ts';
import type { ReceivePackParse } from './git-receive-pack.ts';
import { liberalSegments } from './request.ts';
import type { FactsRequest } from './request.ts';
import { defineDeriver } from './deriver.ts';

type GitService = GitFacts['service'];

export interface GitRequestShape {
  service: GitService;
  operation: GitFacts['operation'];
  phase: GitFacts['phase'];
  repo: string;
}

/** A service name as a server comparing loosely would read it (case, a C string's NUL). */
function serviceOf(value: string): GitService | undefined {
  const nul = value.indexOf('\0');
  const name = (nul >= 0 ? value.slice(0, nul) : value).trim().toLowerCase();
  return name === 'git-upload-pack' || name === 'git-receive-pack' ? name : undefined;
}

/**
 * The `service` of an info/refs request. Servers differ on which of repeated parameters wins
 * (git http-backend takes the last one) and on whether `;` separates parameters, so any
 * receive-pack among the readings makes it receive-pack.
 */
function queryService(req: FactsRequest): GitService | undefined {
  let found: GitService | undefined;
  for (const [name, values] of Object.entries(req.query)) {
    if (name.toLowerCase() !== 'service' || !Array.isArray(values)) continue;
    for (const v of values) {
      if (typeof v !== 'string') continue;
      // Some CGI libraries also split the query on ';': "service=a;service=b" is two values there.
      const [first, ...more] = v.split(';');
      const candidates = [first!, ...more.filter((p) => /^service=/i.test(p)).map((p) => p.slice('service='.length))];
      for (const c of candidates) {
        const s = serviceOf(c);
        if (s === 'git-receive-pack') return s;
        found ??= s;
      }
    }
  }
  return found;
}

/** Repository path from the segments before the protocol suffix: `org/repo`, `group/sub/project`. */
function repoFrom(segments: string[]): string | undefined {
  if (segments.length === 0) return undefined;
  const last = segments[segments.length - 1]!;
  const name = last.toLowerCase().endsWith('.git') ? last.slice(0, -4) : last;
  if (name === '') return undefined;
  return [...segments.slice(0, -1), name].join('/');
}

/** Classifies a git smart-HTTP request from method, path and query alone (no body). */
export function classifyGitRequest(req: FactsRequest): GitRequestShape | undefined {
  const method = req.method.toUpperCase();
  // Cheap reject before any decoding: every smart-HTTP path names one of these (any case, any escaping).
  const lower = req.path.toLowerCase();
  if (!lower.includes('refs') && !lower.includes('pack') && !lower.includes('%')) return undefined;
  const segments = liberalSegments(req.path);
  if (segments.length < 2) return undefined;
  const tail = segments[segments.length - 1]!.toLowerCase();
  if (tail === 'refs' && segments[segments.length - 2]!.toLowerCase() === 'info') {
    const service = queryService(req);
    if ((method !== 'GET' && method !== 'HEAD') || service === undefined) return undefined;
    const repo = repoFrom(segments.slice(0, -2));
    return repo === undefined ? undefined : shape(service, 'discovery', repo);
  }
  const service = serviceOf(tail);
  if (service === undefined || method !== 'POST') return undefined;
  const repo = repoFrom(segments.slice(0, -1));
  return repo === undefined ? undefined : shape(service, 'rpc', repo);
}

function shape(service: GitService, phase: GitFacts['phase'], repo: string): GitRequestShape {
  return { service, operation: service === 'git-receive-pack' ? 'push' : 'fetch', phase, repo };
}

function isPushRpc(shape: GitRequestShape): boolean {
  return shape.service === 'git-receive-pack' && shape.phase === 'rpc';
}

/** Bytes of body the git facts can use: the receive-pack command section, up to the cap. */
export function gitBodyPrefixNeeded(shape: GitRequestShape | undefined, maxBytes: number): number {
  return shape && isPushRpc(shape) ? maxBytes : 0;
}

function parseBody(req: FactsRequest, prefix: Buffer, maxBytes: number): ReceivePackParse {
  // A server that ignores Content-Encoding reads the raw bytes: when those could be pkt-lines
  // too (a brotli stream can start with any bytes), the two readings may carry different commands.
  if (bodyEncoding(req) !== 'identity' && /^[0-9a-fA-F]{4}/.test(prefix.toString('latin1', 0, 4))) {
    return { status: 'invalid', reason: 'a content-encoded body that also reads as pkt-lines' };
  }
  const decoded = decodedBodyPrefix(req, prefix, maxBytes);
  if (decoded === undefined) return { status: 'invalid', reason: 'unreadable content encoding' };
  return parseReceivePackCommands(decoded, maxBytes);
}

/** 0 when the prefix is enough for the git facts, else the minimum further bytes worth waiting for. */
export function gitMoreBodyNeeded(req: FactsRequest, shape: GitRequestShape | undefined, prefix: Buffer, maxBytes: number): number {
  if (!shape || !isPushRpc(shape) || prefix.length >= maxBytes) return 0;
  const parsed = parseBody(req, prefix, maxBytes);
  if (parsed.status !== 'incomplete') return 0;
  // For an encoded body the decoded shortfall says little about the wire; ask for one more chunk.
  return Math.max(1, Math.min(parsed.needBytes, maxBytes - prefix.length));
}

/**
 * Git facts for a classified request. `refs` is present only for a push whose command section
 * was read completely (an empty list is a probe that changes nothing); a truncated, oversized,
 * malformed or ambiguous section leaves it out (unknown refs: the policy holds the push).
 */
export function gitFacts(req: FactsRequest, shape: GitRequestShape, body: Buffer | undefined, maxBytes: number): GitFacts {
  const facts: GitFacts = { service: shape.service, operation: shape.operation, phase: shape.phase, repo: shape.repo };
  if (!isPushRpc(shape) || body === undefined) return facts;
  const parsed = parseBody(req, body, maxBytes);
  if (parsed.status === 'complete') {
    facts.refs = parsed.refs;
    if (parsed.pushOptions.length > 0) facts.push_options = parsed.pushOptions;
  }
  return facts;
}

/** facts.git: the service, phase and repository from the path; a push's ref updates from its body. */
export const gitDeriver = defineDeriver<'git', GitRequestShape>({
  key: 'git',
  classify: (req) => classifyGitRequest(req),
  bodyPrefixNeeded: (shape, config) => gitBodyPrefixNeeded(shape, config.maxGitCommandBytes),
  moreBodyNeeded: (req, shape, prefix, config) => gitMoreBodyNeeded(req, shape, prefix, config.maxGitCommandBytes),
  derive: (req, shape, body, config) => gitFacts(req, shape, body, config.maxGitCommandBytes),
});
