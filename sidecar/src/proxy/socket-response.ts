// A response for a request node:http hands over with its raw socket (a protocol upgrade, a
// CONNECT): node's own ServerResponse, bound to that socket, so such a request is a RequestContext
// like any other and sluice's answers to it (sluice-responses.ts) are written, framed and closed the
// same way. The connection is closed once an answer is out: after an upgrade or a CONNECT the
// socket no longer carries HTTP requests. Never written to by the WebSocket relay or a tunnel,
// which take the raw socket itself once sluice has let the request on.
import { ServerResponse } from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

export function socketResponse(req: IncomingMessage, socket: Socket): ServerResponse {
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket);
  res.once('finish', () => socket.end());
  return res;
}
