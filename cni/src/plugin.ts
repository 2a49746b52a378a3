// The sluice CNI plugin: the executable the container runtime runs (chained last in the node's
// conflist) for every pod sandbox. It decides nothing itself: ADD is forwarded to the sluice node
// agent over its Unix socket (agent.ts reads the pod, and for a pod sluice injected installs the
// interception rules in CNI_NETNS), and the primary plugin's result (prevResult) is passed on.
// Fail closed: if the agent cannot be asked or answers with an error, ADD fails with a CNI error,
// the sandbox is not created and the kubelet records the message as an event — except for pods
// of the exempt namespaces (kube-system, sluice's own), which never carry an agent. DEL and
// CHECK pass through (a namespace being torn down needs nothing from sluice).
// Self-contained on purpose (Node built-ins only): the agent copies this file and its own Node
// binary onto the host (installer.ts), where no node_modules exist. It must never print anything
// on stdout but the CNI result or error.
import { connect } from 'node:net';
import { pathToFileURL } from 'node:url';

const SUPPORTED = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];
/** CNI's "try again later" code (spec: 11) is for transient errors; 999 is "plugin-specific". */
const CODE_AGENT = 11;
const CODE_REFUSED = 999;

export interface PluginRequest {
  command: string;
  containerId: string;
  netns: string;
  ifname: string;
  pod: { namespace: string; name: string; uid: string };
  /** The plugin's PID: the agent opens the netns path through /proc/<pid>/root (the host's root). */
  pid: number;
}

export interface AgentAnswer {
  ok: boolean;
  /** intercepted | passthrough, for logs */
  action?: string;
  message?: string;
}

interface NetConf {
  cniVersion?: string;
  name?: string;
  prevResult?: Record<string, unknown>;
  agentSocket?: string;
  exemptNamespaces?: string[];
  timeoutMs?: number;
}

export function parseCniArgs(args: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (args ?? '').split(';')) {
    const i = pair.indexOf('=');
    if (i > 0) out[pair.slice(0, i)] = pair.slice(i + 1);
  }
  return out;
}

/** One JSON line out, one JSON line back. */
export function askAgent(socket: string, req: PluginRequest, timeoutMs: number): Promise<AgentAnswer> {
  return new Promise((resolve, reject) => {
    const conn = connect(socket);
    let buf = '';
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new Error(`the sluice node agent did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.write(`${JSON.stringify(req)}\n`));
    conn.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      conn.destroy();
      try {
        resolve(JSON.parse(buf.slice(0, nl)) as AgentAnswer);
      } catch {
        reject(new Error('the sluice node agent sent an answer that is not JSON'));
      }
    });
    conn.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`the sluice node agent is unreachable at ${socket}: ${err.message}`));
    });
    conn.on('close', () => {
      clearTimeout(timer);
      reject(new Error('the sluice node agent closed the connection without an answer'));
    });
  });
}

export interface PluginOutcome {
  exitCode: number;
  stdout: string;
}

function cniError(version: string, code: number, msg: string, details?: string): PluginOutcome {
  return { exitCode: 1, stdout: `${JSON.stringify({ cniVersion: version, code, msg, ...(details ? { details } : {}) })}\n` };
}

/** The plugin as a function of its environment and stdin (main() below is the thin shell). */
export async function runPlugin(env: Record<string, string | undefined>, stdin: string, pid: number): Promise<PluginOutcome> {
  const command = env.CNI_COMMAND ?? '';
  if (command === 'VERSION') return { exitCode: 0, stdout: `${JSON.stringify({ cniVersion: '1.1.0', supportedVersions: SUPPORTED })}\n` };
  let conf: NetConf;
  try {
    conf = JSON.parse(stdin) as NetConf;
  } catch {
    return cniError('1.0.0', 6, 'sluice-cni: the network configuration on stdin is not JSON');
  }
  const version = conf.cniVersion ?? '1.0.0';
  if (command === 'DEL' || command === 'GC' || command === 'STATUS') return { exitCode: 0, stdout: '' };
  if (command === 'CHECK') return { exitCode: 0, stdout: '' };
  if (command !== 'ADD') return cniError(version, 4, `sluice-cni: unknown CNI_COMMAND "${command}"`);
  if (!conf.prevResult) return cniError(version, CODE_REFUSED, 'sluice-cni must be chained after the primary plugin (no prevResult)');
  const passThrough: PluginOutcome = { exitCode: 0, stdout: `${JSON.stringify({ ...conf.prevResult, cniVersion: version })}\n` };

  const args = parseCniArgs(env.CNI_ARGS);
  const pod = { namespace: args.K8S_POD_NAMESPACE ?? '', name: args.K8S_POD_NAME ?? '', uid: args.K8S_POD_UID ?? '' };
  if (!pod.namespace || !pod.name) return cniError(version, CODE_REFUSED, 'sluice-cni: no K8S_POD_NAMESPACE/K8S_POD_NAME in CNI_ARGS; it only serves Kubernetes pods');
  const request: PluginRequest = { command, containerId: env.CNI_CONTAINERID ?? '', netns: env.CNI_NETNS ?? '', ifname: env.CNI_IFNAME ?? '', pod, pid };
  const exempt = (conf.exemptNamespaces ?? []).includes(pod.namespace);
  let answer: AgentAnswer;
  try {
    answer = await askAgent(conf.agentSocket ?? '/var/run/sluice-cni/agent.sock', request, conf.timeoutMs ?? 10_000);
  } catch (err) {
    if (exempt) return passThrough;
    return cniError(version, CODE_AGENT, `sluice: pod ${pod.namespace}/${pod.name} not started: ${(err as Error).message} (an injected pod must not start without its interception rules)`);
  }
  if (answer.ok) return passThrough;
  return cniError(version, CODE_REFUSED, `sluice: pod ${pod.namespace}/${pod.name} not started: ${answer.message ?? 'the node agent refused it'}`);
}

async function main(): Promise<void> {
  const chunks: Buffer[] = [];
  if (process.env.CNI_COMMAND !== 'VERSION') for await (const c of process.stdin) chunks.push(c as Buffer);
  const out = await runPlugin(process.env, Buffer.concat(chunks).toString('utf8'), process.pid);
  process.stdout.write(out.stdout, () => process.exit(out.exitCode));
}

// Run as the plugin, not when imported by the agent or the tests.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
