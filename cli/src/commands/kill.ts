// `kubectl sluice kill POD [--undo]`: sets the pod's kill switch (annotation sluice.io/kill: "true").
// The sidecar reads it live through the downward API and then denies every new request, cuts open
// streams and held requests. --undo removes the annotation.
import type { Command } from 'commander';
import { ANNOTATION_KILL } from '../../../api/src/index.ts';
import type { Io } from '../program.ts';
import { addKubeOptions, apiFailure, connect } from './approvals.ts';
import type { KubeFlags } from './approvals.ts';

interface KillFlags extends KubeFlags {
  undo?: boolean;
}

async function killCommand(pod: string, flags: KillFlags, io: Io): Promise<void> {
  const conn = await connect(flags);
  const body = { metadata: { annotations: { [ANNOTATION_KILL]: flags.undo ? null : 'true' } } };
  try {
    await conn.rest.call('PATCH', `/api/v1/namespaces/${encodeURIComponent(conn.namespace)}/pods/${encodeURIComponent(pod)}`, { body, contentType: 'application/merge-patch+json' });
  } catch (err) {
    apiFailure(err, `pod ${conn.namespace}/${pod}`);
  }
  io.out(flags.undo ? `kill switch off for ${conn.namespace}/${pod}\n` : `kill switch on for ${conn.namespace}/${pod}: new requests are denied, open and held ones cut\n`);
}

export function registerKillCommand(program: Command, io: Io): void {
  addKubeOptions(
    program
      .command('kill')
      .description("cut a pod off: set its kill switch (every request denied, open streams cut)")
      .argument('<pod>', 'pod name')
      .option('--undo', 'remove the kill switch'),
  ).action((pod: string, flags: KillFlags) => killCommand(pod, flags, io));
}
