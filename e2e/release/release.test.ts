// The release artefacts as a platform team meets them, outside the checkout: the chart packaged by
// `make release` (tools/release.ts packageChart: a .tgz with no symlinks, CRD and default policy
// inside) installs into a real kube-apiserver with Helm; the bundled CLI (cli/scripts/bundle.ts)
// runs from a temp dir on the machine's Node 20 with no project Node on PATH — version,
// completion, policy eval against the shipped bundle, verify of an NDJSON export — and talks to
// that API server: `check --pre` before the install, `check` after it (and with a registration
// removed), `version` in-cluster, and `--as` reaching the API server as Impersonate-User. The
// single executable runs with no Node on PATH at all.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { parse as parseYaml } from 'yaml';
import { bundleCli } from '../../cli/scripts/bundle.ts';
import type { CheckResult } from '../../cli/src/commands/check.ts';
import { agentInput } from '../../policies/cases/cases.ts';
import { HELM, REPO } from '../../charts/test/support/helm.ts';
import { eventually } from '../support/kube/admission.ts';
import { KubeCluster } from '../support/kube/cluster.ts';
import { VictoriaLogsServer } from '../support/logstore/victoria-logs.ts';
import { packageChart, symlinksUnder } from '../../tools/release.ts';

jest.setTimeout(180_000);

/** The machine's Node (20 here), not the pinned one: what a user has. */
const SYSTEM_NODE = '/usr/bin/node';
const NS = 'sluice-system';

let cluster: KubeCluster;
let chartTgz: string;
let cliDir: string;
let builtRevision: string;
let seaDir: string;
let home: string;
let helmEnv: NodeJS.ProcessEnv;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The bundled CLI as a user runs it: from its own folder, system Node, PATH without .tools. */
function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(SYSTEM_NODE, [join(cliDir, 'bin', 'kubectl-sluice.mjs'), ...args], { cwd: cliDir, env: { PATH: '/usr/bin:/bin', HOME: home, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const admin = () => ['--kubeconfig', cluster.kubeconfigPath('admin')];

function helm(args: string[]): Run {
  const res = spawnSync(HELM, [...args, '--kubeconfig', cluster.kubeconfigPath('admin')], { env: helmEnv, encoding: 'utf8' });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

async function check(args: string[]): Promise<{ code: number | null; results: CheckResult[]; text: string }> {
  const json = await cli(['check', ...args, ...admin(), '-o', 'json']);
  const text = await cli(['check', ...args, ...admin()]);
  const parsed = JSON.parse(json.stdout) as { ok: boolean; results: CheckResult[] };
  expect(parsed.ok).toBe(json.code === 0);
  expect(text.code).toBe(json.code);
  return { code: json.code, results: parsed.results, text: text.stdout };
}

const find = (results: CheckResult[], re: RegExp) => results.filter((r) => re.test(r.message));

beforeAll(async () => {
  if (!existsSync(SYSTEM_NODE)) throw new Error(`${SYSTEM_NODE} is missing: this test runs the CLI on the machine's own Node`);
  const work = mkdtempSync(join(tmpdir(), 'sluice-release-'));
  home = mkdtempSync(join(tmpdir(), 'sluice-home-'));
  helmEnv = { ...process.env, HELM_CACHE_HOME: join(home, 'cache'), HELM_CONFIG_HOME: join(home, 'config'), HELM_DATA_HOME: join(home, 'data') };
  chartTgz = packageChart(join(work, 'release'));
  // The npm package folder, moved away from the checkout (nothing may resolve back into it).
  const built = await bundleCli(join(work, 'build'), true);
  builtRevision = built.revision;
  seaDir = join(mkdtempSync(join(tmpdir(), 'kubectl-sluice-sea-')), 'bin');
  cpSync(join(work, 'build', 'sea'), seaDir, { recursive: true });
  cliDir = join(mkdtempSync(join(tmpdir(), 'kubectl-sluice-')), 'package');
  cpSync(built.npm, cliDir, { recursive: true });
  cluster = await KubeCluster.start({ namespaces: [{ name: 'agents', labels: { 'sluice.io/inject': 'true', 'pod-security.kubernetes.io/enforce': 'privileged' } }, { name: 'team-b' }] });
});

afterAll(async () => {
  await cluster?.stop();
});

describe('the packaged chart', () => {
  test('is a .tgz with no symlinks that carries the CRD, the registrations and the compiled default policy', () => {
    const list = spawnSync('tar', ['-tzvf', chartTgz], { encoding: 'utf8' }).stdout.split('\n');
    expect(list.filter((l) => l.startsWith('l'))).toEqual([]);
    const names = list.map((l) => l.split(/\s+/).pop());
    for (const f of ['sluice/Chart.yaml', 'sluice/files/crds/approvalrequests.sluice.io.yaml', 'sluice/files/policy-bundle/policy.wasm', 'sluice/files/policy-bundle/.manifest', 'sluice/files/webhook-manifests/mutating-webhook.yaml']) {
      expect(names).toContain(f);
    }
    expect(symlinksUnder(join(REPO, 'charts', 'sluice')).length).toBeGreaterThan(0); // the source chart does link: the staging copy is what fixes it
  });
});

describe('the bundled CLI outside the checkout, on Node 20', () => {
  test('runs on the system Node, and no project Node is on PATH', async () => {
    expect(spawnSync(SYSTEM_NODE, ['--version'], { encoding: 'utf8' }).stdout).toMatch(/^v2\d\./);
    expect(spawnSync('sh', ['-c', 'command -v node'], { env: { PATH: '/usr/bin:/bin' }, encoding: 'utf8' }).stdout.trim()).toBe('/usr/bin/node');
    expect(cliDir.startsWith(REPO)).toBe(false);
    expect((await cli(['--help'])).code).toBe(0);
  });

  test('version --client names the package version, the git revision and the bundle', async () => {
    const res = await cli(['version', '--client']);
    expect(res.code).toBe(0);
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
    // The revision baked in at bundle time: the commit the bundle was built from.
    expect(builtRevision).toMatch(/^[0-9a-f]{40}(-dirty)?$/);
    expect(res.stdout.startsWith(`Client Version: ${pkg.version} (revision ${builtRevision}, bundle, node v20.`)).toBe(true);
    const json = JSON.parse((await cli(['version', '--client', '-o', 'json'])).stdout) as { clientVersion: { version: string; build: string } };
    expect(json.clientVersion).toMatchObject({ version: pkg.version, build: 'bundle' });
  });

  test('completion bash completes verbs, nested verbs, flags and flag values in a real bash', async () => {
    const script = join(home, 'completion.bash');
    const res = await cli(['completion', 'bash']);
    expect(res.code).toBe(0);
    writeFileSync(script, res.stdout);
    const complete = (...words: string[]) => {
      const cmd = `source ${script}; COMP_WORDS=(kubectl-sluice ${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length}; _kubectl_sluice; printf '%s\\n' "\${COMPREPLY[@]}"`;
      return spawnSync('bash', ['-c', cmd], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean).sort();
    };
    expect(complete('ver')).toEqual(['verify', 'version']);
    expect(complete('policy', '')).toEqual(['eval', 'explain', 'test']);
    expect(complete('-n', 'agents', 'appro')).toEqual(['approvals', 'approve']);
    expect(complete('approvals', '--all')).toEqual(['--all-namespaces', '--all-states']);
    expect(complete('approvals', '-o', '')).toEqual(['json', 'text', 'wide', 'yaml']);
    expect(complete('check', '--')).toEqual(expect.arrayContaining(['--pre', '--loki', '--kubeconfig', '--as', '--as-group', '--request-timeout']));
  });

  test('policy eval uses the default policy shipped in the package', async () => {
    const input = join(home, 'input.json');
    writeFileSync(input, JSON.stringify(agentInput({ method: 'GET', host: 'paste.example', path: '/' })));
    const res = await cli(['policy', 'eval', '-i', input]);
    expect([res.code, res.stderr]).toEqual([0, '']);
    const manifest = JSON.parse(readFileSync(join(REPO, 'policies', 'build', 'bundle', '.manifest'), 'utf8')) as { revision: string };
    expect(JSON.parse(res.stdout)).toMatchObject({ action: 'deny', revision: manifest.revision, decision: { code: 'net.not_allowlisted' } });
  });

  test('policy explain names the rule and its source line from the rule index shipped beside the default policy', async () => {
    const manifest = JSON.parse(readFileSync(join(REPO, 'policies', 'build', 'bundle', '.manifest'), 'utf8')) as { revision: string };
    const event = {
      v: 1, id: 'e-1', session: 'release-session', seq: 3, prev_hash: '0'.repeat(64), hash: '1'.repeat(64), time: '2026-12-07T19:00:00.000Z', kind: 'request',
      pod: { namespace: 'agents', name: 'coder-0', service_account: 'coder' },
      request: { method: 'POST', scheme: 'https', host: 'api.github.com', port: 443, path: '/gists' },
      decision: { action: 'deny', code: 'git.paste_denied', reason: 'recorded', revision: manifest.revision },
    };
    const file = join(home, 'event.json');
    writeFileSync(file, JSON.stringify(event));
    const res = await cli(['policy', 'explain', file, '-o', 'json']);
    expect([res.code, res.stderr]).toEqual([0, '']);
    expect(JSON.parse(res.stdout)).toMatchObject({ reproduced: true, revision: 'match', index: { from: 'sources' }, rules: [{ code: 'git.paste_denied', file: 'policies/rego/git.rego' }] });
  });

  test('verify --file checks an NDJSON export: intact 0, edited 1, unknown session 2', async () => {
    const file = join(home, 'session.ndjson');
    copyFileSync(join(REPO, 'sidecar', 'test', 'audit', 'testdata', 'chain-golden.ndjson'), file);
    const ok = await cli(['verify', 'golden-session-1', '--file', file]);
    expect([ok.code, ok.stdout]).toEqual([0, expect.stringMatching(/^ok: session golden-session-1: \d+ events, .* chain intact/)]);
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    const edited = join(home, 'edited.ndjson');
    writeFileSync(edited, `${[lines[0], lines[1]!.replace('github.com', 'gitlab.com'), ...lines.slice(2)].join('\n')}\n`);
    expect((await cli(['verify', 'golden-session-1', '--file', edited])).code).toBe(1);
    const unknown = await cli(['verify', 'nobody', '--file', file]);
    expect([unknown.code, unknown.stderr]).toEqual([2, expect.stringContaining('no events found')]);
  });

  test('the single executable runs with no Node at all (empty PATH) and finds the policy shipped beside it', () => {
    const run = (args: string[]) => spawnSync(join(seaDir, 'kubectl-sluice'), args, { cwd: home, env: { PATH: '/nonexistent', HOME: home }, encoding: 'utf8' });
    const version = run(['version', '--client']);
    expect([version.status, version.stdout]).toEqual([0, expect.stringMatching(new RegExp(`^Client Version: \\d+\\.\\d+\\.\\d+ \\(revision ${builtRevision}, sea, node v24\\.`))]);
    const input = join(home, 'sea-input.json');
    writeFileSync(input, JSON.stringify(agentInput({ method: 'GET', host: 'paste.example', path: '/' })));
    const evaluated = run(['policy', 'eval', '-i', input]);
    expect([evaluated.status, evaluated.stderr]).toEqual([0, '']);
    expect(JSON.parse(evaluated.stdout)).toMatchObject({ action: 'deny', decision: { code: 'net.not_allowlisted' } });
    const verified = run(['verify', 'golden-session-1', '--file', join(REPO, 'sidecar', 'test', 'audit', 'testdata', 'chain-golden.ndjson')]);
    expect([verified.status, verified.stdout]).toEqual([0, expect.stringContaining('chain intact')]);
  });

  test('with no kubeconfig anywhere it says how to point at one (exit 2)', async () => {
    const res = await cli(['approvals']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^error: no kubeconfig found: set KUBECONFIG or pass --kubeconfig FILE .*in a pod the service account is used/);
  });
});

describe('against the API server', () => {
  test('check --pre before the install: every check passes and exits 0', async () => {
    const { code, results, text } = await check(['--pre']);
    expect(code).toBe(0);
    expect(find(results, /^can reach the API server/)[0]?.status).toBe('ok');
    expect(find(results, /^Kubernetes v1\.\d+/)[0]?.status).toBe('ok');
    expect(find(results, /^clock skew/)[0]?.status).toBe('ok');
    expect(find(results, /serves validatingadmissionpolicies/)[0]?.status).toBe('ok');
    expect(find(results, /^can create customresourcedefinitions/)[0]?.status).toBe('ok');
    expect(find(results, /^no sluice installed yet/)[0]?.status).toBe('ok');
    expect(find(results, /^namespace agents: Pod Security "privileged"/)[0]?.status).toBe('ok');
    expect(text).toMatch(/^kubernetes-api\n-+\n✔ can reach the API server/);
    expect(text).toMatch(/Status check results are ✔/);
  });

  test('check --pre as someone who may not install: ✖ with a hint, exit 1', async () => {
    const res = await cli(['check', '--pre', '--kubeconfig', cluster.kubeconfigPath('outsider')]);
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(/✖ cannot create customresourcedefinitions\n {4}hint: installing the chart needs cluster-admin rights/);
  });

  test('the packaged chart installs with helm', async () => {
    // certificates.mode helm (not the default, self): this harness has no kubelet, so no webhook pod
    // would set the caBundle, and check below judges the certificate the registrations trust.
    const res = helm(['install', 'sluice', chartTgz, '-n', NS, '--create-namespace', '--set', 'agents.namespaces={agents}', '--set', 'certificates.mode=helm']);
    expect([res.code, res.stderr.split('\n').filter((l) => /error/i.test(l))]).toEqual([0, []]);
    expect(res.stdout).toContain('STATUS: deployed');
    const crd = await eventually('the CRD to be established', async () => {
      const r = await cluster.request<{ status?: { conditions?: { type: string; status: string }[] } }>('admin', 'GET', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/approvalrequests.sluice.io');
      return r.body.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ? true : undefined;
    });
    expect(crd).toBe(true);
    // Established can precede the first served list by a moment (the server answers 429 meanwhile).
    const served = await eventually('ApprovalRequests to be served', async () => {
      const r = await cluster.request('admin', 'GET', '/apis/sluice.io/v1alpha1/namespaces/agents/approvalrequests');
      return r.status === 429 ? undefined : r.status;
    });
    expect(served).toBe(200);
    // The default policy is built into the sidecar image: the chart copies none into agent namespaces.
    expect((await cluster.request('admin', 'GET', '/api/v1/namespaces/agents/configmaps/sluice-policy')).status).toBe(404);
    // Nor settings: those are the cluster-scoped SluicePolicy named default.
    expect((await cluster.request('admin', 'GET', '/api/v1/namespaces/agents/configmaps/sluice-sidecar')).status).toBe(404);
    expect((await cluster.request('admin', 'GET', '/apis/sluice.io/v1alpha1/sluicepolicies/default')).status).toBe(200);
  });

  test('check after the install: CRD, registrations, policies, certificate and namespaces pass; the webhook has no ready replica here (no kubelet)', async () => {
    const { code, results, text } = await check([]);
    const failed = results.filter((r) => r.status === 'fail');
    // The harness has no kubelet: the Deployment exists but no pod runs. That, and only that, fails.
    expect(failed.map((r) => r.message)).toEqual([expect.stringMatching(/^Deployment sluice-system\/sluice-webhook: 0\/\d+ replicas ready/)]);
    expect(code).toBe(1);
    expect(find(results, /^CRD approvalrequests\.sluice\.io is established/)[0]?.status).toBe('ok');
    expect(find(results, /^MutatingWebhookConfiguration /).every((r) => r.status === 'ok')).toBe(true);
    expect(find(results, /^ValidatingWebhookConfiguration /).length).toBeGreaterThan(0);
    expect(find(results, /^ValidatingAdmissionPolicy .* is bound/).length).toBeGreaterThan(0);
    expect(find(results, /^serving certificate for sluice-webhook\.sluice-system\.svc valid until/)[0]?.status).toBe('ok');
    expect(find(results, /^Service sluice-system\/sluice-webhook exists/)[0]?.status).toBe('ok');
    expect(find(results, /^no injected pods/)[0]?.status).toBe('ok');
    expect(text).toMatch(/✖ Deployment sluice-system\/sluice-webhook: 0\/\d+ replicas ready.*\n {4}hint: kubectl -n sluice-system describe deployment sluice-webhook/);
    expect(text).toMatch(/Status check results are ✖ \(1 failed/);
    process.stdout.write(`\n--- kubectl sluice check (test API server) ---\n${text}`);
  });

  test('a removed admission policy binding and a baseline agent namespace are named as failures', async () => {
    const bindings = await cluster.request<{ items: { metadata: { name: string }; spec: { policyName: string } }[] }>('admin', 'GET', '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings?labelSelector=app.kubernetes.io%2Fpart-of%3Dsluice');
    const victim = bindings.body.items[0]!;
    expect((await cluster.request('admin', 'DELETE', `/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/${victim.metadata.name}`)).status).toBe(200);
    await cluster.request('admin', 'PATCH', '/api/v1/namespaces/agents', { metadata: { labels: { 'pod-security.kubernetes.io/enforce': 'baseline' } } }, 'application/merge-patch+json');
    const { code, results } = await check([]);
    expect(code).toBe(1);
    expect(find(results, new RegExp(`^ValidatingAdmissionPolicy ${victim.spec.policyName} has no binding`))[0]).toMatchObject({ status: 'fail', hint: expect.stringContaining('helm upgrade') });
    expect(find(results, /^namespace agents: Pod Security "baseline" refuses the sluice-init container/)[0]).toMatchObject({ status: 'fail', hint: expect.stringContaining('pod-security.kubernetes.io/enforce=privileged') });
    // helm upgrade restores what was removed (the hint is right).
    await cluster.request('admin', 'PATCH', '/api/v1/namespaces/agents', { metadata: { labels: { 'pod-security.kubernetes.io/enforce': 'privileged' } } }, 'application/merge-patch+json');
    expect(helm(['upgrade', 'sluice', chartTgz, '-n', NS, '--reuse-values']).code).toBe(0);
    expect(find((await check([])).results, /has no binding/)).toEqual([]);
  });

  test('the log store: a running VictoriaLogs is ✔, one that is not there is ✖ with a hint', async () => {
    const vlogs = await VictoriaLogsServer.start();
    try {
      const up = (await check(['--victorialogs', vlogs.url])).results.filter((r) => r.category === 'log-store');
      expect(up).toEqual([{ category: 'log-store', status: 'ok', message: `victorialogs at ${vlogs.url} is ready (from --victorialogs)` }]);
    } finally {
      await vlogs.stop();
    }
    const down = (await check(['--victorialogs', vlogs.url])).results.filter((r) => r.category === 'log-store');
    expect(down).toEqual([expect.objectContaining({ status: 'fail', message: expect.stringMatching(/^victorialogs at .* not reachable \(ECONNREFUSED, from --victorialogs\)$/), hint: expect.stringContaining('sidecars spool audit events') })]);
  });

  test('an API server that is not there: check exits 2 (could not run)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cli-kc-'));
    const kc = join(dir, 'config');
    writeFileSync(
      kc,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:9', 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'u', user: { token: 't' } }],
        contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'x',
      }),
    );
    const res = await cli(['check', '--kubeconfig', kc]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^error: cannot reach the API server at https:\/\/127\.0\.0\.1:9/);
  });

  test('version in-cluster: the API server, the webhook Deployment and its version', async () => {
    const res = await cli(['version', ...admin(), '-o', 'yaml']);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^clientVersion:\n {2}version: /);
    const json = JSON.parse((await cli(['version', ...admin(), '-o', 'json'])).stdout) as { serverVersion: { gitVersion: string }; webhooks: { namespace: string; name: string; version: string; image: string }[]; sidecars: unknown[] };
    expect(json.serverVersion.gitVersion).toMatch(/^v1\.\d+\.\d+/);
    const chart = parseYaml(readFileSync(join(REPO, 'charts', 'sluice', 'Chart.yaml'), 'utf8')) as { appVersion: string };
    expect(json.webhooks).toEqual([expect.objectContaining({ namespace: NS, name: 'sluice-webhook', version: chart.appVersion, image: expect.stringContaining('sluice-webhook') })]);
    expect(json.sidecars).toEqual([]);
  });

  test('global flags before the verb, and -o json|yaml on approvals', async () => {
    const before = await cli([...admin(), '-n', 'agents', 'approvals', '-o', 'json']);
    expect([before.code, before.stderr]).toEqual([0, '']);
    expect([before.code, JSON.parse(before.stdout)]).toEqual([0, { apiVersion: 'v1', kind: 'List', items: [] }]);
    const after = await cli(['approvals', '-o', 'yaml', ...admin(), '--namespace=agents']);
    expect([after.code, after.stdout]).toEqual([0, 'apiVersion: v1\nkind: List\nitems: []\n']);
    const bad = await cli(['approvals', '-o', 'xml', ...admin()]);
    expect([bad.code, bad.stderr]).toEqual([2, 'error: --output xml: expected text, wide, json, yaml\n']);
    const timeout = await cli(['approvals', ...admin(), '--request-timeout', 'soon']);
    expect([timeout.code, timeout.stderr]).toEqual([2, expect.stringContaining('--request-timeout soon: expected a duration')]);
  });

  test('--as reaches the API server as Impersonate-User (403 naming that user), --as-group as Impersonate-Group', async () => {
    const res = await cli(['approvals', '-n', 'agents', ...admin(), '--as', 'nobody@example.com']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^error: forbidden: .*User "nobody@example\.com" cannot list resource "approvalrequests"/);
    // The chart binds sluice-approvers in agent namespaces: the group alone grants the list.
    const asApprover = await cli(['approvals', '-n', 'agents', ...admin(), '--as', 'carol@example.com', '--as-group', 'sluice-approvers', '--as-group', 'system:authenticated', '-o', 'json']);
    expect([asApprover.code, asApprover.stderr]).toEqual([0, '']);
    // Someone without impersonate rights cannot borrow an identity.
    const outsider = await cli(['approvals', '-n', 'agents', '--kubeconfig', cluster.kubeconfigPath('outsider'), '--as', 'admin@example.com']);
    expect(outsider.code).toBe(1);
    // (the wording depends on the API server's impersonation mode: "cannot impersonate resource
    // users", or with constrained impersonation "cannot impersonate-on:user-info:list …")
    expect(outsider.stderr).toMatch(/User "mallory@example\.com" cannot impersonate/);
    const groupOnly = await cli(['approvals', ...admin(), '--as-group', 'x']);
    expect([groupOnly.code, groupOnly.stderr]).toEqual([2, expect.stringContaining('--as-group needs --as')]);
  });
});
