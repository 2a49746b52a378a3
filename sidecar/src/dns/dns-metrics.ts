// Prometheus metrics of the DNS lockdown, on a registry the caller owns (never the global one).
// Labels are bounded: query types outside a fixed list count as OTHER, results and reasons are
// the closed enums of answer-query.ts. The map gauges read the FakeIpMap at scrape time.
import { Counter, Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import type { DnsQueryEvent } from './answer-query.ts';
import type { FakeIpMap } from './fake-ip-map.ts';

const COUNTED_TYPES = new Set(['A', 'AAAA', 'HTTPS', 'SVCB', 'TXT', 'MX', 'ANY', 'CNAME', 'NS', 'PTR', 'SRV', 'SOA', 'NULL', 'CAA']);

export interface DnsMetrics {
  /** Queries by type (bounded) and result. */
  queries: Counter<'type' | 'result'>;
  /** Queries that got no address, by reason. */
  refusals: Counter<'reason'>;
  /** Counts one handled query. */
  observe(event: DnsQueryEvent, transport: 'udp' | 'tcp'): void;
  /** Binds the map gauges to a FakeIpMap; the last bound map wins. */
  track(map: FakeIpMap): void;
}

export function metricTypeLabel(type: string): string {
  if (type === '') return 'NONE';
  return COUNTED_TYPES.has(type) ? type : 'OTHER';
}

export function registerDnsMetrics(registry: Registry): DnsMetrics {
  const registers = [registry];
  let map: FakeIpMap | undefined;
  const queries = new Counter({
    name: 'sluice_dns_queries_total',
    help: 'DNS queries from the pod by query type and result (answered, nodata, nxdomain, refused, formerr, notimp, dropped)',
    labelNames: ['type', 'result'],
    registers,
  });
  const refusals = new Counter({
    name: 'sluice_dns_refusals_total',
    help: 'DNS queries that got no address, by reason (type_refused, label_too_long, malformed_packet, …)',
    labelNames: ['reason'],
    registers,
  });
  const transports = new Counter({
    name: 'sluice_dns_queries_by_transport_total',
    help: 'DNS queries by transport (udp, tcp)',
    labelNames: ['transport'],
    registers,
  });
  new Gauge({
    name: 'sluice_dns_fake_ip_entries',
    help: 'Names currently mapped to synthetic addresses',
    registers,
    collect() {
      this.set(map?.size ?? 0);
    },
  });
  new Counter({
    name: 'sluice_dns_fake_ip_evictions_total',
    help: 'Mappings dropped because the fake-IP table was full',
    registers,
    collect() {
      // The map counts; the metric mirrors it at scrape time.
      this.reset();
      this.inc(map?.evictions ?? 0);
    },
  });
  return {
    queries,
    refusals,
    observe(event, transport) {
      queries.inc({ type: metricTypeLabel(event.type), result: event.result });
      transports.inc({ transport });
      if (event.reason) refusals.inc({ reason: event.reason });
    },
    track(m) {
      map = m;
    },
  };
}
