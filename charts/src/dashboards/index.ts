// The dashboards the chart ships, each written to charts/sluice/dashboards/<file>.
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { approvals } from './approvals.ts';
import { auditTrail } from './audit-trail.ts';
import { overview } from './overview.ts';
import { buildDashboard } from './panels.ts';
import type { DashboardSpec } from './panels.ts';
import { pod } from './pod.ts';

export interface ShippedDashboard {
  file: string;
  spec: DashboardSpec;
  build(): Dashboard;
}

const ship = (file: string, spec: DashboardSpec): ShippedDashboard => ({ file, spec, build: () => buildDashboard(spec) });

export const DASHBOARDS: readonly ShippedDashboard[] = [ship('overview.json', overview), ship('pod.json', pod), ship('approvals.json', approvals), ship('audit-trail.json', auditTrail)];
