// The interception settings (ports, sidecar UID, DNS fake-IP ranges, as the sidecar reads them,
// settings.ts) → the rules to install. The one mapping both installers use: the init container
// (init mode, sidecar/src/main.ts) and the sluice node agent (CNI mode, cni/src/agent.ts), so the
// two modes install the same rules from the same settings. Pure; it must never read files or the
// environment itself.
import type { InterceptionSettings } from './settings.ts';
import { renderInterception } from './rules.ts';
import type { InterceptionPlan } from './rules.ts';

export function planFromSettings(config: InterceptionSettings): InterceptionPlan {
  return renderInterception({
    proxyUID: config.proxyUID,
    transparentPort: config.ports.transparent,
    proxyPort: config.ports.proxy,
    dnsPort: config.ports.dns,
    adminPort: config.ports.admin,
    fakeIpv4Cidr: config.dns.ipv4Cidr,
    fakeIpv6Cidr: config.dns.ipv6Cidr,
  });
}
