// `kubectl sluice replay|verify` on spool directories and NDJSON exports (the Loki source is
// exercised against the real Loki in e2e/audit): timeline text, JSON output, --from, --follow,
// exit codes and the first bad seq named on tampering.
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parseFromFlag, formatTimelineLine } from '../src/commands/replay.ts';
import { runCli } from '../src/main.ts';
import type { AuditEvent } from '../../api/src/index.ts';
import { AuditRecorder } from '../../sidecar/src/audit/recorder.ts';

const golden = join(import.meta.dirname, '..', '..', 'sidecar', 'test', 'audit', 'testdata', 'chain-golden.ndjson');
const goldenLines = readFileSync(golden, 'utf8').trim().split('\n');
const SESSION = 'golden-session-1';

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(args, {
    out: (s) => {
      out += s;
    },
    err: (s) => {
      err += s;
    },
  });
  return { code, out, err };
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-cli-audit-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function writeLines(name: string, lines: string[]): string {
  const path = join(dir, name);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

describe('kubectl sluice replay', () => {
  it('prints a timeline: request with decision, approval, masked response summary', async () => {
    const { code, out } = await cli(['replay', SESSION, '--file', golden]);
    expect(code).toBe(0);
    expect(out.trim().split('\n')).toEqual([
      '2025-01-02T03:04:05.000Z  #0      session_start pod agents/agent-7f9c creator alice@example.com resumed=false',
      '2025-01-02T03:04:05.250Z  #1      request       POST https://github.com/org/repo.git/git-receive-pack [git push org/repo refs/heads/main] → hold git.push_requires_approval (push to org/repo needs approval) out 2.0 KiB req=r-1',
      '2025-01-02T03:04:09.000Z  #2      approval      → allow approval.approved (approved by bob) req=r-1 approval=agents/ar-1 approver=bob@example.com',
      '2025-01-02T03:04:09.000Z  #3      response      200 in 5.0 KiB out 2.0 KiB 812.5 ms masked 2 (github_token×1, aws_access_key×1) body sample 74 B req=r-1',
      '2025-01-02T03:04:10.000Z  #4      refusal       → deny net.opaque_tunnel (not HTTP(S)) 9=sorts after 10 10=integer-like key peer=203.0.113.9:22 z=[1,1e+21,0.1,0,"\\n\\u0001"]',
      '2025-01-02T03:04:11.000Z  #5      session_end',
    ]);
  });

  it('says so for an event the store holds only as an omitted stub, never printing it as the event', async () => {
    const response = JSON.parse(goldenLines[3]!) as Record<string, unknown>;
    const stub: Record<string, unknown> = { omitted: { bytes: 300_000, reason: 'store_refused_size', status: 413 } };
    for (const k of ['v', 'id', 'session', 'seq', 'prev_hash', 'hash', 'time', 'kind', 'pod', 'request_id']) stub[k] = response[k];
    const lines = [...goldenLines];
    lines[3] = JSON.stringify(stub);
    const { code, out } = await cli(['replay', SESSION, '--file', writeLines('stub.ndjson', lines)]);
    expect(code).toBe(0);
    expect(out.trim().split('\n')[3]).toBe('2025-01-02T03:04:09.000Z  #3      response      (omitted: 293.0 KiB not stored, store_refused_size, store answered 413) req=r-1');
  });

  it('--output json prints the stored lines unchanged', async () => {
    const { code, out } = await cli(['replay', SESSION, '--file', golden, '--output', 'json']);
    expect(code).toBe(0);
    expect(out.trim().split('\n')).toEqual(goldenLines);
  });

  it('--from keeps events at or after the time (absolute or relative)', async () => {
    const { out } = await cli(['replay', SESSION, '--file', golden, '--from', '2025-01-02T03:04:09Z', '-o', 'json']);
    expect(out.trim().split('\n').map((l) => (JSON.parse(l) as AuditEvent).seq)).toEqual([2, 3, 4, 5]);
    expect(parseFromFlag('2h', Date.parse('2025-01-01T12:00:00Z'))).toBe(Date.parse('2025-01-01T10:00:00Z'));
    expect((await cli(['replay', SESSION, '--file', golden, '--from', 'yesterday'])).code).toBe(2);
  });

  it('--follow prints events as they are appended and ends at session_end', async () => {
    const path = writeLines('follow.ndjson', goldenLines.slice(0, 2));
    const printed: string[] = [];
    const waiters: { n: number; resolve: () => void }[] = [];
    const printedAtLeast = (n: number): Promise<void> =>
      printed.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }));
    const done = runCli(['replay', SESSION, '--file', path, '--follow', '--poll-ms', '20', '-o', 'json'], {
      out: (s) => {
        printed.push(...s.trim().split('\n'));
        for (const w of waiters.filter((x) => printed.length >= x.n)) w.resolve();
      },
      err: () => undefined,
    });
    // Append the rest in two steps, each once the earlier lines were printed.
    await printedAtLeast(2);
    appendFileSync(path, `${goldenLines.slice(2, 4).join('\n')}\n`);
    await printedAtLeast(4);
    appendFileSync(path, `${goldenLines.slice(4).join('\n')}\n`);
    expect(await done).toBe(0);
    expect(printed).toEqual(goldenLines);
  });

  it('reads a live spool directory written by the recorder', async () => {
    const spoolDir = join(dir, 'spool');
    const pod = { namespace: 'ns', name: 'p' };
    const recorder = new AuditRecorder({ spoolDir, pod, session: 'spool-sess' });
    await recorder.start();
    await recorder.record({ kind: 'dns', pod, detail: { name: 'example.com' } });
    await recorder.stop();
    const { code, out } = await cli(['replay', 'spool-sess', '--spool', spoolDir]);
    expect(code).toBe(0);
    expect(out).toMatch(/#1 +dns +name=example\.com/);
    expect((await cli(['verify', 'spool-sess', '--spool', spoolDir, '--require-end'])).code).toBe(0);
  });

  it('needs exactly one source and a valid session id', async () => {
    const saved = process.env.SLUICE_LOKI_URL;
    delete process.env.SLUICE_LOKI_URL;
    try {
      expect(await cli(['replay', SESSION])).toMatchObject({ code: 2, err: expect.stringContaining('no source') });
    } finally {
      if (saved !== undefined) process.env.SLUICE_LOKI_URL = saved;
    }
    expect(await cli(['replay', SESSION, '--file', golden, '--spool', dir])).toMatchObject({ code: 2 });
    expect(await cli(['replay', 'bad"id', '--file', golden])).toMatchObject({ code: 2, err: expect.stringContaining('source.bad_session') });
    expect(await cli(['replay', SESSION, '--file', join(dir, 'missing.ndjson')])).toMatchObject({ code: 2, err: expect.stringContaining('ENOENT') });
    expect(await cli(['replay', SESSION, '--loki', 'http://127.0.0.1:9/'])).toMatchObject({ code: 2, err: expect.stringContaining('source.unreachable') });
  });
});

describe('kubectl sluice verify', () => {
  it('exits 0 for an intact chain and prints its head', async () => {
    const { code, out } = await cli(['verify', SESSION, '--file', golden, '--require-end']);
    expect(code).toBe(0);
    expect(out).toBe(`ok: session ${SESSION}: 6 events, seq 0..5, chain intact, ended; head ${(JSON.parse(goldenLines[5]!) as AuditEvent).hash}\n`);
  });

  it('exits 1 naming the first bad seq of an edited export', async () => {
    const path = writeLines('edited.ndjson', goldenLines.map((l, i) => (i === 3 ? l.replace('"status":200', '"status":201') : l)));
    const { code, err } = await cli(['verify', SESSION, '--file', path]);
    expect(code).toBe(1);
    expect(err).toContain(`session ${SESSION}: chain broken at seq 3: edited`);
  });

  it('exits 1 for a truncated export when the end is required or a head is known', async () => {
    const path = writeLines('truncated.ndjson', goldenLines.slice(0, 4));
    expect((await cli(['verify', SESSION, '--file', path])).code).toBe(0);
    expect(await cli(['verify', SESSION, '--file', path, '--require-end'])).toMatchObject({ code: 1, err: expect.stringContaining('seq 4: truncated_tail') });
    const head = JSON.parse(goldenLines[5]!) as AuditEvent;
    expect(await cli(['verify', SESSION, '--file', path, '--head-seq', '5', '--head-hash', head.hash])).toMatchObject({
      code: 1,
      err: expect.stringContaining('seq 4: truncated_tail'),
    });
  });

  it('--output json reports the verdict as an object', async () => {
    const path = writeLines('gap.ndjson', goldenLines.filter((_, i) => i !== 2));
    const { code, out } = await cli(['verify', SESSION, '--file', path, '-o', 'json']);
    expect(code).toBe(1);
    expect(JSON.parse(out)).toMatchObject({ session: SESSION, ok: false, fault: { seq: 2, code: 'gap' } });
  });

  it('exits 2 (could not check, not "chain broken") when the session has no events, and 2 for bad flags', async () => {
    expect(await cli(['verify', 'nobody', '--file', golden])).toMatchObject({ code: 2, err: expect.stringContaining('no events found') });
    expect(await cli(['verify', SESSION, '--file', golden, '--head-seq', '3'])).toMatchObject({ code: 2 });
    expect(await cli(['verify', SESSION, '--file', golden, '--head-seq', 'x', '--head-hash', 'a'.repeat(64)])).toMatchObject({ code: 2 });
  });

  it('formats a line for every kind without throwing', () => {
    for (const line of goldenLines) expect(formatTimelineLine(JSON.parse(line) as AuditEvent)).toContain('#');
  });
});
