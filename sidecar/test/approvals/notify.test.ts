// Notifications: Slack and generic payloads carry the summary and the exact approve command; a
// receiver that fails is retried with back-off, every attempt counted, and given up on after
// maxAttempts. Real HTTP on loopback; the back-off sleeps are injected, not waited for.
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Registry } from 'prom-client';
import { NotifyConfig } from '../../src/approvals/config.ts';
import { registerApprovalMetrics } from '../../src/approvals/metrics.ts';
import { Notifier, backoffMs, genericPayload, noticeFor, slackPayload } from '../../src/approvals/notify.ts';
import { SAMPLE_SPEC, sampleApproval } from '../../../testkit/approvals/sample-approval.ts';

const obj = sampleApproval({ spec: { requestedScope: 'ttl', request: { ...SAMPLE_SPEC.request, summary: 'git push acme/app refs/heads/main on github.com <now>' } } });

describe('payloads', () => {
  test('the notice names the exact commands, shell-safe', () => {
    const n = noticeFor(obj);
    expect(n.approve).toBe('kubectl sluice approve coder-0-3fa9c1 -n agents --scope ttl --ttl 30m');
    expect(n.deny).toBe("kubectl sluice deny coder-0-3fa9c1 -n agents --reason '…'");
    expect(noticeFor({ ...obj, metadata: { name: "x'y", namespace: 'a b' } }).approve).toBe(`kubectl sluice approve 'x'\\''y' -n 'a b' --scope ttl --ttl 30m`);
  });

  test('Slack: text and blocks with the command, mrkdwn escaped', () => {
    const p = slackPayload(noticeFor(obj)) as { text: string; blocks: { text?: { text: string } }[] };
    expect(p.text).toContain('`kubectl sluice approve coder-0-3fa9c1 -n agents --scope ttl --ttl 30m`');
    expect(p.text).toContain('&lt;now&gt;');
    expect(JSON.stringify(p.blocks)).toContain('alice@example.com');
  });

  test('generic: a typed event with every field', () => {
    expect(genericPayload(noticeFor(obj))).toEqual({ kind: 'sluice.approval.pending', approval: expect.objectContaining({ name: 'coder-0-3fa9c1', pod: 'coder-0', requestedScope: 'ttl' }) });
  });

  test('back-off: exponential ceiling with jitter in its upper half, capped', () => {
    expect(backoffMs(1, 500, 30_000, () => 0)).toBe(250);
    expect(backoffMs(1, 500, 30_000, () => 1)).toBe(500);
    expect(backoffMs(3, 500, 30_000, () => 1)).toBe(2000);
    expect(backoffMs(20, 500, 30_000, () => 1)).toBe(30_000);
  });
});

describe('Notifier against a loopback receiver', () => {
  let server: Server;
  let url = '';
  let failuresLeft = 0;
  const received: { body: unknown; headers: Record<string, unknown> }[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        if (failuresLeft > 0) {
          failuresLeft -= 1;
          res.writeHead(500).end();
          return;
        }
        received.push({ body: JSON.parse(body), headers: req.headers });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  function setup(over: Record<string, unknown>) {
    const registry = new Registry();
    const metrics = registerApprovalMetrics(registry);
    const sleeps: number[] = [];
    const notifier = Notifier.create(NotifyConfig.parse({ url, ...over }), { metrics, random: () => 1, sleep: (ms) => (sleeps.push(ms), Promise.resolve()) })!;
    const count = async (result: string) => (await registry.getSingleMetric('sluice_approvals_notifications_total')!.get()).values.find((v) => v.labels.result === result)?.value ?? 0;
    return { notifier, sleeps, count };
  }

  test('a failing receiver is retried with back-off until it accepts; each attempt is counted', async () => {
    failuresLeft = 2;
    received.length = 0;
    const { notifier, sleeps, count } = setup({ format: 'generic', headers: { authorization: 'Bearer hook-token' }, initialBackoffMs: 100 });
    await notifier.notify(obj);
    expect(sleeps).toEqual([100, 200]);
    expect(received).toHaveLength(1);
    expect(received[0]!.headers.authorization).toBe('Bearer hook-token');
    expect(received[0]!.body).toMatchObject({ kind: 'sluice.approval.pending', approval: { name: 'coder-0-3fa9c1' } });
    expect(await count('retried')).toBe(2);
    expect(await count('sent')).toBe(1);
  });

  test('after maxAttempts it gives up and counts one failure', async () => {
    failuresLeft = 10;
    received.length = 0;
    const { notifier, count } = setup({ maxAttempts: 3 });
    await notifier.notify(obj);
    expect(received).toHaveLength(0);
    expect(await count('retried')).toBe(2);
    expect(await count('failed')).toBe(1);
    failuresLeft = 0;
  });

  test('without a URL there is no notifier; url and urlFile together are a config error', () => {
    expect(Notifier.create(NotifyConfig.parse({}))).toBeUndefined();
    expect(() => NotifyConfig.parse({ url, urlFile: '/x' })).toThrow(/urlFile/);
    expect(() => NotifyConfig.parse({ url: 'ftp://x' })).toThrow();
  });
});

test('stop() ends retrying after the attempt in flight', async () => {
  const registry = new Registry();
  const notifier = Notifier.create(NotifyConfig.parse({ url: 'http://127.0.0.1:9/unreachable', maxAttempts: 20 }), { metrics: registerApprovalMetrics(registry), sleep: () => Promise.resolve() })!;
  const delivery = notifier.notify(obj);
  await notifier.stop();
  await delivery;
  const values = (await registry.getSingleMetric('sluice_approvals_notifications_total')!.get()).values;
  expect(values.find((v) => v.labels.result === 'failed')?.value).toBe(1);
  expect(values.find((v) => v.labels.result === 'retried')?.value ?? 0).toBeLessThan(19);
});
