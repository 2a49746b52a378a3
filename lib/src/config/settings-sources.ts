// The sources the sidecar's settings are read from, as the sidecar, its init container and the CNI
// node agent all read them: the settings file the webhook names (SLUICE_CONFIG_FILE, the mounted
// `sidecar.yaml` of the settings ConfigMap) and SLUICE_* integers in the environment. Only reading
// and shaping: validation is the schemas' job (sidecar/src/config/sidecar-config.ts,
// lib/src/interception/settings.ts). It must never default a value, and never treat a settings
// file it cannot read or parse as empty (only a missing file is: the mount is optional).
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { SIDECAR_ENV, SchemaError } from '../../../api/src/index.ts';

export type Env = Readonly<Record<string, string | undefined>>;

/** The settings in SLUICE_CONFIG_FILE as a mapping; {} when the variable is unset or the file missing. */
export function readSettingsFile(env: Env): Record<string, unknown> {
  const file = env[SIDECAR_ENV.configFile];
  if (!file) return {};
  // The webhook mounts the settings ConfigMap as optional: a missing file (no ConfigMap in the
  // namespace, or no sidecar.yaml key) means no file settings. Anything else stops start-up.
  let parsed: unknown = null;
  try {
    parsed = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new SchemaError('invalid sidecar configuration', [`${SIDECAR_ENV.configFile} (${file}): ${(err as Error).message}`]);
    }
  }
  if (parsed !== null && (typeof parsed !== 'object' || Array.isArray(parsed))) {
    throw new SchemaError('invalid sidecar configuration', [`${SIDECAR_ENV.configFile} (${file}): expected a mapping of settings, got ${Array.isArray(parsed) ? 'a list' : typeof parsed}`]);
  }
  return (parsed ?? {}) as Record<string, unknown>;
}

/** An integer variable; undefined when unset or empty; a SchemaError naming it when not an integer. */
export function intFromEnv(env: Env, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n)) throw new SchemaError('invalid sidecar configuration', [`${name}: expected an integer, got "${raw}"`]);
  return n;
}

export function setIfDefined(target: Record<string, unknown>, key: string, value: unknown): void {
  if (value !== undefined) target[key] = value;
}

/** A copy of the mapping under `key` of `base` ({} when absent or not a mapping), to overlay onto. */
export function settingsSection(base: Readonly<Record<string, unknown>>, key: string): Record<string, unknown> {
  const value = base[key];
  return value && typeof value === 'object' ? { ...(value as Record<string, unknown>) } : {};
}
