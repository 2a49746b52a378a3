// A release without a log store, as the chart installs it by default: a real sidecar with the
// chart's default settings file (`audit: {store: none}`) and a small spool. The agent keeps being
// served long after the spool's bound (its oldest events are trimmed instead of every request being
// refused with 503, as a spool without a store did), the sidecar warns at start and when the ring
// fills, and its metrics say so.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import pino from 'pino';
import { parse as parseYaml } from 'yaml';
import { defaultValues } from '../../charts/src/values-schema.ts';
import { startTestSidecar } from '../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../testkit/sidecar/test-sidecar.ts';
import { createTestCa, echoHandler, startHttpsUpstream } from '../../testkit/sidecar/upstreams.ts';
import type { TestUpstream } from '../../testkit/sidecar/upstreams.ts';

jest.setTimeout(120_000);
const run = promisify(execFile);

let api: TestUpstream;
let sidecar: TestSidecar;
const logs: { level: number; msg: string }[] = [];
const REQUESTS = 150;
let statuses: string[] = [];
const spoolDir = mkdtempSync(join(tmpdir(), 'sluice-no-store-'));

beforeAll(async () => {
  const ca = await createTestCa();
  api = await startHttpsUpstream(ca, ['registry.npmjs.org'], echoHandler);
  // What the chart writes into every agent namespace's sluice-sidecar ConfigMap by default.
  const chartDefault = parseYaml(JSON.stringify(defaultValues().sidecar.config)) as { audit: { store: string } };
  expect(chartDefault).toEqual({ audit: { store: 'none' } });
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) logs.push(JSON.parse(line) as { level: number; msg: string });
      done();
    },
  });
  sidecar = await startTestSidecar({
    resolve: { 'registry.npmjs.org:443': api.dial },
    extraRootsFiles: [ca.caFile],
    logger: pino({ level: 'info' }, sink),
    // The chart default above (store: none), with a small spool so the test wraps the ring quickly.
    config: { audit: { store: 'none', spoolDir, spool: { maxBytes: 64 * 1024, segmentBytes: 16 * 1024, fsync: 'none' } } },
  });
  const urls = Array.from({ length: REQUESTS }, (_, i) => `https://registry.npmjs.org/pkg-${i}`);
  const { stdout } = await run('curl', ['-sS', '--cacert', sidecar.trust.caFile, '-x', sidecar.proxyUrl, '-w', '%{http_code}\\n', ...urls.flatMap((u) => ['-o', '/dev/null', u])], { maxBuffer: 1 << 20 });
  statuses = stdout.trim().split('\n');
});

afterAll(async () => {
  await sidecar?.stop();
  await api?.close();
  rmSync(spoolDir, { recursive: true, force: true });
});

describe('a sidecar with the chart default audit.store: none', () => {
  test('serves every request long past the spool bound', () => {
    expect(statuses).toHaveLength(REQUESTS);
    expect(statuses.filter((s) => s !== '200')).toEqual([]);
  });

  test('warns at start and when the ring starts trimming', () => {
    const warnings = logs.filter((l) => l.level === 40).map((l) => l.msg);
    expect(warnings.find((m) => m.startsWith('AUDIT EVENTS ARE NOT SHIPPED: audit.store is none;'))).toBeDefined();
    expect(warnings).toContain('audit spool near_full → full: the ring is full: its oldest events are now trimmed, never shipped');
  });

  test('its metrics say where events go, that the ring trims, and that nothing was refused', async () => {
    const text = await (await fetch(`${sidecar.adminUrl}/metrics`)).text();
    expect(text).toContain('sluice_audit_store_info{type="none"} 1');
    expect(text).toContain('sluice_audit_spool_state{state="full"} 1');
    expect(Number(/^sluice_audit_events_trimmed_total (\d+)/m.exec(text)?.[1])).toBeGreaterThan(0);
    // Every append-error series exists from start-up (at 0, so rate() sees the first one); none may have counted.
    const appendErrors = [...text.matchAll(/^sluice_audit_append_errors_total\{[^}]*\} (\S+)$/gm)].map((m) => Number(m[1]));
    expect(appendErrors.length).toBeGreaterThan(0);
    expect(appendErrors.filter((v) => v !== 0)).toEqual([]);
    expect(Number(/^sluice_audit_spool_bytes (\d+)/m.exec(text)?.[1])).toBeLessThanOrEqual(64 * 1024);
  });
});
