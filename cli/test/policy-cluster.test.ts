// The decisions behind `policy eval|test|explain --cluster` without a cluster: which bundle is
// evaluated, which revision the cluster runs (running sidecars first, then its policy ConfigMap,
// then the sidecar version), when a local build is refused as stale and what the refusal says, how
// the organisation goes into the data, and what explain says when only the organisation part of a
// revision differs. Against a real API server and a real sidecar: e2e/cli-policy/cluster.test.ts.
import { describe, expect, test } from '@jest/globals';
import { bundleRevisionOf, planClusterEvaluation, staleCheck, withClusterOrganisation } from '../src/policy/cluster-eval.ts';
import type { ClusterPolicy } from '../src/policy/cluster-source.ts';
import { revisionHint } from '../src/policy/explain.ts';

const base: ClusterPolicy = { namespace: 'agents', source: 'SluicePolicy', settings: {}, sidecars: [], webhookVersions: [], notes: [] };
const DEFAULT = '/cli/policy/bundle.tar.gz';

describe('which revision the cluster runs', () => {
  test('running sidecars first (the most common revision, the others named), organisation part ignored', () => {
    const cluster: ClusterPolicy = {
      ...base,
      customBundle: { configMap: 'sluice-policy', object: 'agents/sluice-policy', path: '/tmp/cm', revision: 'cccccccccccc' },
      sidecars: [
        { pod: 'a', version: '0.1.0', phase: 'Running', revision: 'aaaaaaaaaaaa+org.1234' },
        { pod: 'b', version: '0.1.0', phase: 'Running', revision: 'aaaaaaaaaaaa' },
        { pod: 'c', version: '0.1.0', phase: 'Running', revision: 'bbbbbbbbbbbb' },
        { pod: 'd', version: '0.1.0', phase: 'Pending' },
      ],
    };
    const plan = planClusterEvaluation(cluster, { defaultBundle: DEFAULT });
    expect(plan).toMatchObject({ bundlePath: '/tmp/cm', clusterBundle: true, expected: { revision: 'aaaaaaaaaaaa', from: 'running sidecars a, b' } });
    expect(plan.notes).toEqual(['the sidecars of agents run 2 revisions: aaaaaaaaaaaa (a, b); bbbbbbbbbbbb (c); compared with aaaaaaaaaaaa']);
    expect(staleCheck(plan, cluster, 'aaaaaaaaaaaa', false).ok).toBe(true);
    // the cluster's own bundle (no --bundle) is not what its sidecars run: said as such, not as a stale local build
    expect(staleCheck(plan, cluster, 'cccccccccccc', false)).toMatchObject({ ok: false, message: 'the sidecars in agents run policy revision aaaaaaaaaaaa (from running sidecars a, b), ConfigMap agents/sluice-policy holds cccccccccccc: they have not taken it (refused, not read yet, or not readable for them: `kubectl sluice check` and their policy_load events say which); --allow-stale evaluates the ConfigMap\'s bundle anyway' });
    // a local build of another revision still points at the cluster's own bundle
    expect(staleCheck(planClusterEvaluation(cluster, { bundle: '/mine.tar.gz', defaultBundle: DEFAULT }), cluster, 'cccccccccccc', true)).toMatchObject({ ok: false, message: expect.stringContaining("omit --bundle to evaluate with the cluster's own bundle") });
  });

  test('no running sidecar: the policy ConfigMap\u2019s revision; an explicit --bundle of it passes, another is stale', () => {
    const cluster: ClusterPolicy = { ...base, customBundle: { configMap: 'sluice-policy', object: 'agents/sluice-policy', path: '/tmp/cm', revision: 'cccccccccccc' } };
    const plan = planClusterEvaluation(cluster, { bundle: '/mine.tar.gz', defaultBundle: DEFAULT });
    expect(plan).toMatchObject({ bundlePath: '/mine.tar.gz', clusterBundle: false, expected: { revision: 'cccccccccccc', from: 'ConfigMap agents/sluice-policy' } });
    expect(staleCheck(plan, cluster, 'cccccccccccc', true).ok).toBe(true);
    expect(staleCheck(plan, cluster, 'dddddddddddd', true).message).toMatch(/^stale local build: the sidecars in agents run policy revision cccccccccccc \(from ConfigMap agents\/sluice-policy\), \/mine\.tar\.gz is dddddddddddd\./);
  });

  test('the library in the image and no running sidecar: the sidecar version decides whether this CLI\u2019s default library stands in', () => {
    const cluster: ClusterPolicy = { ...base, sidecars: [{ pod: 'a', version: '0.2.0', phase: 'Pending' }] };
    const plan = planClusterEvaluation(cluster, { defaultBundle: DEFAULT });
    expect(plan).toMatchObject({ bundlePath: DEFAULT, clusterBundle: false, versions: ['0.2.0'] });
    expect(plan.expected).toBeUndefined();
    const same = staleCheck(plan, cluster, 'aaaaaaaaaaaa', false, '0.2.0');
    expect(same.ok).toBe(true);
    expect(same.warnings[0]).toContain('is taken for the one the 0.2.0 sidecar image carries');
    const older = staleCheck(plan, cluster, 'aaaaaaaaaaaa', false, '0.1.0');
    expect(older).toMatchObject({ ok: false, message: expect.stringContaining('the sidecars in agents are sluice 0.2.0, this kubectl-sluice ships the library of 0.1.0') });
    expect(older.message).toContain('use kubectl-sluice 0.2.0');
    // an explicit --bundle cannot be compared: evaluated, said
    expect(staleCheck(plan, cluster, 'aaaaaaaaaaaa', true, '0.1.0')).toMatchObject({ ok: true, warnings: [expect.stringContaining('is not compared')] });
  });

  test('nothing to compare with (no pod, no webhook): the default build is refused, an explicit one evaluated with a warning', () => {
    const plan = planClusterEvaluation(base, { defaultBundle: DEFAULT });
    expect(staleCheck(plan, base, 'aaaaaaaaaaaa', false)).toMatchObject({ ok: false, message: expect.stringContaining("cannot confirm the cluster's policy revision") });
    expect(staleCheck(plan, base, 'aaaaaaaaaaaa', true)).toMatchObject({ ok: true });
  });
});

describe('organisation and revisions', () => {
  test('the organisation replaces data.organisation and nothing else; the bundle part of a sidecar\u2019s revision', () => {
    const bundle = { wasm: new Uint8Array(), data: { config: { mask_rules: ['*'] }, organisation: { name: 'example' } }, revision: 'aaaaaaaaaaaa', source: 'x' };
    const cluster = { ...base, organisation: { value: { name: 'globex' } as never, revision: '0123456789abcdef', objects: ['default'] } };
    expect(withClusterOrganisation(bundle, cluster).data).toEqual({ config: { mask_rules: ['*'] }, organisation: { name: 'globex' } });
    expect(withClusterOrganisation(bundle, base)).toBe(bundle);
    expect(bundleRevisionOf('aaaaaaaaaaaa+org.0123456789abcdef')).toBe('aaaaaaaaaaaa');
  });

  test('explain says which part of a revision differs and what to pass', () => {
    expect(revisionHint('aaaaaaaaaaaa+org.1111', 'aaaaaaaaaaaa')).toBe('pass --cluster: the sidecar ran with the cluster\'s organisation (revision 1111)');
    expect(revisionHint('aaaaaaaaaaaa+org.1111', 'aaaaaaaaaaaa+org.2222')).toContain('the cluster\'s organisation changed since (it was 1111, it is 2222 now)');
    expect(revisionHint('aaaaaaaaaaaa', 'bbbbbbbbbbbb+org.2222')).toBe('pass --bundle with a build of aaaaaaaaaaaa; the sidecar ran with its bundle\u2019s own organisation data: drop --cluster');
  });
});
