// Runs loadSidecarConfig the way a kubelet would start a sluice container, for tests without a
// kubelet: the container's env (downward API fields filled in from the pod), and the settings
// ConfigMap's keys as the files of the volume its SLUICE_CONFIG_FILE lies in — an empty directory
// when the optional ConfigMap does not exist. Never touches anything but a fresh temp directory.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { V1Container, V1VolumeMount } from '@kubernetes/client-node';
import { loadSidecarConfig } from '../../sidecar/src/config/sidecar-config.ts';
import type { SidecarConfig } from '../../sidecar/src/config/sidecar-config.ts';

/** Values of the downward API fields sluice's containers use (metadata.name, spec.serviceAccountName, …). */
export type PodFields = Record<string, string | undefined>;

export const EXAMPLE_POD: PodFields = {
  'metadata.name': 'coder-0',
  'metadata.namespace': 'agents',
  'metadata.uid': 'uid-0',
  'spec.serviceAccountName': 'coder',
};

/** The env the container gets: literal values, and downward API fields from `pod` ('' when unknown). */
export function containerEnv(container: V1Container, pod: PodFields = EXAMPLE_POD): Record<string, string> {
  return Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value ?? pod[e.valueFrom?.fieldRef?.fieldPath ?? ''] ?? '']));
}

/** The mount SLUICE_CONFIG_FILE lies in, and the file's key in that volume. */
export function settingsMount(container: V1Container): { mount: V1VolumeMount; key: string } {
  const file = containerEnv(container).SLUICE_CONFIG_FILE;
  if (!file) throw new Error(`container ${container.name} has no SLUICE_CONFIG_FILE`);
  const mount = (container.volumeMounts ?? []).find((m) => !relative(m.mountPath, file).startsWith('..'));
  if (!mount) throw new Error(`SLUICE_CONFIG_FILE ${file} is in no volume of container ${container.name}`);
  return { mount, key: relative(mount.mountPath, file) };
}

/** loadSidecarConfig as `container` runs it with the ConfigMap `data` mounted (undefined: no ConfigMap). */
export function loadAsMounted(container: V1Container, data: Record<string, string> | undefined, pod: PodFields = EXAMPLE_POD): SidecarConfig {
  const { key } = settingsMount(container);
  const volume = mkdtempSync(join(tmpdir(), 'sluice-settings-volume-'));
  for (const [name, value] of Object.entries(data ?? {})) writeFileSync(join(volume, name), value);
  return loadSidecarConfig({ ...containerEnv(container, pod), SLUICE_CONFIG_FILE: join(volume, key) });
}
