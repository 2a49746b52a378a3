// The container securityContext sluice gives its own unprivileged containers (the sidecar, and the
// check container that stands in for sluice-init in CNI mode): Pod Security "restricted" as written,
// a fixed non-root UID, read-only root. One definition, so the two containers cannot drift apart.
// It must never add a capability or allow escalation; callers may only confine it further.
import type { V1SecurityContext } from '@kubernetes/client-node';

export function restrictedSecurityContext(uid: number): V1SecurityContext {
  return {
    runAsUser: uid,
    runAsGroup: uid,
    runAsNonRoot: true,
    privileged: false,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}
