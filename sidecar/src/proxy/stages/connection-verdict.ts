// Stage: requests on a connection whose name the policy denied at the connection level (SNI or
// CONNECT) all get that denial; nothing from such a connection goes upstream.
import type { ConnectionInfo } from '../connection-info.ts';
import type { ConnectionVerdict } from '../connection-handoff.ts';
import type { Stage } from '../request-context.ts';
import type { Answerer } from './answer.ts';

const denied = new WeakMap<ConnectionInfo, ConnectionVerdict>();

export function markConnectionDenied(conn: ConnectionInfo, verdict: ConnectionVerdict): void {
  denied.set(conn, verdict);
}

/** The connection-level denial of a connection, if it has one (upgrades check it too). */
export function connectionDenial(conn: ConnectionInfo): ConnectionVerdict | undefined {
  return denied.get(conn);
}

export function connectionVerdictStage(answer: Answerer): Stage {
  return async (ctx, next) => {
    const verdict = denied.get(ctx.conn);
    if (verdict) {
      answer(ctx, { status: 403, code: verdict.code, reason: verdict.reason, kind: 'deny' });
      return;
    }
    await next();
  };
}
