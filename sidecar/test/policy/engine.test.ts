// The policy engine fails closed: no bundle, a broken bundle, an evaluation error or a malformed
// decision all deny with a code that says why, and a bad update never replaces a good bundle.
import { afterEach, describe, expect, test } from '@jest/globals';
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { BundleError, readBundle } from '../../../lib/src/policy/bundle.ts';
import { BundleWatcher } from '../../src/policy/bundle-watcher.ts';
import { PolicyEngine } from '../../../lib/src/policy/engine.ts';
import type { LoadedBundle } from '../../../lib/src/policy/engine.ts';
import { agentInput } from '../../../policies/cases/cases.ts';
import { allowAllRego, buildBundle, defaultBundle, opaBin, scratchDir } from '../../../testkit/policy/opa-build.ts';

const input = agentInput({ method: 'GET', host: 'registry.npmjs.org', path: '/express' });

describe('without a bundle', () => {
  test('denies everything with "no policy loaded" and is not ready', () => {
    const engine = new PolicyEngine();
    expect(engine.ready).toBe(false);
    const { decision, fault } = engine.evaluate(input);
    expect(decision).toEqual({ allow: false, code: 'policy.not_loaded', reason: 'no policy loaded' });
    expect(fault).toBe('not_loaded');
  });

  test('a missing path is a BundleError with a stable code', async () => {
    await expect(readBundle('/nonexistent/bundle.tar.gz')).rejects.toMatchObject({ code: 'bundle.missing' });
  });
});

describe('loading', () => {
  test('reads the revision from the manifest of a tarball and of an unpacked directory', async () => {
    const dir = scratchDir();
    execFileSync('tar', ['-xzf', defaultBundle, '-C', dir], { stdio: 'ignore' });
    const fromTar = await readBundle(defaultBundle);
    const fromDir = await readBundle(dir);
    expect(fromTar.revision).toMatch(/^[0-9a-f]{12}$/);
    expect(fromDir.revision).toBe(fromTar.revision);
    const engine = new PolicyEngine();
    await engine.load(fromDir);
    expect(engine.evaluate(input).decision.code).toBe('registry.read');
  });

  test('refuses a bundle that calls a builtin the WASM runtime lacks, naming it', async () => {
    const rego = 'package sluice\n\ndecision := {"allow": true, "code": "t", "reason": sprintf("%d", [time.now_ns()])}\n';
    const bundle = await readBundle(buildBundle(rego, 'needs-time'));
    const load = new PolicyEngine().load(bundle);
    await expect(load).rejects.toBeInstanceOf(BundleError);
    await expect(load).rejects.toMatchObject({ code: 'bundle.unsupported_builtin', message: expect.stringContaining('time.now_ns') });
  });

  test('refuses a corrupt wasm module', async () => {
    const dir = scratchDir();
    writeFileSync(join(dir, 'policy.wasm'), Buffer.from('not wasm at all'));
    await expect(new PolicyEngine().load(await readBundle(dir))).rejects.toMatchObject({ code: 'bundle.bad_wasm' });
  });

  test('refuses a bundle built without the sluice/decision entrypoint', async () => {
    const dir = scratchDir();
    mkdirSync(join(dir, 'src'));
    writeFileSync(join(dir, 'src', 'p.rego'), 'package other\n\nx := 1\n');
    const out = join(dir, 'b.tar.gz');
    execFileSync(opaBin, ['build', '-t', 'wasm', '-e', 'other/x', '-o', out, join(dir, 'src')]);
    await expect(new PolicyEngine().load(await readBundle(out))).rejects.toMatchObject({ code: 'bundle.no_entrypoint' });
  });
});

describe('decisions the policy gets wrong', () => {
  test('a decision missing required fields is a deny that says it is malformed', async () => {
    const engine = new PolicyEngine();
    await engine.load(await readBundle(buildBundle('package sluice\n\ndecision := {"allow": true}\n', 'malformed')));
    const { decision, fault } = engine.evaluate(input);
    expect(fault).toBe('malformed_decision');
    expect(decision.allow).toBe(false);
    expect(decision.code).toBe('policy.malformed_decision');
    expect(decision.reason).toMatch(/code/);
  });

  test('an undefined decision is a deny', async () => {
    const engine = new PolicyEngine();
    await engine.load(await readBundle(buildBundle('package sluice\n\ndecision := {"allow": true, "code": "x", "reason": "y"} if input.never\n', 'undef')));
    expect(engine.evaluate(input)).toMatchObject({ fault: 'malformed_decision', decision: { allow: false } });
  });

  test('a runtime error (conflicting values) is a deny, not an exception', async () => {
    const rego = 'package sluice\n\ndecision := {"allow": true, "code": "a", "reason": "r"} if input.request.method == "GET"\n\ndecision := {"allow": false, "code": "b", "reason": "r"} if input.request.host != ""\n';
    const engine = new PolicyEngine();
    await engine.load(await readBundle(buildBundle(rego, 'conflict')));
    const result = engine.evaluate(input);
    expect(result.fault).toBe('eval_error');
    expect(result.decision.allow).toBe(false);
  });
});

/** Lays out a bundle the way the kubelet mounts a ConfigMap: files → ..data → ..<timestamp>/. */
class ConfigMapDir {
  readonly dir = scratchDir('configmap-');
  #generation = 0;

  publish(bundleTarball: string): void {
    const gen = join(this.dir, `..gen_${++this.#generation}`);
    mkdirSync(gen);
    execFileSync('tar', ['-xzf', bundleTarball, '-C', gen], { stdio: 'ignore' });
    const tmp = join(this.dir, '..data_tmp');
    symlinkSync(`..gen_${this.#generation}`, tmp);
    renameSync(tmp, join(this.dir, '..data')); // the atomic swap the kubelet does
    if (this.#generation === 1) {
      for (const f of ['policy.wasm', 'data.json', '.manifest']) symlinkSync(join('..data', f), join(this.dir, f));
    }
  }

  publishBroken(): void {
    const gen = join(this.dir, `..gen_${++this.#generation}`);
    mkdirSync(gen);
    writeFileSync(join(gen, 'policy.wasm'), 'garbage');
    writeFileSync(join(gen, 'data.json'), '{}');
    writeFileSync(join(gen, '.manifest'), '{"revision":"broken"}');
    const tmp = join(this.dir, '..data_tmp');
    symlinkSync(`..gen_${this.#generation}`, tmp);
    renameSync(tmp, join(this.dir, '..data'));
  }
}

/** Collects watcher events so a test can await the next one instead of sleeping. */
function eventQueue() {
  const events: ({ kind: 'loaded'; meta: LoadedBundle } | { kind: 'failed'; error: BundleError })[] = [];
  const waiters: (() => void)[] = [];
  const push = (e: (typeof events)[number]) => {
    events.push(e);
    waiters.splice(0).forEach((w) => w());
  };
  return {
    handlers: {
      loaded: (meta: LoadedBundle) => push({ kind: 'loaded', meta }),
      failed: (error: BundleError) => push({ kind: 'failed', error }),
    },
    async next() {
      while (events.length === 0) await new Promise<void>((resolve) => waiters.push(resolve));
      return events.shift()!;
    },
  };
}

describe('hot reload from a mounted ConfigMap', () => {
  let watcher: BundleWatcher | undefined;
  afterEach(() => watcher?.stop());

  test('picks up a new revision, keeps the last good one when an update is corrupt', async () => {
    const scratch = scratchDir();
    const cm = new ConfigMapDir();
    cm.publish(buildBundle(allowAllRego('rev.one'), 'one', {}, scratch));
    const engine = new PolicyEngine();
    const q = eventQueue();
    watcher = new BundleWatcher(cm.dir, engine, q.handlers, { pollIntervalMs: 200 });
    await watcher.start();
    expect(await q.next()).toMatchObject({ kind: 'loaded', meta: { revision: 'one' } });
    expect(engine.ready).toBe(true);

    cm.publish(buildBundle(allowAllRego('rev.two'), 'two', {}, scratch));
    expect(await q.next()).toMatchObject({ kind: 'loaded', meta: { revision: 'two' } });
    expect(engine.evaluate(input).decision.code).toBe('rev.two');

    cm.publishBroken();
    const failure = await q.next();
    expect(failure).toMatchObject({ kind: 'failed', error: { code: 'bundle.bad_wasm' } });
    expect(engine.revision).toBe('two');
    expect(engine.evaluate(input).decision.code).toBe('rev.two');

    cm.publish(buildBundle(allowAllRego('rev.three'), 'three', {}, scratch));
    expect(await q.next()).toMatchObject({ kind: 'loaded', meta: { revision: 'three' } });
  });

  test('a path with no bundle yet reports the failure and stays not ready until one appears', async () => {
    const cm = new ConfigMapDir();
    const engine = new PolicyEngine();
    const q = eventQueue();
    watcher = new BundleWatcher(cm.dir, engine, q.handlers, { pollIntervalMs: 100 });
    await watcher.start();
    expect(await q.next()).toMatchObject({ kind: 'failed', error: { code: 'bundle.no_wasm' } });
    expect(engine.ready).toBe(false);
    expect(engine.evaluate(input).decision.code).toBe('policy.not_loaded');
    cm.publish(buildBundle(allowAllRego('late'), 'late'));
    expect(await q.next()).toMatchObject({ kind: 'loaded', meta: { revision: 'late' } });
    expect(engine.ready).toBe(true);
  });
});
