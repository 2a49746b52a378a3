// The approvals test bed: a real kube-apiserver + etcd with the ApprovalRequest CRD applied, the
// real webhook process registered for injection, guard, approvals and workload creator stamps
// (exactly the shipped manifests, pointed at loopback) and reading the API with its own
// ServiceAccount token under the shipped reader ClusterRole, RBAC for the sidecar's service
// account, the creator (alice), the approver group (bob) and an outsider (mallory), and agent pods
// created by alice through the API. There is no kubelet, so the harness plays its two parts the sidecar depends on: a pod-bound
// service-account token (TokenRequest, as the projected volume would hold) and the downward-API
// files with the pod's live labels and annotations (kill switch, creator stamp).
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApprovalApi } from '../../lib/src/approvals/approval-api.ts';
import { KubeRest, loadKubeConfig } from '../../lib/src/approvals/kube-rest.ts';
import type { WatchHandle } from '../../lib/src/approvals/kube-rest.ts';
import { eventually, pointWebhooksAt, readManifests } from '../support/kube/admission.ts';
import { KubeCluster } from '../support/kube/cluster.ts';
import { serviceAccountToken, tokenKubeconfig } from '../support/kube/tokens.ts';
import { startWebhookProcess } from '../webhook/webhook-process.ts';
import type { WebhookProcess } from '../webhook/webhook-process.ts';

export const NAMESPACE = 'agents';
export const SERVICE_ACCOUNT = 'coder';
const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'cli', 'bin', 'kubectl-sluice.js');
const CRD = join(ROOT, 'api', 'crds', 'approvalrequests.sluice.io.yaml');
const MANIFESTS = join(ROOT, 'webhook', 'manifests');
export const WEBHOOK_NAMESPACE = 'sluice-system';
export const WEBHOOK_SERVICE_ACCOUNT = 'sluice-webhook';
/** Agent containers as a hardened platform writes them (non-root, no privilege escalation). */
export const AGENT_CONTAINER = {
  name: 'agent',
  image: 'ghcr.io/example/agent:1',
  securityContext: { runAsUser: 1000, runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
};

const webhookConfig = {
  injectorVersion: 'e2e',
  sidecar: { image: 'ghcr.io/sluice-dev/sluice:e2e' },
  approvals: { approverGroups: ['sluice-approvers'], maxTTL: '8h' },
};

const APPROVAL_READ = { apiGroups: ['sluice.io'], resources: ['approvalrequests'], verbs: ['get', 'list', 'watch'] };
const APPROVAL_DECIDE = { apiGroups: ['sluice.io'], resources: ['approvalrequests/status'], verbs: ['get', 'patch', 'update'] };

export interface AgentPod {
  name: string;
  uid: string;
  /** kubeconfig with the pod-bound service-account token (what the sidecar gets in a pod) */
  kubeconfig: string;
  /** downward API files, kept in sync with the pod by the harness */
  podInfoDir: string;
  /** performance.now() of the last annotation change written to podInfoDir */
  lastPodInfoWrite(): number;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** performance.now() when the process was spawned and when it exited */
  startedAt: number;
  endedAt: number;
}

/** Go-quoted `key="value"` lines, as the kubelet writes downward-API label/annotation files. */
function downwardApiText(map: Record<string, string> | undefined): string {
  return Object.entries(map ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join('\n');
}

export { serviceAccountToken, tokenKubeconfig } from '../support/kube/tokens.ts';

/**
 * The webhook's own identity, as the chart gives it: a ServiceAccount in sluice's namespace bound to
 * the shipped reader ClusterRole (webhook/manifests/reader-clusterrole.yaml); returns a kubeconfig
 * with its token, once RBAC lets it read pods.
 */
async function webhookIdentity(cluster: KubeCluster): Promise<string> {
  const must = async (path: string, body: unknown) => {
    const res = await cluster.request('admin', 'POST', path, body);
    if (res.status !== 201) throw new Error(`POST ${path} refused: ${JSON.stringify(res.body)}`);
  };
  await must(`/api/v1/namespaces/${WEBHOOK_NAMESPACE}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: WEBHOOK_SERVICE_ACCOUNT } });
  const [role] = readManifests(join(MANIFESTS, 'reader-clusterrole.yaml'));
  await must('/apis/rbac.authorization.k8s.io/v1/clusterroles', role);
  await must('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: role!.metadata.name },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role!.metadata.name },
    subjects: [{ kind: 'ServiceAccount', name: WEBHOOK_SERVICE_ACCOUNT, namespace: WEBHOOK_NAMESPACE }],
  });
  const token = await serviceAccountToken(cluster, WEBHOOK_NAMESPACE, WEBHOOK_SERVICE_ACCOUNT);
  const path = join(cluster.dir, 'kubeconfig-sluice-webhook.yaml');
  writeFileSync(path, tokenKubeconfig(cluster, token, WEBHOOK_NAMESPACE), { mode: 0o600 });
  const rest = new KubeRest(loadKubeConfig({ kubeconfig: path }));
  await eventually('the webhook reader ClusterRole to apply', async () => {
    try {
      await rest.call('GET', `/api/v1/namespaces/${NAMESPACE}/pods/none`);
    } catch (err) {
      return (err as { code?: string }).code === 'SLUICE_APPROVAL_API_NOT_FOUND' ? true : undefined;
    }
    return true;
  });
  return path;
}

export class ApprovalEnv {
  readonly cluster: KubeCluster;
  readonly webhook: WebhookProcess;
  readonly #mirrors: WatchHandle[] = [];
  #stopped = false;

  private constructor(cluster: KubeCluster, webhook: WebhookProcess) {
    this.cluster = cluster;
    this.webhook = webhook;
  }

  static async start(options: { users?: Record<string, { name: string; groups?: string[] }> } = {}): Promise<ApprovalEnv> {
    const cluster = await KubeCluster.start({
      namespaces: [{ name: NAMESPACE, labels: { 'sluice.io/inject': 'true' } }, { name: WEBHOOK_NAMESPACE }],
      ...(options.users ? { users: options.users } : {}),
    });
    try {
      for (const crd of readManifests(CRD)) {
        const res = await cluster.create('admin', crd);
        if (res.status !== 201) throw new Error(`CRD refused: ${JSON.stringify(res.body)}`);
      }
      await eventually('the ApprovalRequest CRD to be served', async () => {
        const res = await cluster.request('admin', 'GET', `/apis/sluice.io/v1alpha1/namespaces/${NAMESPACE}/approvalrequests`);
        return res.status === 200 ? true : undefined;
      });
      await cluster.request('admin', 'POST', `/api/v1/namespaces/${NAMESPACE}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: SERVICE_ACCOUNT } });
      const podRules = { apiGroups: [''], resources: ['pods'], verbs: ['create', 'get', 'list', 'patch', 'update'] };
      await cluster.grant('creator', NAMESPACE, 'pod-author', [podRules, APPROVAL_READ, APPROVAL_DECIDE]);
      await cluster.grant('group:sluice-approvers', NAMESPACE, 'sluice-approver', [APPROVAL_READ, APPROVAL_DECIDE, { apiGroups: [''], resources: ['pods'], verbs: ['get', 'patch'] }]);
      // Approvers usually read requests cluster-wide (`kubectl sluice approvals -A`).
      await cluster.request('admin', 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name: 'sluice-approval-reader' },
        rules: [APPROVAL_READ],
      });
      await cluster.request('admin', 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: 'sluice-approval-reader' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'sluice-approval-reader' },
        subjects: [{ kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: 'sluice-approvers' }],
      });
      // Mallory has the RBAC to try; the sluice webhook is what must stop him.
      await cluster.grant('outsider', NAMESPACE, 'would-be-approver', [APPROVAL_READ, APPROVAL_DECIDE]);
      // The sidecar's Role, as the chart ships it: its own namespace's requests only.
      await cluster.grant(`serviceaccount:${SERVICE_ACCOUNT}`, NAMESPACE, 'sluice-sidecar', [
        { apiGroups: ['sluice.io'], resources: ['approvalrequests'], verbs: ['create', 'get', 'list', 'watch', 'delete'] },
        { apiGroups: ['sluice.io'], resources: ['approvalrequests/status'], verbs: ['get', 'patch'] },
      ]);
      const webhookKubeconfig = await webhookIdentity(cluster);
      const webhook = await startWebhookProcess(cluster.ca, { ...webhookConfig, kube: { kubeconfig: webhookKubeconfig } });
      const env = new ApprovalEnv(cluster, webhook);
      // The approvals ValidatingAdmissionPolicy is applied on demand (applyApprovalsPolicy): it would
      // answer before the webhook, and each layer is tested on its own.
      const configs = ['mutating-webhook.yaml', 'validating-webhook.yaml', 'approvals-webhook.yaml', 'workloads-webhook.yaml'].flatMap((f) => readManifests(join(MANIFESTS, f)));
      for (const c of configs) {
        const res = await cluster.create('admin', pointWebhooksAt(c, webhook.baseUrl, cluster.ca.certPem));
        if (res.status !== 201) throw new Error(`webhook registration refused: ${JSON.stringify(res.body)}`);
      }
      return env;
    } catch (err) {
      await cluster.stop();
      throw err;
    }
  }

  /** Alice creates an injected agent pod; the harness mints its bound token and mirrors its pod info. */
  async createAgentPod(name: string): Promise<AgentPod> {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: NAMESPACE, labels: { 'sluice.io/inject': 'true', app: 'coder' } },
      spec: { serviceAccountName: SERVICE_ACCOUNT, containers: [AGENT_CONTAINER] },
    };
    // The registrations are applied asynchronously; retry until the pod comes back injected.
    const created = await eventually(`pod ${name} to be created injected`, async () => {
      const res = await this.cluster.create<{ metadata: { uid: string; annotations?: Record<string, string> }; spec: { initContainers?: { name: string }[] } }>('creator', pod);
      if (res.status === 409) throw new Error(`pod ${name} already exists`);
      if (res.status !== 201) return undefined;
      if (!res.body.spec.initContainers?.some((c) => c.name === 'sluice-proxy')) throw new Error(`pod ${name} was not injected`);
      return res.body;
    });
    return this.adoptPod(name, created);
  }

  /** The harness's kubelet part for a pod that exists: its bound token and mirrored pod info. */
  async adoptPod(name: string, created: { metadata: { uid: string; labels?: Record<string, string>; annotations?: Record<string, string> } }): Promise<AgentPod> {
    const uid = created.metadata.uid;
    const dir = mkdtempSync(join(tmpdir(), `sluice-${name}-`));
    const kubeconfig = join(dir, 'kubeconfig.yaml');
    writeFileSync(kubeconfig, tokenKubeconfig(this.cluster, await serviceAccountToken(this.cluster, NAMESPACE, SERVICE_ACCOUNT, { name, uid }), NAMESPACE), { mode: 0o600 });
    const podInfoDir = join(dir, 'podinfo');
    mkdirSync(podInfoDir);
    let lastWrite = 0;
    let lastAnnotations = '';
    const write = (meta: { labels?: Record<string, string>; annotations?: Record<string, string> }) => {
      const annotations = downwardApiText(meta.annotations);
      for (const [file, text] of [['labels', downwardApiText(meta.labels)], ['annotations', annotations]] as const) {
        writeFileSync(join(podInfoDir, `.${file}.tmp`), text);
        renameSync(join(podInfoDir, `.${file}.tmp`), join(podInfoDir, file));
      }
      if (annotations !== lastAnnotations) {
        lastAnnotations = annotations;
        lastWrite = performance.now();
      }
    };
    write(created.metadata);
    const admin = new KubeRest(loadKubeConfig({ kubeconfig: this.cluster.kubeconfigPath('admin') }));
    const mirror = await admin.watch<{ metadata: { labels?: Record<string, string>; annotations?: Record<string, string> } }>(
      `/api/v1/namespaces/${NAMESPACE}/pods`,
      { fieldSelector: `metadata.name=${name}`, timeoutSeconds: '3600' },
      (e) => {
        if (e.type === 'ADDED' || e.type === 'MODIFIED') write(e.object.metadata);
      },
    );
    mirror.done.catch(() => undefined);
    this.#mirrors.push(mirror);
    return { name, uid, kubeconfig, podInfoDir, lastPodInfoWrite: () => lastWrite };
  }

  /** Applies the shipped ApprovalRequest ValidatingAdmissionPolicy and its binding (as the chart does). */
  async applyApprovalsPolicy(): Promise<void> {
    for (const obj of readManifests(join(MANIFESTS, 'approvals-admission-policy.yaml'))) {
      const res = await this.cluster.create('admin', obj);
      if (res.status !== 201) throw new Error(`${obj.kind} refused: ${JSON.stringify(res.body)}`);
    }
  }

  /** ApprovalRequests as a user sees them. */
  api(user: string): ApprovalApi {
    return new ApprovalApi(new KubeRest(loadKubeConfig({ kubeconfig: this.cluster.kubeconfigPath(user) })));
  }

  /** Runs `kubectl sluice ARGS` as a test user (their own kubeconfig), asynchronously. */
  cli(user: string, args: string[]): Promise<CliResult> {
    const startedAt = performance.now();
    return new Promise((resolve) => {
      execFile(process.execPath, [CLI, ...args, '--kubeconfig', this.cluster.kubeconfigPath(user)], { encoding: 'utf8', env: { ...process.env, KUBECONFIG: '' } }, (err, stdout, stderr) => {
        const code = err ? ((err as { code?: number }).code ?? 1) : 0;
        resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr, startedAt, endedAt: performance.now() });
      });
    });
  }

  /** Starts a long-running `kubectl sluice ARGS` (e.g. --watch); stop() sends SIGINT and waits. */
  cliBackground(user: string, args: string[]): { output(): string; stop(): Promise<CliResult> } {
    const startedAt = performance.now();
    const child = spawn(process.execPath, [CLI, ...args, '--kubeconfig', this.cluster.kubeconfigPath(user)], { env: { ...process.env, KUBECONFIG: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<CliResult>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr, startedAt, endedAt: performance.now() })));
    return {
      output: () => stdout,
      stop: () => {
        child.kill('SIGINT');
        return exited;
      },
    };
  }

  /** Stops the API server and etcd (a test of the API server going away may do it early). */
  async stopCluster(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const m of this.#mirrors) m.abort();
    await this.cluster.stop();
  }

  async stop(): Promise<void> {
    await this.webhook.stop();
    await this.stopCluster();
  }
}
