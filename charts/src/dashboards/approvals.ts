// Approvals: the approvers' queue — how much is held, for how long, what becomes of it, and
// which pods wait.
import type { DashboardSpec } from './panels.ts';
import { CLUSTER, UIDS, q } from './panels.ts';

const NS = `${CLUSTER},namespace=~"$namespace"`;

export const approvals: DashboardSpec = {
  uid: 'sluice-approvals',
  title: 'sluice / Approvals',
  description: 'Requests held for human approval (kubectl sluice approve|deny).',
  variables: [{ name: 'namespace', label: 'Namespace', query: `label_values(sluice_policy_loaded{${CLUSTER}}, namespace)`, multi: true }],
  links: [
    { title: 'Overview', uid: UIDS.overview, tooltip: 'Every sidecar and the webhook' },
    { title: 'Pod', uid: UIDS.pod, tooltip: 'One agent pod' },
  ],
  sections: [
    {
      row: 'Queue',
      panels: [
        { kind: 'stat', title: 'Pending', description: 'ApprovalRequests waiting for a decision now.', unit: 'short', width: 4, queries: [q(`sum(sluice_approvals_pending{${NS}})`)] },
        { kind: 'stat', title: 'Requests held open', description: 'Agent requests held open on those ApprovalRequests (identical requests share one).', unit: 'short', width: 5, queries: [q(`sum(sluice_approvals_held_requests{${NS}})`)] },
        { kind: 'stat', title: 'Oldest wait', description: 'How long the oldest ApprovalRequest still pending has waited.', unit: 's', width: 6, queries: [q(`max(sluice_approvals_oldest_pending_age_seconds{${NS}})`)] },
        {
          kind: 'stat',
          title: 'Median time to decision',
          description: 'From the ApprovalRequest being created to the outcome, over the selected range.',
          unit: 's',
          width: 5,
          queries: [q(`histogram_quantile(0.5, sum by (le) (increase(sluice_approvals_time_to_decision_seconds_bucket{${NS}}[$__range])))`)],
        },
        {
          kind: 'stat',
          title: 'Expired in range',
          description: 'Held requests nobody decided in time (each was denied to the agent).',
          unit: 'short',
          width: 4,
          queries: [q(`sum(increase(sluice_approvals_decisions_total{${NS},outcome="expired"}[$__range])) or vector(0)`)],
        },
        {
          title: 'Pending by pod',
          description: 'ApprovalRequests waiting per agent pod (kubectl sluice approvals -n <namespace>). Click a series for the pod.',
          unit: 'short',
          podLink: true,
          queries: [q(`sum by (namespace, pod) (sluice_approvals_pending{${NS}})`, '{{namespace}}/{{pod}}')],
        },
        {
          title: 'Oldest wait by pod',
          description: 'How long the oldest pending ApprovalRequest of each agent pod has waited. Click a series for the pod.',
          unit: 's',
          podLink: true,
          queries: [q(`max by (namespace, pod) (sluice_approvals_oldest_pending_age_seconds{${NS}})`, '{{namespace}}/{{pod}}')],
        },
        {
          title: 'Share of the maximum wait used',
          description: 'The oldest wait over the pod’s approvals.maxWaitMs; at 1 the request is denied as expired (SluiceApprovalsWaitingTooLong fires past 0.5).',
          unit: 'percentunit',
          podLink: true,
          queries: [q(`max by (namespace, pod) (sluice_approvals_oldest_pending_age_seconds{${NS}} / sluice_approvals_max_wait_seconds{${NS}})`, '{{namespace}}/{{pod}}')],
        },
        {
          title: 'Held by reason',
          description: 'Requests the policy held for approval, by decision code.',
          unit: 'reqps',
          queries: [q(`sum by (code) (rate(sluice_requests_total{${NS},action="hold"}[$__rate_interval]))`, '{{code}}')],
        },
      ],
    },
    {
      row: 'Outcomes',
      panels: [
        {
          title: 'Decisions by outcome',
          description: 'approved, denied, expired (no one decided in time), revoked, killed (kill switch), unavailable (API server unreachable), abandoned (agent gave up), deleted, rejected.',
          unit: 'short',
          queries: [q(`sum by (outcome) (increase(sluice_approvals_decisions_total{${NS}}[$__rate_interval]))`, '{{outcome}}')],
        },
        {
          title: 'Time to decision',
          description: 'From the ApprovalRequest being created to the outcome the sidecar acted on.',
          unit: 's',
          queries: [
            q(`histogram_quantile(0.5, sum by (le) (rate(sluice_approvals_time_to_decision_seconds_bucket{${NS}}[$__rate_interval])))`, 'p50'),
            q(`histogram_quantile(0.9, sum by (le) (rate(sluice_approvals_time_to_decision_seconds_bucket{${NS}}[$__rate_interval])))`, 'p90'),
          ],
        },
        {
          title: 'Standing grants used',
          description: 'Requests let through by an earlier session- or ttl-scoped approval, without asking again.',
          unit: 'short',
          queries: [q(`sum by (scope) (increase(sluice_approvals_grant_uses_total{${NS}}[$__rate_interval]))`, '{{scope}}')],
        },
        {
          title: 'Approval plumbing',
          description: 'Failed Kubernetes API calls of the sidecars (create, status, watch; SluiceApprovalsApiErrors) and notification webhook attempts.',
          unit: 'short',
          queries: [
            q(`sum by (operation) (increase(sluice_approvals_api_errors_total{${NS}}[$__rate_interval]))`, 'api error: {{operation}}'),
            q(`sum by (result) (increase(sluice_approvals_notifications_total{${NS}}[$__rate_interval]))`, 'notification: {{result}}'),
          ],
        },
      ],
    },
  ],
};
