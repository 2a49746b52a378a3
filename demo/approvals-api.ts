// `make demo`'s approvals backend, in process and without a cluster: what the API server and
// sluice's approvals webhook do for ApprovalRequests (sluice.io/v1alpha1), served over HTTPS on
// loopback so the real sidecar and the real `kubectl sluice` reach it through kubeconfigs exactly
// as they reach a cluster. It serves create, get, list and watch (label selectors, resourceVersion),
// status merge patches conditional on a resourceVersion (409 otherwise) and deletes with
// preconditions; it authenticates bearer tokens to fixed identities and authorizes them as the
// chart's RBAC does (the sidecar's Role, the approver ClusterRole). Every write goes through the
// webhook's own rules (webhook/src/approvals/rules.ts: approvalStamp, then approvalViolations),
// fed with the pod as the API server would store it, so the refusals are the ones a cluster gives.
// e2e/approvals runs the same round trip against a real kube-apiserver; this stand-in exists only
// so the demo needs no cluster, and must never be used as a backend anywhere else.
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { APPROVAL_API_VERSION, APPROVAL_KIND, APPROVAL_PLURAL, GROUP } from '../api/src/index.ts';
import type { ApprovalRequest, Creator } from '../api/src/index.ts';
import { ApprovalsWebhookConfig, approverGroupsFor } from '../webhook/src/approvals/config.ts';
import { approvalStamp, approvalViolations, serviceAccountUser } from '../webhook/src/approvals/rules.ts';
import type { Actor, ApprovalReviewInput, BoundPod } from '../webhook/src/approvals/rules.ts';
import type { JsonPatchOp } from '../webhook/src/json-patch.ts';
import { describeViolations } from '../webhook/src/violations.ts';

/** The one agent pod of the demo, as the API server stores it (injected, with its creator stamp). */
export interface DemoPod {
  namespace: string;
  name: string;
  uid: string;
  serviceAccount: string;
  creator: Creator;
}

/** The serving certificate (for 127.0.0.1) and the CA file kubeconfigs trust it by. */
export interface DemoTls {
  cert: string;
  key: string;
  caFile: string;
}

export interface DemoUser {
  username: string;
  groups: string[];
}

type Obj = ApprovalRequest & {
  metadata: ApprovalRequest['metadata'] & { uid?: string; creationTimestamp?: string; ownerReferences?: { apiVersion?: string; kind?: string; name?: string; uid?: string }[] };
};
type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

class HttpError extends Error {
  readonly code: number;
  readonly reason: string;
  constructor(code: number, reason: string, message: string) {
    super(message);
    this.code = code;
    this.reason = reason;
  }
}

const PATH = new RegExp(`^/apis/${APPROVAL_API_VERSION.replace('.', '\\.')}(?:/namespaces/([^/]+))?/${APPROVAL_PLURAL}(?:/([^/]+)(?:/(status))?)?$`);
const RESOURCE = `${APPROVAL_PLURAL}.${GROUP}`;
const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';
const POD_UID_EXTRA = 'authentication.kubernetes.io/pod-uid';

/** `a=b,c!=d,e`: the equality-based label selectors the sidecar and the CLI send. */
function matches(selector: string | null, labels: Record<string, string> | undefined): boolean {
  if (!selector) return true;
  return selector.split(',').every((term) => {
    const t = term.trim();
    if (!t) return true;
    const ne = /^([^!=]+)!=(.*)$/.exec(t);
    if (ne) return labels?.[ne[1]!.trim()] !== ne[2]!.trim();
    const eq = /^([^!=]+)==?(.*)$/.exec(t);
    if (eq) return labels?.[eq[1]!.trim()] === eq[2]!.trim();
    if (t.startsWith('!')) return labels?.[t.slice(1)] === undefined;
    return labels?.[t] !== undefined;
  });
}

/** RFC 7386 JSON merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return structuredClone(patch);
  const out: Record<string, unknown> = target && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** The webhook's stamps are adds and removes of object members (rules.ts); nothing else is expected. */
function applyStamp(obj: Obj, ops: readonly JsonPatchOp[]): Obj {
  const doc = structuredClone(obj) as unknown as Record<string, unknown>;
  for (const op of ops) {
    const keys = op.path.split('/').slice(1).map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = keys.pop()!;
    let node = doc;
    for (const k of keys) {
      const next = node[k];
      if (!next || typeof next !== 'object' || Array.isArray(next)) throw new Error(`stamp ${op.op} ${op.path}: no object at ${k}`);
      node = next as Record<string, unknown>;
    }
    if (op.op === 'add' || op.op === 'replace') node[last] = structuredClone(op.value);
    else if (op.op === 'remove') delete node[last];
    else throw new Error(`stamp: unexpected op ${JSON.stringify(op)}`);
  }
  return doc as unknown as Obj;
}

export class DemoApprovalsApi {
  readonly #pod: DemoPod;
  readonly #config: ApprovalsWebhookConfig;
  readonly #tokens = new Map<string, Actor>();
  readonly #objects = new Map<string, Obj>();
  readonly #events: { rv: number; type: EventType; object: Obj }[] = [];
  readonly #watchers = new Set<{ ns: string | undefined; selector: string | null; res: ServerResponse }>();
  readonly #created: ((obj: Obj) => void)[] = [];
  #rv = 1;
  #server: Server | undefined;
  #url = '';
  readonly #tls: DemoTls;

  constructor(pod: DemoPod, tls: DemoTls, config: ApprovalsWebhookConfig = ApprovalsWebhookConfig.parse({})) {
    this.#pod = pod;
    this.#tls = tls;
    this.#config = config;
  }

  get url(): string {
    return this.#url;
  }

  async start(): Promise<this> {
    const server = createServer({ cert: this.#tls.cert, key: this.#tls.key }, (req, res) => void this.#handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.#server = server;
    this.#url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const w of this.#watchers) w.res.end();
    this.#watchers.clear();
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }

  /**
   * A kubeconfig for the pod's sidecar: its service account, with a token bound to the pod (the
   * API server puts the pod's name and uid into such a token's user info, which the rules check).
   */
  sidecarKubeconfig(dir: string): string {
    const { namespace, serviceAccount, name, uid } = this.#pod;
    return this.#kubeconfig(dir, 'sidecar', {
      username: serviceAccountUser(namespace, serviceAccount),
      groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
      extra: { [POD_NAME_EXTRA]: [name], [POD_UID_EXTRA]: [uid] },
    });
  }

  /** A kubeconfig for a person (OIDC user and groups, as the API server would authenticate them). */
  userKubeconfig(dir: string, user: DemoUser): string {
    return this.#kubeconfig(dir, user.username.replace(/[^a-z0-9]+/gi, '-'), { username: user.username, groups: [...user.groups, 'system:authenticated'], extra: {} });
  }

  /** Resolves with the next ApprovalRequest created (the sidecar holding a request). */
  nextCreated(timeoutMs: number): Promise<Obj> {
    return new Promise((resolve, reject) => {
      const listener = (obj: Obj) => {
        clearTimeout(timer);
        resolve(obj);
      };
      const timer = setTimeout(() => {
        this.#created.splice(this.#created.indexOf(listener) >>> 0, 1);
        reject(new Error(`no ApprovalRequest was created within ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
      this.#created.push(listener);
    });
  }

  #kubeconfig(dir: string, name: string, actor: Actor): string {
    const token = randomUUID();
    this.#tokens.set(token, actor);
    const file = join(dir, `${name}.kubeconfig`);
    writeFileSync(
      file,
      toYaml({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'demo', cluster: { server: this.#url, 'certificate-authority': this.#tls.caFile } }],
        users: [{ name, user: { token } }],
        contexts: [{ name: 'demo', context: { cluster: 'demo', user: name, namespace: this.#pod.namespace } }],
        'current-context': 'demo',
      }),
      { mode: 0o600 },
    );
    return file;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'http://demo');
      const m = PATH.exec(url.pathname);
      if (!m) throw new HttpError(404, 'NotFound', `the server could not find the requested resource (${url.pathname})`);
      const [, ns, name, sub] = m as unknown as [string, string | undefined, string | undefined, string | undefined];
      const actor = this.#authenticate(req);
      const body = await readBody(req);
      const watch = req.method === 'GET' && !name && ['1', 'true'].includes(url.searchParams.get('watch') ?? '');
      const verb = watch ? 'watch' : req.method === 'GET' ? (name ? 'get' : 'list') : req.method === 'POST' ? 'create' : req.method === 'PATCH' ? 'patch' : req.method === 'PUT' ? 'update' : req.method === 'DELETE' ? 'delete' : '';
      this.#authorize(actor, verb, ns, sub);
      if (watch) return this.#watch(ns, url, res);
      if (req.method === 'GET' && !name) return send(res, 200, this.#list(ns, url.searchParams.get('labelSelector')));
      if (!ns) throw new HttpError(405, 'MethodNotAllowed', `${req.method} needs a namespace`);
      if (req.method === 'POST' && !name) return send(res, 201, this.#create(ns, actor, body as Obj));
      if (!name) throw new HttpError(405, 'MethodNotAllowed', `${req.method} is not supported on the collection`);
      if (req.method === 'GET') return send(res, 200, this.#get(ns, name));
      if (req.method === 'PATCH' && sub === 'status') return send(res, 200, this.#patchStatus(ns, name, actor, body, req.headers['content-type']));
      if (req.method === 'DELETE' && !sub) return send(res, 200, this.#delete(ns, name, actor, body));
      throw new HttpError(405, 'MethodNotAllowed', `${req.method} ${url.pathname} is not supported`);
    } catch (err) {
      const e = err instanceof HttpError ? err : new HttpError(500, 'InternalError', (err as Error).message);
      send(res, e.code, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: e.message, reason: e.reason, code: e.code });
    }
  }

  #authenticate(req: IncomingMessage): Actor {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const actor = token ? this.#tokens.get(token) : undefined;
    if (!actor) throw new HttpError(401, 'Unauthorized', 'Unauthorized');
    return actor;
  }

  /** The chart's RBAC: the sidecar's Role in its namespace, and the approver ClusterRole bound per agent namespace. */
  #authorize(actor: Actor, verb: string, ns: string | undefined, sub: string | undefined): void {
    const isSidecar = ns === this.#pod.namespace && actor.username === serviceAccountUser(this.#pod.namespace, this.#pod.serviceAccount);
    const isApprover = ns !== undefined && actor.groups.some((g) => approverGroupsFor(this.#config, ns).includes(g));
    const allowed = sub === 'status' ? (isSidecar || isApprover) && ['get', 'patch', 'update'].includes(verb) : isSidecar ? ['create', 'get', 'list', 'watch', 'delete'].includes(verb) : isApprover && ['get', 'list', 'watch'].includes(verb);
    if (allowed) return;
    const where = ns ? ` in the namespace "${ns}"` : ' at the cluster scope';
    throw new HttpError(403, 'Forbidden', `${RESOURCE}${sub ? `/${sub}` : ''} is forbidden: User "${actor.username}" cannot ${verb} resource "${APPROVAL_PLURAL}${sub ? `/${sub}` : ''}" in API group "${GROUP}"${where}`);
  }

  /** The pod the caller's token is bound to, as the webhook reads it from the API server. */
  #boundPod(actor: Actor): BoundPod | 'missing' | undefined {
    const name = actor.extra[POD_NAME_EXTRA]?.[0];
    const uid = actor.extra[POD_UID_EXTRA]?.[0];
    if (!name || !uid) return undefined;
    const p = this.#pod;
    if (name !== p.name || uid !== p.uid) return 'missing';
    return { name: p.name, uid: p.uid, serviceAccount: p.serviceAccount, injected: true, creator: p.creator };
  }

  /** Mutating then validating admission, as the API server calls sluice's two approvals webhooks. */
  #admit(input: ApprovalReviewInput): Obj {
    const now = new Date();
    const stamped = input.object ? applyStamp(input.object as Obj, approvalStamp({ ...input, now }, now)) : undefined;
    const violations = approvalViolations({ ...input, object: stamped, now }, this.#config);
    if (violations.length) throw new HttpError(403, 'Forbidden', `admission webhook "approvals.sluice.io" denied the request: ${describeViolations(violations)}`);
    return stamped as Obj;
  }

  #get(ns: string, name: string): Obj {
    const obj = this.#objects.get(`${ns}/${name}`);
    if (!obj) throw new HttpError(404, 'NotFound', `${RESOURCE} "${name}" not found`);
    return obj;
  }

  #list(ns: string | undefined, selector: string | null) {
    const items = [...this.#objects.values()].filter((o) => (ns === undefined || o.metadata.namespace === ns) && matches(selector, o.metadata.labels));
    return { apiVersion: APPROVAL_API_VERSION, kind: `${APPROVAL_KIND}List`, metadata: { resourceVersion: String(this.#rv) }, items };
  }

  #record(type: EventType, obj: Obj): void {
    this.#events.push({ rv: Number(obj.metadata.resourceVersion), type, object: obj });
    for (const w of this.#watchers) {
      if ((w.ns === undefined || w.ns === obj.metadata.namespace) && matches(w.selector, obj.metadata.labels)) w.res.write(`${JSON.stringify({ type, object: obj })}\n`);
    }
  }

  #create(ns: string, actor: Actor, body: Obj): Obj {
    const name = body?.metadata?.name;
    if (!name) throw new HttpError(422, 'Invalid', `${APPROVAL_KIND} is invalid: metadata.name: Required value`);
    if (this.#objects.has(`${ns}/${name}`)) throw new HttpError(409, 'AlreadyExists', `${RESOURCE} "${name}" already exists`);
    const incoming: Obj = { ...structuredClone(body), metadata: { ...structuredClone(body.metadata), namespace: ns } };
    const admitted = this.#admit({ operation: 'CREATE', subResource: '', namespace: ns, actor, object: incoming, boundPod: this.#boundPod(actor) });
    const stored: Obj = { ...admitted, metadata: { ...admitted.metadata, uid: randomUUID(), resourceVersion: String(++this.#rv), creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z') } };
    this.#objects.set(`${ns}/${name}`, stored);
    this.#record('ADDED', stored);
    for (const listener of this.#created.splice(0)) listener(stored);
    return stored;
  }

  #patchStatus(ns: string, name: string, actor: Actor, body: unknown, contentType: string | undefined): Obj {
    if (!contentType?.startsWith('application/merge-patch+json')) throw new HttpError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/merge-patch+json`);
    const current = this.#get(ns, name);
    const patch = (body ?? {}) as { metadata?: { resourceVersion?: string }; status?: unknown };
    const rv = patch.metadata?.resourceVersion;
    if (rv !== undefined && rv !== current.metadata.resourceVersion) {
      throw new HttpError(409, 'Conflict', `Operation cannot be fulfilled on ${RESOURCE} "${name}": the object has been modified; please apply your changes to the latest version and try again`);
    }
    // The status subresource changes the status only.
    const next = { ...structuredClone(current), status: mergePatch(current.status, patch.status ?? {}) } as Obj;
    const admitted = this.#admit({ operation: 'UPDATE', subResource: 'status', namespace: ns, actor, object: next, oldObject: current });
    const stored: Obj = { ...admitted, metadata: { ...admitted.metadata, resourceVersion: String(++this.#rv) } };
    this.#objects.set(`${ns}/${name}`, stored);
    this.#record('MODIFIED', stored);
    return stored;
  }

  #delete(ns: string, name: string, actor: Actor, body: unknown) {
    const current = this.#get(ns, name);
    const pre = (body as { preconditions?: { uid?: string; resourceVersion?: string } } | undefined)?.preconditions ?? {};
    if ((pre.uid !== undefined && pre.uid !== current.metadata.uid) || (pre.resourceVersion !== undefined && pre.resourceVersion !== current.metadata.resourceVersion)) {
      throw new HttpError(409, 'Conflict', `Operation cannot be fulfilled on ${RESOURCE} "${name}": the precondition does not hold`);
    }
    this.#admit({ operation: 'DELETE', subResource: '', namespace: ns, actor, oldObject: current });
    this.#objects.delete(`${ns}/${name}`);
    this.#record('DELETED', { ...current, metadata: { ...current.metadata, resourceVersion: String(++this.#rv) } });
    return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, group: GROUP, kind: APPROVAL_PLURAL, uid: current.metadata.uid } };
  }

  #watch(ns: string | undefined, url: URL, res: ServerResponse): void {
    const selector = url.searchParams.get('labelSelector');
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    // The client counts the watch as live once it has the 200, which must not wait for a first event.
    res.flushHeaders();
    const from = Number(url.searchParams.get('resourceVersion') ?? '0');
    const backlog = from > 0 ? this.#events.filter((e) => e.rv > from).map((e) => ({ type: e.type, object: e.object })) : [...this.#objects.values()].map((object) => ({ type: 'ADDED', object }));
    for (const e of backlog) if ((ns === undefined || e.object.metadata.namespace === ns) && matches(selector, e.object.metadata.labels)) res.write(`${JSON.stringify(e)}\n`);
    const watcher = { ns, selector, res };
    this.#watchers.add(watcher);
    const timer = setTimeout(() => res.end(), Number(url.searchParams.get('timeoutSeconds') ?? '300') * 1000);
    timer.unref();
    res.on('close', () => {
      clearTimeout(timer);
      this.#watchers.delete(watcher);
    });
  }
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  if (!chunks.length) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new HttpError(400, 'BadRequest', 'the request body is not JSON');
  }
}

function send(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
