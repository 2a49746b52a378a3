// The upgrade request check: an Upgrade on an HTTP/1.0 request is refused (RFC 9110 §7.8 says to
// ignore it, RFC 6455 §4.1 needs HTTP/1.1), as the same request on HTTP/1.1 is carried; one with a
// body is refused, and the head sent upstream never announces one.
import { expect, test } from '@jest/globals';
import { checkUpgradeRequest, upstreamRequestHead } from '../../src/websocket/handshake.ts';

const HEADERS = { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' };

test('an HTTP/1.0 upgrade is refused as a bad handshake; the same on HTTP/1.1 passes', () => {
  expect(checkUpgradeRequest('GET', HEADERS, '1.0')).toEqual({ status: 400, code: 'ws.bad_handshake', reason: 'an upgrade needs HTTP/1.1; this request is HTTP/1.0' });
  expect(checkUpgradeRequest('GET', HEADERS, '1.1')).toBeUndefined();
});

test('an upgrade with a body is refused (http.upgrade_body); Content-Length: 0 is no body', () => {
  for (const body of [{ 'content-length': '12' }, { 'transfer-encoding': 'chunked' }, { 'content-length': '0', 'transfer-encoding': 'chunked' }]) {
    expect(checkUpgradeRequest('GET', { ...HEADERS, ...body }, '1.1')).toMatchObject({ status: 400, code: 'http.upgrade_body' });
  }
  expect(checkUpgradeRequest('GET', { ...HEADERS, 'content-length': '0' }, '1.1')).toBeUndefined();
});

test('the handshake sent upstream carries no body framing', () => {
  const head = upstreamRequestHead('/ws', 'example.com', { 'content-length': '0', 'x-a': 'b' }, 'k');
  expect(head).not.toMatch(/content-length|transfer-encoding/i);
  expect(head).toContain('x-a: b\r\n');
});
