// The real shipper against a real log store (VictoriaLogs, through the Loki push API sluice
// speaks): every recorded event is read back with LogsQL, in order and byte-identical, for
// protobuf+snappy and for JSON pushes; a tenant is honoured; and `kubectl sluice replay|verify`
// read the session from the store. (Loki's own query API is tested against recorded responses in
// sidecar/test/audit/session-source-loki.test.ts: Loki is AGPL and not built here.)
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { AuditRecord } from '../../api/src/index.ts';
import { runCli } from '../../cli/src/main.ts';
import { verifyChain } from '../../lib/src/audit/chain.ts';
import { AuditRecorder } from '../../sidecar/src/audit/recorder.ts';
import { VictoriaLogsServer } from '../support/logstore/victoria-logs.ts';

const pod = { namespace: 'agents', name: 'agent-rt', service_account: 'agent' };

/** A mix of every shape the proxy records, including non-ASCII text and masking entries. */
function sampleRecord(i: number): AuditRecord {
  switch (i % 4) {
    case 0:
      return {
        kind: 'request',
        pod,
        creator: { username: 'alice@example.com', groups: ['dev'] },
        request_id: `r-${i}`,
        request: {
          method: 'POST',
          scheme: 'https',
          host: 'github.com',
          port: 443,
          path: `/org/repo-${i}.git/git-receive-pack`,
          facts: { git: { service: 'git-receive-pack', operation: 'push', phase: 'rpc', repo: `org/repo-${i}` } },
        },
        decision: { action: 'hold', code: 'git.push_requires_approval', reason: 'push needs approval' },
        bytes: { in: 0, out: 4096 + i },
      };
    case 1:
      return {
        kind: 'response',
        pod,
        request_id: `r-${i - 1}`,
        status: 200,
        masking: [{ rule: 'github_token', direction: 'response', offset: i }],
        bytes: { in: 10_000 + i, out: 4096 },
        timings: { total: 12.5, upstream: 11.25 },
        body_sample: `ok ✓ 漢字 😀 token=[masked:github_token] #${i}`,
      };
    case 2:
      return { kind: 'dns', pod, detail: { name: `host-${i}.example.com`, type: 'AAAA', answer: 'refused' } };
    default:
      return {
        kind: 'refusal',
        pod,
        decision: { action: 'deny', code: 'net.opaque_tunnel', reason: 'not HTTP(S)' },
        detail: { peer: '198.51.100.7:5432' },
      };
  }
}

function spoolLines(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.startsWith('seg-'))
    .sort()
    .flatMap((n) => readFileSync(join(dir, n), 'utf8').split('\n').filter(Boolean));
}

function captureIo(): { io: { out(s: string): void; err(s: string): void }; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    io: {
      out: (s) => {
        out += s;
      },
      err: (s) => {
        err += s;
      },
    },
    out: () => out,
    err: () => err,
  };
}

let vlogs: VictoriaLogsServer;
const dirs: string[] = [];
beforeAll(async () => {
  vlogs = await VictoriaLogsServer.start();
}, 90_000);
afterAll(async () => {
  await vlogs?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe.each([
  ['protobuf', 'snappy'],
  ['protobuf', 'none'],
  ['json', 'snappy'],
] as const)('shipping to the real store with %s bodies (compression %s)', (encoding, compression) => {
  it('delivers every event in order, intact, and the chain verifies from the store', async () => {
    const spoolDir = mkdtempSync(join(tmpdir(), `sluice-rt-${encoding}-`));
    dirs.push(spoolDir);
    const session = `rt-${encoding}-${compression}-${Date.now()}`;
    const recorder = new AuditRecorder({ spoolDir, pod, session, loki: { url: vlogs.pushUrl, encoding, compression, batchMaxEvents: 250, lingerMs: 5 } });
    await recorder.start();
    const N = 2000;
    for (let i = 0; i < N; i += 100) {
      await Promise.all(Array.from({ length: 100 }, (_, k) => recorder.record(sampleRecord(i + k))));
    }
    expect(await recorder.stop({ drainTimeoutMs: 30_000 })).toEqual({ shipped: true });

    const stored = await vlogs.session(session);
    // Byte-identical lines, in chain order, nothing missing or extra.
    expect(stored.map((s) => s.line)).toEqual(spoolLines(spoolDir));
    expect(stored).toHaveLength(N + 2);
    const result = verifyChain(
      stored.map((s) => s.value),
      { session, requireEnd: true },
    );
    expect(result).toMatchObject({ ok: true, count: N + 2, duplicates: 0, ended: true });
    // The store's timestamps are the chain order too.
    for (let i = 1; i < stored.length; i++) expect(stored[i]!.ts! > stored[i - 1]!.ts!).toBe(true);
  }, 120_000);
});

describe('kubectl sluice against the store', () => {
  let session: string;
  beforeAll(async () => {
    const spoolDir = mkdtempSync(join(tmpdir(), 'sluice-rt-cli-'));
    dirs.push(spoolDir);
    session = `rt-cli-${Date.now()}`;
    const recorder = new AuditRecorder({ spoolDir, pod, session, loki: { url: vlogs.pushUrl, lingerMs: 5 } });
    await recorder.start();
    for (let i = 0; i < 8; i++) await recorder.record(sampleRecord(i));
    expect(await recorder.stop({ drainTimeoutMs: 30_000 })).toEqual({ shipped: true });
    await vlogs.flush(); // what was acknowledged is searchable now
  }, 60_000);

  it('verify reports the intact chain', async () => {
    const c = captureIo();
    expect(await runCli(['verify', session, '--victorialogs', vlogs.url, '--require-end'], c.io)).toBe(0);
    expect(c.out()).toContain(`ok: session ${session}: 10 events, seq 0..9, chain intact, ended`);
  });

  it('replay prints the timeline: request, decision, masked response summary', async () => {
    const c = captureIo();
    expect(await runCli(['replay', session, '--victorialogs', vlogs.url], c.io)).toBe(0);
    const lines = c.out().trim().split('\n');
    expect(lines).toHaveLength(10);
    expect(lines[0]).toMatch(/#0 +session_start pod agents\/agent-rt/);
    expect(lines[1]).toContain('POST https://github.com/org/repo-0.git/git-receive-pack [git push org/repo-0] → hold git.push_requires_approval');
    expect(lines[2]).toMatch(/response +200 in 9\.8 KiB out 4\.0 KiB 12\.5 ms masked 1 \(github_token×1\)/);
    expect(lines[9]).toMatch(/#9 +session_end/);
  });

  it('replay --output json prints the stored lines, which verify --file accepts', async () => {
    const c = captureIo();
    expect(await runCli(['replay', session, '--victorialogs', vlogs.url, '--output', 'json'], c.io)).toBe(0);
    const exportDir = mkdtempSync(join(tmpdir(), 'sluice-rt-export-'));
    dirs.push(exportDir);
    const file = join(exportDir, 'session.ndjson');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(file, c.out());
    const v = captureIo();
    expect(await runCli(['verify', session, '--file', file, '--require-end'], v.io)).toBe(0);
  });
});

describe('a multi-tenant store', () => {
  it('pushes under the configured tenant and nothing reaches another tenant', async () => {
    const spoolDir = mkdtempSync(join(tmpdir(), 'sluice-rt-tenant-'));
    dirs.push(spoolDir);
    const session = `rt-tenant-${Date.now()}`;
    // VictoriaLogs takes the tenant from AccountID/ProjectID headers (Loki: X-Scope-OrgID, `tenant`).
    const recorder = new AuditRecorder({ spoolDir, pod, session, loki: { url: vlogs.pushUrl, headers: { AccountID: '7', ProjectID: '3' }, lingerMs: 5 } });
    await recorder.start();
    await recorder.record(sampleRecord(0));
    expect(await recorder.stop({ drainTimeoutMs: 30_000 })).toEqual({ shipped: true });
    expect(verifyChain((await vlogs.session(session, '7:3')).map((s) => s.value), { requireEnd: true })).toMatchObject({ ok: true, count: 3 });
    expect(await vlogs.session(session, '8')).toEqual([]);
    expect(await vlogs.session(session)).toEqual([]);
  }, 60_000);
});

describe('kubectl sluice sessions and replay --pod', () => {
  const agentPod = { namespace: 'agents', name: `agent-list-${Date.now()}`, service_account: 'agent' };
  const sessions = [`rt-list-a-${Date.now()}`, `rt-list-b-${Date.now()}`];
  beforeAll(async () => {
    // Two sessions of one pod (a restart), the second with a hold, a deny and a masked response.
    for (const [k, session] of sessions.entries()) {
      const spoolDir = mkdtempSync(join(tmpdir(), 'sluice-rt-list-'));
      dirs.push(spoolDir);
      const recorder = new AuditRecorder({ spoolDir, pod: agentPod, session, loki: { url: vlogs.pushUrl, lingerMs: 5 } });
      await recorder.start();
      const records = k === 0 ? [sampleRecord(2)] : [0, 1, 3].map((i) => ({ ...sampleRecord(i), pod: agentPod }));
      for (const r of records) await recorder.record({ ...r, pod: agentPod });
      expect(await recorder.stop({ drainTimeoutMs: 30_000 })).toEqual({ shipped: true });
    }
    await vlogs.flush();
  }, 60_000);

  it('lists the pod\'s sessions, newest first, with what happened in each', async () => {
    const c = captureIo();
    expect(await runCli(['sessions', '--victorialogs', vlogs.url, '-n', 'agents', '--pod', agentPod.name, '-o', 'json'], c.io)).toBe(0);
    const rows = JSON.parse(c.out()) as { session: string; events: number; requests: number; holds: number; denies: number; masked: number; first: string; last: string }[];
    expect(rows.map((r) => r.session)).toEqual([sessions[1], sessions[0]]);
    // session_start + 3 records + session_end; one request held, one refusal denied, one response masked.
    expect(rows[0]).toMatchObject({ events: 5, requests: 1, holds: 1, denies: 1, masked: 1 });
    expect(rows[1]).toMatchObject({ events: 3, requests: 0, holds: 0, denies: 0, masked: 0 });
    expect(Date.parse(rows[0]!.last) >= Date.parse(rows[0]!.first)).toBe(true);
    const table = captureIo();
    expect(await runCli(['sessions', '--victorialogs', vlogs.url, '--pod', agentPod.name], table.io)).toBe(0);
    expect(table.out().split('\n')[0]).toMatch(/^NAMESPACE +POD +SESSION +LAST +EVENTS +REQUESTS +HOLDS +DENIES +MASKED$/);
    expect(table.out()).toContain(sessions[1]);
  });

  it('replay --pod replays that pod\'s latest session', async () => {
    const c = captureIo();
    expect(await runCli(['replay', '--pod', agentPod.name, '-n', 'agents', '--victorialogs', vlogs.url], c.io)).toBe(0);
    expect(c.err()).toContain(`session ${sessions[1]} (pod agents/${agentPod.name}, 2 sessions found)`);
    expect(c.out()).toContain('hold git.push_requires_approval');
    const none = captureIo();
    expect(await runCli(['replay', '--pod', 'no-such-pod', '--victorialogs', vlogs.url], none.io)).toBe(2);
    expect(none.err()).toContain('no session found for pod no-such-pod');
  });
});
