// git's own smart-HTTP server (`git http-backend`, CGI) as a request handler for the test
// upstreams in testkit/sidecar/upstreams.ts, plus a bare repository to serve. Real git
// on both ends: clients clone and push through the sidecar exactly as agents do.
import { spawn, spawnSync } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BodyHandler } from '../sidecar/upstreams.ts';

function git(cwd: string, args: string[]): void {
  const res = spawnSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', HOME: cwd } });
  if (res.status !== 0) throw new Error(`git ${args.join(' ')}: ${res.stderr}`);
}

/** Creates `<root>/<org>/<name>.git` with one commit on main; pushes over HTTP are enabled. */
export function createBareRepo(org: string, name: string, root = mkdtempSync(join(tmpdir(), 'sluice-git-'))): { root: string; path: string } {
  const work = mkdtempSync(join(tmpdir(), 'sluice-git-work-'));
  git(work, ['init', '-q', '-b', 'main']);
  writeFileSync(join(work, 'README.md'), `# ${name}\n`);
  git(work, ['-c', 'user.name=Test', '-c', 'user.email=test@example.com', 'add', '.']);
  git(work, ['-c', 'user.name=Test', '-c', 'user.email=test@example.com', 'commit', '-q', '-m', 'initial']);
  mkdirSync(join(root, org), { recursive: true });
  const path = join(root, org, `${name}.git`);
  git(root, ['clone', '-q', '--bare', work, path]);
  git(path, ['config', 'http.receivepack', 'true']);
  return { root, path };
}

function parseCgiOutput(out: Buffer): { status: number; headers: Record<string, string>; body: Buffer } {
  const sep = out.indexOf('\r\n\r\n');
  const headEnd = sep >= 0 ? sep : out.indexOf('\n\n');
  const headText = out.subarray(0, headEnd).toString('latin1');
  const body = out.subarray(headEnd + (sep >= 0 ? 4 : 2));
  const headers: Record<string, string> = {};
  let status = 200;
  for (const line of headText.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const k = line.slice(0, i).trim().toLowerCase();
    const v = line.slice(i + 1).trim();
    if (k === 'status') status = Number(v.split(' ')[0]);
    else headers[k] = v;
  }
  return { status, headers, body };
}

/** A BodyHandler that runs `git http-backend` for the request (projectRoot holds the repos). */
export function gitBackendHandler(projectRoot: string): BodyHandler {
  return (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://upstream');
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      GIT_PROJECT_ROOT: projectRoot,
      GIT_HTTP_EXPORT_ALL: '1',
      REQUEST_METHOD: req.method,
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      CONTENT_LENGTH: String(body.length),
      HTTP_CONTENT_ENCODING: req.headers['content-encoding'] ?? '',
      GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
      REMOTE_USER: 'agent',
      REMOTE_ADDR: '127.0.0.1',
    };
    const child = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.on('close', () => {
      const r = parseCgiOutput(Buffer.concat(out));
      res.writeHead(r.status, r.headers).end(r.body);
    });
    // The CGI may exit before reading the whole body (its answer says why); an unheard EPIPE
    // on its stdin would crash the test process.
    child.stdin.on('error', () => undefined);
    child.stdin.end(body);
  };
}
