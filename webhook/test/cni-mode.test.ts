// CNI mode in the webhook: sluice-init becomes an unprivileged check with the init container's
// name and place, so the guard's rules hold unchanged — a pod that brings its own "sluice-init"
// with privileges back is refused, and the mode is recorded in the status annotation only in CNI mode.
import { describe, expect, test } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import fastJsonPatch from 'fast-json-patch';
import { ANNOTATION_STATUS } from '../../api/src/index.ts';
import { checkUID } from '../src/cni-mode.ts';
import { guardPodCreate } from '../src/guard.ts';
import { planInjection } from '../src/inject.ts';
import { renderInjection } from '../src/render.ts';
import { alice, loadPod, testConfig } from '../../testkit/webhook/fixtures.ts';

const cni = testConfig({ interception: { mode: 'cni' } });
const init = testConfig();
const ctx = { namespace: 'agents', namespaceOptedIn: false, userInfo: alice };

function inject(config: typeof cni): V1Pod {
  const pod = loadPod('cni-mode.yaml');
  const plan = planInjection(pod, ctx, config);
  if (plan.kind !== 'patch') throw new Error(plan.kind);
  return fastJsonPatch.applyPatch(structuredClone(pod), structuredClone(plan.patch) as fastJsonPatch.Operation[], true, false).newDocument;
}

describe('CNI mode', () => {
  test('every container sluice renders meets Pod Security "restricted"; the check is neither root nor the sidecar', () => {
    const r = renderInjection(cni);
    for (const c of [r.initContainer, r.sidecar]) {
      const sc = c.securityContext!;
      expect(sc.runAsNonRoot).toBe(true);
      expect(sc.runAsUser).not.toBe(0);
      expect(sc.allowPrivilegeEscalation).toBe(false);
      expect(sc.privileged).toBe(false);
      expect(sc.capabilities).toEqual({ drop: ['ALL'] });
      expect(sc.seccompProfile).toEqual({ type: 'RuntimeDefault' });
    }
    expect(r.initContainer.command).toEqual(['node', '/app/sidecar/src/main.js', 'check-network']);
    expect(r.initContainer.securityContext!.runAsUser).not.toBe(cni.sidecar.proxyUID);
    expect(checkUID(65532)).toBe(65533);
    expect(checkUID(1337)).toBe(65532);
    // init mode is unchanged.
    expect(renderInjection(init).initContainer.securityContext!.capabilities!.add).toEqual(['NET_ADMIN', 'NET_RAW']);
  });

  test('the status annotation names the mode in CNI mode only', () => {
    expect(JSON.parse(inject(cni).metadata!.annotations![ANNOTATION_STATUS]!)).toMatchObject({ interception: 'cni' });
    expect(JSON.parse(inject(init).metadata!.annotations![ANNOTATION_STATUS]!)).not.toHaveProperty('interception');
  });

  test('the guard accepts the CNI rendering and refuses a sluice-init given privileges back, or the other mode\'s', () => {
    const pod = inject(cni);
    expect(guardPodCreate(pod, ctx, cni)).toEqual([]);
    const forged = structuredClone(pod);
    forged.spec!.initContainers![0]!.securityContext = { ...forged.spec!.initContainers![0]!.securityContext, runAsUser: 0, capabilities: { add: ['NET_ADMIN'], drop: ['ALL'] } };
    expect(guardPodCreate(forged, ctx, cni).map((v) => v.rule)).toContain('guard.sidecar_modified');
    // A pod rendered for init mode is not what a CNI-mode webhook injects (and the reverse).
    expect(guardPodCreate(inject(init), ctx, cni).map((v) => v.rule)).toContain('guard.sidecar_modified');
    expect(guardPodCreate(pod, ctx, init).map((v) => v.rule)).toContain('guard.sidecar_modified');
  });
});
