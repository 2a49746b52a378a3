// Tells humans a request is waiting: one POST per new ApprovalRequest to an optional webhook, as
// Slack incoming-webhook JSON or a generic event, carrying the summary and the exact
// `kubectl sluice approve` command. It only informs: approval happens through the API server, so
// the notification carries no capability and a lost one delays, never grants. Failures are retried
// with exponential back-off and jitter, bounded, and counted. It never blocks the hold.
import { readFileSync } from 'node:fs';
import { request } from 'undici';
import type { Dispatcher } from 'undici';
import type { ApprovalRequest } from '../../../api/src/index.ts';
import type { NotifyConfig } from './config.ts';
import type { ApprovalMetrics } from './metrics.ts';

export interface PendingNotice {
  name: string;
  namespace: string;
  pod: string;
  creator: string | undefined;
  summary: string;
  reason: string;
  requestedScope: string;
  expiresAt: string;
  approve: string;
  deny: string;
}

/** Quote for a POSIX shell only when needed, so the command pastes as it reads. */
function shellWord(s: string): string {
  return /^[A-Za-z0-9@%+=:,./_-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function noticeFor(obj: ApprovalRequest): PendingNotice {
  const name = obj.metadata.name ?? '';
  const ns = obj.metadata.namespace ?? obj.spec.pod.namespace;
  const scope = obj.spec.requestedScope;
  const ttl = scope === 'ttl' && obj.spec.requestedTTL ? ` --ttl ${obj.spec.requestedTTL}` : '';
  return {
    name,
    namespace: ns,
    pod: obj.spec.pod.name,
    creator: obj.spec.creator?.username,
    summary: obj.spec.request.summary,
    reason: obj.spec.reason,
    requestedScope: scope,
    expiresAt: obj.spec.expiresAt,
    approve: `kubectl sluice approve ${shellWord(name)} -n ${shellWord(ns)} --scope ${scope}${ttl}`,
    deny: `kubectl sluice deny ${shellWord(name)} -n ${shellWord(ns)} --reason '…'`,
  };
}

/** Slack's mrkdwn needs &, < and > escaped; everything else is literal. */
function mrkdwn(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function slackPayload(n: PendingNotice): unknown {
  const text = `sluice: ${n.pod} (${n.namespace}) wants to ${n.summary} — approve with \`${n.approve}\``;
  return {
    text: mrkdwn(text),
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `*Approval needed* for pod \`${mrkdwn(n.pod)}\` in \`${mrkdwn(n.namespace)}\`${n.creator ? ` (created by ${mrkdwn(n.creator)})` : ''}` } },
      { type: 'section', text: { type: 'mrkdwn', text: `*${mrkdwn(n.summary)}*\n${mrkdwn(n.reason)}` } },
      { type: 'section', text: { type: 'mrkdwn', text: `Approve:\n\`\`\`${mrkdwn(n.approve)}\`\`\`\nDeny:\n\`\`\`${mrkdwn(n.deny)}\`\`\`` } },
      { type: 'context', elements: [{ type: 'mrkdwn', text: `${mrkdwn(n.name)} · requested scope ${n.requestedScope} · held until ${n.expiresAt}` }] },
    ],
  };
}

export function genericPayload(n: PendingNotice): unknown {
  return { kind: 'sluice.approval.pending', approval: n };
}

/** Delay before attempt `attempt` (1-based retries): full jitter over an exponential ceiling. */
export function backoffMs(attempt: number, initialMs: number, maxMs: number, random: () => number): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export interface NotifierDeps {
  metrics?: ApprovalMetrics;
  dispatcher?: Dispatcher;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
  log?: (msg: string, detail: Record<string, unknown>) => void;
}

export class Notifier {
  readonly #config: NotifyConfig;
  readonly #url: string;
  readonly #deps: NotifierDeps;
  readonly #inFlight = new Set<Promise<void>>();
  #stopped = false;

  /** undefined when no URL is configured (notifications are optional). */
  static create(config: NotifyConfig, deps: NotifierDeps = {}): Notifier | undefined {
    const url = config.url ?? (config.urlFile ? readFileSync(config.urlFile, 'utf8').trim() : undefined);
    return url ? new Notifier(config, url, deps) : undefined;
  }

  constructor(config: NotifyConfig, url: string, deps: NotifierDeps = {}) {
    this.#config = config;
    this.#url = url;
    this.#deps = deps;
  }

  /** Resolves once delivered or given up (never rejects); the hold never waits for it. */
  notify(obj: ApprovalRequest): Promise<void> {
    const notice = noticeFor(obj);
    const payload = this.#config.format === 'slack' ? slackPayload(notice) : genericPayload(notice);
    const p = this.#send(payload, notice.name).finally(() => this.#inFlight.delete(p));
    this.#inFlight.add(p);
    return p;
  }

  /** Lets in-flight notifications finish their current attempt, then stops retrying. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.allSettled([...this.#inFlight]);
  }

  async #attempt(body: string): Promise<void> {
    const res = await request(this.#url, {
      method: 'POST',
      dispatcher: this.#deps.dispatcher,
      headers: { 'content-type': 'application/json', ...this.#config.headers },
      body,
      headersTimeout: this.#config.timeoutMs,
      bodyTimeout: this.#config.timeoutMs,
      signal: AbortSignal.timeout(this.#config.timeoutMs),
    });
    await res.body.dump();
    if (res.statusCode >= 300) throw new Error(`HTTP ${res.statusCode}`);
  }

  async #send(payload: unknown, name: string): Promise<void> {
    const body = JSON.stringify(payload);
    const sleep = this.#deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref()));
    const random = this.#deps.random ?? Math.random;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#attempt(body);
        this.#deps.metrics?.notifications.inc({ result: 'sent' });
        return;
      } catch (err) {
        const last = attempt >= this.#config.maxAttempts || this.#stopped;
        this.#deps.metrics?.notifications.inc({ result: last ? 'failed' : 'retried' });
        this.#deps.log?.('approval notification failed', { approval: name, attempt, last, err: (err as Error).message });
        if (last) return;
        await sleep(backoffMs(attempt, this.#config.initialBackoffMs, this.#config.maxBackoffMs, random));
      }
    }
  }
}
