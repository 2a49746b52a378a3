// The kubectl conventions of the CLI without a cluster: global flags before or after the verb and
// their mistakes (exit 2), where the identity comes from and what is said when there is none,
// --request-timeout, Impersonate-Group as repeated header lines, -o json|yaml|wide, completion
// scripts (run in a real bash), and the pure parts of `version` and `check` (Kubernetes version
// floor = the chart's kubeVersion, Pod Security levels, the serving certificate, clock skew).
// Against a real API server and from the bundle: e2e/release.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { parse as parseYaml } from 'yaml';
import { sampleApproval } from '../../testkit/approvals/sample-approval.ts';
import { TestCA } from '../../e2e/support/kube/pki.ts';
import { approvalsTable } from '../src/commands/approvals.ts';
import { checkText, clockSkew, CRDS, metricRevision, MIN_KUBE_VERSION, podSecurityCheck, servingCertCheck, versionAtLeast } from '../src/commands/check.ts';
import { commandSpecs, completionScript } from '../src/commands/completion.ts';
import { injectedVersion, sidecarVersions, versionText } from '../src/commands/version.ts';
import type { PodLike } from '../src/commands/version.ts';
import { NO_KUBECONFIG, parseRequestTimeout, pickKubeSource, withGroupHeaders } from '../src/kube.ts';
import type { Environment } from '../src/kube.ts';
import { runCli } from '../src/main.ts';
import { buildProgram } from '../src/program.ts';
import { formatData, parseOutput } from '../src/output.ts';

const REPO = join(import.meta.dirname, '..', '..');

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(args, { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

describe('global kubeconfig flags', () => {
  test.each([
    [['--kubeconfig', '/nonexistent/config', 'approvals']],
    [['approvals', '--kubeconfig', '/nonexistent/config']],
    [['-n', 'agents', '--kubeconfig=/nonexistent/config', 'revoke', 'pod-1']],
    [['kill', 'pod-1', '--kubeconfig', '/nonexistent/config', '--context', 'x']],
  ])('%j: accepted before or after the verb and handed to it', async (args) => {
    const res = await cli(args);
    expect([res.code, res.err]).toEqual([2, 'error: cannot load kubeconfig: --kubeconfig /nonexistent/config does not exist\n']);
  });

  test('flag mistakes exit 2 naming the flag', async () => {
    expect(await cli(['--request-timeout', 'soon', 'approvals'])).toMatchObject({ code: 2, err: expect.stringContaining('--request-timeout soon: expected a duration such as 30s or 2m') });
    expect(await cli(['approvals', '--as-group', 'g'])).toMatchObject({ code: 2, err: expect.stringContaining('--as-group needs --as') });
    expect(await cli(['approvals', '-o', 'xml'])).toMatchObject({ code: 2, err: 'error: --output xml: expected text, wide, json, yaml\n' });
    expect(await cli(['approvals', '-w', '-o', 'json'])).toMatchObject({ code: 2, err: expect.stringContaining('--watch prints table rows') });
    expect(await cli(['sessions', '-o', 'xml', '--loki', 'http://127.0.0.1:9'])).toMatchObject({ code: 2, err: 'error: --output xml: expected text, wide, json or yaml\n' });
  });

  test('--request-timeout as kubectl reads it', () => {
    expect(['30s', '2m', '1h', '5', '250ms', '1.5s'].map(parseRequestTimeout)).toEqual([30_000, 120_000, 3_600_000, 5_000, 250, 1_500]);
    expect(parseRequestTimeout('0')).toBe(2 ** 31 - 1);
    expect(() => parseRequestTimeout('-1s')).toThrow(/expected a duration/);
  });

  test('the identity: --kubeconfig, then KUBECONFIG, then ~/.kube/config, then the pod; otherwise what to do', () => {
    const env = (vars: NodeJS.ProcessEnv, files: string[]): Environment => ({ env: vars, home: '/home/u', exists: (p) => files.includes(p) });
    expect(pickKubeSource({ kubeconfig: '/a', context: 'c' }, env({ KUBECONFIG: '/b' }, ['/a', '/b']))).toEqual({ kubeconfig: '/a', context: 'c' });
    expect(pickKubeSource({}, env({ KUBECONFIG: '/gone:/b' }, ['/b', '/home/u/.kube/config']))).toEqual({ kubeconfig: '/b', context: undefined });
    expect(pickKubeSource({}, env({}, ['/home/u/.kube/config']))).toEqual({ kubeconfig: '/home/u/.kube/config', context: undefined });
    expect(pickKubeSource({}, env({ KUBERNETES_SERVICE_HOST: '10.0.0.1' }, ['/var/run/secrets/kubernetes.io/serviceaccount/token']))).toEqual({ inCluster: true, context: undefined });
    expect(() => pickKubeSource({}, env({}, []))).toThrow(NO_KUBECONFIG);
    expect(NO_KUBECONFIG).toMatch(/set KUBECONFIG or pass --kubeconfig FILE.*in a pod the service account is used/);
    expect(() => pickKubeSource({}, env({ KUBECONFIG: '/gone' }, []))).toThrow(/KUBECONFIG names \/gone, which does not exist; fix KUBECONFIG or pass --kubeconfig FILE/);
  });

  test('Impersonate-Group goes out as one header line per group, replacing any already there', () => {
    expect(withGroupHeaders({ authorization: 'Bearer t', 'Impersonate-Group': 'old', accept: ['a', 'b'] }, ['g1', 'g2'])).toEqual([
      'authorization',
      'Bearer t',
      'accept',
      'a',
      'accept',
      'b',
      'Impersonate-Group',
      'g1',
      'Impersonate-Group',
      'g2',
    ]);
    expect(withGroupHeaders(['x', '1', 'impersonate-group', 'old'], ['g'])).toEqual(['x', '1', 'Impersonate-Group', 'g']);
  });
});

describe('output formats', () => {
  test('json and yaml of the same data; table is an alias of text', () => {
    expect(formatData({ a: [1], b: 'x' }, 'json')).toBe('{\n  "a": [\n    1\n  ],\n  "b": "x"\n}\n');
    expect(parseYaml(formatData({ a: [1], b: 'x' }, 'yaml'))).toEqual({ a: [1], b: 'x' });
    expect(parseOutput('table')).toBe('text');
    expect(() => parseOutput('wide', ['text', 'json'])).toThrow('--output wide: expected text, json');
  });

  test('approvals -o wide adds state, decider, session and code (the table without -o wide has none of them)', () => {
    const now = Date.parse('2030-01-01T12:00:00Z');
    const a = sampleApproval({ name: 'coder-0-1', createdAt: new Date(now - 42_000).toISOString(), spec: { expiresAt: new Date(now + 60_000).toISOString() } });
    const [head, row] = approvalsTable([a], { allNamespaces: false, showState: false, nowMs: now, wide: true }).split('\n');
    expect(approvalsTable([a], { allNamespaces: false, showState: false, nowMs: now }).split('\n')[0]!.split(/\s{3,}/)).toEqual(['NAME', 'POD', 'CREATOR', 'SUMMARY', 'SCOPE', 'AGE', 'EXPIRES']);
    expect(head!.split(/\s{3,}/)).toEqual(['NAME', 'POD', 'CREATOR', 'SUMMARY', 'SCOPE', 'STATE', 'DECIDED-BY', 'AGE', 'EXPIRES', 'SESSION', 'CODE']);
    expect(row!.split(/\s{3,}/).slice(-6)).toEqual(['Pending', '-', '42s', '60s', a.spec.session, a.spec.code]);
  });
});

describe('completion', () => {
  const program = buildProgram({ out: () => undefined, err: () => undefined });

  test('every verb and its flags are in the tree the scripts are generated from', () => {
    const specs = commandSpecs(program);
    const root = specs.find((s) => s.path === '')!;
    expect(root.verbs).toEqual(expect.arrayContaining(['version', 'check', 'completion', 'approvals', 'approve', 'deny', 'revoke', 'kill', 'sessions', 'replay', 'verify', 'policy']));
    expect(root.flags.map((f) => f.long)).toEqual(expect.arrayContaining(['--kubeconfig', '--context', '--namespace', '--as', '--as-group', '--request-timeout']));
    expect(specs.find((s) => s.path === 'policy')!.verbs).toEqual(['eval', 'test', 'explain']);
  });

  test('bash: verbs, global flags after a verb, file names for path flags', () => {
    const dir = mkdtempSync(join(tmpdir(), 'completion-'));
    const script = join(dir, 'c.bash');
    writeFileSync(script, completionScript('bash', program));
    writeFileSync(join(dir, 'session.ndjson'), '');
    const complete = (...words: string[]) =>
      spawnSync('bash', ['-c', `source ${script}; cd ${dir}; COMP_WORDS=(kubectl-sluice ${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length}; _kubectl_sluice; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: 'utf8' })
        .stdout.trim()
        .split('\n')
        .filter(Boolean)
        .sort();
    expect(complete('')).toEqual(expect.arrayContaining(['approvals', 'check', 'completion', 'version']));
    expect(complete('--context', 'prod', 'ch')).toEqual(['check']);
    expect(complete('verify', 's1', '--fi')).toEqual(['--file']);
    expect(complete('verify', 's1', '--file', 'sess')).toEqual(['session.ndjson']);
    expect(complete('approve', 'x', '--scope', '')).toEqual(['once', 'session', 'ttl']);
    expect(complete('version', '--as-')).toEqual(['--as-group']);
  });

  test('zsh and fish scripts name every verb; an unknown shell exits 2', async () => {
    const zsh = completionScript('zsh', program);
    expect(zsh.startsWith('#compdef kubectl-sluice\n')).toBe(true);
    expect(zsh).toContain("'policy') echo 'eval test explain' ;;");
    const fish = completionScript('fish', program);
    expect(fish).toContain("complete -c kubectl-sluice -n '__fish_use_subcommand' -a check -d");
    expect(fish).toContain("complete -c kubectl-sluice -n '__fish_seen_subcommand_from policy; and not __fish_seen_subcommand_from eval test explain' -a eval");
    expect(fish).toMatch(/complete -c kubectl-sluice -n '__fish_seen_subcommand_from approvals' -l output -s o -r -a 'text wide json yaml'/);
    expect(await cli(['completion', 'powershell'])).toMatchObject({ code: 2, err: expect.stringContaining('expected bash, zsh or fish') });
  });
});

describe('version', () => {
  test('--client prints the client line; json carries the same', async () => {
    const text = await cli(['version', '--client']);
    expect(text.out).toMatch(/^Client Version: \d+\.\d+\.\d+ \(revision ([0-9a-f]{40}|unknown), source, node v\d+/);
    expect(JSON.parse((await cli(['version', '--client', '-o', 'json'])).out)).toMatchObject({ clientVersion: { build: 'source', node: process.version } });
  });

  test('sidecar versions group injected pods by injector version and image', () => {
    const pod = (v: string | undefined, image: string): PodLike => ({
      metadata: { annotations: v === undefined ? {} : ({ 'sluice.io/status': JSON.stringify({ version: v }) }) },
      spec: { initContainers: [{ name: 'sluice-init', image: 'x' }, { name: 'sluice-proxy', image }] },
    });
    expect(injectedVersion(pod(undefined, 'i'))).toBe('unknown');
    const groups = sidecarVersions([pod('0.1.0', 'r/s:0.1.0'), pod('0.2.0', 'r/s:0.2.0'), pod('0.2.0', 'r/s:0.2.0')]);
    expect(groups).toEqual([
      { version: '0.2.0', image: 'r/s:0.2.0', pods: 2 },
      { version: '0.1.0', image: 'r/s:0.1.0', pods: 1 },
    ]);
    expect(versionText({ clientVersion: { version: '1', revision: 'r', build: 'bundle', node: 'v20', platform: 'linux/x64' }, serverVersion: { gitVersion: 'v1.37.2' }, webhooks: [], sidecars: groups })).toBe(
      [
        'Client Version: 1 (revision r, bundle, node v20, linux/x64)',
        'Server Version: v1.37.2',
        'Webhook: not installed (no Deployment labelled app.kubernetes.io/part-of=sluice, component=webhook)',
        'Sidecars: 0.2.0 on 2 pods (r/s:0.2.0)',
        'Sidecars: 0.1.0 on 1 pod (r/s:0.1.0)',
        '',
      ].join('\n'),
    );
  });
});

describe('check (pure parts)', () => {
  test('the Kubernetes floor is the chart\'s kubeVersion, and the CRDs are the ones the chart ships', () => {
    const chart = parseYaml(readFileSync(join(REPO, 'charts', 'sluice', 'Chart.yaml'), 'utf8')) as { kubeVersion: string };
    expect(chart.kubeVersion).toBe(`>=${MIN_KUBE_VERSION}-0`);
    const crd = parseYaml(readFileSync(join(REPO, 'api', 'crds', `${CRDS[0]}.yaml`), 'utf8')) as { metadata: { name: string } };
    expect(crd.metadata.name).toBe(CRDS[0]);
    expect([versionAtLeast('v1.30.0', '1.30.0'), versionAtLeast('v1.29.9+k3s1', '1.30.0'), versionAtLeast('v1.37.2', '1.30.0'), versionAtLeast('v2.0.0', '1.30.0'), versionAtLeast('garbage', '1.30.0')]).toEqual([true, false, true, true, false]);
  });

  test('Pod Security: baseline and restricted fail with the command that fixes it', () => {
    expect(podSecurityCheck({ metadata: { name: 'a', labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } } })).toMatchObject({ status: 'fail', hint: expect.stringContaining('kubectl label namespace a pod-security.kubernetes.io/enforce=privileged --overwrite') });
    expect(podSecurityCheck({ metadata: { name: 'a', labels: { 'pod-security.kubernetes.io/enforce': 'baseline' } } }).status).toBe('fail');
    expect(podSecurityCheck({ metadata: { name: 'a', labels: { 'pod-security.kubernetes.io/enforce': 'privileged' } } }).status).toBe('ok');
    expect(podSecurityCheck({ metadata: { name: 'a' } }).message).toMatch(/cluster default applies/);
  });

  test('clock skew: the Date header\'s second of resolution is not skew; more than 5 s is a warning', () => {
    const t = Date.parse('2030-01-01T00:00:00Z');
    expect(clockSkew(new Date(t).toUTCString(), t + 900).status).toBe('ok');
    expect(clockSkew(new Date(t).toUTCString(), t + 7_000)).toMatchObject({ status: 'warn', message: 'clock skew 6.0 s between this machine and the API server' });
    expect(clockSkew(undefined, t).status).toBe('warn');
  });

  test('the serving certificate: signed by the registered CA, naming the Service, not about to expire', async () => {
    const ca = await TestCA.create();
    const other = await TestCA.create('someone else');
    const host = 'sluice-webhook.sluice-system.svc';
    const leaf = await ca.issue('webhook', [host], { days: 365 });
    const now = Date.now();
    expect(servingCertCheck(leaf.certPem, ca.certPem, host, now)).toMatchObject({ status: 'ok' });
    expect(servingCertCheck(leaf.certPem, other.certPem, host, now)).toMatchObject({ status: 'fail', message: expect.stringContaining('not signed by the caBundle') });
    expect(servingCertCheck(leaf.certPem, ca.certPem, 'other.sluice-system.svc', now)).toMatchObject({ status: 'fail', message: expect.stringContaining('does not name other.sluice-system.svc') });
    const soon = await ca.issue('webhook', [host], { days: 10 });
    expect(servingCertCheck(soon.certPem, ca.certPem, host, now).status).toBe('warn');
    expect(servingCertCheck(leaf.certPem, ca.certPem, host, now + 400 * 86_400_000).status).toBe('fail');
    expect(servingCertCheck('garbage', ca.certPem, host, now).status).toBe('fail');
  });

  test('the running policy revision from the sidecar metrics', () => {
    expect(metricRevision('# HELP x\nsluice_policy_bundle_info{revision="abc123def456"} 1\nother 2\n')).toBe('abc123def456');
    expect(metricRevision('sluice_policy_bundle_info{revision="old"} 0\n')).toBeUndefined();
  });

  test('the text: one block per category, symbols, hints on what is not ok, and the verdict', () => {
    const text = checkText([
      { category: 'a', status: 'ok', message: 'fine', hint: 'not shown' },
      { category: 'a', status: 'warn', message: 'look', hint: 'do x' },
      { category: 'b', status: 'fail', message: 'broken', hint: 'do y' },
      { category: 'b', status: 'skip', message: 'skipped' },
      { category: 'a', status: 'ok', message: 'later' },
    ]);
    expect(text).toBe(['a', '-', '✔ fine', '‼ look', '    hint: do x', '✔ later', '', 'b', '-', '✖ broken', '    hint: do y', '- skipped', '', 'Status check results are ✖ (1 failed, 1 to look at)', ''].join('\n'));
  });
});
