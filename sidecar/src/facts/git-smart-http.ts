// Git smart-HTTP facts: which service (upload-pack = fetch, receive-pack = push), which phase
// (the `info/refs` advertisement or the POST that moves objects), which repository, and for a
// push the ref updates from the request body. Works for GitHub/GitLab/Gitea/Bitbucket/Azure
// shapes because it reads only the protocol's fixed path suffixes. It must never guess: a path
// that does not decode cleanly, or a method that does not match the phase, yields no git facts.
import type { GitFacts } from '../../../api/src/index.ts';
import { decodedBodyPrefix } from './body-prefix.ts';
import { parseReceivePackCommands } from './git-receive-pack.ts';
import type { ReceivePackParse } from './git-receive-pack.ts';
import { normalisedSegments, queryOf } from './request.ts';
import type { FactsRequest } from './request.ts';

type GitService = GitFacts['service'];

export interface GitRequestShape {
  service: GitService;
  operation: GitFacts['operation'];
  phase: GitFacts['phase'];
  repo: string;
}

function isService(value: string | undefined): value is GitService {
  return value === 'git-upload-pack' || value === 'git-receive-pack';
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
  // Cheap reject before any decoding: every smart-HTTP path ends in one of these.
  const p = req.path;
  if (!p.endsWith('/info/refs') && !p.endsWith('/git-upload-pack') && !p.endsWith('/git-receive-pack')) return undefined;
  const segments = normalisedSegments(p);
  if (!segments || segments.length < 2) return undefined;
  const tail = segments[segments.length - 1]!;
  if (tail === 'refs' && segments[segments.length - 2] === 'info') {
    const service = queryOf(req, 'service');
    if ((method !== 'GET' && method !== 'HEAD') || !isService(service)) return undefined;
    const repo = repoFrom(segments.slice(0, -2));
    return repo === undefined ? undefined : shape(service, 'discovery', repo);
  }
  if (!isService(tail) || method !== 'POST') return undefined;
  const repo = repoFrom(segments.slice(0, -1));
  return repo === undefined ? undefined : shape(tail, 'rpc', repo);
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
 * was read completely; a truncated, oversized or malformed section leaves it out (unknown).
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
