// What the node agent does for one pod sandbox, decided from the pod as the API server stores it.
// Only what the sluice webhook writes counts: the status annotation (sluice.io/status) and the
// injected label, which the guard keeps from being added, changed or removed by anyone else; a
// label the pod's creator chooses (sluice.io/inject) never decides anything here. The interception
// settings come from the same places the init container reads them in init mode: the env of the
// sidecar container (which the guard holds identical to the webhook's rendering) and the
// `sidecar.yaml` of the settings ConfigMap the pod mounts. Pure: no I/O.
import { ANNOTATION_STATUS, LABEL_INJECTED, SETTINGS_VOLUME, SIDECAR_CONTAINER, SIDECAR_ENV } from '../../api/src/index.ts';

interface PodLike {
  metadata?: { uid?: string; annotations?: Record<string, string>; labels?: Record<string, string> };
  spec?: {
    initContainers?: { name: string; env?: { name: string; value?: string; valueFrom?: unknown }[] }[];
    volumes?: { name: string; configMap?: { name?: string; items?: { key: string; path: string }[] } }[];
  };
}

export type Decision =
  | { intercept: false; reason: string }
  | {
      intercept: true;
      /** The sidecar container's literal env values (ports, UID, config file path). */
      env: Record<string, string>;
      /** The settings ConfigMap and the key the pod reads as SLUICE_CONFIG_FILE. */
      configMap: { name: string; key: string } | null;
    }
  | { intercept: 'refuse'; reason: string };

export function decide(pod: PodLike, expectedUid: string): Decision {
  if (expectedUid && pod.metadata?.uid && pod.metadata.uid !== expectedUid) {
    // A pod of the same name was recreated between the kubelet's call and our read.
    return { intercept: 'refuse', reason: `the pod's UID is ${pod.metadata.uid}, the sandbox is for ${expectedUid}` };
  }
  const status = pod.metadata?.annotations?.[ANNOTATION_STATUS];
  const injected = pod.metadata?.labels?.[LABEL_INJECTED] === 'true';
  if (status === undefined && !injected) return { intercept: false, reason: 'not injected by sluice' };
  const sidecar = (pod.spec?.initContainers ?? []).find((c) => c.name === SIDECAR_CONTAINER);
  if (!sidecar) return { intercept: 'refuse', reason: `the pod carries sluice's injection markers but has no ${SIDECAR_CONTAINER} container` };
  const env: Record<string, string> = {};
  for (const e of sidecar.env ?? []) if (typeof e.value === 'string') env[e.name] = e.value;
  const volume = (pod.spec?.volumes ?? []).find((v) => v.name === SETTINGS_VOLUME)?.configMap;
  let configMap: { name: string; key: string } | null = null;
  const configFile = env[SIDECAR_ENV.configFile];
  if (configFile) {
    if (!volume?.name) return { intercept: 'refuse', reason: `${SIDECAR_ENV.configFile} is set but the pod has no ${SETTINGS_VOLUME} ConfigMap volume` };
    const file = configFile.split('/').pop()!;
    const key = volume.items?.find((i) => i.path === file)?.key ?? file;
    configMap = { name: volume.name, key };
  }
  return { intercept: true, env, configMap };
}
