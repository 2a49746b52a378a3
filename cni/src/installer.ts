// Puts the sluice CNI plugin on the node and keeps it in the runtime's CNI configuration: copies
// this process's Node binary and plugin.ts into <bin dir>/sluice-cni.d with a /bin/sh launcher
// `sluice-cni`, adds sluice's entry last in the primary conflist, re-adds it whenever the primary
// plugin (or anyone) rewrites the file, and on stop removes the entry first and the files after.
// Every write is a temp file renamed into place (the runtime never reads half a file). It never
// changes another plugin's entry and never writes a file it cannot parse.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, watch, writeFileSync } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hasSluice, needsUpdate, parseConfig, PLUGIN_TYPE, primaryConfigFile, withoutSluice, withSluice } from './conflist.ts';
import type { SluicePluginEntry } from './conflist.ts';

export const PLUGIN_SOURCE = join(dirname(fileURLToPath(import.meta.url)), 'plugin.ts');

export interface InstallPaths {
  /** Where this process writes the executables (a hostPath mount in a pod). */
  binDir: string;
  /** The same directory as the runtime on the host sees it (written into the launcher). */
  hostBinDir: string;
  confDir: string;
}

function writeAtomic(path: string, data: string | Buffer, mode: number): void {
  const tmp = join(dirname(path), `.${basename(path)}.sluice-tmp`);
  writeFileSync(tmp, data, { mode });
  renameSync(tmp, path);
}

function sameFile(a: string, b: string): boolean {
  if (!existsSync(b)) return false;
  const sa = statSync(a);
  const sb = statSync(b);
  return sa.size === sb.size && readFileSync(a).equals(readFileSync(b));
}

export function launcher(hostBinDir: string): string {
  const dir = `${hostBinDir}/${PLUGIN_TYPE}.d`;
  return `#!/bin/sh\n# sluice CNI plugin (installed by the sluice node agent; removed when it stops)\nexec '${dir}/node' --no-warnings '${dir}/plugin.mts' "$@"\n`;
}

/** Copies the plugin into place; only what changed is rewritten. */
export function installPlugin(p: InstallPaths, nodeBinary = process.execPath): void {
  const dir = join(p.binDir, `${PLUGIN_TYPE}.d`);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const node = join(dir, 'node');
  if (!sameFile(nodeBinary, node)) {
    const tmp = join(dir, '.node.sluice-tmp');
    copyFileSync(nodeBinary, tmp);
    renameSync(tmp, node);
  }
  writeAtomic(join(dir, 'plugin.mts'), readFileSync(PLUGIN_SOURCE), 0o644);
  writeAtomic(join(p.binDir, PLUGIN_TYPE), launcher(p.hostBinDir), 0o755);
}

export function removePlugin(p: InstallPaths): void {
  rmSync(join(p.binDir, PLUGIN_TYPE), { force: true });
  rmSync(join(p.binDir, `${PLUGIN_TYPE}.d`), { recursive: true, force: true });
}

export type EnsureResult = 'added' | 'present' | 'no-config' | 'unreadable';

/** One pass of the keeper: the primary config file carries exactly one sluice entry, last. */
export function ensureConflist(confDir: string, entry: SluicePluginEntry): EnsureResult {
  const names = existsSync(confDir) ? readdirSync(confDir) : [];
  const primary = primaryConfigFile(names);
  if (!primary) return 'no-config';
  const path = join(confDir, primary);
  const config = parseConfig(readFileSync(path, 'utf8'));
  if (!config) return 'unreadable';
  if (!needsUpdate(config, entry)) return 'present';
  const next = JSON.stringify(withSluice(config, entry), null, 2);
  if (primary.endsWith('.conf') && !Array.isArray(config.plugins)) {
    // A single-plugin .conf becomes the list the runtime would have made of it; the .conflist
    // name sorts before the .conf, so it stays the file the runtime loads.
    const list = join(confDir, `${primary.slice(0, -'.conf'.length)}.conflist`);
    writeAtomic(list, next, 0o644);
    rmSync(path, { force: true });
  } else {
    writeAtomic(path, next, 0o644);
  }
  return 'added';
}

/** Removes sluice's entry from every config file of the directory that has one. */
export function removeFromConflists(confDir: string): string[] {
  const changed: string[] = [];
  for (const name of existsSync(confDir) ? readdirSync(confDir) : []) {
    if (!/\.(conflist|conf|json)$/.test(name) || name.startsWith('.')) continue;
    const path = join(confDir, name);
    const config = parseConfig(readFileSync(path, 'utf8'));
    if (!config || !hasSluice(config)) continue;
    writeAtomic(path, JSON.stringify(withoutSluice(config), null, 2), 0o644);
    changed.push(name);
  }
  return changed;
}

export interface Keeper {
  stop(): void;
}

/** Watches the directory (and re-checks every resyncMs, for missed events) and re-adds the entry. */
export function keepConflist(confDir: string, entry: SluicePluginEntry, onChange: (r: EnsureResult) => void, resyncMs: number): Keeper {
  let pending: NodeJS.Timeout | undefined;
  let stopped = false;
  const pass = () => {
    pending = undefined;
    // A pass scheduled before stop() must not put the entry back after the removal.
    if (stopped) return;
    try {
      const r = ensureConflist(confDir, entry);
      if (r !== 'present') onChange(r);
    } catch (err) {
      onChange('unreadable');
      void err;
    }
  };
  const schedule = () => {
    if (pending || stopped) return;
    pending = setTimeout(pass, 50);
  };
  let watcher: FSWatcher | undefined;
  try {
    mkdirSync(confDir, { recursive: true });
    watcher = watch(confDir, schedule);
  } catch {
    watcher = undefined;
  }
  const timer = setInterval(schedule, resyncMs);
  pass();
  return {
    stop() {
      stopped = true;
      clearInterval(timer);
      clearTimeout(pending);
      watcher?.close();
    },
  };
}
