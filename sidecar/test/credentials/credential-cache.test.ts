// The credential cache on an injected clock: one issuance per key under a burst, refresh ahead of
// expiry while the old credential is still served, never a credential past its usable window,
// fast failure during the back-off after a provider error, and a bounded number of entries.
import { describe, expect, test } from '@jest/globals';
import { CredentialCache } from '../../src/credentials/credential-cache.ts';
import type { Issued } from '../../src/credentials/credential-cache.ts';

const KEY = { provider: 'aws-sts', audience: 'sts.amazonaws.com', role: 'arn:aws:iam::123456789012:role/r' };

function setup(o: { refreshBeforeMs?: number; minRemainingMs?: number; failureBackoffMs?: number; maxEntries?: number } = {}) {
  let now = 1_000_000;
  const lookups: string[] = [];
  const issuedAt: number[] = [];
  const cache = new CredentialCache({
    now: () => now,
    refreshBeforeMs: o.refreshBeforeMs ?? 300_000,
    minRemainingMs: o.minRemainingMs ?? 60_000,
    failureBackoffMs: o.failureBackoffMs ?? 1000,
    maxEntries: o.maxEntries ?? 100,
    onLookup: (_p, r) => lookups.push(r),
    onIssued: () => issuedAt.push(now),
  });
  let n = 0;
  const pending: ((v: Issued<string>) => void)[] = [];
  return {
    cache,
    lookups,
    issuedAt,
    advance: (ms: number) => (now += ms),
    now: () => now,
    /** An issuer that answers at once with a 1 h credential named by a counter. */
    instant: () => Promise.resolve({ value: `cred-${++n}`, expiresAt: now + 3600_000 }),
    /** An issuer that waits until release() is called. */
    deferred: () =>
      new Promise<Issued<string>>((resolve) => {
        n++;
        pending.push(resolve);
      }),
    release: (value: string, ttl = 3600_000) => pending.shift()!({ value, expiresAt: now + ttl }),
    calls: () => n,
  };
}

describe('CredentialCache', () => {
  test('a burst of concurrent misses costs one issuance (single flight)', async () => {
    const t = setup();
    const burst = Array.from({ length: 500 }, () => t.cache.get(KEY, t.deferred));
    expect(t.calls()).toBe(1);
    t.release('only');
    const got = await Promise.all(burst);
    expect(new Set(got.map((g) => g.value))).toEqual(new Set(['only']));
    expect(t.lookups.filter((l) => l === 'miss')).toHaveLength(500);
    await t.cache.get(KEY, t.instant);
    expect(t.calls()).toBe(1);
    expect(t.lookups.at(-1)).toBe('hit');
  });

  test('refreshes ahead in the background while the old credential is served', async () => {
    const t = setup();
    expect((await t.cache.get(KEY, t.instant)).value).toBe('cred-1');
    t.advance(3600_000 - 299_000); // inside the refresh window, well before expiry
    let resolveRefresh!: (v: Issued<string>) => void;
    const slow = () => new Promise<Issued<string>>((r) => (resolveRefresh = r));
    const during = await t.cache.get(KEY, slow);
    expect(during).toMatchObject({ value: 'cred-1', cached: true });
    // A second hit does not start a second refresh.
    await t.cache.get(KEY, () => Promise.reject(new Error('must not be called')));
    resolveRefresh({ value: 'cred-2', expiresAt: t.now() + 3600_000 });
    await new Promise((r) => setImmediate(r));
    expect((await t.cache.get(KEY, t.instant)).value).toBe('cred-2');
  });

  test('never hands out a credential inside its last minRemaining', async () => {
    const t = setup();
    await t.cache.get(KEY, t.instant);
    t.advance(3600_000 - 30_000);
    const got = await t.cache.get(KEY, t.instant);
    expect(got).toMatchObject({ value: 'cred-2', cached: false });
  });

  test('short-lived credentials refresh at half-life and stay usable for three quarters', async () => {
    const t = setup();
    await t.cache.get(KEY, () => Promise.resolve({ value: 'short', expiresAt: t.now() + 100_000 }));
    t.advance(40_000);
    expect((await t.cache.get(KEY, t.instant)).value).toBe('short');
    expect(t.calls()).toBe(0);
    t.advance(20_000); // 60 s: past half-life → refresh in background, still served
    expect((await t.cache.get(KEY, t.instant)).value).toBe('short');
    expect(t.calls()).toBe(1);
  });

  test('after a failure, callers fail fast for the back-off, then try again', async () => {
    const t = setup({ failureBackoffMs: 1000 });
    let calls = 0;
    const failing = () => {
      calls++;
      return Promise.reject(new Error('sts down'));
    };
    await expect(t.cache.get(KEY, failing)).rejects.toThrow('sts down');
    await expect(t.cache.get(KEY, failing)).rejects.toThrow('sts down');
    expect(calls).toBe(1);
    t.advance(1001);
    await expect(t.cache.get(KEY, failing)).rejects.toThrow('sts down');
    expect(calls).toBe(2);
    t.advance(1001);
    expect((await t.cache.get(KEY, t.instant)).value).toBe('cred-1');
  });

  test('an already-expired credential is a provider error with its back-off, not a credential', async () => {
    const t = setup({ failureBackoffMs: 1000 });
    let calls = 0;
    const stale = () => {
      calls++;
      return Promise.resolve({ value: 'expired', expiresAt: t.now() - 1 });
    };
    await expect(t.cache.get(KEY, stale)).rejects.toMatchObject({ code: 'credentials.provider_rejected', provider: 'aws-sts' });
    await expect(t.cache.get(KEY, stale)).rejects.toMatchObject({ code: 'credentials.provider_rejected' });
    expect(calls).toBe(1);
  });

  test('a failed background refresh keeps serving the old credential until it is no longer usable', async () => {
    const t = setup({ failureBackoffMs: 0 });
    await t.cache.get(KEY, t.instant);
    t.advance(3600_000 - 200_000);
    expect((await t.cache.get(KEY, () => Promise.reject(new Error('blip')))).value).toBe('cred-1');
    await new Promise((r) => setImmediate(r));
    expect((await t.cache.get(KEY, () => Promise.reject(new Error('blip')))).value).toBe('cred-1');
    t.advance(150_000);
    await expect(t.cache.get(KEY, () => Promise.reject(new Error('still down')))).rejects.toThrow('still down');
  });

  test('keys are separate, the map is bounded, and seconds to expiry are per provider', async () => {
    const t = setup({ maxEntries: 3 });
    for (let i = 0; i < 5; i++) await t.cache.get({ ...KEY, role: `r${i}` }, () => Promise.resolve({ value: `v${i}`, expiresAt: t.now() + (i + 1) * 1000_000 }));
    await t.cache.get({ provider: 'kubernetes', audience: '', role: 'ns/sa' }, () => Promise.resolve({ value: 'k', expiresAt: t.now() + 600_000 }));
    expect(t.cache.size).toBe(3);
    expect(Object.fromEntries(t.cache.secondsToExpiry())).toEqual({ 'aws-sts': 4000, kubernetes: 600 }); // r3 and r4 stay: the soonest to expire went
    t.cache.clear();
    expect(t.cache.size).toBe(0);
  });
});
