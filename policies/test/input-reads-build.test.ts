// The build step that records which input parts a policy reads (policies/scripts/input-reads.ts)
// sees every module opa build compiled: a Rego file reached through a symlink is scanned (it was
// compiled but skipped, so its reads were missing from every decision-cache key), and a module the
// scan was not given fails the build instead of producing a member that under-reports.
import { describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { addInputReads } from '../scripts/input-reads.ts';
import { opaBin, scratchDir } from '../../testkit/policy/opa-build.ts';

const MAIN = 'package sluice\nimport rego.v1\ndecision := {"allow": data.sluice.h.ok == true, "code": "x.y", "reason": "r"}\n';
const HELPER = 'package sluice.h\nimport rego.v1\nok if input.session.seq == 1\n';

function build(dir: string, src: string): string {
  const out = join(dir, 'bundle.tar.gz');
  execFileSync(opaBin, ['build', '-t', 'wasm', '-e', 'sluice/decision', '-o', out, src], { cwd: dir, stdio: 'pipe' });
  return out;
}

describe('input-reads build step', () => {
  test('a module reached through a symlink is scanned', async () => {
    const dir = scratchDir('sluice-input-reads-');
    mkdirSync(join(dir, 'src'));
    writeFileSync(join(dir, 'src', 'p.rego'), MAIN);
    writeFileSync(join(dir, 'helper.rego.txt'), HELPER);
    symlinkSync(join(dir, 'helper.rego.txt'), join(dir, 'src', 'h.rego'));
    const bundle = build(dir, join(dir, 'src'));
    const member = JSON.parse(await addInputReads(bundle, [join(dir, 'src')])) as { paths: string[][] };
    expect(member.paths).toContainEqual(['session', 'seq']);
    expect(readFileSync(bundle).length).toBeGreaterThan(0);
  });

  test('a compiled module the scan was not given fails the build', async () => {
    const dir = scratchDir('sluice-input-reads-');
    mkdirSync(join(dir, 'src'));
    mkdirSync(join(dir, 'empty'));
    writeFileSync(join(dir, 'src', 'p.rego'), MAIN);
    writeFileSync(join(dir, 'src', 'h.rego'), HELPER);
    const bundle = build(dir, join(dir, 'src'));
    await expect(addInputReads(bundle, [join(dir, 'empty')])).rejects.toThrow(/compiled modules not scanned for input reads: .*h\.rego/);
  });
});
