// The whole story on a real node, step by step as a platform team and a developer would live it:
// `helm install` the packaged chart (the webhook a real pod of the image `make image` builds,
// managing its own certificate: webhook.certificates.mode self), label a namespace, apply an agent
// Deployment (git, curl, python3, AWS CLI: agent-image.ts) and watch the kubelet start it with the
// interception init container and the native sidecar. The scripted agent clones from git's own
// http-backend, reads a file whose AWS keys arrive masked, writes to S3 in moto with keys the
// sidecar got by STS web identity from the kubelet-projected token, and pushes: held until an
// approver who did not create it approves (its creator, an approver too, is refused), then it
// lands; `kubectl sluice kill` cuts it off; `replay` and `verify` read the session back from
// VictoriaLogs. Then attacks only a running pod shows (label flips, ephemeral containers,
// port-forward to the sidecar) and a sidecar restart that resumes the same hash chain.
//
// No kube-proxy and no cluster DNS here: the API server reaches the webhook's Service through
// `--enable-aggregator-routing=true` (Services resolved to endpoint IPs, for admission webhooks
// too), pods reach the API server on the bridge address (node.ts).
//
// Needs root and the node tools, like running-pod.test.ts. `make test-cluster` runs it.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { ensureImages } from '../../charts/images/build-images.ts';
import { HELM } from '../../charts/test/support/helm.ts';
import { packageChart } from '../../tools/release.ts';
import { APPROVAL_API_VERSION, APPROVAL_PLURAL } from '../../api/src/index.ts';
import type { ApprovalRequest } from '../../api/src/index.ts';
import { createBareRepo, gitBackendHandler } from '../support/git/git-backend.ts';
import { eventually } from '../support/kube/admission.ts';
import { VictoriaLogsServer } from '../support/logstore/victoria-logs.ts';
import { createTestCa, startHttpsUpstream } from '../support/sidecar/upstreams.ts';
import { startStsWorld } from '../support/sts/sts-world.ts';
import type { StsWorld } from '../support/sts/sts-world.ts';
import type { TestCa, TestUpstream } from '../support/sidecar/upstreams.ts';
import { ensureToolsAgentImage } from './agent-image.ts';
import { KubeNode } from './node.ts';
import { allContainersReady, containerStatus, waitPod } from './sluice-on-node.ts';
import type { PodView } from './sluice-on-node.ts';
import { ensureTestImages } from './test-images.ts';
import type { TestImage, TestImages } from './test-images.ts';

jest.setTimeout(240_000);

const ROOT = join(import.meta.dirname, '..', '..');
const SYSTEM = 'sluice-system';
const AGENTS = 'agents';
const PLAIN = 'plain';
const WEBHOOK_REPO = 'sluice.local/sluice-webhook';
const SIDECAR_REPO = 'sluice.local/sluice-sidecar';
const LOGS = join(tmpdir(), 'sluice-e2e-whole-story-logs');
const CLI = join(ROOT, 'cli', 'bin', 'kubectl-sluice.js');
// Well-formed but fake AWS keys in a file the agent reads: it must see them masked.
const LEAKED_KEY_ID = 'AKIAQ4T7ZK2MWX3RPL6N';
const LEAKED_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8Lk3Tq9V';

let node: KubeNode;
let images: TestImages;
let toolsAgent: TestImage;
let upstreamCa: TestCa;
let github: TestUpstream;
let repoPath = '';
let aws: StsWorld;
let logStore: VictoriaLogsServer;
const BUCKET = 'acme-agent-data';
let coderPod = '';
let sessionId = '';
let eventsBeforeRestart = 0;
let version = '';
let helmEnv: NodeJS.ProcessEnv;
const figures: Record<string, unknown> = {};
const storyStarted = performance.now();

/** helm as the cluster admin; throws with helm's own words on failure. */
function helm(args: string[], timeoutMs = 240_000): string {
  try {
    return execFileSync(HELM, [...args, '--kubeconfig', node.cluster.kubeconfigPath('admin')], { env: helmEnv, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`helm ${args.join(' ')} failed: ${e.stderr || e.stdout || e.message}`, { cause: err });
  }
}

function kubectl(handle: string, args: string[], input?: string): string {
  return node.kubectl(handle, args, input);
}

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `kubectl sluice ARGS` as one of the cluster's users (the CLI from this tree). */
function sluice(user: string, args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args, '--kubeconfig', node.cluster.kubeconfigPath(user)], { encoding: 'utf8', env: { ...process.env, KUBECONFIG: '' }, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * The scripted agent: what a coding agent does in its first minute, each step announced on a
 * `STEP <name> <result>` line of its log. It runs on its own once the kubelet starts it; the push
 * blocks until someone decides, then it keeps polling GitHub until it is cut off.
 */
const AGENT_SCRIPT = [
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

/** The agent's `STEP name …` lines so far. */
function agentSteps(): { name: string; rest: string }[] {
  return kubectl('admin', ['-n', AGENTS, 'logs', coderPod, '-c', 'agent'])
    .split('\n')
    .filter((l) => l.startsWith('STEP '))
    .map((l) => {
      const [, name, ...rest] = l.split(' ');
      return { name: name!, rest: rest.join(' ') };
    });
}

/** The first `STEP name` line (bounded wait while the agent gets there). */
async function agentStep(name: string, timeoutMs = 60_000): Promise<string> {
  return eventually(`the agent's step ${name}`, () => Promise.resolve(agentSteps().find((s) => s.name === name)?.rest), timeoutMs);
}

async function approvalRequests(): Promise<ApprovalRequest[]> {
  const res = await node.cluster.request<{ items: ApprovalRequest[] }>('admin', 'GET', `/apis/${APPROVAL_API_VERSION}/namespaces/${AGENTS}/${APPROVAL_PLURAL}`);
  return res.body.items ?? [];
}

function gitLog(): string {
  return execFileSync('git', ['--git-dir', repoPath, 'log', '--format=%s', 'main'], { encoding: 'utf8' });
}

/** The Deployment's one pod (bounded wait for the ReplicaSet to create it). */
async function deploymentPod(namespace: string, app: string): Promise<PodView> {
  return eventually(`a pod of deployment ${namespace}/${app}`, async () => {
    const res = await node.cluster.request<{ items: PodView[] }>('admin', 'GET', `/api/v1/namespaces/${namespace}/pods?labelSelector=app%3D${app}`);
    return res.body.items?.find((p) => !('deletionTimestamp' in p.metadata)) ?? undefined;
  });
}

function deployment(name: string, namespace: string, image: string, command: string): string {
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
          securityContext: { runAsUser: 1000, runAsGroup: 1000 },
          containers: [{ name: 'agent', image, imagePullPolicy: 'Never', command: ['/bin/sh', '-c', command], env }],
        },
      },
    },
  });
}

function sluiceImage(component: 'sidecar' | 'webhook', built: Awaited<ReturnType<typeof ensureImages>>['images']): TestImage {
  const img = built.images.find((i) => i.component === component);
  if (!img) throw new Error(`charts/images built no ${component} image`);
  return { name: `${component === 'sidecar' ? SIDECAR_REPO : WEBHOOK_REPO}:${built.version}`, archive: join(ROOT, img.archive) };
}

beforeAll(async () => {
  const t0 = performance.now();
  images = await ensureTestImages();
  const tools = await ensureToolsAgentImage();
  toolsAgent = tools;
  figures.toolsAgentImageRebuilt = tools.built;
  const { images: built, built: rebuilt } = await ensureImages();
  version = built.version;
  figures.imagesMs = Math.round(performance.now() - t0);
  figures.sluiceImagesRebuilt = rebuilt;
  const home = mkdtempSync(join(tmpdir(), 'sluice-story-home-'));
  helmEnv = { PATH: process.env.PATH, HOME: home, HELM_CACHE_HOME: join(home, 'cache'), HELM_CONFIG_HOME: join(home, 'config'), HELM_DATA_HOME: join(home, 'data') };
  node = await KubeNode.start({
    images: [images.pause, images.agent, toolsAgent, sluiceImage('sidecar', built), sluiceImage('webhook', built)],
    sandboxImage: images.pause.name,
    // No kube-proxy: the API server calls the webhook Service at its endpoints' pod IPs.
    apiserverArgs: ['--enable-aggregator-routing=true'],
    // The agent's owner is an approver too (a team lead): only the self-approval rule stops her.
    users: { lead: { name: 'carol@example.com', groups: ['developers', 'sluice-approvers'] } },
  });
  figures.bringUp = Object.fromEntries(Object.entries(node.timings as unknown as Record<string, number>).map(([k, v]) => [k, Math.round(v)]));
  // "GitHub": git's own http-backend and a raw file server, on the bridge address (pods reach only
  // that), with certificates from a CA only the sidecar trusts. The agent reaches it only through sluice.
  upstreamCa = await createTestCa();
  repoPath = createBareRepo('acme', 'app', mkdtempSync(join(tmpdir(), 'sluice-story-git-'))).path;
  const backend = gitBackendHandler(join(repoPath, '..', '..'));
  github = await startHttpsUpstream(
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
  aws = await startStsWorld(node.cluster, { namespace: AGENTS, serviceAccount: 'default', bucket: BUCKET, host: node.address });
  // The audit log store, where the sidecars ship their hash-chained events and the CLI reads them.
  logStore = await VictoriaLogsServer.start({ host: node.address });
}, 900_000);

afterAll(async () => {
  await github?.close();
  await aws?.close();
  await logStore?.stop();
  const left = await node?.stop({ keepLogsIn: LOGS });
  figures.hostLeftovers = left;
  figures.wholeStoryMs = Math.round(performance.now() - storyStarted);
  console.log(`e2e/cluster whole story figures (component logs in ${LOGS}): ${JSON.stringify(figures, null, 2)}`);
  expect(left ?? []).toEqual([]);
}, 120_000);

describe('the whole story on a real node', () => {
  test('1. helm install of the packaged chart: the webhook runs as pods and manages its own certificate (certificates.mode self)', async () => {
    const work = mkdtempSync(join(tmpdir(), 'sluice-story-chart-'));
    const chart = packageChart(work);
    kubectl('admin', ['create', 'namespace', AGENTS]);
    // The upstream CA, mounted into the sidecar only (sidecar.mounts): the agent never trusts it.
    kubectl('admin', ['-n', AGENTS, 'create', 'configmap', 'upstream-ca', `--from-file=ca.pem=${upstreamCa.caFile}`, `--from-file=aws-ca.pem=${aws.ca.caFile}`]);
    const values = join(work, 'values.json');
    writeFileSync(
      values,
      JSON.stringify({
        webhook: { image: { repository: WEBHOOK_REPO, tag: version, pullPolicy: 'Never' } },
        sidecar: {
          image: { repository: SIDECAR_REPO, tag: version, pullPolicy: 'Never' },
          mounts: [{ name: 'upstream-ca', configMap: 'upstream-ca' }],
          config: {
            audit: { store: { type: 'victorialogs', url: logStore.url } },
            upstream: {
              extraRootsFiles: ['/etc/sluice/mounts/upstream-ca/ca.pem', '/etc/sluice/mounts/upstream-ca/aws-ca.pem'],
              // split DNS: these names are served on the bridge (there is no DNS or internet here)
              resolve: { 'github.com:443': github.dial, 'raw.githubusercontent.com:443': github.dial, ...aws.resolve },
            },
            credentials: { aws: { roles: [{ namespace: AGENTS, serviceAccount: 'default', roleArn: aws.roleArn }] } },
          },
        },
        certificates: { mode: 'self', resyncSeconds: 5 },
        agents: { namespaces: [AGENTS] },
      }),
    );
    const started = performance.now();
    helm(['install', 'sluice', chart, '--namespace', SYSTEM, '--create-namespace', '--values', values, '--wait', '--timeout', '4m']);
    figures.helmInstallMs = Math.round(performance.now() - started);
    // Two webhook replicas on the node, both Ready (ready means: every registration trusts it).
    const pods = await node.cluster.request<{ items: PodView[] }>('admin', 'GET', `/api/v1/namespaces/${SYSTEM}/pods?labelSelector=app.kubernetes.io%2Fcomponent%3Dwebhook`);
    expect(pods.body.items).toHaveLength(2);
    for (const p of pods.body.items) {
      expect(p.status.phase).toBe('Running');
      expect(containerStatus(p, 'sluice-webhook').ready).toBe(true);
    }
    // The caBundle the chart rendered empty was set by the webhook itself, from its own Secret.
    const mwc = JSON.parse(kubectl('admin', ['get', 'mutatingwebhookconfigurations', '-o', 'json'])) as { items: { metadata: { name: string }; webhooks: { clientConfig: { caBundle?: string; service?: unknown } }[] }[] };
    const ours = mwc.items.filter((c) => c.metadata.name.startsWith('sluice'));
    expect(ours.length).toBeGreaterThan(0);
    for (const c of ours) for (const w of c.webhooks) {
      expect(w.clientConfig.service).toBeDefined();
      expect(w.clientConfig.caBundle ?? '').not.toBe('');
    }
  });

  test('2. label the namespace, apply an agent Deployment: the kubelet runs the init container, then the native sidecar, then the agent', async () => {
    kubectl('admin', ['label', 'namespace', AGENTS, 'sluice.io/inject=true']);
    await node.cluster.grant('lead', AGENTS, 'deployer', [{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['create', 'get', 'list', 'patch', 'delete'] }]);
    const started = performance.now();
    kubectl('lead', ['apply', '-f', '-'], deployment('coder', AGENTS, toolsAgent.name, AGENT_SCRIPT));
    const first = await deploymentPod(AGENTS, 'coder');
    coderPod = first.metadata.name;
    const pod = await waitPod(node, AGENTS, first.metadata.name, 'ready', allContainersReady);
    figures.podStartInjectedMs = Math.round(performance.now() - started);
    expect(pod.spec.initContainers!.map((c) => [c.name, c.restartPolicy ?? null])).toEqual([
      ['sluice-init', null],
      ['sluice-proxy', 'Always'],
    ]);
    expect(pod.spec.initContainers![1]!.image).toBe(`${SIDECAR_REPO}:${version}`);
    const init = containerStatus(pod, 'sluice-init');
    const sidecar = containerStatus(pod, 'sluice-proxy');
    const agent = containerStatus(pod, 'agent');
    expect(init.state.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
    expect(sidecar).toMatchObject({ ready: true, started: true, restartCount: 0 });
    expect(Date.parse(sidecar.state.running!.startedAt)).toBeGreaterThanOrEqual(Date.parse(init.state.terminated!.finishedAt));
    expect(Date.parse(agent.state.running!.startedAt)).toBeGreaterThanOrEqual(Date.parse(sidecar.state.running!.startedAt));
    figures.sidecarShare = {
      initRanS: (Date.parse(init.state.terminated!.finishedAt) - Date.parse(init.state.terminated!.startedAt)) / 1000,
      sidecarStartToAgentStartS: (Date.parse(agent.state.running!.startedAt) - Date.parse(sidecar.state.running!.startedAt)) / 1000,
    };
    // The same Deployment in a namespace nobody labelled: no sidecar, the baseline start latency.
    kubectl('admin', ['create', 'namespace', PLAIN]);
    await eventually(`the default ServiceAccount in ${PLAIN}`, async () => ((await node.cluster.request('admin', 'GET', `/api/v1/namespaces/${PLAIN}/serviceaccounts/default`)).status === 200 ? true : undefined));
    const plainStarted = performance.now();
    kubectl('admin', ['apply', '-f', '-'], deployment('coder', PLAIN, toolsAgent.name, 'exec sleep 100000'));
    const plain = await deploymentPod(PLAIN, 'coder');
    const plainPod = await waitPod(node, PLAIN, plain.metadata.name, 'ready', allContainersReady);
    figures.podStartPlainMs = Math.round(performance.now() - plainStarted);
    expect(plainPod.spec.initContainers ?? []).toEqual([]);
  });

  test('3. the agent clones through sluice, and the leaked keys in a file it reads arrive masked', async () => {
    expect(await agentStep('clone')).toBe('ok');
    const settings = await agentStep('settings');
    figures.maskedSettings = settings;
    expect(settings).toContain('[REDACTED:aws-access-key-id]');
    expect(settings).toContain('[REDACTED:aws-secret-access-key]');
    expect(settings).not.toContain(LEAKED_KEY_ID);
    expect(settings).not.toContain(LEAKED_SECRET);
    // It went through the sidecar: the upstream saw the pod's sidecar, with the CA only it trusts.
    expect(github.requests.some((r) => r.url.startsWith('/acme/app.git/info/refs'))).toBe(true);
  });

  test('3b. S3 through moto with credentials the agent never sees: STS web identity with the kubelet-projected token', async () => {
    const whoami = await agentStep('whoami');
    expect(whoami).toBe(`arn:aws:sts::123456789012:assumed-role/agent-role/sluice-${AGENTS}-${coderPod}`);
    expect(await agentStep('s3put')).toMatch(/ok$/);
    expect(await agentStep('s3ls')).toContain('from-agent.txt');
    const stored = await aws.moto.s3('GET', `/${BUCKET}/from-agent.txt`, aws.admin);
    expect(stored.body.toString()).toBe('hello-from-agent\n');
    // The agent holds the webhook's placeholder and no service-account token; STS issued the real
    // keys to the sidecar, for the pod's own identity, and they never appear in the agent's output.
    expect(await agentStep('keys')).toMatch(/^SLUICEPLACEHOLDER .*No such file or directory/);
    expect(aws.hop.issued.size).toBeGreaterThanOrEqual(1);
    const log = kubectl('admin', ['-n', AGENTS, 'logs', coderPod, '-c', 'agent']);
    for (const c of aws.hop.issued.values()) {
      expect(c.subject).toBe(`system:serviceaccount:${AGENTS}:default`);
      expect(log).not.toContain(c.accessKeyId);
      expect(log).not.toContain(c.secretAccessKey);
    }
    figures.awsHop = aws.hop.records.map((r) => `${r.method} ${r.host} ${r.check}`).slice(0, 8);
  });

  test('4. the push is held; the creator cannot approve it; an approver can, and it lands', async () => {
    const held = await eventually('a pending ApprovalRequest for the push', async () => (await approvalRequests()).find((a) => (a.status?.state ?? 'Pending') === 'Pending'), 60_000);
    const name = held.metadata.name!;
    expect(agentSteps().some((s) => s.name === 'push')).toBe(false);
    expect(gitLog()).not.toContain('fix from the agent');
    const listed = await sluice('approver', ['approvals', '-n', AGENTS]);
    expect(listed.stdout).toContain(name);
    // carol created the Deployment (its pod carries her as creator) and is an approver: refused all the same.
    const carol = await sluice('lead', ['approve', name, '-n', AGENTS]);
    figures.creatorApproves = carol.stderr.trim();
    expect(carol.code).not.toBe(0);
    expect(carol.stderr).toContain('carol@example.com created pod');
    expect(carol.stderr).toContain('cannot approve its requests');
    const started = performance.now();
    const bob = await sluice('approver', ['approve', name, '-n', AGENTS]);
    expect(bob.code).toBe(0);
    expect(await agentStep('push')).toBe('ok');
    figures.approveToPushLandedMs = Math.round(performance.now() - started);
    expect(gitLog()).toContain('fix from the agent');
    const decided = (await approvalRequests()).find((a) => a.metadata.name === name)!;
    expect(decided.status?.state).toBe('Approved');
    expect(decided.status?.decidedBy).toBe(node.cluster.user('approver').name);
  });

  test('5. kubectl sluice kill cuts the agent off', async () => {
    await eventually('the agent polling GitHub successfully', () => Promise.resolve(agentSteps().some((s) => s.name === 'poll' && s.rest === '200') ? true : undefined));
    const kill = await sluice('approver', ['kill', coderPod, '-n', AGENTS]);
    expect(kill.code).toBe(0);
    const before = agentSteps().length;
    // Every poll after the kill switch took effect fails (bounded: a few polls).
    const after = await eventually('six polls after the kill', () => {
      const polls = agentSteps().slice(before).filter((s) => s.name === 'poll');
      return Promise.resolve(polls.length >= 6 ? polls : undefined);
    }, 30_000);
    figures.pollsAfterKill = after.map((p) => p.rest);
    expect(after.slice(-3).every((p) => p.rest !== '200')).toBe(true);
  });

  test('6. kubectl sluice replay and verify read the session back from the log store', async () => {
    const store = ['--victorialogs', logStore.url];
    // The sidecar ships in small batches: wait (bounded) until the store has the kill switch's denials too.
    let last: CliResult | undefined;
    const replay = await eventually(
      'the session in the log store up to the kill',
      async () => {
        last = await sluice('approver', ['replay', '--pod', coderPod, '-n', AGENTS, ...store]);
        return last.code === 0 && /git-receive-pack/.test(last.stdout) && /refusal +code=pod\.killed /.test(last.stdout) ? last.stdout : undefined;
      },
      60_000,
    ).catch((err: Error) => {
      const sidecarLog = kubectl('admin', ['-n', AGENTS, 'logs', coderPod, '-c', 'sluice-proxy']).split('\n').filter((l) => /audit|store|warn|error/i.test(l)).slice(-15).join('\n');
      throw new Error(`${err.message}\nlast replay (exit ${last?.code}):\n${last?.stdout}\n${last?.stderr}\nsidecar log (audit lines):\n${sidecarLog}`, { cause: err });
    });
    figures.replay = replay.split('\n').slice(0, 40);
    expect(replay).toMatch(/session_start pod /);
    expect(replay).toMatch(/git-upload-pack/);
    expect(replay).toMatch(/GET https:\/\/raw\.githubusercontent\.com\/acme\/app\/main\/deploy\/settings\.json → allow /);
    expect(replay).toMatch(/masked 2 \(aws-access-key-id×1, aws-secret-access-key×1\)/);
    expect(replay).toMatch(/POST https:\/\/github\.com\/acme\/app\.git\/git-receive-pack \[git push acme\/app refs\/heads\/main\] → hold git\.push_requires_approval/);
    expect(replay).toMatch(/approval +decidedBy=bob@example\.com .*outcome=approved/);
    expect(replay).toMatch(/credential +audience=sts\.amazonaws\.com .*provider=aws-sts result=issued role=arn:aws:iam::123456789012:role\/agent-role/);
    expect(replay).toMatch(/kill +annotation=sluice\.io\/kill/);
    expect(replay).toMatch(/refusal +code=pod\.killed /);
    expect(replay).not.toContain(LEAKED_KEY_ID);
    for (const c of aws.hop.issued.values()) expect(replay).not.toContain(c.secretAccessKey);
    const stored = await sluice('approver', ['replay', '--pod', coderPod, '-n', AGENTS, ...store, '-o', 'json']);
    const { session } = JSON.parse(stored.stdout.split('\n')[0]!) as { session: string };
    sessionId = session;
    const verify = await sluice('approver', ['verify', session, ...store]);
    figures.verify = verify.stdout.trim();
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/^ok: session [0-9a-f-]+: \d+ events, seq 0\.\.\d+, chain intact/m);
    eventsBeforeRestart = Number(/: (\d+) events/.exec(verify.stdout)![1]);
  });

  test('7. on the running pod: the label flip is refused, an ephemeral container as the sidecar\'s UID is refused, a plain debug container is cut off like the agent; port-forward to the sidecar is refused (developer: by the API server; approver: inside the pod)', async () => {
    // carol may do what a developer does to her pods: patch them, add debug containers, port-forward.
    await node.cluster.grant('lead', AGENTS, 'pod-debugger', [{ apiGroups: [''], resources: ['pods', 'pods/ephemeralcontainers', 'pods/portforward'], verbs: ['get', 'list', 'patch', 'update', 'create'] }]);
    const attempt = (args: string[]) => {
      try {
        return { code: 0, out: kubectl('lead', args) };
      } catch (err) {
        return { code: 1, out: (err as Error).message };
      }
    };
    // 1. Take the running pod out of sluice's view by its labels: refused, whichever label.
    const flips = ['sluice.io/injected=false', 'sluice.io/inject=false'].map((l) => attempt(['-n', AGENTS, 'label', 'pod', coderPod, l, '--overwrite']));
    figures.labelFlip = flips.map((f) => f.out.trim().split('\n').pop());
    for (const f of flips) {
      expect(f.code).toBe(1);
      expect(f.out).toMatch(/sluice guard\.injection_marker/);
    }
    // 2. A debug container as the sidecar's UID (its traffic would skip interception): refused.
    const path = `/api/v1/namespaces/${AGENTS}/pods/${coderPod}/ephemeralcontainers`;
    const withEphemeral = async (c: Record<string, unknown>) => {
      const current = (await node.cluster.request<{ spec: Record<string, unknown> }>('lead', 'GET', `/api/v1/namespaces/${AGENTS}/pods/${coderPod}`)).body;
      return node.cluster.request<{ message?: string }>('lead', 'PUT', path, { ...current, spec: { ...current.spec, ephemeralContainers: [c] } });
    };
    const debug = (name: string, securityContext: Record<string, unknown>) => ({
      name,
      image: toolsAgent.name,
      imagePullPolicy: 'Never',
      command: ['/bin/sh', '-c', 'for i in 1 2 3; do echo "STEP debug $(curl -sS -o /dev/null -w \'%{http_code}\' --max-time 5 https://raw.githubusercontent.com/acme/app/main/README.md 2>/dev/null)"; sleep 1; done; sleep 100000'],
      securityContext,
    });
    const asProxy = await withEphemeral(debug('dbg-uid1337', { runAsUser: 1337, runAsGroup: 1337, allowPrivilegeEscalation: false }));
    figures.ephemeralAsProxy = asProxy.body.message;
    expect(asProxy.status).toBe(403);
    expect(asProxy.body.message).toContain('guard.proxy_uid');
    // 3. A plain debug container is admitted, runs in the pod, and is cut off by the kill switch like the agent.
    const githubSeen = github.requests.length;
    const plain = await withEphemeral(debug('dbg', { runAsUser: 1000, runAsGroup: 1000, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } }));
    expect(plain.status).toBe(200);
    const polls = await eventually(
      'three polls from the debug container',
      () => {
        const lines = kubectl('admin', ['-n', AGENTS, 'logs', coderPod, '-c', 'dbg']).split('\n').filter((l) => l.startsWith('STEP debug '));
        return Promise.resolve(lines.length >= 3 ? lines : undefined);
      },
      60_000,
    );
    figures.debugContainerPolls = polls;
    for (const l of polls) expect(l).toBe('STEP debug 000');
    expect(github.requests.length).toBe(githubSeen);
    // 4. Port-forward to the sidecar's admin port. kubectl listens locally and opens the stream
    // only when a connection arrives; over SPDY the port is chosen after admission, so the webhook
    // lets only approvers port-forward to an injected pod at all.
    const portForward = async (user: string) => {
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
      return { scraped, out };
    };
    await node.cluster.grant('creator', AGENTS, 'port-forwarder', [{ apiGroups: [''], resources: ['pods', 'pods/portforward'], verbs: ['get', 'create'] }]);
    const developer = await portForward('creator');
    const approver = await portForward('lead');
    figures.portForward = { developer: developer.out.trim().split('\n').slice(-2), approver: approver.out.trim().split('\n').slice(-2) };
    // A developer who is no approver: refused by the API server (the webhook).
    expect(developer.scraped).toMatch(/^failed/);
    expect(developer.out).toMatch(/guard\.port_forward/);
    // An approver is admitted, and the kubelet's connection to the sidecar's admin port inside the
    // pod is refused by the pod's own interception rules: only the sidecar's UID reaches it.
    expect(approver.scraped).toMatch(/^failed/);
    expect(approver.out).toMatch(/connect: connection refused/);
  });

  test('8. the sidecar killed and restarted by the kubelet resumes the same session: the chain goes on, nothing lost, the kill switch still holds', async () => {
    const before = await waitPod(node, AGENTS, coderPod, 'running', allContainersReady);
    const sidecarId = containerStatus(before, 'sluice-proxy').containerID!.replace(/^containerd:\/\//, '');
    const killedAt = performance.now();
    process.kill(node.containerPid(sidecarId), 'SIGKILL');
    const after = await waitPod(node, AGENTS, coderPod, 'the sidecar restarted and Ready', (p) => containerStatus(p, 'sluice-proxy').restartCount >= 1 && containerStatus(p, 'sluice-proxy').ready, 120_000);
    figures.sidecarRestartToReadyMs = Math.round(performance.now() - killedAt);
    expect(containerStatus(after, 'agent').restartCount).toBe(0);
    const store = ['--victorialogs', logStore.url];
    const replay = await eventually(
      'the resumed session_start in the log store',
      async () => {
        const r = await sluice('approver', ['replay', sessionId, ...store]);
        return r.code === 0 && /session_start .*resumed=true/.test(r.stdout) ? r.stdout : undefined;
      },
      60_000,
    );
    // One session, two starts: the first fresh, the second resumed from the spool the restart kept.
    expect(replay.match(/session_start /g)).toHaveLength(2);
    expect(replay).toMatch(/#0 +session_start .*resumed=false/);
    const verify = await sluice('approver', ['verify', sessionId, ...store]);
    figures.verifyAfterRestart = verify.stdout.trim();
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/chain intact/);
    expect(Number(/: (\d+) events/.exec(verify.stdout)![1])).toBeGreaterThan(eventsBeforeRestart);
    // The kill switch is the pod's annotation, not the sidecar's memory: still cut off after the restart.
    const restartedAt = Date.parse(containerStatus(after, 'sluice-proxy').state.running!.startedAt);
    const polls = await eventually(
      'polls after the restart',
      () => {
        const lines = kubectl('admin', ['-n', AGENTS, 'logs', coderPod, '-c', 'agent', '--timestamps']).split('\n').filter((l) => / STEP poll /.test(l) && Date.parse(l.split(' ')[0]!) > restartedAt + 1000);
        return Promise.resolve(lines.length >= 3 ? lines : undefined);
      },
      30_000,
    );
    for (const l of polls) expect(l).toMatch(/STEP poll 000$/);
  });
});
