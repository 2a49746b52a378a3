// Guard: RFC 9112 §3.2: a request with more than one Host field line is a 400. node:http keeps
// the first and drops the rest, so without this the request would be decided on one of two
// authorities.
import type { AgentRequest } from '../agent-request.ts';
import type { SluiceAnswerSpec } from './answer.ts';

export function singleHost(head: { readonly req: AgentRequest }): SluiceAnswerSpec | undefined {
  const raw = head.req.rawHeaders;
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === 'host') hosts++;
  return hosts > 1 ? { status: 400, code: 'http.bad_host', reason: 'the request has more than one Host field', kind: 'deny' } : undefined;
}
