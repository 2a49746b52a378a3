// Outbound DLP on git push: packs made by the real git (a push captured at the receive-pack side,
// and git pack-objects), a commit that adds a secret and one that does not, deltas (OFS within the
// pack, REF against objects the server already has), and packs that break a limit.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { inflateSync } from 'node:zlib';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PackCollector, applyDelta, base62Crc32, createMasker, parseReceivePackRequest, scanPack, scanReceivePack } from '../../src/masking/index.ts';

const scanner = createMasker('*').scanner;
let dir = '';
let work = '';
let remote = '';
let pushNo = 0;

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, GIT_AUTHOR_NAME: 'agent', GIT_AUTHOR_EMAIL: 'agent@example.com', GIT_COMMITTER_NAME: 'agent', GIT_COMMITTER_EMAIL: 'agent@example.com', GIT_CONFIG_NOSYSTEM: '1', HOME: dir },
  });
}

/** Pushes HEAD and returns the exact receive-pack request body git sent. */
function pushAndCapture(): Buffer {
  const body = join(dir, `push-${++pushNo}.bin`);
  git(work, 'push', `--receive-pack=tee ${body} | git-receive-pack`, 'origin', 'HEAD:refs/heads/main');
  return readFileSync(body);
}

function commitFile(path: string, content: string, message: string): void {
  mkdirSync(join(work, path, '..'), { recursive: true });
  writeFileSync(join(work, path), content);
  git(work, 'add', path);
  git(work, 'commit', '-q', '-m', message);
}

// A large, varied text file so git stores later versions as deltas against it.
const bigText = Array.from({ length: 2000 }, (_, i) => `line ${i}: the build step ${i % 7} writes artefact ${(i * 7919) % 10007}`).join('\n') + '\n';
const random30 = 'q7Zt2Xw9LmB4nR8sK1vD6yH3jF5cP0';
const githubToken = `ghp_${random30}${base62Crc32(random30)}`;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-pack-'));
  remote = join(dir, 'remote.git');
  work = join(dir, 'work');
  execFileSync('git', ['init', '-q', '--bare', remote]);
  execFileSync('git', ['init', '-q', '-b', 'main', work]);
  git(work, 'remote', 'add', 'origin', remote);
  commitFile('README.md', '# demo\n', 'initial');
  commitFile('data/build.log', bigText, 'add build log');
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('git push packfile DLP', () => {
  test('first push (full pack, clean) is clean and its commands parse', () => {
    const body = pushAndCapture();
    const req = parseReceivePackRequest(body);
    expect(req.commands).toEqual([{ old: '0'.repeat(40), new: git(work, 'rev-parse', 'HEAD').trim(), ref: 'refs/heads/main' }]);
    expect(req.capabilities).toContain('object-format=sha1');
    const v = scanReceivePack(body, scanner);
    expect(v.verdict).toBe('clean');
    if (v.verdict === 'clean') expect(v.objects).toBeGreaterThanOrEqual(6);
  });

  test('a commit that adds a secret file is caught with rule, path and object id', () => {
    commitFile('config/prod.env', `REGION=eu-west-1\nGITHUB_TOKEN=${githubToken}\n`, 'add prod config');
    const body = pushAndCapture();
    const v = scanReceivePack(body, scanner);
    expect(v.verdict).toBe('secrets');
    if (v.verdict !== 'secrets') return;
    const blobId = git(work, 'rev-parse', 'HEAD:config/prod.env').trim();
    expect(v.findings).toEqual([{ rule: 'github-pat-classic', object: blobId, type: 'blob', path: 'config/prod.env', offset: 'REGION=eu-west-1\nGITHUB_TOKEN='.length, length: githubToken.length }]);
    expect(JSON.stringify(v)).not.toContain(githubToken);
  });

  test('a clean change to a big file (thin delta against the server copy) goes through', () => {
    commitFile('data/build.log', bigText.replace('line 1000:', 'line 1000 (retried):'), 'retry note');
    const body = pushAndCapture();
    const v = scanReceivePack(body, scanner);
    expect(v.verdict).toBe('clean');
  });

  test('a secret inserted into a big file is found in the thin delta', () => {
    commitFile('data/build.log', bigText.replace('line 1500:', `line 1500: aws_secret_access_key = Zq8+Lm2/Vx7pKt4Rw9sNd3Hy6Jc1Bf5Gu0AeXoQi\n`), 'oops');
    const body = pushAndCapture();
    const req = parseReceivePackRequest(body);
    const v = scanReceivePack(body, scanner);
    expect(v.verdict).toBe('secrets');
    if (v.verdict === 'secrets') expect(v.findings.map((f) => f.rule)).toEqual(['aws-secret-access-key']);
    // The same pack refused when thin deltas must not be scanned from their inserts alone.
    const pack = body.subarray(req.packOffset);
    expect(countTypes(pack).refDelta).toBeGreaterThan(0);
    expect(scanPack(pack, scanner, { thinDeltas: 'unscannable' })).toMatchObject({ verdict: 'unscannable', reason: 'pack.thin_delta' });
  });

  test('OFS_DELTA chains from git pack-objects resolve to the exact blob contents', () => {
    // Older versions of data/build.log are stored as deltas of the newest: the secret of an old
    // version is only visible after resolving the chain.
    const pack = execFileSync('git', ['pack-objects', '--stdout', '--delta-base-offset', '--revs', '--all'], { cwd: work, input: '' });
    const ofs = countTypes(pack);
    expect(ofs.ofsDelta).toBeGreaterThan(0);
    const v = scanPack(pack, scanner, { thinDeltas: 'unscannable' });
    expect(v.verdict).toBe('secrets');
    if (v.verdict !== 'secrets') return;
    const oldBlob = git(work, 'rev-parse', 'HEAD:data/build.log').trim();
    const found = v.findings.find((f) => f.rule === 'aws-secret-access-key');
    expect(found?.object).toBe(oldBlob);
    expect(v.findings.some((f) => f.rule === 'github-pat-classic')).toBe(true);
  });

  test('a push that only deletes a ref has no pack and is clean', () => {
    git(work, 'push', '-q', 'origin', 'HEAD:refs/heads/tmp');
    const body = join(dir, 'delete.bin');
    git(work, 'push', `--receive-pack=tee ${body} | git-receive-pack`, 'origin', ':refs/heads/tmp');
    const v = scanReceivePack(readFileSync(body), scanner);
    expect(v.verdict).toBe('clean');
  });

  test('packs outside the limits or malformed are unscannable, never clean', () => {
    const pack = execFileSync('git', ['pack-objects', '--stdout', '--revs', '--all'], { cwd: work, input: '' });
    const reason = (p: Buffer, opts = {}): string => {
      const v = scanPack(p, scanner, opts);
      return v.verdict === 'unscannable' ? v.reason : v.verdict;
    };
    expect(reason(pack, { maxObjects: 2 })).toBe('pack.too_many_objects');
    expect(reason(pack, { maxObjectBytes: 1000 })).toBe('pack.object_too_large');
    expect(reason(pack, { maxInflatedBytes: 50_000 })).toBe('pack.inflated_too_large');
    expect(reason(pack, { maxPackBytes: 100 })).toBe('pack.too_large');
    const corrupt = Buffer.from(pack);
    corrupt[40] = (corrupt[40] ?? 0) ^ 0xff;
    expect(reason(corrupt)).toBe('pack.bad_checksum');
    expect(reason(pack.subarray(0, pack.length - 30))).toBe('pack.bad_checksum');
    expect(reason(Buffer.from('not a pack at all, just text'))).toBe('pack.bad_header');
    const collector = new PackCollector({ maxPackBytes: 10 });
    expect(collector.push(Buffer.from('0000PACK'))).toBe(true);
    expect(collector.push(Buffer.from('more bytes'))).toBe(false);
    expect(collector.verdict(scanner)).toMatchObject({ verdict: 'unscannable', reason: 'pack.too_large' });
    expect(scanReceivePack(Buffer.from('00zzbad'), scanner)).toMatchObject({ verdict: 'unscannable', reason: 'pack.bad_pkt_line' });
  });

  test('applyDelta copies and inserts; without a base it keeps only inserts', () => {
    const base = Buffer.from('hello world, hello git');
    // src size 22, dst size 17: copy(0,6) insert("brave ") copy(6,5)
    const delta = Buffer.from([22, 17, 0x90, 6, 6, ...Buffer.from('brave '), 0x91, 6, 5]);
    expect(applyDelta(base, delta).toString()).toBe('hello brave world');
    expect(applyDelta(undefined, delta).toString()).toBe('brave \n');
  });
});

function countTypes(pack: Buffer): { ofsDelta: number; refDelta: number } {
  // Walk object headers to count OFS_DELTA (type 6) and REF_DELTA (type 7) entries.
  const count = pack.readUInt32BE(8);
  let ofsDelta = 0;
  let refDelta = 0;
  let pos = 12;
  for (let i = 0; i < count; i++) {
    let c = pack[pos++] ?? 0;
    const type = (c >> 4) & 7;
    while (c & 0x80) c = pack[pos++] ?? 0;
    if (type === 6) {
      ofsDelta++;
      do c = pack[pos++] ?? 0;
      while (c & 0x80);
    } else if (type === 7) {
      refDelta++;
      pos += 20;
    }
    // Skip the zlib stream by inflating it.
    const r = inflateSync(pack.subarray(pos), { info: true }) as unknown as { engine: { bytesWritten: number } };
    pos += r.engine.bytesWritten;
  }
  return { ofsDelta, refDelta };
}
