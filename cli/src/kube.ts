// The kubeconfig flags every verb that talks to a cluster shares, as kubectl spells them
// (--kubeconfig, --context, -n, --as, --as-group, --request-timeout), and the one place the CLI
// turns them into a Kubernetes client. They are global: accepted before or after the subcommand.
// Impersonation goes out as Impersonate-User / Impersonate-Group headers on every request, so the
// API server (not this CLI) decides whether the caller may act as someone else.
// This module never prints or logs a credential, and never falls back to an unauthenticated or
// made-up cluster: with no kubeconfig it says how to point at one.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Command } from 'commander';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Dispatcher } from 'undici';
import type { KubeRest, KubeSource } from '../../lib/src/approvals/kube-rest.ts';
import { CliError, EXIT_USAGE } from './errors.ts';

export interface GlobalKubeFlags {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  as?: string;
  asGroup?: string[];
  requestTimeout?: string;
}

/** The option names (commander's camelCase keys) the root hands down to the subcommand that runs. */
export const GLOBAL_KUBE_KEYS = ['kubeconfig', 'context', 'namespace', 'as', 'asGroup', 'requestTimeout'] as const;

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** Declares the global flags on the root command. */
export function addGlobalKubeOptions(program: Command): Command {
  return program
    .option('--kubeconfig <file>', 'kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then the pod\'s service account)')
    .option('--context <name>', 'kubeconfig context to use')
    .option('-n, --namespace <ns>', "namespace (default: the context's, else default)")
    .option('--as <user>', 'act as this user (Impersonate-User; needs impersonate rights)')
    .option('--as-group <group>', 'act as a member of this group (repeatable; needs --as)', collect)
    .option('--request-timeout <duration>', 'how long to wait for each API request: 30s, 2m, 0 for no limit (default 10s)');
}

/**
 * Copies the global flags the user gave into the options of the subcommand about to run (where
 * that subcommand did not set them itself), so every action reads one flags object whatever the
 * position of the flag on the command line.
 */
export function handDownGlobals(root: Command, action: Command): void {
  if (action === root) return;
  const given = root.opts<GlobalKubeFlags>();
  for (const key of GLOBAL_KUBE_KEYS) {
    if (given[key] === undefined) continue;
    const mine = action.getOptionValue(key) as unknown;
    if (mine === undefined || action.getOptionValueSource(key) === 'default') action.setOptionValueWithSource(key, given[key], 'cli');
  }
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
/** The longest timer Node accepts; "0" (kubectl's "no limit") maps to it. */
const NO_LIMIT_MS = 2 ** 31 - 1;

/** --request-timeout as kubectl reads it: a bare number is seconds, 0 means no limit. */
export function parseRequestTimeout(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) throw new CliError(`--request-timeout ${value}: expected a duration such as 30s or 2m (0 for no limit)`, EXIT_USAGE);
  const ms = Number(m[1]) * UNIT_MS[m[2] ?? 's']!;
  return ms === 0 ? NO_LIMIT_MS : Math.min(Math.max(1, Math.round(ms)), NO_LIMIT_MS);
}

export interface Environment {
  env: NodeJS.ProcessEnv;
  home: string;
  exists(path: string): boolean;
}

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export const NO_KUBECONFIG =
  'no kubeconfig found: set KUBECONFIG or pass --kubeconfig FILE (kubectl\'s ~/.kube/config is read when it exists); in a pod the service account is used';

/** Where the identity comes from, in kubectl's order (pure: the environment is passed in). */
export function pickKubeSource(flags: GlobalKubeFlags, where: Environment): KubeSource {
  const context = flags.context;
  if (flags.kubeconfig !== undefined) {
    if (!where.exists(flags.kubeconfig)) throw new CliError(`cannot load kubeconfig: --kubeconfig ${flags.kubeconfig} does not exist`, EXIT_USAGE);
    return { kubeconfig: flags.kubeconfig, context };
  }
  const list = (where.env.KUBECONFIG ?? '').split(delimiter).filter(Boolean);
  if (list.length) {
    const present = list.filter((f) => where.exists(f));
    if (!present.length) throw new CliError(`cannot load kubeconfig: KUBECONFIG names ${list.join(delimiter)}, which does not exist; fix KUBECONFIG or pass --kubeconfig FILE`, EXIT_USAGE);
    return { kubeconfig: present.join(':'), context };
  }
  const home = join(where.home, '.kube', 'config');
  if (where.exists(home)) return { kubeconfig: home, context };
  if (where.env.KUBERNETES_SERVICE_HOST && where.exists(SERVICE_ACCOUNT_TOKEN)) return { inCluster: true, context };
  throw new CliError(NO_KUBECONFIG, EXIT_USAGE);
}

export const processEnvironment = (): Environment => ({ env: process.env, home: process.env.HOME ?? homedir(), exists: existsSync });

/**
 * Request headers as undici's flat [name, value, …] list with one Impersonate-Group line per group
 * (the API server reads each line as one group; a comma-joined value would be one group named
 * "a, b"). Any Impersonate-Group already present is replaced.
 */
export function withGroupHeaders(headers: unknown, groups: readonly string[]): string[] {
  const flat: string[] = [];
  const push = (k: string, v: unknown) => {
    if (k.toLowerCase() === 'impersonate-group' || v === undefined || v === null) return;
    for (const one of Array.isArray(v) ? v : [v]) flat.push(k, String(one));
  };
  if (Array.isArray(headers)) for (let i = 0; i + 1 < headers.length; i += 2) push(String(headers[i]), headers[i + 1]);
  else if (headers && typeof headers === 'object') for (const [k, v] of Object.entries(headers)) push(k, v);
  for (const g of groups) flat.push('Impersonate-Group', g);
  return flat;
}

/**
 * Sends Impersonate-User and one Impersonate-Group header per group on every request this
 * KubeConfig authenticates (the kubeconfig's own `as` is replaced, as kubectl's --as does).
 */
export async function impersonate(kc: KubeConfig, user: string, groups: readonly string[]): Promise<void> {
  const { Agent, getGlobalDispatcher } = await import('undici');
  if (groups.length) {
    // Over HTTP/2 undici folds repeated header lines into one comma-joined value, which the API
    // server would read as a single group: requests that carry groups go over HTTP/1.1.
    // createDispatcher is private in the typings; it is what applySecurityAuthentication calls.
    type Cluster = Parameters<KubeConfig['createDispatcherOptions']>[0];
    type AgentOptions = Parameters<KubeConfig['createDispatcherOptions']>[1];
    const open = kc as unknown as { createDispatcher(cluster: Cluster, agentOptions: AgentOptions): Dispatcher | undefined };
    const create = open.createDispatcher.bind(kc);
    open.createDispatcher = (cluster, agentOptions) => {
      const o = kc.createDispatcherOptions(cluster, agentOptions);
      return o.type === 'agent' ? new Agent({ connect: o.connect, allowH2: false }) : create(cluster, agentOptions);
    };
  }
  const apply = kc.applySecurityAuthentication.bind(kc);
  kc.applySecurityAuthentication = async (ctx) => {
    await apply(ctx);
    ctx.setHeaderParam('Impersonate-User', user);
    if (!groups.length) return;
    // Header objects cannot repeat a name: the groups are added where the request is dispatched.
    const base = ctx.getDispatcher() ?? getGlobalDispatcher();
    ctx.setDispatcher(base.compose((dispatch) => (opts, handler) => dispatch({ ...opts, headers: withGroupHeaders(opts.headers, groups) }, handler)));
  };
}

export interface KubeClient {
  rest: KubeRest;
  kc: KubeConfig;
  /** -n, else the context's namespace, else default */
  namespace: string;
  /** how the identity was found, for messages: a file list or "in-cluster" */
  source: string;
}

/** The client every cluster verb uses; flag mistakes and a missing kubeconfig exit 2. */
export async function kubeClient(flags: GlobalKubeFlags, where: Environment = processEnvironment()): Promise<KubeClient> {
  if (flags.asGroup?.length && !flags.as) throw new CliError('--as-group needs --as (the API server impersonates a user, with groups)', EXIT_USAGE);
  const timeoutMs = flags.requestTimeout === undefined ? 10_000 : parseRequestTimeout(flags.requestTimeout);
  const source = pickKubeSource(flags, where);
  // Loaded on use: @kubernetes/client-node takes about a second to import, which the verbs that
  // never talk to a cluster (policy eval, replay, verify, completion) would otherwise pay too.
  const { KubeRest, contextNamespace, loadKubeConfig } = await import('../../lib/src/approvals/kube-rest.ts');
  let kc: KubeConfig;
  try {
    kc = loadKubeConfig(source);
  } catch (err) {
    throw new CliError(`cannot load kubeconfig${source.kubeconfig ? ` ${source.kubeconfig}` : ''}: ${(err as Error).message}`, EXIT_USAGE);
  }
  if (flags.as) await impersonate(kc, flags.as, flags.asGroup ?? []);
  const rest = new KubeRest(kc, timeoutMs);
  return { rest, kc, namespace: flags.namespace ?? contextNamespace(kc), source: source.inCluster ? 'in-cluster service account' : (source.kubeconfig ?? '') };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** local clock (ms) halfway between sending and the answer: what to compare a Date header with */
  midpointMs: number;
}

/**
 * One GET with the client's identity, answering the status, headers and text whatever the status
 * (KubeRest throws on non-2xx and drops headers; `check` needs the Date header and proxy answers).
 */
export async function rawGet(client: KubeClient, path: string, timeoutMs = 10_000): Promise<RawResponse> {
  const { RequestContext, HttpMethod } = await import('@kubernetes/client-node');
  const { request } = await import('undici');
  const url = new URL(client.rest.server + path);
  const ctx = new RequestContext(url.toString(), HttpMethod.GET);
  await client.kc.applySecurityAuthentication(ctx);
  const started = Date.now();
  const res = await request(url, { method: 'GET', dispatcher: ctx.getDispatcher(), headers: { ...ctx.getHeaders(), accept: 'application/json, */*' }, signal: AbortSignal.timeout(timeoutMs) });
  const body = await res.body.text();
  return { status: res.statusCode, headers: res.headers, body, midpointMs: (started + Date.now()) / 2 };
}
