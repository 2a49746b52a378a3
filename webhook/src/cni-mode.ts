// Interception modes. `init` (default): the first init container (`sluice-init`) runs as root with
// NET_ADMIN/NET_RAW and installs the pod's interception rules itself. `cni`: the sluice node agent's
// CNI plugin installs the same rules in the pod's network namespace before any container exists
// (cni/), and `sluice-init` becomes a check with no privileges at all — not root, not the sidecar's
// UID, every capability dropped — that runs `check-network` and exits non-zero unless the rules
// redirect and drop as sluice's do, so neither the sidecar nor the agent starts in a pod the node
// left unprotected. Every container sluice renders then meets Pod Security "restricted". Pure data.
// It keeps the container's name and place, so the guard's rules about sluice's containers hold in
// both modes unchanged; it must never render a capability, root, or the sidecar's UID.
import type { V1Container, V1EnvVar, V1VolumeMount } from '@kubernetes/client-node';
import { z } from 'zod';
import { INIT_CONTAINER, SIDECAR_COMMANDS } from '../../api/src/index.ts';
import type { WebhookConfig } from './config.ts';
import { restrictedSecurityContext } from './security-context.ts';

export const InterceptionConfig = z
  .object({
    mode: z.enum(['init', 'cni']).default('init').describe('init: a root init container with NET_ADMIN installs the rules; cni: the sluice node agent does, and the pod needs no privileges'),
  })
  .strict();
export type InterceptionConfig = z.infer<typeof InterceptionConfig>;

/** The check's UID: an ordinary non-root user that the rules do not exempt (never the sidecar's). */
export function checkUID(proxyUID: number): number {
  return proxyUID === 65532 ? 65533 : 65532;
}

export function renderCheckContainer(config: WebhookConfig, parts: { command: readonly string[]; env: V1EnvVar[]; configMount: V1VolumeMount | undefined }): V1Container {
  const s = config.sidecar;
  const uid = checkUID(s.proxyUID);
  return {
    name: INIT_CONTAINER,
    image: s.image,
    imagePullPolicy: s.imagePullPolicy,
    command: [...parts.command, SIDECAR_COMMANDS.checkNetwork],
    env: parts.env,
    resources: structuredClone(s.initResources),
    ...(parts.configMount ? { volumeMounts: [parts.configMount] } : {}),
    securityContext: restrictedSecurityContext(uid),
    terminationMessagePath: '/dev/termination-log',
    terminationMessagePolicy: 'File',
  };
}
