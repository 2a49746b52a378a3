// Whether the sluice-owned parts of a pod are exactly what the injector renders: the two leading
// init containers and the sidecar's volumes, with no other container or volume using their names.
// Shared by the injector (refuse to build on a forged or stale sidecar) and the guard.
import type { V1Pod } from '@kubernetes/client-node';
import { INIT_CONTAINER, SIDECAR_CONTAINER, TRUST_DIR } from '../../api/src/index.ts';
import { agentContainers, sluicePrefixLength } from './pod-model.ts';
import { RESERVED_CONTAINERS, isSluiceVolume } from './render.ts';
import type { Rendered } from './render.ts';
import { firstDifference } from './spec-equality.ts';
import { violation } from './violations.ts';
import type { Violation } from './violations.ts';

/** Reserved names used by anything that is not sluice's rendered container/volume. */
export function reservedNameViolations(pod: V1Pod, rendered: Rendered): Violation[] {
  const out: Violation[] = [];
  for (const agent of agentContainers(pod)) {
    if (RESERVED_CONTAINERS.includes(agent.container.name)) {
      out.push(violation('guard.reserved_name', `${agent.field}.name`, `container name "${agent.container.name}" is reserved for sluice`));
    }
    if (agent.list === 'ephemeralContainers') continue;
    (agent.container.volumeMounts ?? []).forEach((m, i) => {
      if (m.mountPath.replace(/\/+$/, '') === TRUST_DIR && m.name !== rendered.agentMount.name) {
        out.push(violation('guard.reserved_name', `${agent.field}.volumeMounts[${i}].mountPath`, `mount path ${TRUST_DIR} is reserved for sluice's trust bundle`));
      }
    });
  }
  (pod.spec?.volumes ?? []).forEach((v, i) => {
    if (!isSluiceVolume(v.name)) return;
    const mine = rendered.volumes.find((r) => r.name === v.name);
    if (!mine || firstDifference(v, mine) !== undefined) {
      out.push(violation('guard.reserved_name', `spec.volumes[${i}]`, `volume name "${v.name}" is reserved for sluice and differs from what sluice injects`));
    }
  });
  return out;
}

/** Leading sluice init containers that differ from the rendering (present ones only). */
export function modifiedSidecarViolations(pod: V1Pod, rendered: Rendered): Violation[] {
  const out: Violation[] = [];
  const init = pod.spec?.initContainers ?? [];
  for (let i = 0; i < sluicePrefixLength(pod); i++) {
    const actual = init[i]!;
    const expected = actual.name === INIT_CONTAINER ? rendered.initContainer : rendered.sidecar;
    const diff = firstDifference(actual, expected);
    if (diff !== undefined) {
      out.push(violation('guard.sidecar_modified', `spec.initContainers[${i}]${diff ? `.${diff}` : ''}`.replace(/\.\[/g, '['), `container "${actual.name}" differs from what sluice injects`));
    }
  }
  return out;
}

/** The complete sidecar set must be present: both init containers first, in order, and every volume. */
export function missingSidecarViolations(pod: V1Pod, rendered: Rendered): Violation[] {
  const out: Violation[] = [];
  const init = pod.spec?.initContainers ?? [];
  if (init[0]?.name !== INIT_CONTAINER || init[1]?.name !== SIDECAR_CONTAINER) {
    out.push(
      violation(
        'guard.sidecar_missing',
        'spec.initContainers',
        `an injected pod must start with init containers "${INIT_CONTAINER}" and "${SIDECAR_CONTAINER}" (is the sluice mutating webhook registered?)`,
      ),
    );
  }
  const names = new Set((pod.spec?.volumes ?? []).map((v) => v.name));
  for (const v of rendered.volumes) {
    if (!names.has(v.name)) out.push(violation('guard.sidecar_missing', 'spec.volumes', `volume "${v.name}" of the sluice sidecar is missing`));
  }
  return out;
}
