// The node agent's readiness probe (cni/src/ready.ts): Ready only when the node is protected — the
// runtime's primary configuration lists sluice's plugin last and its launcher is in place — and
// not while the agent merely runs (the window in which a new pod would start without rules). The
// program itself is run as the kubelet's exec probe runs it.
import { afterEach, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PLUGIN_TYPE, withSluice } from '../src/conflist.ts';
import type { SluicePluginEntry } from '../src/conflist.ts';
import { ensureConflist, launcher } from '../src/installer.ts';
import { nodeReadiness } from '../src/ready.ts';

const entry: SluicePluginEntry = { type: PLUGIN_TYPE, agentSocket: '/var/run/sluice-cni/agent.sock', exemptNamespaces: ['kube-system'], timeoutMs: 10_000 };
const primary = { cniVersion: '1.0.0', name: 'k8s-pod-network', plugins: [{ type: 'bridge', bridge: 'cni0' }] };

const dirs: string[] = [];
function node(conf: Record<string, unknown>, withLauncher: boolean): { confDir: string; binDir: string } {
  const root = mkdtempSync(join(tmpdir(), 'sluice-cni-ready-'));
  dirs.push(root);
  const confDir = join(root, 'net.d');
  const binDir = join(root, 'bin');
  mkdirSync(confDir);
  mkdirSync(binDir);
  for (const [name, v] of Object.entries(conf)) writeFileSync(join(confDir, name), typeof v === 'string' ? v : JSON.stringify(v));
  if (withLauncher) writeFileSync(join(binDir, PLUGIN_TYPE), launcher(binDir), { mode: 0o755 });
  return { confDir, binDir };
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

test('not ready while the primary configuration lacks the plugin (the agent started, nothing installed yet)', () => {
  const n = node({ '10-bridge.conflist': primary }, true);
  expect(nodeReadiness(n.confDir, n.binDir)).toEqual({ ready: false, reason: `${PLUGIN_TYPE} is not the last plugin of 10-bridge.conflist` });
});

test('not ready with no configuration, an unparsable one, the entry not last, or no launcher', () => {
  expect(nodeReadiness(node({}, true).confDir, '/nonexistent').ready).toBe(false);
  const broken = node({ '10-bridge.conflist': '{ not json' }, true);
  expect(nodeReadiness(broken.confDir, broken.binDir)).toEqual({ ready: false, reason: '10-bridge.conflist does not parse' });
  const notLast = node({ '10-bridge.conflist': { ...primary, plugins: [entry, ...primary.plugins] } }, true);
  expect(nodeReadiness(notLast.confDir, notLast.binDir).ready).toBe(false);
  // sluice's entry in a file the runtime does not load (another sorts first) does not protect the node.
  const shadowed = node({ '05-other.conflist': primary, '10-bridge.conflist': withSluice(primary, entry) }, true);
  expect(nodeReadiness(shadowed.confDir, shadowed.binDir)).toEqual({ ready: false, reason: `${PLUGIN_TYPE} is not the last plugin of 05-other.conflist` });
  const noLauncher = node({ '10-bridge.conflist': withSluice(primary, entry) }, false);
  expect(nodeReadiness(noLauncher.confDir, noLauncher.binDir)).toEqual({ ready: false, reason: `${PLUGIN_TYPE} is not in ${noLauncher.binDir}` });
});

test('ready once the agent put its entry last in the primary configuration and its launcher in place; the program exits 0 then and 1 before', () => {
  const n = node({ '10-bridge.conflist': primary }, true);
  const probe = () => {
    try {
      return { code: 0, out: execFileSync(process.execPath, ['--no-warnings', join(import.meta.dirname, '..', 'src', 'ready.ts'), `--cni-conf-dir=${n.confDir}`, `--cni-bin-dir=${n.binDir}`], { encoding: 'utf8' }) };
    } catch (err) {
      const e = err as { status: number; stdout: string };
      return { code: e.status, out: e.stdout };
    }
  };
  expect(probe()).toEqual({ code: 1, out: `${PLUGIN_TYPE} is not the last plugin of 10-bridge.conflist\n` });
  expect(ensureConflist(n.confDir, entry)).toBe('added');
  expect(nodeReadiness(n.confDir, n.binDir)).toEqual({ ready: true, reason: `${PLUGIN_TYPE} is the last plugin of 10-bridge.conflist` });
  expect(probe()).toEqual({ code: 0, out: `${PLUGIN_TYPE} is the last plugin of 10-bridge.conflist\n` });
});
