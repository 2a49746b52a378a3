// The DNS lockdown's decision for one query packet: A/AAAA for a well-formed name get synthetic
// addresses from the FakeIpMap; every other type, class, opcode or malformed name gets an error
// answer made here. Nothing is ever forwarded or resolved for real, so a query can carry no data
// out of the pod (no tunnelling) and an answer carries no data from outside into it. Pure apart
// from the map; must never throw on any input bytes.
import dnsPacket from 'dns-packet';
import type { Answer, Question } from 'dns-packet';
import type { FakeIpMap } from './fake-ip-map.ts';

export type DnsResult = 'answered' | 'nodata' | 'nxdomain' | 'refused' | 'formerr' | 'notimp' | 'dropped';

/** Stable codes for why a query got no address (audit field and docs key). */
export type DnsRefusalReason =
  | 'type_refused'
  | 'type_no_data'
  | 'no_ipv6'
  | 'class_refused'
  | 'malformed_name'
  | 'name_too_long'
  | 'label_too_long'
  | 'question_count'
  | 'opcode_not_implemented'
  | 'malformed_packet'
  | 'not_a_query';

export interface DnsQueryEvent {
  /** Lower-case query name without the trailing dot ('' when the packet had none readable). */
  name: string;
  /** Query type (A, AAAA, TXT, HTTPS, …; UNKNOWN_n for unnamed types; '' when unreadable). */
  type: string;
  result: DnsResult;
  /** Addresses answered (synthetic, or loopback for localhost). */
  answers?: string[];
  reason?: DnsRefusalReason;
}

export interface DnsAnswer {
  /** Response bytes to send back; undefined when the packet deserves no reply (not a query). */
  response: Buffer | undefined;
  event: DnsQueryEvent;
}

export interface AnswerOptions {
  /** Longest label answered; 63 is the protocol limit, lower values refuse tunnel-style labels. */
  maxLabelLength?: number;
  /** Longest name answered (without the trailing dot). */
  maxNameLength?: number;
}

const RCODE = { NOERROR: 0, FORMERR: 1, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
// Types a modern stub asks alongside A/AAAA: an empty NOERROR lets it fall back to A/AAAA at once.
const NO_DATA_TYPES = new Set(['UNKNOWN_64', 'UNKNOWN_65']); // SVCB, HTTPS
const TYPE_NAMES: Readonly<Record<string, string>> = { UNKNOWN_64: 'SVCB', UNKNOWN_65: 'HTTPS' };
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?$/;

function flagsFor(queryFlags: number, rcode: number): number {
  const opcode = queryFlags & 0x7800;
  const rd = queryFlags & dnsPacket.RECURSION_DESIRED;
  // AA: this server is the only authority the pod has; RA: stubs warn when it is missing.
  return opcode | rd | dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.RECURSION_AVAILABLE | rcode;
}

function headerOnly(id: number, queryFlags: number, rcode: number): Buffer {
  return dnsPacket.encode({ type: 'response', id, flags: flagsFor(queryFlags, rcode), questions: [] });
}

/** Validates a decoded name; the reason when it is not a name this server will answer. */
export function checkName(name: string, options: AnswerOptions = {}): DnsRefusalReason | undefined {
  const maxLabel = options.maxLabelLength ?? 63;
  const maxName = options.maxNameLength ?? 253;
  if (name === '' || name === '.') return 'malformed_name';
  if (name.length > maxName) return 'name_too_long';
  for (const label of name.split('.')) {
    if (label.length > maxLabel) return 'label_too_long';
    if (!LABEL.test(label)) return 'malformed_name';
  }
  return undefined;
}

/** Does a reply that echoes this question decode again (labels of at most 63 bytes)? */
function echoable(q: Question): boolean {
  try {
    dnsPacket.decode(dnsPacket.encode({ type: 'response', id: 0, questions: [q] }));
    return true;
  } catch {
    return false;
  }
}

function isLocalhost(name: string): boolean {
  return name === 'localhost' || name.endsWith('.localhost');
}

/** Answers one DNS query packet (UDP payload or one TCP frame without its length prefix). */
export function answerQuery(query: Buffer, map: FakeIpMap, options: AnswerOptions = {}): DnsAnswer {
  if (query.length < 12) return { response: undefined, event: { name: '', type: '', result: 'dropped', reason: 'malformed_packet' } };
  const id = query.readUInt16BE(0);
  const flags = query.readUInt16BE(2);
  // Never answer a response: two servers answering each other would loop.
  if (flags & 0x8000) return { response: undefined, event: { name: '', type: '', result: 'dropped', reason: 'not_a_query' } };
  if ((flags & 0x7800) !== 0) {
    return { response: headerOnly(id, flags, RCODE.NOTIMP), event: { name: '', type: '', result: 'notimp', reason: 'opcode_not_implemented' } };
  }
  let questions: Question[];
  try {
    questions = dnsPacket.decode(query).questions ?? [];
  } catch {
    return { response: headerOnly(id, flags, RCODE.FORMERR), event: { name: '', type: '', result: 'formerr', reason: 'malformed_packet' } };
  }
  if (questions.length !== 1) {
    return { response: headerOnly(id, flags, RCODE.FORMERR), event: { name: '', type: '', result: 'formerr', reason: 'question_count' } };
  }
  const q = questions[0]!;
  // dns-packet reads label bytes as UTF-8: an invalid byte becomes U+FFFD and re-encodes longer,
  // so a reply echoing such a question would hold a label no client can decode (found by fuzzing).
  if (!echoable(q)) {
    return { response: headerOnly(id, flags, RCODE.FORMERR), event: { name: '', type: '', result: 'formerr', reason: 'malformed_name' } };
  }
  const name = q.name.toLowerCase().replace(/\.$/, '');
  const type = TYPE_NAMES[q.type] ?? q.type;
  const reply = (rcode: number, answers: Answer[] = []): Buffer =>
    dnsPacket.encode({ type: 'response', id, flags: flagsFor(flags, rcode), questions: [q], answers });
  const refuse = (result: DnsResult, rcode: number, reason: DnsRefusalReason): DnsAnswer => ({
    response: reply(rcode),
    event: { name, type, result, reason },
  });

  if (q.class !== 'IN') return refuse('refused', RCODE.REFUSED, 'class_refused');
  const bad = checkName(name, options);
  if (bad) return refuse('nxdomain', RCODE.NXDOMAIN, bad);
  if (q.type !== 'A' && q.type !== 'AAAA') {
    return NO_DATA_TYPES.has(q.type) ? refuse('nodata', RCODE.NOERROR, 'type_no_data') : refuse('refused', RCODE.REFUSED, 'type_refused');
  }

  let address: string | undefined;
  if (isLocalhost(name)) address = q.type === 'A' ? '127.0.0.1' : '::1'; // RFC 6761: never leaves the host
  else {
    const mapped = map.addressesFor(name);
    address = q.type === 'A' ? mapped.ipv4 : mapped.ipv6;
  }
  if (address === undefined) return refuse('nodata', RCODE.NOERROR, 'no_ipv6');
  const answer: Answer = { type: q.type, class: 'IN', name: q.name, ttl: map.answerTtlSeconds, data: address };
  return { response: reply(RCODE.NOERROR, [answer]), event: { name, type, result: 'answered', answers: [address] } };
}
