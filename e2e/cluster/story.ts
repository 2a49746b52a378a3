// The whole story on a real node as steps, shared by the test that asserts it
// (whole-story.test.ts) and the program that shows it to a person (demo-cluster.ts), so the two
// cannot drift apart. `Story.start()` builds the world (images, a real node, "GitHub" as git's own
// http-backend, "AWS" as moto behind an STS web-identity hop, VictoriaLogs); each step method does
// what a user would do — `helm install`, `kubectl label`, `kubectl apply`, `kubectl sluice approve`
// — and returns what it observed, with no judgement: deciding what is right is the caller's job
// (the test's expect(), the demo's ✔/✖). Every command a user would type goes through helm(),
// kubectl() or sluice() here, which announce it (onCommand) before it runs.
//
// It never asserts, never prints, and touches the host only through KubeNode (node.ts), which
// takes the machine-wide lock and puts the host back on stop() and on exit.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { ensureImages } from '../../charts/images/build-images.ts';
import { HELM } from '../../charts/test/support/helm.ts';
import { packageChart } from '../../tools/release.ts';
import { APPROVAL_API_VERSION, APPROVAL_PLURAL } from '../../api/src/index.ts';
import type { ApprovalRequest } from '../../api/src/index.ts';
import { createBareRepo, gitBackendHandler } from '../../testkit/git/git-backend.ts';
import { eventually } from '../support/kube/admission.ts';
import { VictoriaLogsServer } from '../support/logstore/victoria-logs.ts';
import { createTestCa, startHttpsUpstream } from '../../testkit/sidecar/upstreams.ts';
import { startStsWorld } from '../support/sts/sts-world.ts';
import type { StsWorld } from '../support/sts/sts-world.ts';
import type { TestCa, TestUpstream } from '../../testkit/sidecar/upstreams.ts';
import { ensureToolsAgentImage } from './agent-image.ts';
import { KubeNode } from './node.ts';
import { ClusterPrometheus, monitorsIn } from './prometheus.ts';
import type { DashboardsQueried, PrometheusStarted } from './prometheus.ts';
import { allContainersReady, containerStatus, getPod, waitPod } from './sluice-on-node.ts';
import type { ContainerStatus, PodView } from './sluice-on-node.ts';
import { ensureTestImages } from './test-images.ts';
import type { TestImage, TestImages } from './test-images.ts';

const ROOT = join(import.meta.dirname, '..', '..');
export const SYSTEM = 'sluice-system';
export const AGENTS = 'agents';
export const PLAIN = 'plain';
export const WEBHOOK_REPO = 'sluice.local/sluice-webhook';
export const SIDECAR_REPO = 'sluice.local/sluice-sidecar';
export const BUCKET = 'acme-agent-data';
const CLI = join(ROOT, 'cli', 'bin', 'kubectl-sluice.js');
// Well-formed but fake AWS keys in a file the agent reads: it must see them masked.
export const LEAKED_KEY_ID = 'AKIAQ4T7ZK2MWX3RPL6N';
export const LEAKED_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8Lk3Tq9V';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A command as the user who types it would see it (paths shortened to what they would have). */
export interface ShownCommand {
  /** the cluster user's name (admin, carol@example.com, bob@example.com, …) */
  user: string;
  line: string;
}

/** Who installs each agent pod's interception rules (the chart's interception.mode, docs/cni.md). */
export type InterceptionMode = 'init' | 'cni';
/** A namespace's `pod-security.kubernetes.io/enforce` level. */
export type PodSecurityLevel = 'privileged' | 'baseline' | 'restricted';
const PSA_ENFORCE = 'pod-security.kubernetes.io/enforce';

export interface StoryOptions {
  /** interception.mode of the chart the story installs (default init). */
  mode?: InterceptionMode;
  /** The agent namespace's Pod Security enforce level, labelled before the install (default: no label). */
  podSecurity?: PodSecurityLevel;
  /** Called before each command a user would type runs (not for the polling the steps do). */
  onCommand?: (c: ShownCommand) => void;
  /** Called when a world component is up (for a person watching a cold start). */
  onProgress?: (what: string) => void;
  /** Called when a step sees what the next command acts on (a request held, the agent's traffic flowing). */
  onObserved?: (what: string) => void;
}

/**
 * The scripted agent: what a coding agent does in its first minute, each step announced on a
 * `STEP <name> <result>` line of its log. It runs on its own once the kubelet starts it; the push
 * blocks until someone decides, then it keeps polling GitHub until it is cut off.
 */
export const AGENT_SCRIPT = [
  'cd /tmp',
  'git clone -q https://github.com/acme/app.git app 2>/tmp/clone.err && echo "STEP clone ok" || echo "STEP clone failed $(tr \'\\n\' \' \' </tmp/clone.err)"',
  'echo "STEP settings $(curl -sS --max-time 20 https://raw.githubusercontent.com/acme/app/main/deploy/settings.json 2>&1)"',
  // S3 with the webhook's placeholder keys: the sidecar trades the pod's projected token for the role's.
  'echo "STEP whoami $(aws sts get-caller-identity --query Arn --output text 2>&1)"',
  `echo "STEP s3put $(echo hello-from-agent | aws s3 cp - s3://${BUCKET}/from-agent.txt 2>&1 && echo ok)"`,
  `echo "STEP s3ls $(aws s3 ls s3://${BUCKET}/ 2>&1 | tr '\\n' ' ')"`,
  'echo "STEP keys $AWS_ACCESS_KEY_ID $(ls /var/run/secrets/kubernetes.io/serviceaccount 2>&1 | tr \'\\n\' \' \')"',
  'cd app && echo fix >> README.md && git -c user.name=agent -c user.email=agent@example.com commit -qam "fix from the agent"',
  'git push -q origin main 2>/tmp/push.err && echo "STEP push ok" || echo "STEP push failed $(tr \'\\n\' \' \' </tmp/push.err)"',
  'while true; do echo "STEP poll $(curl -sS -o /dev/null -w \'%{http_code}\' --max-time 5 https://raw.githubusercontent.com/acme/app/main/README.md 2>/dev/null)"; sleep 1; done',
].join('\n');

/**
 * The agent Deployment (one replica, uid 1000, the image's shell running `command`). `restricted`:
 * the agent's own container also meets Pod Security "restricted" (non-root, RuntimeDefault seccomp,
 * no capabilities, no privilege escalation), as a namespace enforcing it demands of every container.
 */
export function deployment(name: string, namespace: string, image: string, command: string, opts: { restricted?: boolean } = {}): string {
  const env = [
    { name: 'HOME', value: '/tmp' },
    { name: 'GIT_TERMINAL_PROMPT', value: '0' },
    { name: 'AWS_DEFAULT_REGION', value: 'us-east-1' },
  ];
  return JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          terminationGracePeriodSeconds: 1,
          securityContext: { runAsUser: 1000, runAsGroup: 1000, ...(opts.restricted ? { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } } : {}) },
          containers: [{ name: 'agent', image, imagePullPolicy: 'Never', command: ['/bin/sh', '-c', command], env, ...(opts.restricted ? { securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } } : {}) }],
        },
      },
    },
  });
}

type BuiltImages = Awaited<ReturnType<typeof ensureImages>>['images'];

function sluiceImage(component: 'sidecar' | 'webhook', built: BuiltImages): TestImage {
  const img = built.images.find((i) => i.component === component);
  if (!img) throw new Error(`charts/images built no ${component} image`);
  return { name: `${component === 'sidecar' ? SIDECAR_REPO : WEBHOOK_REPO}:${built.version}`, archive: join(ROOT, img.archive) };
}

const ms = (since: number) => Math.round(performance.now() - since);

/**
 * A pod's start as the API server and the kubelet recorded it (timestamps of 1 s resolution): created →
 * Ready, how long sluice-init ran, and the sidecar's start to the agent's. The same measure for pods
 * whatever created them (an apply, a rollout restart), so two modes can be compared.
 */
export function podTimeline(p: PodView): { createdToReadyS: number; initRanS: number; sidecarStartToAgentStartS: number } {
  const ready = p.status.conditions?.find((c) => c.type === 'Ready' && c.status === 'True')?.lastTransitionTime;
  const init = containerStatus(p, 'sluice-init').state.terminated;
  const sidecar = containerStatus(p, 'sluice-proxy').state.running;
  const agent = containerStatus(p, 'agent').state.running;
  const s = (a: string | undefined, b: string | undefined) => (a && b ? (Date.parse(b) - Date.parse(a)) / 1000 : NaN);
  return { createdToReadyS: s(p.metadata.creationTimestamp, ready), initRanS: s(init?.startedAt, init?.finishedAt), sidecarStartToAgentStartS: s(sidecar?.startedAt, agent?.startedAt) };
}

// What each step observed.
export interface Installed {
  chart: string;
  webhookPods: PodView[];
  /** sluice's MutatingWebhookConfigurations: each webhook's Service reference and caBundle */
  registrations: { name: string; webhooks: { clientConfig: { caBundle?: string; service?: unknown } }[] }[];
  helmInstallMs: number;
  /** what `helm install` printed (the chart's NOTES) */
  notes: string;
  /** mode cni: the node agent DaemonSet's pods, and the node's conflist plugin types after the install */
  cniAgentPods: PodView[];
  conflistPlugins: string[];
}

/** `kubectl sluice check -o json` as the admin. */
export interface Checked {
  code: number;
  ok: boolean;
  results: { category: string; status: string; message: string; hint?: string }[];
  stderr: string;
}

/**
 * `helm upgrade --reuse-values --set interception.mode=…` with an agent Deployment running: what the
 * running pod did (nothing: same pod, no restarts, its rules, its traffic), and what a
 * `kubectl rollout restart` made of it in the new mode.
 */
export interface ModeSwitched {
  helmUpgradeMs: number;
  before: PodView;
  podStartBeforeMs: number;
  pollsBefore: string[];
  /** the same pod after the upgrade, and its polls that started after it */
  oldAfter: PodView;
  oldPollsAfter: string[];
  oldRules: string;
  /** `kubectl sluice kill` on the old pod after the switch, and its polls after that */
  oldKill: CliResult;
  oldPollsAfterKill: string[];
  cniAgentPods: PodView[];
  conflistPlugins: string[];
  /** after `kubectl rollout restart`: the new pod, its start (restart command to every container Ready), its init command, rules and polls */
  restarted: PodView;
  podStartAfterMs: number;
  restartedInitCommand: string[];
  restartedRules: string;
  restartedPolls: string[];
}

/** What carol (a developer who may patch her pods and add debug containers) got trying to take the running agent pod out of sluice's hands. */
export interface RunningPodAttempts {
  /** `kubectl label pod … <label> --overwrite` per label: exit code and kubectl's words */
  labelFlips: { label: string; code: number; out: string }[];
  /** an ephemeral container as the sidecar's UID (its traffic would skip interception) */
  asProxy: { status: number; message?: string };
  /** a plain ephemeral container: admitted, runs in the pod */
  plain: { status: number; message?: string };
  /** its polls of GitHub (`STEP debug <http code>`) */
  debugPolls: string[];
  /** requests GitHub saw while the debug container ran */
  githubRequestsDuring: number;
}

/** `kubectl port-forward pod/<agent> 0:15090` (the sidecar's admin port) as a user, and a scrape through it. */
export interface PortForwarded {
  /** `HTTP <status>` or `failed: <why>` */
  scraped: string;
  /** what kubectl printed */
  out: string;
}

export interface Deployed {
  pod: PodView;
  init: ContainerStatus;
  sidecar: ContainerStatus;
  agent: ContainerStatus;
  plainPod: PodView;
  podStartInjectedMs: number;
  podStartPlainMs: number;
}

export interface ClonedAndRead {
  clone: string;
  settings: string;
  /** the upstream saw the clone's ref advertisement (through the sidecar) */
  upstreamSawClone: boolean;
}

export interface S3Done {
  whoami: string;
  s3put: string;
  s3ls: string;
  /** the object as moto stored it */
  stored: string;
  /** `$AWS_ACCESS_KEY_ID` and the service-account token directory, as the agent sees them */
  keys: string;
  agentLog: string;
  issued: { subject: string; accessKeyId: string; secretAccessKey: string }[];
}

export interface Approved {
  requestName: string;
  /** the agent's push had not returned, and the repository lacked its commit, while held */
  pushReturnedWhileHeld: boolean;
  gitLogWhileHeld: string;
  listed: CliResult;
  byCreator: CliResult;
  byApprover: CliResult;
  push: string;
  gitLogAfter: string;
  decided: ApprovalRequest;
  approveToPushLandedMs: number;
}

export interface Killed {
  kill: CliResult;
  pollsAfterKill: string[];
}

export interface Replayed {
  replay: string;
  verify: CliResult;
  sessionId: string;
  events: number;
}

export interface Restarted {
  before: PodView;
  after: PodView;
  sidecarRestartToReadyMs: number;
  replay: string;
  verify: CliResult;
  events: number;
  /** the agent's polls that started after the restarted sidecar did */
  pollsAfterRestart: string[];
}

export class Story {
  readonly node: KubeNode;
  readonly images: TestImages;
  readonly toolsAgent: TestImage;
  readonly upstreamCa: TestCa;
  readonly github: TestUpstream;
  readonly repoPath: string;
  readonly aws: StsWorld;
  readonly logStore: VictoriaLogsServer;
  readonly version: string;
  readonly figures: Record<string, unknown>;
  readonly mode: InterceptionMode;
  readonly podSecurity: PodSecurityLevel | undefined;
  /** mode cni: the host directory of the node agent's socket (interception.cni.socketDir) */
  readonly cniSocketDir: string;
  readonly #helmEnv: NodeJS.ProcessEnv;
  readonly #onCommand: (c: ShownCommand) => void;
  readonly #onObserved: (what: string) => void;
  coderPod = '';
  sessionId = '';
  /** the packaged chart `installChart()` installed (for `helm upgrade`) */
  chart = '';

  private constructor(init: {
    node: KubeNode;
    images: TestImages;
    toolsAgent: TestImage;
    upstreamCa: TestCa;
    github: TestUpstream;
    repoPath: string;
    aws: StsWorld;
    logStore: VictoriaLogsServer;
    version: string;
    figures: Record<string, unknown>;
    mode: InterceptionMode;
    podSecurity: PodSecurityLevel | undefined;
    cniSocketDir: string;
    helmEnv: NodeJS.ProcessEnv;
    onCommand: (c: ShownCommand) => void;
    onObserved: (what: string) => void;
  }) {
    this.node = init.node;
    this.images = init.images;
    this.toolsAgent = init.toolsAgent;
    this.upstreamCa = init.upstreamCa;
    this.github = init.github;
    this.repoPath = init.repoPath;
    this.aws = init.aws;
    this.logStore = init.logStore;
    this.version = init.version;
    this.figures = init.figures;
    this.mode = init.mode;
    this.podSecurity = init.podSecurity;
    this.cniSocketDir = init.cniSocketDir;
    this.#helmEnv = init.helmEnv;
    this.#onCommand = init.onCommand;
    this.#onObserved = init.onObserved;
  }

  /** Images (built or reused), the node, and the world outside the cluster on the bridge address. */
  static async start(opts: StoryOptions = {}): Promise<Story> {
    const progress = opts.onProgress ?? (() => undefined);
    const figures: Record<string, unknown> = {};
    const t0 = performance.now();
    const images = await ensureTestImages();
    const toolsAgent = await ensureToolsAgentImage();
    figures.toolsAgentImageRebuilt = toolsAgent.built;
    const { images: built, built: rebuilt } = await ensureImages();
    const imagesMs = ms(t0);
    figures.imagesMs = imagesMs;
    figures.sluiceImagesRebuilt = rebuilt;
    progress(`images ready (${imagesMs} ms; sluice images ${rebuilt ? 'rebuilt' : 'reused'}, agent image ${toolsAgent.built ? 'built' : 'reused'})`);
    const home = mkdtempSync(join(tmpdir(), 'sluice-story-home-'));
    const helmEnv = { PATH: process.env.PATH, HOME: home, HELM_CACHE_HOME: join(home, 'cache'), HELM_CONFIG_HOME: join(home, 'config'), HELM_DATA_HOME: join(home, 'data') };
    const node = await KubeNode.start({
      images: [images.pause, images.agent, images.agentUid1337, toolsAgent, sluiceImage('sidecar', built), sluiceImage('webhook', built)],
      sandboxImage: images.pause.name,
      // No kube-proxy: the API server calls the webhook Service at its endpoints' pod IPs.
      apiserverArgs: ['--enable-aggregator-routing=true'],
      // The agent's owner is an approver too (a team lead): only the self-approval rule stops her.
      users: { lead: { name: 'carol@example.com', groups: ['developers', 'sluice-approvers'] } },
    });
    figures.bringUp = Object.fromEntries(Object.entries(node.timings as unknown as Record<string, number>).map(([k, v]) => [k, Math.round(v)]));
    progress(`node Ready (${Math.round(node.timings.totalMs)} ms from the first process; bridge ${node.bridge}, API server https://${node.address}:443)`);
    try {
      // "GitHub": git's own http-backend and a raw file server, on the bridge address (pods reach only
      // that), with certificates from a CA only the sidecar trusts. The agent reaches it only through sluice.
      const upstreamCa = await createTestCa();
      const repoPath = createBareRepo('acme', 'app', mkdtempSync(join(tmpdir(), 'sluice-story-git-'))).path;
      const backend = gitBackendHandler(join(repoPath, '..', '..'));
      const github = await startHttpsUpstream(
        upstreamCa,
        ['github.com', 'raw.githubusercontent.com'],
        (req, res, body) => {
          if (req.headers.host?.startsWith('github.com')) return backend(req, res, body);
          if (req.url === '/acme/app/main/deploy/settings.json') {
            res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ region: 'eu-west-1', aws_access_key_id: LEAKED_KEY_ID, aws_secret_access_key: LEAKED_SECRET }));
            return;
          }
          res.writeHead(200, { 'content-type': 'text/plain' }).end('# app\n');
        },
        node.address,
      );
      // "AWS": moto behind a hop that checks the web identity token against the API server's JWKS,
      // on the bridge address; the role trusts the agents' default service account.
      const aws = await startStsWorld(node.cluster, { namespace: AGENTS, serviceAccount: 'default', bucket: BUCKET, host: node.address });
      // The audit log store, where the sidecars ship their hash-chained events and the CLI reads them.
      const logStore = await VictoriaLogsServer.start({ host: node.address });
      progress(`"GitHub" (git http-backend) at ${github.dial}, "AWS" (moto + STS web identity), VictoriaLogs at ${logStore.url}`);
      return new Story({ node, images, toolsAgent, upstreamCa, github, repoPath, aws, logStore, version: built.version, figures, mode: opts.mode ?? 'init', podSecurity: opts.podSecurity, cniSocketDir: mkdtempSync(join(tmpdir(), 'sluice-story-cni-sock-')), helmEnv, onCommand: opts.onCommand ?? (() => undefined), onObserved: opts.onObserved ?? (() => undefined) });
    } catch (err) {
      await node.stop();
      throw err;
    }
  }

  /** Everything down, the host put back; returns what still differs on the host (empty = clean). */
  async stop(opts: { keepLogsIn?: string } = {}): Promise<string[]> {
    const started = performance.now();
    // The Deployments and their ReplicaSets first: the node's teardown deletes every pod, and a
    // ReplicaSet would recreate them while it waits for the node's tasks to end.
    for (const ns of [AGENTS, PLAIN, SYSTEM]) {
      // (and the node agent's DaemonSet: its pods take the plugin out of the conflist on SIGTERM)
      for (const kind of ['deployments', 'replicasets', 'daemonsets']) {
        await this.node.cluster.request('admin', 'DELETE', `/apis/apps/v1/namespaces/${ns}/${kind}?propagationPolicy=Background`).catch(() => undefined);
      }
    }
    await this.prometheus?.stop();
    await this.github.close();
    await this.aws.close();
    await this.logStore.stop();
    rmSync(this.cniSocketDir, { recursive: true, force: true });
    const upstreamsMs = ms(started);
    const left = await this.node.stop(opts);
    this.figures.teardown = { upstreamsMs, nodeMs: ms(started) - upstreamsMs };
    return left;
  }

  #show(handle: string, line: string): void {
    this.#onCommand({ user: this.node.cluster.user(handle).name, line });
  }

  /** helm as the cluster admin; throws with helm's own words on failure. */
  helm(args: string[], shown: string, timeoutMs = 240_000): string {
    this.#show('admin', shown);
    try {
      return execFileSync(HELM, [...args, '--kubeconfig', this.node.cluster.kubeconfigPath('admin')], { env: this.#helmEnv, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string; message: string };
      throw new Error(`helm ${args.join(' ')} failed: ${e.stderr || e.stdout || e.message}`, { cause: err });
    }
  }

  /** kubectl as one of the cluster's users, shown as typed (`shown` replaces the line, e.g. `-f agent.yaml` for stdin). */
  kubectl(handle: string, args: string[], opts: { input?: string; shown?: string } = {}): string {
    this.#show(handle, opts.shown ?? `kubectl ${args.join(' ')}`);
    return this.node.kubectl(handle, args, opts.input);
  }

  /** `kubectl sluice ARGS` as one of the cluster's users (the CLI from this tree); `quiet`: not shown (a poll). */
  sluice(user: string, args: string[], quiet = false): Promise<CliResult> {
    if (!quiet) this.#show(user, `kubectl sluice ${args.join(' ')}`);
    return new Promise((resolve) => {
      execFile(process.execPath, [CLI, ...args, '--kubeconfig', this.node.cluster.kubeconfigPath(user)], { encoding: 'utf8', env: { ...process.env, KUBECONFIG: '' }, timeout: 60_000 }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolve({ code, stdout, stderr });
      });
    });
  }

  /** The agent's log (not shown: the steps read it to see what the agent did). */
  agentLog(extra: string[] = []): string {
    return this.node.kubectl('admin', ['-n', AGENTS, 'logs', this.coderPod, '-c', 'agent', ...extra]);
  }

  /** The agent's `STEP name …` lines so far. */
  agentSteps(): { name: string; rest: string }[] {
    return this.agentLog()
      .split('\n')
      .filter((l) => l.startsWith('STEP '))
      .map((l) => {
        const [, name, ...rest] = l.split(' ');
        return { name: name!, rest: rest.join(' ') };
      });
  }

  /** The first `STEP name` line (bounded wait while the agent gets there). */
  async agentStep(name: string, timeoutMs = 60_000): Promise<string> {
    return eventually(`the agent's step ${name}`, () => Promise.resolve(this.agentSteps().find((s) => s.name === name)?.rest), timeoutMs);
  }

  async approvalRequests(): Promise<ApprovalRequest[]> {
    const res = await this.node.cluster.request<{ items: ApprovalRequest[] }>('admin', 'GET', `/apis/${APPROVAL_API_VERSION}/namespaces/${AGENTS}/${APPROVAL_PLURAL}`);
    return res.body.items ?? [];
  }

  gitLog(): string {
    return execFileSync('git', ['--git-dir', this.repoPath, 'log', '--format=%s', 'main'], { encoding: 'utf8' });
  }

  /** The Deployment's one pod (bounded wait for the ReplicaSet to create it). */
  async deploymentPod(namespace: string, app: string): Promise<PodView> {
    return eventually(`a pod of deployment ${namespace}/${app}`, async () => {
      const res = await this.node.cluster.request<{ items: PodView[] }>('admin', 'GET', `/api/v1/namespaces/${namespace}/pods?labelSelector=app%3D${app}`);
      return res.body.items?.find((p) => !('deletionTimestamp' in p.metadata)) ?? undefined;
    });
  }

  /**
   * 1. helm install of the packaged chart (certificates.mode self, interception.mode of the story),
   * the agents namespace (with its Pod Security level, set before the install so NOTES reports it)
   * and its upstream CA.
   */
  async installChart(): Promise<Installed> {
    const work = mkdtempSync(join(tmpdir(), 'sluice-story-chart-'));
    const chart = packageChart(work);
    this.chart = chart;
    this.kubectl('admin', ['create', 'namespace', AGENTS]);
    if (this.podSecurity) this.kubectl('admin', ['label', 'namespace', AGENTS, `${PSA_ENFORCE}=${this.podSecurity}`]);
    // The upstream CA, mounted into the sidecar only (sidecar.mounts): the agent never trusts it.
    this.kubectl('admin', ['-n', AGENTS, 'create', 'configmap', 'upstream-ca', `--from-file=ca.pem=${this.upstreamCa.caFile}`, `--from-file=aws-ca.pem=${this.aws.ca.caFile}`], {
      shown: `kubectl -n ${AGENTS} create configmap upstream-ca --from-file=ca.pem --from-file=aws-ca.pem`,
    });
    const values = join(work, 'values.json');
    writeFileSync(
      values,
      JSON.stringify({
        webhook: { image: { repository: WEBHOOK_REPO, tag: this.version, pullPolicy: 'Never' } },
        sidecar: {
          image: { repository: SIDECAR_REPO, tag: this.version, pullPolicy: 'Never' },
          mounts: [{ name: 'upstream-ca', configMap: 'upstream-ca' }],
          config: {
            audit: { store: { type: 'victorialogs', url: this.logStore.url } },
            upstream: {
              extraRootsFiles: ['/etc/sluice/mounts/upstream-ca/ca.pem', '/etc/sluice/mounts/upstream-ca/aws-ca.pem'],
              // split DNS: these names are served on the bridge (there is no DNS or internet here)
              resolve: { 'github.com:443': this.github.dial, 'raw.githubusercontent.com:443': this.github.dial, ...this.aws.resolve },
            },
            credentials: { aws: { roles: [{ namespace: AGENTS, serviceAccount: 'default', roleArn: this.aws.roleArn }] } },
          },
        },
        certificates: { mode: 'self', resyncSeconds: 5 },
        agents: { namespaces: [AGENTS] },
        ...(this.mode === 'cni' ? { interception: this.#interceptionValues('cni') } : {}),
      }),
    );
    const started = performance.now();
    const args = ['install', 'sluice', chart, '--namespace', SYSTEM, '--create-namespace', '--values', values, '--wait', '--timeout', '4m'];
    const notes = this.helm(args, `helm install sluice dist/release/${basename(chart)} --namespace ${SYSTEM} --create-namespace --values values.json --wait --timeout 4m`);
    const helmInstallMs = ms(started);
    this.figures.helmInstallMs = helmInstallMs;
    const pods = await this.node.cluster.request<{ items: PodView[] }>('admin', 'GET', `/api/v1/namespaces/${SYSTEM}/pods?labelSelector=app.kubernetes.io%2Fcomponent%3Dwebhook`);
    const mwc = JSON.parse(this.node.kubectl('admin', ['get', 'mutatingwebhookconfigurations', '-o', 'json'])) as { items: { metadata: { name: string }; webhooks: Installed['registrations'][number]['webhooks'] }[] };
    const registrations = mwc.items.filter((c) => c.metadata.name.startsWith('sluice')).map((c) => ({ name: c.metadata.name, webhooks: c.webhooks }));
    return { chart, webhookPods: pods.body.items, registrations, helmInstallMs, notes, cniAgentPods: await this.cniAgentPods(), conflistPlugins: this.conflistPlugins() };
  }

  /** The chart's interception values for `mode`: in mode cni, the node's CNI directories (the harness keeps them under the node's directory). */
  #interceptionValues(mode: InterceptionMode): Record<string, unknown> {
    if (mode === 'init') return { mode };
    return { mode, cni: { confDir: join(this.node.dir, 'cni', 'net.d'), binDir: join(this.node.dir, 'cni', 'bin'), socketDir: this.cniSocketDir } };
  }

  /** The plugin types of the node's CNI configuration, in order (sluice-cni last while a node agent runs). */
  conflistPlugins(): string[] {
    const conf = JSON.parse(readFileSync(join(this.node.dir, 'cni', 'net.d', '10-sluice-e2e.conflist'), 'utf8')) as { plugins: { type: string }[] };
    return conf.plugins.map((p) => p.type);
  }

  /** The sluice node agent DaemonSet's pods (none in mode init). */
  async cniAgentPods(): Promise<PodView[]> {
    const res = await this.node.cluster.request<{ items: PodView[] }>('admin', 'GET', `/api/v1/namespaces/${SYSTEM}/pods?labelSelector=app.kubernetes.io%2Fcomponent%3Dcni`);
    return res.body.items ?? [];
  }

  /** The iptables rules in a pod's network namespace, read from the host (through one of its running containers). */
  podIptables(pod: PodView, container = 'agent'): string {
    const id = containerStatus(pod, container).containerID!.replace(/^containerd:\/\//, '');
    return execFileSync('nsenter', ['-t', String(this.node.containerPid(id)), '-n', 'iptables-save'], { encoding: 'utf8' });
  }

  /** `kubectl sluice check -o json` as the admin: the mode, the node agents, each agent namespace's Pod Security level. */
  async check(): Promise<Checked> {
    const r = await this.sluice('admin', ['check', '-o', 'json']);
    let parsed: { ok?: boolean; results?: Checked['results'] } = {};
    try {
      parsed = JSON.parse(r.stdout) as typeof parsed;
    } catch {
      // not JSON: the caller sees code and stderr
    }
    return { code: r.code, ok: parsed.ok ?? false, results: parsed.results ?? [], stderr: r.stderr };
  }

  /** 2. Label the namespace, apply the agent Deployment as carol; the same Deployment in an unlabelled namespace for the baseline. */
  async labelAndDeploy(): Promise<Deployed> {
    this.kubectl('admin', ['label', 'namespace', AGENTS, 'sluice.io/inject=true']);
    await this.node.cluster.grant('lead', AGENTS, 'deployer', [{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['create', 'get', 'list', 'patch', 'delete'] }]);
    const started = performance.now();
    this.kubectl('lead', ['apply', '-f', '-'], { input: deployment('coder', AGENTS, this.toolsAgent.name, AGENT_SCRIPT, { restricted: this.podSecurity === 'restricted' }), shown: `kubectl apply -f coder.yaml   # Deployment ${AGENTS}/coder, image ${this.toolsAgent.name}` });
    const first = await this.deploymentPod(AGENTS, 'coder');
    this.coderPod = first.metadata.name;
    const pod = await waitPod(this.node, AGENTS, first.metadata.name, 'ready', allContainersReady);
    const podStartInjectedMs = ms(started);
    this.figures.podStartInjectedMs = podStartInjectedMs;
    this.figures.podTimeline = podTimeline(pod);
    const init = containerStatus(pod, 'sluice-init');
    const sidecar = containerStatus(pod, 'sluice-proxy');
    const agent = containerStatus(pod, 'agent');
    if (init.state.terminated && sidecar.state.running && agent.state.running) {
      this.figures.sidecarShare = {
        initRanS: (Date.parse(init.state.terminated.finishedAt) - Date.parse(init.state.terminated.startedAt)) / 1000,
        sidecarStartToAgentStartS: (Date.parse(agent.state.running.startedAt) - Date.parse(sidecar.state.running.startedAt)) / 1000,
      };
    }
    // The same Deployment in a namespace nobody labelled: no sidecar, the baseline start latency.
    this.kubectl('admin', ['create', 'namespace', PLAIN]);
    await eventually(`the default ServiceAccount in ${PLAIN}`, async () => ((await this.node.cluster.request('admin', 'GET', `/api/v1/namespaces/${PLAIN}/serviceaccounts/default`)).status === 200 ? true : undefined));
    const plainStarted = performance.now();
    this.kubectl('admin', ['apply', '-f', '-'], { input: deployment('coder', PLAIN, this.toolsAgent.name, 'exec sleep 100000'), shown: `kubectl apply -f coder-plain.yaml   # the same Deployment in ${PLAIN} (not labelled), sleeping` });
    const plain = await this.deploymentPod(PLAIN, 'coder');
    const plainPod = await waitPod(this.node, PLAIN, plain.metadata.name, 'ready', allContainersReady);
    const podStartPlainMs = ms(plainStarted);
    this.figures.podStartPlainMs = podStartPlainMs;
    return { pod, init, sidecar, agent, plainPod, podStartInjectedMs, podStartPlainMs };
  }

  /** 3. What the agent did on its own: the clone, and the settings file with leaked keys. */
  async cloneAndRead(): Promise<ClonedAndRead> {
    const clone = await this.agentStep('clone');
    const settings = await this.agentStep('settings');
    this.figures.maskedSettings = settings;
    return { clone, settings, upstreamSawClone: this.github.requests.some((r) => r.url.startsWith('/acme/app.git/info/refs')) };
  }

  /** 3b. S3 through moto: who the agent is to AWS, what it wrote, and which keys it holds. */
  async s3(): Promise<S3Done> {
    const whoami = await this.agentStep('whoami');
    const s3put = await this.agentStep('s3put');
    const s3ls = await this.agentStep('s3ls');
    const stored = (await this.aws.moto.s3('GET', `/${BUCKET}/from-agent.txt`, this.aws.admin)).body.toString();
    const keys = await this.agentStep('keys');
    this.figures.awsHop = this.aws.hop.records.map((r) => `${r.method} ${r.host} ${r.check}`).slice(0, 8);
    const issued = [...this.aws.hop.issued.values()].map((c) => ({ subject: c.subject, accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey }));
    return { whoami, s3put, s3ls, stored, keys, agentLog: this.agentLog(), issued };
  }

  /** 4. The held push: listed, approved by its creator (carol), then by bob; what landed. */
  async approvePush(): Promise<Approved> {
    const held = await eventually('a pending ApprovalRequest for the push', async () => (await this.approvalRequests()).find((a) => (a.status?.state ?? 'Pending') === 'Pending'), 60_000);
    const requestName = held.metadata.name!;
    const pushReturnedWhileHeld = this.agentSteps().some((s) => s.name === 'push');
    const gitLogWhileHeld = this.gitLog();
    this.#onObserved(`ApprovalRequest ${requestName} is pending; the agent's git push has ${pushReturnedWhileHeld ? 'returned' : 'not returned'}, the repository ${gitLogWhileHeld.includes('fix from the agent') ? 'has' : 'lacks'} its commit`);
    const listed = await this.sluice('approver', ['approvals', '-n', AGENTS]);
    // carol created the Deployment (its pod carries her as creator) and is an approver: refused all the same.
    const byCreator = await this.sluice('lead', ['approve', requestName, '-n', AGENTS]);
    this.figures.creatorApproves = byCreator.stderr.trim();
    const started = performance.now();
    const byApprover = await this.sluice('approver', ['approve', requestName, '-n', AGENTS]);
    const push = byApprover.code === 0 ? await this.agentStep('push') : '(not approved)';
    const approveToPushLandedMs = ms(started);
    this.figures.approveToPushLandedMs = approveToPushLandedMs;
    const decided = (await this.approvalRequests()).find((a) => a.metadata.name === requestName)!;
    return { requestName, pushReturnedWhileHeld, gitLogWhileHeld, listed, byCreator, byApprover, push, gitLogAfter: this.gitLog(), decided, approveToPushLandedMs };
  }

  /** 5. `kubectl sluice kill` once the agent polls GitHub successfully; its next six polls. */
  async kill(): Promise<Killed> {
    await eventually('the agent polling GitHub successfully', () => Promise.resolve(this.agentSteps().some((s) => s.name === 'poll' && s.rest === '200') ? true : undefined));
    this.#onObserved('the agent polls GitHub every second: HTTP 200');
    const kill = await this.sluice('approver', ['kill', this.coderPod, '-n', AGENTS]);
    const before = this.agentSteps().length;
    // Every poll after the kill switch took effect fails (bounded: a few polls).
    const after = await eventually('six polls after the kill', () => {
      const polls = this.agentSteps().slice(before).filter((s) => s.name === 'poll');
      return Promise.resolve(polls.length >= 6 ? polls : undefined);
    }, 30_000);
    const pollsAfterKill = after.map((p) => p.rest);
    this.figures.pollsAfterKill = pollsAfterKill;
    return { kill, pollsAfterKill };
  }

  /** 6. replay (once the store has the kill switch's refusals) and verify, from VictoriaLogs. */
  async replayAndVerify(): Promise<Replayed> {
    const store = ['--victorialogs', this.logStore.url];
    // The sidecar ships in small batches: wait (bounded) until the store has the kill switch's denials too.
    let last: CliResult | undefined;
    let shown = false;
    const replay = await eventually(
      'the session in the log store up to the kill',
      async () => {
        last = await this.sluice('approver', ['replay', '--pod', this.coderPod, '-n', AGENTS, ...store], shown);
        shown = true;
        return last.code === 0 && /git-receive-pack/.test(last.stdout) && /refusal +code=pod\.killed /.test(last.stdout) ? last.stdout : undefined;
      },
      60_000,
    ).catch((err: Error) => {
      const sidecarLog = this.node.kubectl('admin', ['-n', AGENTS, 'logs', this.coderPod, '-c', 'sluice-proxy']).split('\n').filter((l) => /audit|store|warn|error/i.test(l)).slice(-15).join('\n');
      throw new Error(`${err.message}\nlast replay (exit ${last?.code}):\n${last?.stdout}\n${last?.stderr}\nsidecar log (audit lines):\n${sidecarLog}`, { cause: err });
    });
    this.figures.replay = replay.split('\n').slice(0, 40);
    const stored = await this.sluice('approver', ['replay', '--pod', this.coderPod, '-n', AGENTS, ...store, '-o', 'json'], true);
    const { session } = JSON.parse(stored.stdout.split('\n')[0]!) as { session: string };
    this.sessionId = session;
    const verify = await this.sluice('approver', ['verify', session, ...store]);
    this.figures.verify = verify.stdout.trim();
    return { replay, verify, sessionId: session, events: Number(/: (\d+) events/.exec(verify.stdout)?.[1] ?? NaN) };
  }

  /** The platform team's Prometheus (startPrometheus), scraping as the chart's monitors select. */
  prometheus: ClusterPrometheus | undefined;

  /**
   * 1b. Prometheus on the host as the Prometheus Operator would run it from the chart's PodMonitor
   * and ServiceMonitor (rendered for the installed release's values; prometheus.ts translates them):
   * kubernetes_sd_configs against the API server, scraping pod IPs over the bridge. Started before
   * the agent, so it sees all of its traffic.
   */
  async startPrometheus(): Promise<PrometheusStarted> {
    const work = mkdtempSync(join(tmpdir(), 'sluice-story-monitoring-'));
    const values = join(work, 'values.json');
    writeFileSync(values, this.helm(['get', 'values', 'sluice', '--namespace', SYSTEM, '-o', 'json'], `helm get values sluice --namespace ${SYSTEM} -o json > values.json`));
    const monitoring = ['monitoring.podMonitor.enabled=true', 'monitoring.podMonitor.interval=2s', 'monitoring.serviceMonitor.enabled=true', 'monitoring.serviceMonitor.interval=2s'];
    const rendered = this.helm(
      ['template', 'sluice', this.chart, '--namespace', SYSTEM, '--values', values, ...monitoring.flatMap((s) => ['--set', s]), '--show-only', 'templates/monitoring.yaml'],
      `helm template sluice dist/release/${basename(this.chart)} --namespace ${SYSTEM} --values values.json ${monitoring.map((s) => `--set ${s}`).join(' ')} --show-only templates/monitoring.yaml`,
    );
    const monitors = monitorsIn(rendered);
    const started = performance.now();
    this.prometheus = await ClusterPrometheus.start(this.node, monitors);
    const startMs = ms(started);
    this.figures.prometheusStartMs = startMs;
    // The webhook's pods run already (the ServiceMonitor's targets): scraped once discovery works.
    const prometheus = this.prometheus;
    const targets = await eventually('Prometheus scraping the webhook pods', async () => {
      const t = await prometheus.targets();
      return t.some((x) => x.health === 'up') ? t : undefined;
    }, 30_000);
    return { monitors, scrapeConfigs: prometheus.scrapeConfigs, targets, startMs };
  }

  /** 6b. Every dashboard query (charts/src/dashboards) as Grafana sends it for the agent's namespace and pod, after the story's traffic. */
  async dashboardQueries(): Promise<DashboardsQueried> {
    const prometheus = this.prometheus;
    if (!prometheus) throw new Error('startPrometheus() first');
    await prometheus.settle();
    const targets = await prometheus.targets();
    const results = await prometheus.dashboardResults({ namespace: AGENTS, pod: this.coderPod });
    this.figures.dashboardQueries = { total: results.length, withData: results.filter((r) => r.series > 0).length };
    return { targets, results };
  }

  /** 8. SIGKILL the running sidecar from the host; the kubelet restarts it; the session read back again. */
  async restartSidecar(): Promise<Restarted> {
    const before = await waitPod(this.node, AGENTS, this.coderPod, 'running', allContainersReady);
    const sidecarId = containerStatus(before, 'sluice-proxy').containerID!.replace(/^containerd:\/\//, '');
    const killedAt = performance.now();
    process.kill(this.node.containerPid(sidecarId), 'SIGKILL');
    const after = await waitPod(this.node, AGENTS, this.coderPod, 'the sidecar restarted and Ready', (p) => containerStatus(p, 'sluice-proxy').restartCount >= 1 && containerStatus(p, 'sluice-proxy').ready, 120_000);
    const sidecarRestartToReadyMs = ms(killedAt);
    this.figures.sidecarRestartToReadyMs = sidecarRestartToReadyMs;
    const store = ['--victorialogs', this.logStore.url];
    let shown = false;
    const replay = await eventually(
      'the resumed session_start in the log store',
      async () => {
        const r = await this.sluice('approver', ['replay', this.sessionId, ...store], shown);
        shown = true;
        return r.code === 0 && /session_start .*resumed=true/.test(r.stdout) ? r.stdout : undefined;
      },
      60_000,
    );
    const verify = await this.sluice('approver', ['verify', this.sessionId, ...store]);
    this.figures.verifyAfterRestart = verify.stdout.trim();
    // The kill switch is the pod's annotation, not the sidecar's memory: read the polls after the restart.
    const restartedAt = Date.parse(containerStatus(after, 'sluice-proxy').state.running!.startedAt);
    const pollsAfterRestart = await eventually(
      'polls after the restart',
      () => {
        const lines = this.agentLog(['--timestamps']).split('\n').filter((l) => / STEP poll /.test(l) && Date.parse(l.split(' ')[0]!) > restartedAt + 1000);
        return Promise.resolve(lines.length >= 3 ? lines : undefined);
      },
      30_000,
    );
    return { before, after, sidecarRestartToReadyMs, replay, verify, events: Number(/: (\d+) events/.exec(verify.stdout)?.[1] ?? NaN), pollsAfterRestart };
  }

  /** The `STEP poll <http code>` results of a pod's agent whose log line is later than `sinceEpochMs` (bounded wait for `count`). */
  async #polls(pod: string, sinceEpochMs: number, count: number): Promise<string[]> {
    return eventually(
      `${count} polls of ${pod}`,
      () => {
        const lines = this.node.kubectl('admin', ['-n', AGENTS, 'logs', pod, '-c', 'agent', '--timestamps']).split('\n').filter((l) => / STEP poll /.test(l) && Date.parse(l.split(' ')[0]!) > sinceEpochMs);
        return Promise.resolve(lines.length >= count ? lines.map((l) => l.split(' ').pop()!) : undefined);
      },
      30_000,
    );
  }

  /**
   * 9. Changing interception modes under a running agent (docs/cni.md, "Changing modes"): a second
   * agent Deployment (`reviewer`, polling GitHub every second) starts in the story's mode; `helm
   * upgrade --reuse-values` switches the chart to `to`; the running pod is left as it was (same pod,
   * no restart, its rules, its traffic still through its sidecar) and `kubectl sluice kill` still
   * governs it; `kubectl rollout restart` recreates it in the new mode.
   */
  async switchMode(to: InterceptionMode): Promise<ModeSwitched> {
    const poller = 'while true; do echo "STEP poll $(curl -sS -o /dev/null -w \'%{http_code}\' --max-time 5 https://raw.githubusercontent.com/acme/app/main/README.md 2>/dev/null)"; sleep 1; done';
    const restricted = this.podSecurity === 'restricted';
    const started = performance.now();
    this.kubectl('lead', ['apply', '-f', '-'], { input: deployment('reviewer', AGENTS, this.toolsAgent.name, poller, { restricted }), shown: `kubectl apply -f reviewer.yaml   # Deployment ${AGENTS}/reviewer, polling GitHub every second` });
    const first = await this.deploymentPod(AGENTS, 'reviewer');
    const before = await waitPod(this.node, AGENTS, first.metadata.name, 'ready', allContainersReady);
    const podStartBeforeMs = ms(started);
    const pollsBefore = await this.#polls(before.metadata.name, 0, 3);
    this.#onObserved(`reviewer pod ${before.metadata.name} runs in mode ${this.mode}; its polls: ${pollsBefore.join(' ')}`);

    // Back to init: the agent namespace must allow the root init container first (docs/cni.md, "Changing modes").
    if (to === 'init' && this.podSecurity && this.podSecurity !== 'privileged') this.kubectl('admin', ['label', 'namespace', AGENTS, `${PSA_ENFORCE}=privileged`, '--overwrite']);
    const work = mkdtempSync(join(tmpdir(), 'sluice-story-upgrade-'));
    const values = join(work, 'mode.json');
    writeFileSync(values, JSON.stringify({ interception: this.#interceptionValues(to) }));
    const upgradeStarted = performance.now();
    this.helm(
      ['upgrade', 'sluice', this.chart, '--namespace', SYSTEM, '--reuse-values', '--values', values, '--wait', '--timeout', '4m'],
      `helm upgrade sluice dist/release/${basename(this.chart)} --namespace ${SYSTEM} --reuse-values --set interception.mode=${to}${to === 'cni' ? ' --set interception.cni.confDir=… --set interception.cni.binDir=…' : ''} --wait --timeout 4m`,
    );
    const helmUpgradeMs = ms(upgradeStarted);
    const upgradedAt = Date.now();
    // helm --wait waits for what it creates, not for what it deletes: back in mode init, the node
    // agent's pods take the plugin out of the conflist on SIGTERM, a moment after helm returns.
    const conflistSettled = () => Promise.resolve(this.conflistPlugins().includes('sluice-cni') === (to === 'cni') ? true : undefined);
    await eventually(`the node's CNI configuration ${to === 'cni' ? 'with' : 'without'} sluice-cni`, conflistSettled, 60_000);
    const cniAgentPods = to === 'cni' ? await this.cniAgentPods() : await eventually('the node agent pods gone', async () => ((await this.cniAgentPods()).length === 0 ? [] : undefined), 60_000);
    const conflistPlugins = this.conflistPlugins();

    // The running pod: untouched by the upgrade.
    const oldAfter = await getPod(this.node, AGENTS, before.metadata.name);
    const oldPollsAfter = await this.#polls(before.metadata.name, upgradedAt, 3);
    const oldRules = this.podIptables(oldAfter);
    this.#onObserved(`after the upgrade, ${before.metadata.name} polls: ${oldPollsAfter.join(' ')}`);
    const oldKill = await this.sluice('approver', ['kill', before.metadata.name, '-n', AGENTS]);
    const killedAt = Date.now();
    // Polls that started a second after the kill switch was set (one in flight may still be answered).
    const oldPollsAfterKill = await this.#polls(before.metadata.name, killedAt + 1000, 5);

    // A restart recreates the pod, and the webhook injects it in the new mode.
    const restartAt = performance.now();
    this.kubectl('lead', ['-n', AGENTS, 'rollout', 'restart', 'deployment/reviewer']);
    const next = await eventually('the reviewer pod of the restart', async () => {
      const res = await this.node.cluster.request<{ items: PodView[] }>('admin', 'GET', `/api/v1/namespaces/${AGENTS}/pods?labelSelector=app%3Dreviewer`);
      return res.body.items?.find((p) => p.metadata.name !== before.metadata.name && !('deletionTimestamp' in p.metadata));
    });
    const restarted = await waitPod(this.node, AGENTS, next.metadata.name, 'ready', allContainersReady);
    const podStartAfterMs = ms(restartAt);
    const restartedInitCommand = restarted.spec.initContainers?.find((c) => c.name === 'sluice-init')?.command ?? [];
    const restartedRules = this.podIptables(restarted);
    const restartedPolls = await this.#polls(restarted.metadata.name, 0, 3);
    this.figures.modeSwitch = { from: this.mode, to, podStartBeforeMs, helmUpgradeMs, podStartAfterRestartMs: podStartAfterMs, timelines: { [this.mode]: podTimeline(before), [to]: podTimeline(restarted) }, oldPollsAfter, oldPollsAfterKill, oldKill: oldKill.code === 0 ? 'ok' : oldKill.stderr.trim(), restartedPolls };
    return { helmUpgradeMs, before, podStartBeforeMs, pollsBefore, oldAfter, oldPollsAfter, oldRules, oldKill, oldPollsAfterKill, cniAgentPods, conflistPlugins, restarted, podStartAfterMs, restartedInitCommand, restartedRules, restartedPolls };
  }

  /**
   * 7. On the running agent pod, as carol (who may patch her pods, add debug containers and
   * port-forward): flip the injection labels, add an ephemeral container as the sidecar's UID, and a
   * plain one polling GitHub. In a namespace enforcing "restricted" the debug containers comply with
   * it, so what refuses them is sluice, not Pod Security.
   */
  async runningPodAttempts(labels: string[]): Promise<RunningPodAttempts> {
    const { node, coderPod } = this;
    await node.cluster.grant('lead', AGENTS, 'pod-debugger', [{ apiGroups: [''], resources: ['pods', 'pods/ephemeralcontainers', 'pods/portforward'], verbs: ['get', 'list', 'patch', 'update', 'create'] }]);
    const labelFlips = labels.map((label) => {
      try {
        return { label, code: 0, out: this.kubectl('lead', ['-n', AGENTS, 'label', 'pod', coderPod, label, '--overwrite']) };
      } catch (err) {
        return { label, code: 1, out: (err as Error).message };
      }
    });
    const path = `/api/v1/namespaces/${AGENTS}/pods/${coderPod}/ephemeralcontainers`;
    const withEphemeral = async (c: Record<string, unknown>) => {
      const current = (await node.cluster.request<{ spec: Record<string, unknown> }>('lead', 'GET', `/api/v1/namespaces/${AGENTS}/pods/${coderPod}`)).body;
      const res = await node.cluster.request<{ message?: string }>('lead', 'PUT', path, { ...current, spec: { ...current.spec, ephemeralContainers: [c] } });
      return { status: res.status, message: res.body.message };
    };
    const restricted = this.podSecurity === 'restricted' ? { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } } : {};
    const debug = (name: string, securityContext: Record<string, unknown>) => ({
      name,
      image: this.toolsAgent.name,
      imagePullPolicy: 'Never',
      command: ['/bin/sh', '-c', 'for i in 1 2 3; do echo "STEP debug $(curl -sS -o /dev/null -w \'%{http_code}\' --max-time 5 https://raw.githubusercontent.com/acme/app/main/README.md 2>/dev/null)"; sleep 1; done; sleep 100000'],
      securityContext: { ...securityContext, ...restricted },
    });
    this.#show('lead', `kubectl debug ${coderPod} -n ${AGENTS} --image ${this.toolsAgent.name} --custom=as-uid-1337.json   # the sidecar's UID`);
    const asProxy = await withEphemeral(debug('dbg-uid1337', { runAsUser: 1337, runAsGroup: 1337, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } }));
    const githubSeen = this.github.requests.length;
    this.#show('lead', `kubectl debug ${coderPod} -n ${AGENTS} --image ${this.toolsAgent.name} --custom=as-uid-1000.json`);
    const plain = await withEphemeral(debug('dbg', { runAsUser: 1000, runAsGroup: 1000, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } }));
    const debugPolls =
      plain.status === 200
        ? await eventually(
            'three polls from the debug container',
            () => {
              const lines = node.kubectl('admin', ['-n', AGENTS, 'logs', coderPod, '-c', 'dbg']).split('\n').filter((l) => l.startsWith('STEP debug '));
              return Promise.resolve(lines.length >= 3 ? lines : undefined);
            },
            60_000,
          )
        : [];
    this.figures.labelFlip = labelFlips.map((f) => f.out.trim().split('\n').pop());
    this.figures.ephemeralAsProxy = asProxy.message;
    this.figures.debugContainerPolls = debugPolls;
    return { labelFlips, asProxy, plain, debugPolls, githubRequestsDuring: this.github.requests.length - githubSeen };
  }

  /**
   * 7b. `kubectl port-forward` to the sidecar's admin port as `user`. kubectl listens locally and
   * opens the stream only when a connection arrives (the scrape); over SPDY the port is chosen after
   * admission, so the webhook lets only approvers port-forward to an injected pod at all.
   */
  async portForwardToSidecar(user: string): Promise<PortForwarded> {
    const { node, coderPod } = this;
    if (user === 'creator') await node.cluster.grant('creator', AGENTS, 'port-forwarder', [{ apiGroups: [''], resources: ['pods', 'pods/portforward'], verbs: ['get', 'create'] }]);
    this.#show(user, `kubectl -n ${AGENTS} port-forward pod/${coderPod} 0:15090`);
    const child = spawn(join(ROOT, '.tools', 'bin', 'kubectl'), ['--kubeconfig', node.cluster.kubeconfigPath(user), '-n', AGENTS, 'port-forward', `pod/${coderPod}`, '0:15090'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    let gone = false;
    const exited = new Promise<void>((resolve) =>
      child.once('exit', () => {
        gone = true;
        resolve();
      }),
    );
    // Listening locally, or already gone (refused before it listened).
    const localPort = await eventually('kubectl port-forward listening or exited', () => Promise.resolve(/Forwarding from 127\.0\.0\.1:(\d+)/.exec(out)?.[1] ?? (gone ? '' : undefined)), 20_000);
    if (!localPort) return { scraped: 'failed: kubectl exited before listening', out };
    const scraped = await fetch(`http://127.0.0.1:${localPort}/metrics`, { signal: AbortSignal.timeout(10_000) }).then(
      (r) => `HTTP ${r.status}`,
      (err: Error) => `failed: ${err.message}`,
    );
    await eventually('kubectl to report the outcome', () => Promise.resolve(/error/i.test(out) ? true : undefined), 20_000).catch(() => undefined);
    child.kill('SIGTERM');
    await exited;
    (this.figures.portForward ??= {} as Record<string, unknown>);
    (this.figures.portForward as Record<string, unknown>)[this.node.cluster.user(user).name] = out.trim().split('\n').slice(-2);
    return { scraped, out };
  }
}
