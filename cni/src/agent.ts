// The sluice node agent's request handling: one connection from the CNI plugin per pod sandbox,
// one JSON line in (plugin.ts PluginRequest), one JSON line out (AgentAnswer). For a pod sluice
// injected it reads the interception settings the pod's own init container would have read,
// renders them with the one renderer (lib/src/interception/plan.ts) and installs them in the
// sandbox's network namespace before any container of the pod exists. Any error is an answer
// with ok: false (the plugin then fails the ADD: fail closed); a pod sluice did not inject is
// answered ok without being touched. It must never intercept on the strength of a label the
// pod's creator controls, nor answer ok for an injected pod whose rules did not install.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SETTINGS_KEY, SIDECAR_ENV } from '../../api/src/index.ts';
import { planFromSettings } from '../../lib/src/interception/plan.ts';
import type { InterceptionPlan } from '../../lib/src/interception/rules.ts';
import { loadInterceptionSettings } from '../../lib/src/interception/settings.ts';
import type { InterceptionSettings } from '../../lib/src/interception/settings.ts';
import { decide } from './decide.ts';
import type { KubeGet } from './kube.ts';
import { applyInNetns, netnsPath } from './netns.ts';
import type { AgentAnswer, PluginRequest } from './plugin.ts';

export interface AgentLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface AgentDeps {
  kube: KubeGet;
  log: AgentLog;
  /** Installs the plan; netns.ts in production, the same with another path resolver in tests. */
  install?: (req: PluginRequest, plan: InterceptionPlan, ipv6: boolean) => void;
}

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** The interception settings exactly as `init-network` would load them inside the pod. */
function settingsFor(env: Record<string, string>, configText: string | undefined): InterceptionSettings {
  if (configText === undefined || !env[SIDECAR_ENV.configFile]) return loadInterceptionSettings({ ...env, [SIDECAR_ENV.configFile]: '' });
  const dir = mkdtempSync(join(tmpdir(), 'sluice-cni-'));
  try {
    const file = join(dir, SETTINGS_KEY);
    writeFileSync(file, configText);
    return loadInterceptionSettings({ ...env, [SIDECAR_ENV.configFile]: file });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function handleAdd(req: PluginRequest, deps: AgentDeps): Promise<AgentAnswer> {
  const { namespace, name, uid } = req.pod;
  if (!NAME.test(namespace) || !NAME.test(name)) return { ok: false, message: `not a Kubernetes pod name: ${namespace}/${name}` };
  const pod = await deps.kube.get(`/api/v1/namespaces/${namespace}/pods/${name}`);
  if (!pod) return { ok: false, message: `pod ${namespace}/${name} not found in the API server` };
  const d = decide(pod, uid);
  if (d.intercept === false) return { ok: true, action: 'passthrough', message: d.reason };
  if (d.intercept === 'refuse') return { ok: false, message: d.reason };
  let configText: string | undefined;
  if (d.configMap) {
    const cm = (await deps.kube.get(`/api/v1/namespaces/${namespace}/configmaps/${d.configMap.name}`)) as { data?: Record<string, string> } | undefined;
    // The pod mounts it with optional: false, so the kubelet would not start the pod without it.
    if (!cm) return { ok: false, message: `the settings ConfigMap ${namespace}/${d.configMap.name} does not exist` };
    configText = cm.data?.[d.configMap.key];
  }
  const plan = planFromSettings(settingsFor(d.env, configText));
  const ipv6 = d.env[SIDECAR_ENV.ipv6] !== 'false';
  (deps.install ?? ((r, p, v6) => applyInNetns(netnsPath(r.pid, r.netns), p, { ipv6: v6 })))(req, plan, ipv6);
  return { ok: true, action: 'intercepted' };
}

export async function handle(req: PluginRequest, deps: AgentDeps): Promise<AgentAnswer> {
  const started = Date.now();
  let answer: AgentAnswer;
  try {
    answer = req.command === 'ADD' ? await handleAdd(req, deps) : { ok: true, action: 'passthrough' };
  } catch (err) {
    answer = { ok: false, message: `interception rules not installed: ${(err as Error).message}` };
  }
  const entry = { pod: `${req.pod?.namespace}/${req.pod?.name}`, container: req.containerId?.slice(0, 12), action: answer.action, ms: Date.now() - started };
  if (answer.ok) deps.log.info(entry, answer.action === 'intercepted' ? 'interception rules installed' : 'pod left alone');
  else deps.log.warn({ ...entry, reason: answer.message }, 'pod refused');
  return answer;
}

/** The shape handle() relies on; anything else is refused before it is read. */
function isPluginRequest(v: unknown): v is PluginRequest {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  const pod = r.pod as Record<string, unknown> | undefined;
  const strings = [r.command, r.containerId, r.netns, r.ifname];
  return strings.every((x) => typeof x === 'string') && Number.isInteger(r.pid) && typeof pod === 'object' && pod !== null
    && [pod.namespace, pod.name, pod.uid].every((x) => typeof x === 'string');
}

/** The Unix socket the plugin connects to; one request per connection. */
export function serve(socketPath: string, deps: AgentDeps): Promise<Server> {
  rmSync(socketPath, { force: true });
  const server = createServer((conn) => {
    let buf = '';
    let answered = false;
    const answer = (a: AgentAnswer) => conn.end(`${JSON.stringify(a)}\n`);
    conn.setEncoding('utf8');
    conn.on('error', () => undefined);
    conn.on('data', (d: string) => {
      // One request per connection: bytes after the first line are ignored, never a second ADD.
      if (answered) return;
      buf += d;
      if (buf.length > 64 * 1024) return void conn.destroy();
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      answered = true;
      let req: unknown;
      try {
        req = JSON.parse(buf.slice(0, nl));
      } catch {
        return void answer({ ok: false, message: 'request is not JSON' });
      }
      if (!isPluginRequest(req)) return void answer({ ok: false, message: 'request is not a sluice plugin request' });
      // handle() answers every failure itself; the catch only keeps a bug from becoming an unhandled
      // rejection that would stop the agent (and with it every new pod on the node).
      handle(req, deps).then(answer, (err: unknown) => answer({ ok: false, message: `agent error: ${String(err)}` }));
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // Only root on the node may ask (the runtime runs plugins as root): the socket is 0600.
    const old = process.umask(0o177);
    server.listen(socketPath, () => {
      process.umask(old);
      resolve(server);
    });
  });
}
