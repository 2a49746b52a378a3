// The world every shipped PromQL expression is proven against: a real kube-apiserver with the
// real webhook registered (e2e/approvals' ApprovalEnv), two agent pods whose sidecars run in this
// process (startTestSidecar), a real log store (VictoriaLogs), and a scripted session of agent traffic that drives
// every metric the dashboards and alerts read: allowed, denied, held-then-approved and
// held-until-expired requests, a Kubernetes read with a just-in-time token, an AWS call whose
// provider is not configured, an unreachable upstream, a malformed request, a non-HTTP connection,
// a DNS query, secrets the sidecar masks, a refused policy bundle, audit events shipped, dropped (store down
// at first) and refused (a fail-closed spool with no store), admission reviews patched, denied and
// malformed, and a serving certificate that fails to reload.
import { createSocket } from 'node:dgram';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode as encodeDns } from 'dns-packet';
import type { Registry } from 'prom-client';
import { Agent, ProxyAgent, request } from 'undici';
import { parse as parseYaml } from 'yaml';
import { runCli } from '../../cli/src/main.ts';
import { ApprovalEnv, NAMESPACE, SERVICE_ACCOUNT } from '../approvals/approval-env.ts';
import type { AgentPod } from '../approvals/approval-env.ts';
import { freePort } from '../support/kube/cluster.ts';
import { VictoriaLogsServer } from '../support/logstore/victoria-logs.ts';
import { startTestSidecar, defaultBundlePath } from '../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../testkit/sidecar/test-sidecar.ts';
import { createTestCa, startHttpUpstream, startHttpsUpstream } from '../../testkit/sidecar/upstreams.ts';
import type { TestUpstream } from '../../testkit/sidecar/upstreams.ts';

/** A secret the registry "leaks" in a response; the masking engine must redact it. */
const LEAKED = 'aws_access_key_id = AKIAZ3MHQ7R5WXKN4P2L\nDATABASE_URL=postgres://app:Xk93jdP0qLz7Vb2m@db.internal:5432/app\n';

export interface ScrapedPod {
  name: string;
  sidecar: TestSidecar;
}

/** What the session did, for the test's own assertions. */
export interface SessionLog {
  statuses: Record<string, number>;
  approved: string;
  expired: string;
}

export class ScriptedSession {
  env!: ApprovalEnv;
  pods: ScrapedPod[] = [];
  vlogs!: VictoriaLogsServer;
  log: SessionLog = { statuses: {}, approved: '', expired: '' };
  #upstream!: TestUpstream;
  #chat!: TestUpstream;
  #bundle = '';
  #dispatcher: ProxyAgent | undefined;
  #clusterCaFile = '';

  static async start(): Promise<ScriptedSession> {
    const s = new ScriptedSession();
    await s.#start();
    return s;
  }

  async #start(): Promise<void> {
    this.env = await ApprovalEnv.start();
    const cluster = this.env.cluster;
    // The agent's service account may mint its own tokens (the kubernetes credential provider)
    // and list pods (the agent's Kubernetes read).
    await cluster.grant(`serviceaccount:${SERVICE_ACCOUNT}`, NAMESPACE, 'coder-self-token', [
      { apiGroups: [''], resources: ['serviceaccounts/token'], verbs: ['create'], resourceNames: [SERVICE_ACCOUNT] },
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] },
    ]);
    const dir = mkdtempSync(join(tmpdir(), 'sluice-session-'));
    this.#clusterCaFile = join(dir, 'cluster-ca.pem');
    writeFileSync(this.#clusterCaFile, cluster.ca.certPem);
    this.#bundle = join(dir, 'bundle.tar.gz');
    copyFileSync(defaultBundlePath, this.#bundle);

    const ca = await createTestCa();
    this.#upstream = await startHttpsUpstream(ca, ['registry.npmjs.org', 's3.amazonaws.com'], (req, res) => {
      const body = req.url?.startsWith('/leaky') ? LEAKED : JSON.stringify({ name: 'left-pad', url: req.url });
      res.writeHead(200, { 'content-type': req.url?.startsWith('/leaky') ? 'text/plain' : 'application/json' }).end(body);
    });
    const closed = await freePort();
    // The approvers' chat: the first notification fails, the retry lands.
    let notifications = 0;
    this.#chat = await startHttpUpstream((_req, res) => {
      res.writeHead(++notifications === 1 ? 503 : 200).end();
    });
    // The store is prepared but not started: coder-0's first events find no store (retries, a full
    // spool, drops), then it comes up and the spool drains.
    this.vlogs = await VictoriaLogsServer.prepare();
    const apiServer = new URL(cluster.server);

    let firstKubeconfig: string | undefined;
    for (const name of ['coder-0', 'coder-1']) {
      const agent: AgentPod = await this.env.createAgentPod(name);
      const tokenFile = join(dir, `${name}.token`);
      const kubeconfig = parseYaml(readFileSync(agent.kubeconfig, 'utf8')) as { users: { user: { token: string } }[] };
      writeFileSync(tokenFile, kubeconfig.users[0]!.user.token, { mode: 0o600 });
      // coder-1's sidecar is misconfigured with coder-0's pod-bound token: it may list and watch,
      // but the approvals webhook refuses the ApprovalRequests it creates for coder-1.
      firstKubeconfig ??= agent.kubeconfig;
      const approvalsKubeconfig = firstKubeconfig;
      const spoolDir = mkdtempSync(join(tmpdir(), `sluice-spool-${name}-`));
      const spool = { maxBytes: 64 * 1024, segmentBytes: 16 * 1024, fsync: 'none' as const };
      // coder-0 drops events when its spool is full and ships to the store; coder-1 fails closed and
      // its store never answers, so its spool fills and writes are refused.
      const audit =
        name === 'coder-0'
          ? { spoolDir, spool: { ...spool, onFull: 'drop' as const }, loki: { url: this.vlogs.pushUrl, retryInitialMs: 50, retryMaxMs: 300, lingerMs: 5 } }
          : { spoolDir, spool: { ...spool, onFull: 'fail-closed' as const }, loki: { url: `http://127.0.0.1:${closed}`, retryInitialMs: 50, retryMaxMs: 300 } };
      const sidecar = await startTestSidecar({
        resolve: {
          'registry.npmjs.org': this.#upstream.dial,
          's3.amazonaws.com': this.#upstream.dial,
          'registry.yarnpkg.com': `127.0.0.1:${closed}`,
          'kubernetes.default.svc': `${apiServer.hostname}:${apiServer.port}`,
        },
        extraRootsFiles: [ca.caFile, this.#clusterCaFile],
        bundle: this.#bundle,
        dns: true,
        config: {
          pod: { namespace: NAMESPACE, name, uid: agent.uid, serviceAccount: SERVICE_ACCOUNT },
          podInfoDir: agent.podInfoDir,
          approvals: {
            kubeconfig: approvalsKubeconfig,
            maxWaitMs: 4000,
            notify: { url: `http://${this.#chat.dial}/hooks/approvals`, format: 'generic', initialBackoffMs: 20, maxBackoffMs: 100 },
          },
          credentials: { kubernetes: { apiServer: cluster.server, tokenFile, caFile: this.#clusterCaFile, serviceAccount: SERVICE_ACCOUNT } },
          audit,
        },
      });
      this.pods.push({ name, sidecar });
    }
  }

  get #agent(): ProxyAgent {
    this.#dispatcher ??= new ProxyAgent({ uri: this.pods[0]!.sidecar.proxyUrl, requestTls: { ca: readFileSync(this.pods[0]!.sidecar.trust.caFile, 'utf8') } });
    return this.#dispatcher;
  }

  async #get(label: string, url: string, via = this.#agent, headers: Record<string, string> = {}): Promise<number> {
    let status: number;
    try {
      const res = await request(url, { dispatcher: via, headersTimeout: 30_000, headers });
      await res.body.text();
      status = res.statusCode;
    } catch (err) {
      // A destination refused at CONNECT time never gets a request: undici reports the tunnel's status.
      const m = /Proxy response \((\d+)\)/.exec((err as Error).message);
      if (!m) throw new Error(`session step "${label}" (${url}): ${(err as Error).message}`, { cause: err });
      status = Number(m[1]);
    }
    this.log.statuses[label] = status;
    return status;
  }

  /** Raw bytes to a sidecar port; resolves with whatever comes back before the close. */
  #raw(port: number, bytes: string): Promise<string> {
    return new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
      let got = '';
      socket.on('data', (c: Buffer) => (got += c.toString('latin1')));
      socket.on('close', () => resolve(got));
      socket.on('error', () => resolve(got));
      socket.setTimeout(5_000, () => socket.destroy());
    });
  }

  #dnsQuery(port: number, name: string): Promise<void> {
    const socket = createSocket('udp4');
    const packet = encodeDns({ type: 'query', id: 7, flags: 256, questions: [{ type: 'A', name }] });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.close();
        reject(new Error('no DNS answer from the sidecar'));
      }, 5_000);
      socket.once('message', () => {
        clearTimeout(timer);
        socket.close();
        resolve();
      });
      socket.send(packet, port, '127.0.0.1');
    });
  }

  /** Waits until the sidecar's own registry shows `expr` (a quick check before Prometheus looks). */
  async #registryShows(registry: Registry, name: string, text: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const metric = registry.getSingleMetric(name);
      if (metric && JSON.stringify((await metric.get()).values).includes(text)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${name} never showed ${text}`);
  }

  /** Runs until the next ApprovalRequest of `pod` appears; returns its name. */
  async #nextPending(pod: string, seen: Set<string>): Promise<string> {
    const api = this.env.api('approver');
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const list = await api.list(NAMESPACE);
      const found = list.items.find((a) => !seen.has(a.metadata.name as string) && a.spec.pod.name === pod);
      if (found) {
        seen.add(found.metadata.name as string);
        return found.metadata.name as string;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`no ApprovalRequest for ${pod}`);
  }

  async run(): Promise<void> {
    const [coder0, coder1] = [this.pods[0]!.sidecar, this.pods[1]!.sidecar];
    // A probing agent: a flood of denied requests fills coder-0's spool while the store is still down.
    for (let i = 0; i < 150; i++) await this.#get('denied', `http://example.org/probe/${i}?pad=${'x'.repeat(200)}`);
    await this.vlogs.up();
    await this.#get('allowed', 'https://registry.npmjs.org/left-pad');
    await this.#get('masked', 'https://registry.npmjs.org/leaky/config.txt');
    await this.#get('kubernetes read', `https://kubernetes.default.svc/api/v1/namespaces/${NAMESPACE}/pods`);
    await this.#get('kubernetes read again', `https://kubernetes.default.svc/api/v1/namespaces/${NAMESPACE}/pods`);
    await this.#get('aws without a role', 'https://s3.amazonaws.com/acme-artifacts/build.tgz', this.#agent, {
      authorization: `AWS4-HMAC-SHA256 Credential=SLUICEPLACEHOLDER/${new Date().toISOString().slice(0, 10).replace(/-/g, '')}/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=${'0'.repeat(64)}`,
      'x-amz-date': new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, ''),
      'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
    });
    await this.#get('upstream down', 'https://registry.yarnpkg.com/left-pad');

    // A credential-looking path is held: the first is approved by bob, the second expires.
    const seen = new Set<string>();
    const held = this.#get('held then approved', 'https://registry.npmjs.org/acme/.npmrc');
    this.log.approved = await this.#nextPending('coder-0', seen);
    // `kubectl sluice approve` in this process (a child node would start slower than the hold lasts).
    let stderr = '';
    const approved = await runCli(['approve', this.log.approved, '-n', NAMESPACE, '--scope', 'session', '--kubeconfig', this.env.cluster.kubeconfigPath('approver')], {
      out: () => undefined,
      err: (t) => (stderr += t),
    });
    if (approved !== 0) throw new Error(`kubectl sluice approve failed: ${stderr}`);
    await held;
    await this.#get('held, granted for the session', 'https://registry.npmjs.org/acme/.npmrc');
    const expiring = this.#get('held until expired', 'https://registry.npmjs.org/acme/.env');
    this.log.expired = await this.#nextPending('coder-0', seen);
    await expiring;

    // Bytes that are not a request: a parser error on the proxy port, a refusal on the transparent one.
    await this.#raw(coder0.addresses.proxy!.port, 'GARBAGE / HTTP/9.9\r\n\r\n');
    await this.#raw(coder0.addresses.transparent!.port, '\x16\x03\x01\x00\x05hello-not-tls-and-not-http');
    await this.#dnsQuery(coder0.addresses.dns[0]!.udp.port, 'registry.npmjs.org');

    const agent1 = new ProxyAgent({ uri: coder1.proxyUrl, requestTls: { ca: readFileSync(coder1.trust.caFile, 'utf8') } });
    await this.#get('coder-1 allowed', 'https://registry.npmjs.org/left-pad', agent1);
    // Its ApprovalRequest is refused (another pod's token): the hold fails closed, an API error is counted.
    await this.#get('coder-1 held without an API', 'https://registry.npmjs.org/acme/.npmrc', agent1);
    // coder-1 has no reachable store and fails closed: its spool fills, then writes are refused
    // and its requests are answered 503 by the audit, not forwarded.
    for (let i = 0; i < 150; i++) await this.#get('coder-1 denied', `http://example.org/probe/${i}?pad=${'x'.repeat(200)}`, agent1);
    await this.#get('coder-1 after the spool filled', 'https://registry.npmjs.org/left-pad', agent1);
    await agent1.close();

    // A policy bundle that does not load: refused, the last good one stays; then the good one again.
    const good = readFileSync(this.#bundle);
    writeFileSync(this.#bundle, 'not a bundle');
    await this.#registryShows(coder0.registry, 'sluice_policy_loads_total', '"result":"failure"');
    writeFileSync(this.#bundle, good);

    await this.#admission();
  }

  /** Admission traffic the API server sends the real webhook, plus what it must refuse itself. */
  async #admission(): Promise<void> {
    const { cluster, webhook } = this.env;
    const privileged = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'privileged-agent', namespace: NAMESPACE, labels: { 'sluice.io/inject': 'true' } },
      spec: { serviceAccountName: SERVICE_ACCOUNT, containers: [{ name: 'agent', image: 'ghcr.io/example/agent:1', securityContext: { privileged: true } }] },
    };
    const refused = await cluster.create('creator', privileged);
    this.log.statuses['privileged pod'] = refused.status;
    const malformed = await request(`${webhook.baseUrl}/mutate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      // JSON, but no AdmissionReview request in it: answered 400 and counted as a malformed review.
      body: '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}',
      dispatcher: new Agent({ connect: { ca: cluster.ca.certPem } }),
    });
    await malformed.body.dump();
    this.log.statuses['malformed review'] = malformed.statusCode;
    // A serving certificate the webhook cannot load: it keeps the old one and counts a failure.
    const crt = join(webhook.tlsDir, 'tls.crt');
    const good = readFileSync(crt);
    writeFileSync(crt, '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n');
    const deadline = Date.now() + 15_000;
    for (;;) {
      const res = await request(`http://127.0.0.1:${webhook.metricsPort}/metrics`);
      const text = await res.body.text();
      if (/sluice_webhook_cert_reloads_total\{result="failure"\} [1-9]/.test(text)) break;
      if (Date.now() > deadline) throw new Error('the webhook never reported a failed certificate reload');
      await new Promise((r) => setTimeout(r, 100));
    }
    writeFileSync(crt, good);
  }

  async stop(): Promise<void> {
    await this.#dispatcher?.close();
    for (const p of this.pods) await p.sidecar.stop();
    await this.#upstream?.close();
    await this.#chat?.close();
    await this.vlogs?.stop();
    await this.env?.stop();
  }
}
