// AdmissionReview → AdmissionReview for /mutate and /validate: routes the request to the injector
// or the guard and turns the result into a response. Pure; the server adds HTTP, timing and metrics.
import type { V1Pod } from '@kubernetes/client-node';
import { z } from 'zod';
import { MalformedReviewError, allow, deny, podOf } from './admission-review.ts';
import type { AdmissionRequest, AdmissionReviewResponse } from './admission-review.ts';
import type { WebhookConfig } from './config.ts';
import { carriesInjectionMarkers, guardConnect, guardPodCreate, guardPodUpdate, guardPortForward, guardProxy } from './guard.ts';
import type { GuardContext } from './guard.ts';
import type { UserInfo } from './creator.ts';
import { planInjection } from './inject.ts';
import { describeViolations } from './violations.ts';
import type { Rule, Violation } from './violations.ts';

/**
 * How the webhook configuration selected the request: by the pod's label, its namespace's, or the
 * pod's injection marker (`sluice.io/injected`, written only by the injector; the registration of
 * every update of an injected pod).
 */
export type Scope = 'pod' | 'namespace' | 'injected';

export type ReviewResult = 'patched' | 'unchanged' | 'skipped' | 'allowed' | 'denied';

export interface ReviewOutcome {
  review: AdmissionReviewResponse;
  result: ReviewResult;
  rules: Rule[];
  patchBytes: number;
}

const ConnectOptions = z.looseObject({ container: z.string().optional() });
const PortForwardOptions = z.looseObject({ ports: z.array(z.number().int()).optional() });

function context(request: AdmissionRequest, scope: Scope, creator?: UserInfo): GuardContext {
  return { namespace: request.namespace ?? '', namespaceOptedIn: scope === 'namespace', userInfo: request.userInfo, ...(creator ? { creator } : {}) };
}

function denied(uid: string, violations: readonly Violation[]): ReviewOutcome {
  return { review: deny(uid, describeViolations(violations)), result: 'denied', rules: [...new Set(violations.map((v) => v.rule))], patchBytes: 0 };
}

const isPods = (r: AdmissionRequest) => r.resource.group === '' && r.resource.resource === 'pods';

/**
 * `creator`: who a pod being created is stamped with when that is not the caller (a controller's
 * pod inherits its owner's creator; workload-review.ts resolves it before this pure step).
 */
export function reviewMutation(request: AdmissionRequest, scope: Scope, config: WebhookConfig, creator?: UserInfo): ReviewOutcome {
  if (!isPods(request) || request.subResource || request.operation !== 'CREATE') {
    return { review: allow(request.uid), result: 'allowed', rules: [], patchBytes: 0 };
  }
  const pod = podOf(request.object, 'object') as V1Pod;
  const ctx = context(request, scope);
  const plan = planInjection(pod, creator ? { ...ctx, userInfo: creator } : ctx, config);
  switch (plan.kind) {
    case 'skip':
      return { review: allow(request.uid), result: 'skipped', rules: [], patchBytes: 0 };
    case 'deny':
      return denied(request.uid, plan.violations);
    case 'patch': {
      const review = allow(request.uid, plan.patch);
      return { review, result: plan.patch.length ? 'patched' : 'unchanged', rules: [], patchBytes: review.response.patch ? Buffer.byteLength(review.response.patch, 'base64') : 0 };
    }
  }
}

/**
 * pods/portforward to a pod the webhook read with its own credentials (the connect registration,
 * outside opted-in namespaces): `target` is the stored pod, undefined when there is none (the API
 * server answers 404 itself).
 */
export function reviewPortForward(request: AdmissionRequest, target: V1Pod | undefined, config: WebhookConfig): ReviewOutcome {
  const options = PortForwardOptions.safeParse(request.object ?? {});
  if (!options.success) throw new MalformedReviewError('malformed AdmissionReview: request.object is not portforward options');
  const violations = guardPortForward(options.data, context(request, 'pod'), config, target !== undefined && carriesInjectionMarkers(target));
  return violations.length ? denied(request.uid, violations) : { review: allow(request.uid), result: 'allowed', rules: [], patchBytes: 0 };
}

export function reviewValidation(request: AdmissionRequest, scope: Scope, config: WebhookConfig, creator?: UserInfo): ReviewOutcome {
  let violations: Violation[] = [];
  if (isPods(request)) {
    const ctx = context(request, scope, creator);
    const sub = request.subResource ?? '';
    if (sub === '' && request.operation === 'CREATE') {
      violations = guardPodCreate(podOf(request.object, 'object'), ctx, config);
    } else if ((sub === '' || sub === 'ephemeralcontainers' || sub === 'resize') && request.operation === 'UPDATE') {
      violations = guardPodUpdate(podOf(request.oldObject, 'oldObject'), podOf(request.object, 'object'), ctx, config, sub);
    } else if ((sub === 'exec' || sub === 'attach') && request.operation === 'CONNECT') {
      const options = ConnectOptions.safeParse(request.object ?? {});
      if (!options.success) throw new MalformedReviewError(`malformed AdmissionReview: request.object is not ${sub} options`);
      violations = guardConnect(sub, options.data);
    } else if (sub === 'portforward' && request.operation === 'CONNECT') {
      const options = PortForwardOptions.safeParse(request.object ?? {});
      if (!options.success) throw new MalformedReviewError('malformed AdmissionReview: request.object is not portforward options');
      violations = guardPortForward(options.data, ctx, config);
    } else if (sub === 'proxy' && request.operation === 'CONNECT') {
      violations = guardProxy(request.name, config);
    }
  }
  return violations.length ? denied(request.uid, violations) : { review: allow(request.uid), result: 'allowed', rules: [], patchBytes: 0 };
}
