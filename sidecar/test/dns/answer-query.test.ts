// answerQuery on wire packets: what is answered, what is refused and why, and that no input
// bytes make it throw.
import { describe, expect, test } from '@jest/globals';
import dnsPacket from 'dns-packet';
import type { DecodedPacket } from 'dns-packet';
import { answerQuery } from '../../src/dns/answer-query.ts';
import { FakeIpMap } from '../../src/dns/fake-ip-map.ts';

const query = (name: string, type: string, extra: Partial<dnsPacket.Packet> = {}): Buffer =>
  dnsPacket.encode({ type: 'query', id: 4242, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type: type as dnsPacket.RecordType, class: 'IN' }], ...extra });
const decode = (b: Buffer | undefined): DecodedPacket & { rcode?: string } => dnsPacket.decode(b as Buffer);

/** A raw query with one question whose labels are written as given (no validation). */
function rawQuery(labels: Buffer[], qtype = 1, qclass = 1): Buffer {
  const header = Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  const name = Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), l])), Buffer.from([0])]);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(qtype, 0);
  tail.writeUInt16BE(qclass, 2);
  return Buffer.concat([header, name, tail]);
}

describe('answerQuery', () => {
  test('A and AAAA get synthetic addresses, echoing id and question', () => {
    const map = new FakeIpMap();
    const a = answerQuery(query('GitHub.com', 'A'), map);
    const r = decode(a.response);
    expect(r.id).toBe(4242);
    expect(r.rcode).toBe('NOERROR');
    expect(r.flag_rd).toBe(true);
    expect(r.questions).toEqual([{ name: 'GitHub.com', type: 'A', class: 'IN' }]);
    expect(r.answers).toMatchObject([{ name: 'GitHub.com', type: 'A', ttl: 30, data: '198.18.0.1' }]);
    expect(a.event).toEqual({ name: 'github.com', type: 'A', result: 'answered', answers: ['198.18.0.1'] });
    const aaaa = answerQuery(query('github.com.', 'AAAA'), map);
    expect(decode(aaaa.response).answers).toMatchObject([{ type: 'AAAA', data: 'fd73:6c75:6963::1' }]);
    expect(map.size).toBe(1);
  });

  test('data-carrying types are refused; HTTPS/SVCB get an empty answer; nothing is mapped for them', () => {
    const map = new FakeIpMap();
    for (const type of ['TXT', 'MX', 'ANY', 'NULL', 'CNAME', 'SRV', 'PTR', 'NS', 'SOA', 'CAA']) {
      const { response, event } = answerQuery(query('exfil.evil.example', type), map);
      expect(decode(response).rcode).toBe('REFUSED');
      expect(decode(response).answers).toEqual([]);
      expect(event).toMatchObject({ result: 'refused', reason: 'type_refused', type });
    }
    const https = answerQuery(query('github.com', 'UNKNOWN_65'), map);
    expect(decode(https.response).rcode).toBe('NOERROR');
    expect(decode(https.response).answers).toEqual([]);
    expect(https.event).toMatchObject({ type: 'HTTPS', result: 'nodata', reason: 'type_no_data' });
    expect(map.size).toBe(0);
  });

  test('AAAA with IPv6 disabled: empty NOERROR, A still works', () => {
    const map = new FakeIpMap({ ipv6Cidr: null });
    const r = answerQuery(query('github.com', 'AAAA'), map);
    expect(decode(r.response).rcode).toBe('NOERROR');
    expect(r.event.reason).toBe('no_ipv6');
  });

  test('malformed names and over-long labels get NXDOMAIN', () => {
    const map = new FakeIpMap();
    const cases: Array<[Buffer, string]> = [
      [rawQuery([Buffer.from('bad name'), Buffer.from('com')]), 'malformed_name'],
      [rawQuery([Buffer.from('-lead'), Buffer.from('com')]), 'malformed_name'],
      [rawQuery([Buffer.from([0xc3, 0xa9]), Buffer.from('com')]), 'malformed_name'],
      [rawQuery([]), 'malformed_name'],
    ];
    for (const [packet, reason] of cases) {
      const { response, event } = answerQuery(packet, map);
      expect(decode(response).rcode).toBe('NXDOMAIN');
      expect(event.reason).toBe(reason);
    }
    const long = 'x'.repeat(40);
    const strict = answerQuery(query(`${long}.t.example`, 'A'), map, { maxLabelLength: 32 });
    expect(strict.event).toMatchObject({ result: 'nxdomain', reason: 'label_too_long' });
    const name = Array.from({ length: 3 }, () => 'y'.repeat(60)).join('.');
    expect(answerQuery(query(name, 'A'), map, { maxNameLength: 128 }).event).toMatchObject({ result: 'nxdomain', reason: 'name_too_long' });
    // Past 253 bytes a name cannot be decoded at all: a malformed packet.
    const tooLong = Array.from({ length: 5 }, () => 'y'.repeat(60)).join('.');
    expect(answerQuery(query(tooLong, 'A'), map).event).toMatchObject({ result: 'formerr', reason: 'malformed_packet' });
    expect(map.size).toBe(0);
  });

  test('a 64-byte label (not encodable in DNS) is a malformed packet: FORMERR', () => {
    const r = answerQuery(rawQuery([Buffer.alloc(64, 0x61), Buffer.from('com')]), new FakeIpMap());
    expect(r.event).toMatchObject({ result: 'formerr', reason: 'malformed_packet' });
    expect(decode(r.response).id).toBe(0x1234);
  });

  test('other classes, opcodes, question counts and responses', () => {
    const map = new FakeIpMap();
    expect(answerQuery(rawQuery([Buffer.from('version'), Buffer.from('bind')], 16, 3), map).event).toMatchObject({ result: 'refused', reason: 'class_refused' });
    const notify = query('x.example', 'A');
    notify.writeUInt16BE(0x2000, 2); // opcode NOTIFY (4)
    expect(answerQuery(notify, map).event).toMatchObject({ result: 'notimp' });
    const two = dnsPacket.encode({ type: 'query', id: 1, questions: [{ name: 'a.example', type: 'A' }, { name: 'b.example', type: 'A' }] });
    expect(answerQuery(two, map).event).toMatchObject({ result: 'formerr', reason: 'question_count' });
    const response = dnsPacket.encode({ type: 'response', id: 1, questions: [{ name: 'a.example', type: 'A' }] });
    expect(answerQuery(response, map)).toEqual({ response: undefined, event: expect.objectContaining({ result: 'dropped', reason: 'not_a_query' }) });
    expect(answerQuery(Buffer.from([1, 2, 3]), map).response).toBeUndefined();
    expect(map.size).toBe(0);
  });

  test('localhost answers loopback and is not mapped', () => {
    const map = new FakeIpMap();
    expect(decode(answerQuery(query('localhost', 'A'), map).response).answers).toMatchObject([{ data: '127.0.0.1' }]);
    expect(decode(answerQuery(query('app.localhost', 'AAAA'), map).response).answers).toMatchObject([{ data: '::1' }]);
    expect(map.size).toBe(0);
  });

  test('random and damaged packets never throw; every reply is a well-formed response', () => {
    let seed = 7;
    const next = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    const map = new FakeIpMap();
    const good = query('registry.npmjs.org', 'A', { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] });
    for (let i = 0; i < 5000; i++) {
      const p = i % 2 ? Buffer.from(Array.from({ length: next() % 80 }, () => next() & 255)) : Buffer.from(good);
      if (i % 2 === 0) for (let k = next() % 4; k > 0; k--) p[next() % p.length] = next() & 255;
      const { response, event } = answerQuery(p.subarray(0, next() % (p.length + 1)), map);
      expect(typeof event.result).toBe('string');
      if (response) expect(decode(response).type).toBe('response');
    }
  });
});
