// Audit trail: one agent pod's hash-chained audit events as the log store (VictoriaLogs, through
// its Grafana plugin) holds them — the stream itself, and the investigator's questions of
// docs/audit.md as tables: what was pushed, what was held and who decided, what was denied and
// masked, where the pod went, and the chain's own notices of gaps. LogsQL only; the stream labels
// are namespace, pod and session, everything else is unpacked from the event.
// e2e/audit/investigator-questions.test.ts runs every query here against the real VictoriaLogs.
import type { DashboardSpec } from './panels.ts';
import { CLUSTER, UIDS, q } from './panels.ts';

const STREAM = '_stream:{namespace="$namespace",pod="$pod"}';

export const auditTrail: DashboardSpec = {
  uid: UIDS.auditTrail,
  title: 'sluice / Audit trail',
  description: 'One agent pod’s audit events from the log store (VictoriaLogs datasource, LogsQL). For the whole session as a timeline: kubectl sluice replay --pod <pod>; to prove it unedited: kubectl sluice verify <session>.',
  logs: true,
  variables: [
    { name: 'namespace', label: 'Namespace', query: `label_values(sluice_policy_loaded{${CLUSTER}}, namespace)`, multi: false },
    { name: 'pod', label: 'Pod', query: `label_values(sluice_policy_loaded{${CLUSTER},namespace="$namespace"}, pod)`, multi: false },
  ],
  links: [
    { title: 'Pod', uid: UIDS.pod, tooltip: 'This pod’s metrics' },
    { title: 'Approvals', uid: UIDS.approvals, tooltip: 'The approvers’ queue' },
    { title: 'Overview', uid: UIDS.overview, tooltip: 'Every sidecar and the webhook' },
  ],
  sections: [
    {
      row: 'What the agent did',
      panels: [
        {
          kind: 'table',
          title: 'Git pushes',
          description: 'Pushes the agent made or tried, by repository, and what sluice decided (hold: waited for an approver).',
          unit: 'short',
          queries: [q(`${STREAM} | unpack_json | filter kind:=request request.facts.git.operation:=push | fields _time, session, request_id, request.host, request.facts.git.repo, decision.action, decision.code`)],
        },
        {
          kind: 'table',
          title: 'Approval decisions',
          description: 'Held requests decided: by whom, the outcome, how long the agent waited. detail.requestIds links to the request_id of the held requests.',
          unit: 'short',
          queries: [q(`${STREAM} | unpack_json | filter kind:=approval detail.type:=decided | fields _time, detail.name, detail.requestIds, detail.outcome, detail.decidedBy, detail.waitedMs`)],
        },
        {
          kind: 'table',
          title: 'Denied, by code',
          description: 'Requests sluice denied, counted by decision code over the range.',
          unit: 'short',
          queries: [q(`${STREAM} | unpack_json | filter decision.action:=deny | stats by (decision.code) count() denies`)],
        },
        {
          kind: 'table',
          title: 'Egress inventory',
          description: 'Every host the pod asked for and what was decided, counted over the range.',
          unit: 'short',
          queries: [q(`${STREAM} | unpack_json | filter kind:=request | stats by (request.host, decision.action) count() requests`)],
        },
        {
          kind: 'table',
          title: 'Masked secrets',
          description: 'Responses in which secrets were masked: rule ids and offsets, never a value.',
          unit: 'short',
          queries: [q(`${STREAM} | unpack_json | filter kind:=response masking:* | fields _time, session, request_id, masking`)],
        },
        {
          kind: 'table',
          title: 'Gaps the chain records',
          description: 'The chain’s own notices: events dropped while the spool was full, and events shipped as omitted stubs (too large for the store). kubectl sluice verify names them too.',
          unit: 'short',
          queries: [q(`${STREAM} | unpack_json | filter kind:=dropped or omitted.reason:* | fields _time, session, seq, kind, omitted.reason, detail.reason, detail.count, detail.omitted`)],
        },
      ],
    },
    {
      row: 'The stream',
      panels: [
        {
          kind: 'logs',
          title: 'Audit events',
          description: 'Every event of the pod’s sessions as stored (canonical JSON, the bytes the hash chain covers).',
          unit: 'short',
          queries: [q(`${STREAM} | sort by (_time desc)`)],
        },
      ],
    },
  ],
};
