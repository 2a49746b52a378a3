// The interception settings: the part of the sidecar's settings that decides which rules a pod
// gets — the sidecar's UID, its ports and the DNS fake-IP ranges — as one schema and one loader
// shared by the sidecar (its config schema is built from these pieces, sidecar/src/config/
// sidecar-config.ts), its init container (`init-network`, `check-network`) and the CNI node agent
// (cni/src/agent.ts). One schema, so the rules installed and the sidecar's listeners and DNS
// answers always agree. It must never read anything only the sidecar has (policy, trust dir), and
// never accept a value the sidecar's own schema would refuse.
import { z } from 'zod';
import { DEFAULT_PROXY_UID, DEFAULT_SIDECAR_PORTS, FAKE_IPV6_NONE, SIDECAR_ENV, SchemaError, describeIssues } from '../../../api/src/index.ts';
import { intFromEnv, readSettingsFile, setIfDefined, settingsSection } from '../config/settings-sources.ts';
import type { Env } from '../config/settings-sources.ts';

// 0 picks a free port (tests and the demo); a pod uses the fixed defaults.
export const Port = z.number().int().min(0).max(65535);

/** The sidecar's own UID: the only one whose traffic is not redirected. */
export const ProxyUID = z.number().int().min(1).max(2 ** 31 - 1).default(DEFAULT_PROXY_UID);

export const SidecarPortSettings = z
  .object({
    transparent: Port.default(DEFAULT_SIDECAR_PORTS.transparent),
    proxy: Port.default(DEFAULT_SIDECAR_PORTS.proxy),
    dns: Port.default(DEFAULT_SIDECAR_PORTS.dns),
    admin: Port.default(DEFAULT_SIDECAR_PORTS.admin),
  })
  .strict();

/**
 * The sidecar's `dns` settings: the fake-IP table behind the pod's DNS (sidecar/src/dns/
 * fake-ip-map.ts). The ranges are what the interception rules route locally; the whole section is
 * checked here so the rules are never installed from a section the sidecar refuses.
 */
export const FakeIpConfig = z
  .object({
    /** Synthetic IPv4 block; default the benchmarking range (RFC 2544), never routed on the internet. */
    ipv4Cidr: z.string().default('198.18.0.0/15'),
    /** Synthetic IPv6 block (a ULA /64); null answers AAAA with no data (an IPv4-only pod). */
    ipv6Cidr: z.string().nullable().default('fd73:6c75:6963::/64'),
    /** Most names mapped at once; the least recently used is dropped beyond it. */
    capacity: z.number().int().min(16).max(4_000_000).default(65_536),
    /** A mapping unused (not queried, not looked up) for this long is dropped. */
    entryTtlSeconds: z.number().int().min(10).max(7 * 24 * 3600).default(3600),
    /** TTL in the DNS answers: clients re-ask well before the mapping can expire. */
    answerTtlSeconds: z.number().int().min(0).max(3600).default(30),
  })
  .strict()
  .refine((c) => c.answerTtlSeconds * 4 <= c.entryTtlSeconds, {
    message: 'answerTtlSeconds must be at most a quarter of entryTtlSeconds',
    path: ['answerTtlSeconds'],
  });

export type FakeIpConfig = Readonly<z.infer<typeof FakeIpConfig>>;
export type FakeIpConfigInput = z.input<typeof FakeIpConfig>;

/** The three sections, with the same schemas the sidecar's config uses for them. */
export const InterceptionSettings = z.object({
  proxyUID: ProxyUID,
  ports: SidecarPortSettings.prefault({}),
  dns: FakeIpConfig.prefault({}),
});
export type InterceptionSettings = z.infer<typeof InterceptionSettings>;

/**
 * `base` (the settings file, merged with the cluster's settings for the sidecar) with the
 * webhook's SLUICE_* variables for the UID, the ports and the fake-IP ranges laid over it.
 */
export function withInterceptionEnv(base: Readonly<Record<string, unknown>>, env: Env): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...base };
  const ports = settingsSection(base, 'ports');
  setIfDefined(ports, 'transparent', intFromEnv(env, SIDECAR_ENV.transparentPort));
  setIfDefined(ports, 'proxy', intFromEnv(env, SIDECAR_ENV.proxyPort));
  setIfDefined(ports, 'dns', intFromEnv(env, SIDECAR_ENV.dnsPort));
  setIfDefined(ports, 'admin', intFromEnv(env, SIDECAR_ENV.adminPort));
  merged.ports = ports;
  setIfDefined(merged, 'proxyUID', intFromEnv(env, SIDECAR_ENV.proxyUID));
  // The fake-IP ranges: the webhook sets both containers' from the chart, so the rules the init
  // container installs and the sidecar's DNS answers agree without reading anything else.
  const dns = settingsSection(base, 'dns');
  setIfDefined(dns, 'ipv4Cidr', env[SIDECAR_ENV.fakeIpv4Cidr] || undefined);
  const v6 = env[SIDECAR_ENV.fakeIpv6Cidr];
  if (v6) dns.ipv6Cidr = v6 === FAKE_IPV6_NONE ? null : v6;
  merged.dns = dns;
  return merged;
}

/**
 * What the interception init container and the CNI node agent need, read from the same sources
 * as the sidecar (SLUICE_CONFIG_FILE, then SLUICE_* variables), without requiring what only the
 * sidecar has.
 */
export function loadInterceptionSettings(env: Env = process.env): InterceptionSettings {
  const result = InterceptionSettings.safeParse(withInterceptionEnv(readSettingsFile(env), env));
  if (!result.success) throw new SchemaError('invalid interception configuration', describeIssues(result.error));
  return result.data;
}
