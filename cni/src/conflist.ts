// The node's CNI configuration, as data: which file the runtime uses, and that file with sluice's
// chained plugin added (last, so it sees the pod's interfaces and addresses the primary plugin
// made) or removed. Pure; the agent (keeper.ts) reads and writes the files. It never changes the
// primary plugin's entries, and it refuses a single-plugin `.conf` it would have to restructure
// only by converting it the way the runtime reads it (a list of one plugin).

export const PLUGIN_TYPE = 'sluice-cni';

export interface SluicePluginEntry {
  type: typeof PLUGIN_TYPE;
  /** Where the node agent listens (a host path). */
  agentSocket: string;
  /** Namespaces whose pods pass through even when the agent cannot be asked (kube-system, the release's). */
  exemptNamespaces: string[];
  /** How long the plugin waits for the agent's answer. */
  timeoutMs: number;
}

type Json = Record<string, unknown>;

/**
 * The file the runtime loads: containerd and CRI-O take the first `.conflist`/`.conf`/`.json` in
 * lexical order. Our own temp files never count.
 */
export function primaryConfigFile(names: readonly string[]): string | undefined {
  return [...names].filter((n) => /\.(conflist|conf|json)$/.test(n) && !n.startsWith('.')).sort()[0];
}

/** A `.conf` (one plugin) as the list the runtime would make of it; a `.conflist` as it is. */
export function asConflist(config: Json): Json {
  if (Array.isArray(config.plugins)) return config;
  const { cniVersion, name, ...plugin } = config;
  return { cniVersion, name, plugins: [plugin] };
}

export function hasSluice(config: Json): boolean {
  return Array.isArray(config.plugins) && (config.plugins as Json[]).some((p) => p?.type === PLUGIN_TYPE);
}

/** The config with exactly one sluice entry, last; unchanged (same string) when it already is so. */
export function withSluice(config: Json, entry: SluicePluginEntry): Json {
  const list = asConflist(config);
  const others = (list.plugins as Json[]).filter((p) => p?.type !== PLUGIN_TYPE);
  return { ...list, plugins: [...others, { ...entry }] };
}

export function withoutSluice(config: Json): Json {
  if (!Array.isArray(config.plugins)) return config;
  return { ...config, plugins: (config.plugins as Json[]).filter((p) => p?.type !== PLUGIN_TYPE) };
}

/** Parses a CNI config file; undefined when it is not a JSON object (left alone, never rewritten). */
export function parseConfig(text: string): Json | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the file needs writing: sluice missing, duplicated, not last, or with other settings. */
export function needsUpdate(config: Json, entry: SluicePluginEntry): boolean {
  return JSON.stringify(withSluice(config, entry)) !== JSON.stringify(config);
}
