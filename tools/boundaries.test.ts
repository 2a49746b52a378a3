// The import boundaries of tools/boundaries.ts hold for the whole tree (lint enforces the same rule
// per file; this also runs under jest) and the rule catches each kind of leak. Allow-list entries
// that no import uses any more are listed by `node tools/import-graph.ts` (delete them then).
import { describe, expect, test } from '@jest/globals';
import { join } from 'node:path';
import { ALLOWED_LEAKS, TESTS, boundaryViolation } from './boundaries.ts';
import { importEdges } from './import-graph.ts';

const edges = importEdges(join(import.meta.dirname, '..'));

describe('import boundaries', () => {
  test('the scan sees the tree', () => {
    expect(edges.length).toBeGreaterThan(1000);
  });

  test('no import crosses a boundary outside the allow-list', () => {
    const leaks = edges.flatMap((e) => {
      const why = boundaryViolation(e.from, e.to);
      return why ? [`${e.from}:${e.line}: ${why}`] : [];
    });
    expect(leaks).toEqual([]);
  });

  test.each([
    ['api/src/codes.ts', 'lib/src/policy/engine.ts', /api\/src may not import/],
    ['webhook/src/guard.ts', 'lib/src/policy/engine.ts', /webhook\/src may not import/],
    ['lib/src/policy/engine.ts', 'sidecar/src/proxy/gateway.ts', /lib\/src may not import/],
    ['sidecar/src/main.ts', 'demo/main.ts', /sidecar\/src may not import/],
    ['sidecar/src/proxy/gateway.ts', 'webhook/src/config.ts', /sidecar\/src may not import/],
    ['sidecar/src/proxy/gateway.ts', 'cli/src/main.ts', /sidecar\/src may not import/],
    ['sidecar/src/proxy/gateway.ts', 'sidecar/test/support/opa-build.ts', /imports test code/],
    ['sidecar/src/proxy/gateway.ts', 'testkit/sidecar/upstreams.ts', /imports test code/],
    ['lib/src/audit/chain.ts', 'testkit/policy/opa-build.ts', /imports test code/],
    ['webhook/src/guard.ts', 'webhook/test/support/fixtures.ts', /imports test code/],
    ['cli/src/commands/replay.ts', 'e2e/support/kube/harness.ts', /imports test code/],
    ['cli/src/commands/replay.ts', 'sidecar/src/proxy/gateway.ts', /the CLI imports only api/],
    ['cni/src/agent.ts', 'sidecar/src/proxy/gateway.ts', /CNI plugin imports only api/],
    // the four the allow-list held until the interception settings and rules moved to lib/
    ['cni/src/agent.ts', 'sidecar/src/config/sidecar-config.ts', /CNI plugin imports only api/],
    ['cni/src/agent.ts', 'sidecar/src/interception/plan.ts', /CNI plugin imports only api/],
    ['cni/src/netns.ts', 'sidecar/src/interception/rules.ts', /CNI plugin imports only api/],
    ['webhook/test/guard.test.ts', 'sidecar/test/support/kube.ts', /another component's tests/],
  ])('%s -> %s is a leak', (from, to, why) => {
    expect(boundaryViolation(from, to)).toMatch(why);
  });

  test.each([
    ['sidecar/src/proxy/gateway.ts', 'api/src/index.ts'],
    ['webhook/src/guard.ts', 'api/src/labels.ts'],
    ['sidecar/test/proxy/gateway.test.ts', 'testkit/sidecar/upstreams.ts'],
    ['cli/src/commands/replay.ts', 'lib/src/audit/chain.ts'],
    ['sidecar/src/policy/policy-loader.ts', 'lib/src/policy/engine.ts'],
    ['webhook/test/approvals/rules.test.ts', 'testkit/approvals/sample-approval.ts'],
    ['demo/proxy-session.ts', 'testkit/sidecar/test-sidecar.ts'],
    ['cni/src/agent.ts', 'lib/src/interception/settings.ts'],
    ['cni/src/netns.ts', 'lib/src/interception/rules.ts'],
    ['webhook/src/render.ts', 'api/src/sidecar-contract.ts'],
  ])('%s -> %s is allowed', (from, to) => {
    expect(boundaryViolation(from, to)).toBeUndefined();
  });

  test('the allow-list is empty: every leak issue 22 listed is gone', () => {
    expect(ALLOWED_LEAKS).toEqual([]);
  });

  test('an allow-list entry lets exactly its importer and file through (the machinery a future exception would use)', () => {
    const allowList = [
      { from: 'cni/src/', to: 'sidecar/src/interception/check.ts', step: 'example' },
      { from: TESTS, to: 'sidecar/test/support/x.ts', step: 'example' },
    ];
    expect(boundaryViolation('cni/src/agent.ts', 'sidecar/src/interception/check.ts', { allowList })).toBeUndefined();
    expect(boundaryViolation('cni/src/agent.ts', 'sidecar/src/interception/check.ts', { allowList, ignoreAllowList: true })).toMatch(/CNI plugin imports only api/);
    expect(boundaryViolation('cni/src/agent.ts', 'sidecar/src/interception/apply.ts', { allowList })).toMatch(/CNI plugin imports only api/);
    expect(boundaryViolation('cli/src/main.ts', 'sidecar/src/interception/check.ts', { allowList })).toMatch(/the CLI imports only api/);
    expect(boundaryViolation('webhook/test/guard.test.ts', 'sidecar/test/support/x.ts', { allowList })).toBeUndefined();
    expect(boundaryViolation('cli/src/main.ts', 'sidecar/test/support/x.ts', { allowList })).toMatch(/imports test code/);
  });

  test('a shared test helper is still a leak from production code', () => {
    expect(boundaryViolation('sidecar/src/main.ts', 'testkit/policy/opa-build.ts')).toMatch(/imports test code/);
    expect(boundaryViolation('cli/src/main.ts', 'testkit/webhook/fixtures.ts')).toMatch(/imports test code/);
  });
});
