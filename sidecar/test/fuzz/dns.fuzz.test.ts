// Fuzzing the DNS lockdown's query parser (answerQuery): queries built with dns-packet (names with
// odd labels, escapes, lengths; every type and class; flags, opcodes, several questions) then
// mutated, and random bytes. Properties: it never throws; no reply only for packets that are no
// query; every reply decodes, carries the query's id, is a response, and holds at most one
// answer — an A/AAAA from the fake ranges (or loopback for localhost) for a name that passes the
// name check — so no data from outside can ride an answer; the same name maps to the same address.
import { afterAll, expect, test } from '@jest/globals';
import dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { BlockList } from 'node:net';
import { answerQuery, checkName } from '../../src/dns/answer-query.ts';
import { FakeIpMap } from '../../src/dns/fake-ip-map.ts';
import { fuzz, mutated, printReports } from './fuzz-harness.ts';

afterAll(printReports);

const map = new FakeIpMap({ capacity: 1024 });
const fake = new BlockList();
fake.addSubnet('198.18.0.0', 15, 'ipv4');
fake.addSubnet('fd73:6c75:6963::', 64, 'ipv6');

const label = fc.oneof(
  fc.stringMatching(/^[a-z0-9-]{1,12}$/),
  fc.constantFrom('localhost', 'xn--bcher-kva', '_srv', 'a'.repeat(63), 'b'.repeat(64), '', '*', 'A\\.B', 'é', 'x y', '\\000'),
);
const name = fc.array(label, { minLength: 1, maxLength: 6 }).map((l) => l.join('.'));
const TYPES = ['A', 'AAAA', 'TXT', 'MX', 'CNAME', 'NS', 'SOA', 'PTR', 'SRV', 'ANY', 'NULL', 'HTTPS', 'SVCB', 'CAA', 'DNSKEY'] as const;
const query = fc
  .record({
    id: fc.integer({ min: 0, max: 0xffff }),
    flags: fc.oneof(fc.constant(dnsPacket.RECURSION_DESIRED), fc.integer({ min: 0, max: 0xffff })),
    questions: fc.array(fc.record({ name, type: fc.constantFrom(...TYPES), class: fc.constantFrom('IN', 'CH', 'HS', 'ANY') }), { minLength: 0, maxLength: 3 }),
  })
  .map((q) => {
    try {
      return dnsPacket.encode({ type: 'query', id: q.id, flags: q.flags & 0x7fff, questions: q.questions as dnsPacket.Question[] });
    } catch {
      return Buffer.from([q.id >> 8, q.id & 0xff, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    }
  });

test('any query packet gets a well-formed, bounded reply that carries nothing but a fake address', async () => {
  const input = fc.oneof({ weight: 3, arbitrary: mutated(query) }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 80 }).map((a) => Buffer.from(a)) }, { weight: 2, arbitrary: query });
  await fuzz('dns-query', input, 3000, (packet) => {
    const { response, event } = answerQuery(packet, map);
    if (!response) {
      expect(event.result).toBe('dropped');
      expect(packet.length < 12 || (packet[2]! & 0x80) !== 0).toBe(true);
      return;
    }
    expect(response.readUInt16BE(0)).toBe(packet.readUInt16BE(0));
    const decoded = dnsPacket.decode(response);
    expect(decoded.type).toBe('response');
    expect(response.length).toBeLessThanOrEqual(512);
    const answers = decoded.answers ?? [];
    expect(answers.length).toBeLessThanOrEqual(1);
    if (answers.length === 0) {
      expect(event.result).not.toBe('answered');
      return;
    }
    const a = answers[0]!;
    expect(event.result).toBe('answered');
    expect(['A', 'AAAA']).toContain(a.type);
    expect(checkName(event.name)).toBeUndefined();
    const data = String((a as { data?: unknown }).data);
    const loopback = data === '127.0.0.1' || data === '::1';
    expect({ data, allowed: loopback || fake.check(data, a.type === 'A' ? 'ipv4' : 'ipv6') }).toEqual({ data, allowed: true });
    if (loopback) expect(event.name === 'localhost' || event.name.endsWith('.localhost')).toBe(true);
    // The mapping is stable while the name is live: asking again gives the same address.
    expect(answerQuery(packet, map).event.answers).toEqual([data]);
  });
});
