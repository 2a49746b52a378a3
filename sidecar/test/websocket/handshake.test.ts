// The upgrade request check: an Upgrade on an HTTP/1.0 request is refused (RFC 9110 §7.8 says to
// ignore it, RFC 6455 §4.1 needs HTTP/1.1), as the same request on HTTP/1.1 is carried.
import { expect, test } from '@jest/globals';
import { checkUpgradeRequest } from '../../src/websocket/handshake.ts';

const HEADERS = { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' };

test('an HTTP/1.0 upgrade is refused as a bad handshake; the same on HTTP/1.1 passes', () => {
  expect(checkUpgradeRequest('GET', HEADERS, '1.0')).toEqual({ status: 400, code: 'ws.bad_handshake', reason: 'an upgrade needs HTTP/1.1; this request is HTTP/1.0' });
  expect(checkUpgradeRequest('GET', HEADERS, '1.1')).toBeUndefined();
});
