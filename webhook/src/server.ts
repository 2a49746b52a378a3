// The HTTP shell around the pure review functions: HTTPS for the API server (/mutate, /validate
// and their /namespace variants, one per webhook in the configurations), and a separate plain
// port for /healthz, /readyz and /metrics. A request it cannot read is a 400 with the reason; a
// fault inside a review is a deny with code 500 (failurePolicy is Fail anyway). It never exits
// on a bad request. Served by node:http directly (http-shell.ts): a fixed table of POST routes
// needs no framework, and every review is on the API server's admission path.
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, RequestListener, Server as HttpServer, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { MalformedReviewError, deny, parseAdmissionReview } from './admission-review.ts';
import { reviewApprovalMutation, reviewApprovalValidation } from './approvals/review.ts';
import type { WebhookConfig } from './config.ts';
import type { WebhookMetrics } from './metrics.ts';
import { registerWebhookMetrics } from './metrics.ts';
import { reviewMutation, reviewPortForward, reviewValidation } from './review.ts';
import { ANNOTATION_CREATOR, ANNOTATION_STATUS } from '../../api/src/index.ts';
import { podOf } from './admission-review.ts';
import { AgentRbacCleaner, AgentRbacEnsurer } from './agent-rbac.ts';
import { KubeReadError, createKubeReader, kubeAccess } from './kube-reader.ts';
import type { KubeReader } from './kube-reader.ts';
import { selectForInjection } from './pod-model.ts';
import { describeViolations, violation } from './violations.ts';
import { podCreator, reviewWorkloadMutation } from './workload-review.ts';
import type { ReviewOutcome, Scope } from './review.ts';
import { ServingCertReloader } from './serving-cert.ts';
import { BodyError, readJsonBody, routePath, sendJson, sendText } from './http-shell.ts';

type Endpoint = 'mutate' | 'validate';
type Reviewer = (r: ReturnType<typeof parseAdmissionReview>, s: Scope, c: WebhookConfig) => ReviewOutcome | Promise<ReviewOutcome>;

export interface AppDeps {
  config: WebhookConfig;
  metrics: WebhookMetrics;
  logger: Logger;
  /** Reads pods and owners with the webhook's own credentials; without it, what needs a read is refused. */
  kube?: KubeReader | undefined;
  /** Ensures the approvals RoleBindings of an injected pod's namespace (config.agentRbac). */
  agentRbac?: AgentRbacEnsurer | undefined;
}

/**
 * A pod review whose creator is resolved first (a controller's pod inherits its owner's stamp,
 * workload-review.ts): only for pods being created that sluice injects (mutate) or injected
 * (validate), so a pod sluice leaves alone never waits on, or is refused for, an API read.
 */
function withPodCreator(review: typeof reviewMutation, kube: KubeReader | undefined, endpoint: Endpoint, agentRbac?: AgentRbacEnsurer, logger?: Logger): Reviewer {
  return async (request, scope, config) => {
    if (request.resource.group !== '' || request.resource.resource !== 'pods' || request.subResource || request.operation !== 'CREATE') return review(request, scope, config);
    const pod = podOf(request.object, 'object');
    const concerned =
      endpoint === 'mutate'
        ? selectForInjection(pod, request.namespace ?? '', scope === 'namespace', config).inject
        : pod.metadata.annotations?.[ANNOTATION_STATUS] !== undefined || pod.metadata.annotations?.[ANNOTATION_CREATOR] !== undefined;
    if (!concerned) return review(request, scope, config);
    const creator = await podCreator(request, config, kube);
    if ('violations' in creator) {
      return { review: deny(request.uid, describeViolations(creator.violations)), result: 'denied', rules: [...new Set(creator.violations.map((v) => v.rule))], patchBytes: 0 };
    }
    const outcome = review(request, scope, config, creator.user);
    if (endpoint === 'mutate' && agentRbac && !request.dryRun && (outcome.result === 'patched' || outcome.result === 'unchanged')) {
      await ensureAgentRbac(agentRbac, request, outcome, logger);
    }
    return outcome;
  };
}

/**
 * The pod is admitted even when its namespace's approvals RBAC cannot be ensured: its egress is
 * guarded all the same, and without the binding its held requests are refused (fail closed), so
 * refusing the pod would only couple every agent start to an RBAC write. The creator sees why in
 * an admission warning, the webhook log names it, and the next injected pod tries again.
 */
async function ensureAgentRbac(agentRbac: AgentRbacEnsurer, request: ReturnType<typeof parseAdmissionReview>, outcome: ReviewOutcome, logger?: Logger): Promise<void> {
  const namespace = request.namespace ?? '';
  try {
    await agentRbac.ensureForAdmission(namespace);
  } catch (err) {
    const message = `sluice: the approvals RoleBindings of namespace ${namespace} could not be ensured (${(err as Error).message}); held requests of this pod are refused until they exist`;
    outcome.review.response.warnings = [...(outcome.review.response.warnings ?? []), message];
    logger?.warn({ code: 'SLUICE_WEBHOOK_AGENT_RBAC', uid: request.uid, namespace }, message);
  }
}

/**
 * CONNECT outside opted-in namespaces (/validate/connect): a port-forward's ports are chosen after
 * admission, so whether it may go ahead depends on the pod — read with the webhook's own
 * credentials. A pod it cannot read is refused (fail closed); proxy is decided by its port alone.
 */
function withConnectTarget(kube: KubeReader | undefined): Reviewer {
  return async (request, scope, config) => {
    if (request.resource.group !== '' || request.resource.resource !== 'pods' || request.subResource !== 'portforward' || request.operation !== 'CONNECT') {
      return reviewValidation(request, scope, config);
    }
    const path = `/api/v1/namespaces/${encodeURIComponent(request.namespace ?? '')}/pods/${encodeURIComponent(request.name ?? '')}`;
    let target: Record<string, unknown> | undefined;
    try {
      if (!kube) throw new KubeReadError('the webhook has no Kubernetes API access');
      target = await kube.get(path);
    } catch (err) {
      if (!(err instanceof KubeReadError)) throw err;
      const v = violation('guard.port_forward', 'portforward', `cannot tell whether the pod is one sluice injected (${err.message}); the port-forward is refused`);
      return { review: deny(request.uid, describeViolations([v])), result: 'denied', rules: [v.rule], patchBytes: 0 };
    }
    return reviewPortForward(request, target === undefined ? undefined : podOf(target, 'object'), config);
  };
}

/** `after` runs once the answer is on its way (metrics, logging: off the review's latency). */
type Handler = (body: unknown) => Promise<{ status: number; body: unknown; after?: () => void }>;

function reviewHandler(endpoint: Endpoint, scope: Scope, { config, metrics, logger, kube, agentRbac }: AppDeps, reviewer: Reviewer = withPodCreator(endpoint === 'mutate' ? reviewMutation : reviewValidation, kube, endpoint, agentRbac, logger)): Handler {
  return async (body) => {
    const started = process.hrtime.bigint();
    let request;
    try {
      request = parseAdmissionReview(body);
    } catch (err) {
      metrics.malformed.inc({ endpoint });
      metrics.reviews.inc({ endpoint, operation: 'unknown', result: 'malformed' });
      return { status: 400, body: { error: (err as Error).message } };
    }
    let outcome: ReviewOutcome;
    try {
      outcome = await reviewer(request, scope, config);
    } catch (err) {
      if (err instanceof MalformedReviewError) {
        metrics.malformed.inc({ endpoint });
        metrics.reviews.inc({ endpoint, operation: request.operation, result: 'malformed' });
        return { status: 400, body: { error: err.message } };
      }
      metrics.errors.inc({ endpoint });
      metrics.reviews.inc({ endpoint, operation: request.operation, result: 'error' });
      logger.error({ err, uid: request.uid, endpoint }, 'review failed');
      return { status: 200, body: deny(request.uid, 'sluice webhook internal error; the request is refused (see the webhook log)', 500) };
    }
    const after = () => {
      metrics.reviews.inc({ endpoint, operation: request.operation, result: outcome.result });
      for (const rule of outcome.rules) metrics.denials.inc({ endpoint, rule });
      if (outcome.patchBytes) metrics.patchBytes.observe(outcome.patchBytes);
      metrics.duration.observe({ endpoint }, Number(process.hrtime.bigint() - started) / 1e9);
      if (outcome.result === 'denied') {
        logger.info(
          { uid: request.uid, endpoint, namespace: request.namespace, name: request.name, user: request.userInfo.username, rules: outcome.rules },
          outcome.review.response.status?.message ?? 'denied',
        );
      }
    };
    return { status: 200, body: outcome.review, after };
  };
}

const NOT_FOUND = { error: 'not found: POST /mutate, /mutate/namespace, /mutate/approvals, /validate, /validate/namespace, /validate/injected, /validate/approvals or /mutate/workloads' };

/** The admission request listener; `listen` serves it over plain HTTP (tests, the bench). */
export type AdmissionApp = RequestListener & { listen(port: number, host: string): HttpServer };

/** The admission app alone (no TLS, no listening): what the server mounts and the bench drives. */
export function createAdmissionApp(deps: AppDeps): AdmissionApp {
  const routes = new Map<string, Handler>();
  for (const endpoint of ['mutate', 'validate'] as const) {
    routes.set(`/${endpoint}`, reviewHandler(endpoint, 'pod', deps));
    routes.set(`/${endpoint}/namespace`, reviewHandler(endpoint, 'namespace', deps));
  }
  // Every update of an injected pod, selected by the sluice.io/injected label (old or new object).
  routes.set('/validate/injected', reviewHandler('validate', 'injected', deps));
  // port-forward and proxy outside opted-in namespaces: the target pod is read to decide.
  routes.set('/validate/connect', reviewHandler('validate', 'pod', deps, withConnectTarget(deps.kube)));
  routes.set('/mutate/approvals', reviewHandler('mutate', 'pod', deps, (r, _s, c) => reviewApprovalMutation(r, c, deps.kube)));
  routes.set('/validate/approvals', reviewHandler('validate', 'pod', deps, (r, _s, c) => reviewApprovalValidation(r, c, deps.kube)));
  routes.set('/mutate/workloads', reviewHandler('mutate', 'pod', deps, (r, _s, c) => reviewWorkloadMutation(r, c, deps.kube)));

  const serve = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = routePath(req.url);
    const handler = req.method === 'POST' ? routes.get(path) : undefined;
    if (!handler) {
      req.resume();
      sendJson(res, 404, NOT_FOUND);
      return;
    }
    let body: unknown;
    try {
      body = await readJsonBody(req, deps.config.server.bodyLimitBytes);
    } catch (err) {
      if (!(err instanceof BodyError)) throw err;
      deps.metrics.malformed.inc({ endpoint: path.startsWith('/validate') ? 'validate' : 'mutate' });
      sendJson(res, err.status, { error: err.message }, err.status === 413);
      return;
    }
    const answer = await handler(body);
    sendJson(res, answer.status, answer.body);
    answer.after?.();
  };
  const listener: RequestListener = (req, res) => {
    serve(req, res).catch((err: unknown) => {
      deps.logger.error({ err }, 'admission request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  };
  return Object.assign(listener, { listen: (port: number, host: string) => createHttpServer(listener).listen(port, host) });
}

function healthApp(registry: Registry, ready: () => boolean): RequestListener {
  return (req, res) => {
    req.resume();
    const path = routePath(req.url);
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendText(res, 404, 'text/plain; charset=utf-8', 'not found');
    if (path === '/healthz') return sendText(res, 200, 'text/plain; charset=utf-8', 'ok');
    if (path === '/readyz') return ready() ? sendText(res, 200, 'text/plain; charset=utf-8', 'ok') : sendText(res, 503, 'text/plain; charset=utf-8', 'not ready');
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => sendText(res, 200, registry.contentType, text),
        () => sendText(res, 500, 'text/plain; charset=utf-8', 'metrics failed'),
      );
      return;
    }
    sendText(res, 404, 'text/plain; charset=utf-8', 'not found');
  };
}

export interface RunningWebhook {
  port: number;
  metricsPort: number;
  metrics: WebhookMetrics;
  certs: ServingCertReloader;
  close(): Promise<void>;
}

function listen(server: HttpServer | HttpsServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: HttpServer | HttpsServer): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

/** Loads the certificate (failing when there is none), then listens on both ports. */
export async function startWebhookServer(config: WebhookConfig, deps: { registry: Registry; logger: Logger; kube?: KubeReader }): Promise<RunningWebhook> {
  const metrics = registerWebhookMetrics(deps.registry);
  const { logger } = deps;
  let kube = deps.kube;
  if (!kube) {
    try {
      kube = createKubeReader(config.kube);
    } catch (err) {
      // Fail closed: ApprovalRequest creates and controller-made pods are refused until it can read.
      logger.warn({ err: (err as Error).message }, 'no Kubernetes API access: ApprovalRequests cannot be created and pods made by controllers are refused');
    }
  }
  let agentRbac: AgentRbacEnsurer | undefined;
  let agentRbacCleaner: AgentRbacCleaner | undefined;
  if (config.agentRbac) {
    try {
      const access = kubeAccess(config.kube);
      agentRbac = new AgentRbacEnsurer(config.agentRbac, config.approvals, access);
      // Takes the bindings back from namespaces that stopped being agent namespaces.
      agentRbacCleaner = new AgentRbacCleaner(config.agentRbac, access, agentRbac, logger);
    } catch (err) {
      logger.warn({ err: (err as Error).message, code: 'SLUICE_WEBHOOK_AGENT_RBAC' }, 'no Kubernetes API access: approvals RoleBindings of agent namespaces are not ensured');
    }
  }
  const s = config.server;
  // The first load happens before the server exists; later ones swap its context.
  const serving: { server?: HttpsServer } = {};
  const certs = new ServingCertReloader({
    dir: s.tlsDir,
    certFile: s.certFile,
    keyFile: s.keyFile,
    onLoad(cert) {
      serving.server?.setSecureContext({ cert: cert.cert, key: cert.key });
      metrics.certReloads.inc({ result: 'success' });
      metrics.certNotAfter.set(cert.notAfter.getTime() / 1000);
      logger.info({ notAfter: cert.notAfter.toISOString(), fingerprint: cert.fingerprint.slice(0, 16) }, 'serving certificate loaded');
    },
    onError(err) {
      metrics.certReloads.inc({ result: 'failure' });
      logger.warn({ code: err.code }, `${err.message}; keeping the certificate in use`);
    },
  });
  const first = await certs.start();
  const https = createHttpsServer({ cert: first.cert, key: first.key, minVersion: 'TLSv1.2' }, createAdmissionApp({ config, metrics, logger, kube, agentRbac }));
  // The API server's own webhook timeout is seconds; nothing legitimate needs longer.
  serving.server = https;
  https.requestTimeout = 10_000;
  https.headersTimeout = 5_000;
  https.keepAliveTimeout = 60_000;
  let listening = false;
  const health = createHttpServer(healthApp(deps.registry, () => listening && certs.current !== undefined));
  try {
    const port = await listen(https, s.port, s.host);
    const metricsPort = await listen(health, s.metricsPort, s.metricsHost);
    listening = true;
    agentRbacCleaner?.start();
    return {
      port,
      metricsPort,
      metrics,
      certs,
      async close() {
        listening = false;
        certs.stop();
        await agentRbacCleaner?.stop();
        await Promise.all([closeServer(https), closeServer(health)]);
      },
    };
  } catch (err) {
    certs.stop();
    https.close();
    health.close();
    throw err;
  }
}
