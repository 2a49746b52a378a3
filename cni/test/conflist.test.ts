// The node's CNI configuration with sluice's entry: added last, once, never touching the primary
// plugin's entries; re-added when the file is rewritten; removed cleanly.
import { afterEach, expect, test } from '@jest/globals';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PLUGIN_TYPE, primaryConfigFile, withSluice, withoutSluice } from '../src/conflist.ts';
import type { SluicePluginEntry } from '../src/conflist.ts';
import { ensureConflist, keepConflist, launcher, removeFromConflists } from '../src/installer.ts';

const entry: SluicePluginEntry = { type: PLUGIN_TYPE, agentSocket: '/var/run/sluice-cni/agent.sock', exemptNamespaces: ['kube-system', 'sluice-system'], timeoutMs: 10_000 };
const bridge = { type: 'bridge', bridge: 'cni0', ipam: { type: 'host-local', ranges: [[{ subnet: '10.244.0.0/24' }]] } };
const primary = { cniVersion: '1.0.0', name: 'k8s-pod-network', plugins: [bridge, { type: 'portmap', capabilities: { portMappings: true } }] };

const dirs: string[] = [];
function confDir(files: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-cni-conf-'));
  dirs.push(dir);
  for (const [name, v] of Object.entries(files)) writeFileSync(join(dir, name), typeof v === 'string' ? v : JSON.stringify(v));
  return dir;
}
const read = (dir: string, name: string) => JSON.parse(readFileSync(join(dir, name), 'utf8')) as { plugins: { type: string }[] };
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

test('the runtime loads the first config file in lexical order; temp and other files do not count', () => {
  expect(primaryConfigFile(['99-other.conflist', '10-calico.conflist', '.10-calico.conflist.sluice-tmp', 'README'])).toBe('10-calico.conflist');
  expect(primaryConfigFile(['README'])).toBeUndefined();
});

test('sluice is added last exactly once; the primary entries are untouched; adding twice changes nothing', () => {
  const once = withSluice(primary, entry);
  expect((once.plugins as { type: string }[]).map((p) => p.type)).toEqual(['bridge', 'portmap', PLUGIN_TYPE]);
  expect((once.plugins as unknown[]).slice(0, 2)).toEqual(primary.plugins);
  expect(withSluice(once, entry)).toEqual(once);
  // A stale entry in the middle (an older install, a reordering) moves to the end.
  const stale = { ...primary, plugins: [bridge, { ...entry, timeoutMs: 1 }, primary.plugins[1]] };
  expect((withSluice(stale, entry).plugins as { type: string }[]).map((p) => p.type)).toEqual(['bridge', 'portmap', PLUGIN_TYPE]);
  expect(withoutSluice(once)).toEqual(primary);
});

test('the keeper writes the primary file only; a single-plugin .conf becomes a .conflist the runtime loads first', () => {
  const dir = confDir({ '10-net.conflist': primary, '20-other.conflist': primary });
  expect(ensureConflist(dir, entry)).toBe('added');
  expect(read(dir, '10-net.conflist').plugins.at(-1)!.type).toBe(PLUGIN_TYPE);
  expect(read(dir, '20-other.conflist')).toEqual(primary);
  expect(ensureConflist(dir, entry)).toBe('present');

  const single = confDir({ '10-bridge.conf': { cniVersion: '0.4.0', name: 'net', ...bridge } });
  expect(ensureConflist(single, entry)).toBe('added');
  expect(readdirSync(single)).toEqual(['10-bridge.conflist']);
  expect(read(single, '10-bridge.conflist').plugins.map((p) => p.type)).toEqual(['bridge', PLUGIN_TYPE]);

  const broken = confDir({ '10-net.conflist': '{ not json' });
  expect(ensureConflist(broken, entry)).toBe('unreadable');
  expect(readFileSync(join(broken, '10-net.conflist'), 'utf8')).toBe('{ not json');
  expect(ensureConflist(confDir({}), entry)).toBe('no-config');
});

test('removal takes sluice out of every file and leaves the rest as it was', () => {
  const dir = confDir({ '10-net.conflist': withSluice(primary, entry), '20-x.conflist': primary });
  expect(removeFromConflists(dir)).toEqual(['10-net.conflist']);
  expect(read(dir, '10-net.conflist')).toEqual(primary);
});

test('when the primary plugin rewrites its conflist, the keeper puts sluice back', async () => {
  const dir = confDir({ '10-net.conflist': primary });
  const seen: string[] = [];
  const keeper = keepConflist(dir, entry, (r) => seen.push(r), 60_000);
  try {
    expect(read(dir, '10-net.conflist').plugins.at(-1)!.type).toBe(PLUGIN_TYPE);
    writeFileSync(join(dir, '10-net.conflist'), JSON.stringify(primary));
    const deadline = Date.now() + 5000;
    while (read(dir, '10-net.conflist').plugins.at(-1)!.type !== PLUGIN_TYPE && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(read(dir, '10-net.conflist').plugins.map((p) => p.type)).toEqual(['bridge', 'portmap', PLUGIN_TYPE]);
    expect(seen.filter((r) => r === 'added').length).toBeGreaterThanOrEqual(2);
  } finally {
    keeper.stop();
  }
});

test('the launcher runs the copied Node binary on the copied plugin, by the paths the host sees', () => {
  expect(launcher('/opt/cni/bin')).toContain(`exec '/opt/cni/bin/${PLUGIN_TYPE}.d/node' --no-warnings '/opt/cni/bin/${PLUGIN_TYPE}.d/plugin.mts' "$@"`);
});

test('a change seen just before stop does not put the entry back after the removal', async () => {
  const dir = confDir({ '10-net.conflist': primary });
  const keeper = keepConflist(dir, entry, () => undefined, 60_000);
  // The keeper's own write (and this one) are watch events: a pass is pending when it is stopped.
  writeFileSync(join(dir, '10-net.conflist'), JSON.stringify(primary));
  await new Promise((r) => setTimeout(r, 15)); // the events are delivered; the pass waits out its 50 ms debounce
  keeper.stop();
  removeFromConflists(dir);
  await new Promise((r) => setTimeout(r, 300));
  expect(read(dir, '10-net.conflist')).toEqual(primary);
});
