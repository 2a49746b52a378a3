// A refused push in git's protocol: parsed back pkt-line by pkt-line, it is a report-status with
// "unpack ok" and an "ng" for every ref, inside side-band 1 when the client asked for side-band,
// with the human-readable lines on band 2. No report-status asked → nothing (HTTP error instead).
// e2e/approvals shows real git printing it.
import { describe, expect, test } from '@jest/globals';
import { gitPushRejection, receivePackCapabilities } from '../../src/approvals/git-rejection.ts';

function pkt(s: string): Buffer {
  return Buffer.concat([Buffer.from((Buffer.byteLength(s) + 4).toString(16).padStart(4, '0')), Buffer.from(s)]);
}

function request(caps: string): Buffer {
  return Buffer.concat([pkt(`${'0'.repeat(40)} ${'1'.repeat(40)} refs/heads/main\0${caps}`), Buffer.from('0000PACK')]);
}

/** pkt-line payloads; null for a flush packet. */
function packets(buf: Buffer): (Buffer | null)[] {
  const out: (Buffer | null)[] = [];
  for (let i = 0; i < buf.length; ) {
    const len = parseInt(buf.subarray(i, i + 4).toString(), 16);
    out.push(len === 0 ? null : buf.subarray(i + 4, i + len));
    i += len === 0 ? 4 : len;
  }
  return out;
}

describe('receivePackCapabilities', () => {
  test('reads the capabilities after the NUL of the first command', () => {
    expect([...receivePackCapabilities(request(' report-status-v2 side-band-64k quiet object-format=sha1 agent=git/2.39.5'))]).toEqual([
      'report-status-v2',
      'side-band-64k',
      'quiet',
      'object-format=sha1',
      'agent=git/2.39.5',
    ]);
  });

  test.each([['nothing', undefined], ['too short', Buffer.from('00')], ['bad length', Buffer.from('zzzzabc')], ['no NUL', pkt('abc refs/heads/x')]])('%s → no capabilities', (_w, body) => {
    expect(receivePackCapabilities(body).size).toBe(0);
  });
});

describe('gitPushRejection', () => {
  test('side-band-64k: band 2 says why, band 1 carries unpack ok and ng per ref', () => {
    const body = gitPushRejection(request(' report-status side-band-64k'), ['refs/heads/main', 'refs/tags/v1'], 'sluice approval.denied: denied by bob: not\ntoday', ['held and refused'])!;
    const outer = packets(body);
    expect(outer.at(-1)).toBeNull();
    expect(outer[0]!.toString()).toBe('\x02sluice: held and refused\n');
    const inner = packets(Buffer.concat(outer.filter((p): p is Buffer => p !== null && p[0] === 1).map((p) => p.subarray(1))));
    expect(inner.map((p) => p?.toString() ?? null)).toEqual(['unpack ok\n', 'ng refs/heads/main sluice approval.denied: denied by bob: not today\n', 'ng refs/tags/v1 sluice approval.denied: denied by bob: not today\n', null]);
  });

  test('without side-band the report-status is the body itself', () => {
    const body = gitPushRejection(request(' report-status'), ['refs/heads/main'], 'no')!;
    expect(packets(body).map((p) => p?.toString() ?? null)).toEqual(['unpack ok\n', 'ng refs/heads/main no\n', null]);
  });

  test('no report-status asked for, or no refs known → undefined', () => {
    expect(gitPushRejection(request(' side-band-64k'), ['refs/heads/main'], 'no')).toBeUndefined();
    expect(gitPushRejection(request(' report-status'), [], 'no')).toBeUndefined();
  });

  test('a long reason is cut to one short printable line', () => {
    const body = gitPushRejection(request(' report-status'), ['refs/heads/main'], `é${'x'.repeat(1000)}`)!;
    const ng = packets(body)[1]!.toString();
    expect(ng.length).toBeLessThan(330);
    expect(ng).toMatch(/^ng refs\/heads\/main \?x+…\n$/);
  });
});
