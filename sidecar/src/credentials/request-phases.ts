// Credentials' work in the request pipeline. before-forward puts a credential on a request the
// policy allowed: it reads `decision.credential` and asks the named provider to inject it into
// `ctx.upstream`. It runs last in that phase (after outbound masking, which may change the body a
// signature covers). A provider failure fails the request closed: 502/503 with a stable code naming
// the provider, counted by provider and code. response-headers makes sure the value cannot come
// back to the agent: an echo of it in the response is overwritten, counted by provider and listed
// among the response's redactions (rule `credential-echo`, its body offset; 0 for a header value).
import type { Logger } from 'pino';
import { MAX_RECORDED_REDACTIONS } from '../proxy/audit-records.ts';
import type { PhaseHandlers } from '../proxy/pipeline.ts';
import type { RequestContext } from '../proxy/request-context.ts';
import { redactEchoesHook } from './echo-redaction.ts';
import type { EchoHit } from './echo-redaction.ts';
import { CredentialError } from './errors.ts';
import type { CredentialMetrics } from './metrics.ts';
import type { CredentialProvider } from './provider.ts';

export interface CredentialsPhaseDeps {
  providers: ReadonlyMap<string, CredentialProvider>;
  metrics: CredentialMetrics;
  log?: Logger;
}

declare module '../proxy/request-context.ts' {
  interface RequestContext {
    /** What a provider put on this request (the response is searched for it); never logged or recorded. */
    injectedCredential?: { provider: string; secrets: readonly string[] };
  }
}

/** The rule name an echoed credential's redaction is recorded under (never its value). */
export const ECHO_RULE = 'credential-echo';

function echoesRedacted(ctx: RequestContext, metrics: CredentialMetrics, provider: string, hits: readonly EchoHit[]): void {
  metrics.echoesRedacted.inc({ provider }, hits.length);
  for (const h of hits) {
    if (ctx.redactions.length >= MAX_RECORDED_REDACTIONS) break;
    ctx.redactions.push({ rule: ECHO_RULE, direction: 'response', offset: h.where === 'body' ? h.offset : 0 });
  }
}

export function credentialsPhases(deps: CredentialsPhaseDeps): PhaseHandlers {
  return {
    async 'before-forward'(ctx) {
      const spec = ctx.evaluation.decision.credential;
      if (!spec) return undefined;
      const provider = deps.providers.get(spec.provider);
      const started = process.hrtime.bigint();
      try {
        if (!provider) {
          throw new CredentialError('credentials.unknown_provider', 'unknown', `credential provider "${String(spec.provider).slice(0, 64)}" is not one sluice knows`);
        }
        const s = ctx.summary;
        if (s.scheme !== 'https') {
          throw new CredentialError('credentials.plaintext_refused', provider.name, `${provider.name}: credentials are only sent over TLS; use https://${s.host}`);
        }
        const aws = ctx.facts.aws ? { service: ctx.facts.aws.service, region: ctx.facts.aws.region } : undefined;
        const injection = await provider.inject(ctx.upstream, spec, { host: s.host, port: s.port, scheme: s.scheme, aws });
        if (injection.injected) deps.metrics.injected.inc({ provider: provider.name, jit: String(provider.jit) });
        if (injection.secrets.length) ctx.injectedCredential = { provider: provider.name, secrets: injection.secrets };
      } catch (err) {
        const e =
          err instanceof CredentialError
            ? err
            : new CredentialError('credentials.internal_error', provider?.name ?? 'unknown', `${provider?.name ?? 'credentials'}: sidecar fault while injecting a credential (${(err as Error).name})`, { cause: err });
        deps.metrics.errors.inc({ provider: e.provider, code: e.code });
        deps.log?.warn({ provider: e.provider, code: e.code, request: ctx.id }, 'credential injection failed; request failed closed');
        return { status: e.status, code: e.code, reason: e.message, kind: 'error' };
      } finally {
        ctx.timings.credentials_ms = Number(process.hrtime.bigint() - started) / 1e6;
      }
      return undefined;
    },
    'response-headers'(ctx, head) {
      const injected = ctx.injectedCredential;
      if (!injected) return undefined;
      return redactEchoesHook(injected.secrets, (hits) => echoesRedacted(ctx, deps.metrics, injected.provider, hits))(head);
    },
  };
}
