// The image layer writer: the same tree gives the same bytes (whatever the files' times), GNU tar
// reads back names past ustar's 100 bytes, symlinks, hard links and modes, and owners are root.
import { execFileSync } from 'node:child_process';
import { chmodSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { entryHeader, listTree, writeLayer } from '../images/tar-layer.ts';

const LONG = `${'deep/'.repeat(30)}file-with-a-long-name.txt`;

function tree(): string {
  const root = mkdtempSync(join(tmpdir(), 'sluice-layer-'));
  mkdirSync(join(root, 'bin'));
  writeFileSync(join(root, 'bin', 'tool'), '#!/bin/sh\necho hi\n');
  chmodSync(join(root, 'bin', 'tool'), 0o755);
  symlinkSync('tool', join(root, 'bin', 'alias'));
  linkSync(join(root, 'bin', 'tool'), join(root, 'bin', 'hardlinked'));
  mkdirSync(join(root, 'tmp'));
  chmodSync(join(root, 'tmp'), 0o1777);
  mkdirSync(join(root, LONG, '..'), { recursive: true });
  writeFileSync(join(root, LONG), 'x'.repeat(1000));
  return root;
}

describe('deterministic layers', () => {
  test('two trees with the same content and different file times give the same digests', async () => {
    const a = tree();
    const b = tree();
    utimesSync(join(b, 'bin', 'tool'), new Date(2001, 1, 1), new Date(2001, 1, 1));
    const out = mkdtempSync(join(tmpdir(), 'sluice-layer-out-'));
    const la = await writeLayer(listTree(a, 'app'), 1_700_000_000, join(out, 'a.tgz'));
    const lb = await writeLayer(listTree(b, 'app'), 1_700_000_000, join(out, 'b.tgz'));
    expect(lb).toEqual(la);
    expect(la.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const lc = await writeLayer(listTree(a, 'app'), 1_700_000_001, join(out, 'c.tgz'));
    expect(lc.diffId).not.toBe(la.diffId);
  });

  test('GNU tar reads it back: long names, symlinks, hard links, modes, root owner', async () => {
    const src = tree();
    const out = mkdtempSync(join(tmpdir(), 'sluice-layer-out-'));
    await writeLayer(listTree(src, 'app'), 1_700_000_000, join(out, 'layer.tgz'));
    const listing = execFileSync('tar', ['-tvzf', join(out, 'layer.tgz')], { encoding: 'utf8' });
    expect(listing.split('\n').filter(Boolean).every((l) => l.includes(' root/root '))).toBe(true);
    const dest = mkdtempSync(join(tmpdir(), 'sluice-layer-x-'));
    execFileSync('tar', ['-xzf', join(out, 'layer.tgz'), '-C', dest]);
    expect(readFileSync(join(dest, 'app', LONG), 'utf8')).toBe('x'.repeat(1000));
    expect(readlinkSync(join(dest, 'app', 'bin', 'alias'))).toBe('tool');
    expect(lstatSync(join(dest, 'app', 'bin', 'hardlinked')).ino).toBe(lstatSync(join(dest, 'app', 'bin', 'tool')).ino);
    expect(lstatSync(join(dest, 'app', 'bin', 'tool')).mode & 0o7777).toBe(0o755);
    expect(lstatSync(join(dest, 'app', 'tmp')).mode & 0o7777).toBe(0o1777);
    expect(lstatSync(join(dest, 'app')).isDirectory()).toBe(true);
  });

  test('entries are sorted, parents of the prefix come first', () => {
    const entries = listTree(tree(), 'app/x');
    expect(entries.slice(0, 2).map((e) => e.path)).toEqual(['app', 'app/x']);
    const paths = entries.map((e) => e.path);
    expect([...paths].sort((p, q) => (p < q ? -1 : p > q ? 1 : 0))).toEqual(paths);
  });

  test('a header checksums correctly (as tar verifies it)', () => {
    const h = entryHeader({ path: 'a', type: 'file', mode: 0o644, size: 3 }, 0);
    const stored = parseInt(h.subarray(148, 154).toString(), 8);
    const copy = Buffer.from(h);
    copy.fill(' ', 148, 156);
    expect(copy.reduce((n, b) => n + b, 0)).toBe(stored);
  });
});
