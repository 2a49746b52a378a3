// A sidecar stand-in for the crash test: runs the real AuditRecorder in its own process, records
// events back to back and prints `ack <seq> <hash>` for each one record() resolved, so the parent
// knows exactly what was acknowledged before it SIGKILLs this process. With --count N it records N
// events, stops gracefully (session_end, drain) and prints `stopped <shipped>`.
// Usage: node recorder-child.ts --spool DIR --loki URL [--count N]
import { parseArgs } from 'node:util';
import { AuditRecorder } from '../../sidecar/src/audit/recorder.ts';

const { values } = parseArgs({
  options: { spool: { type: 'string' }, loki: { type: 'string' }, count: { type: 'string' } },
});
if (!values.spool || !values.loki) throw new Error('--spool and --loki are required');

const pod = { namespace: 'agents', name: 'crashy-agent' };
const recorder = new AuditRecorder({
  spoolDir: values.spool,
  pod,
  loki: { url: values.loki, lingerMs: 5, retryInitialMs: 20, retryMaxMs: 200 },
});
const info = await recorder.start();
process.stdout.write(`started ${JSON.stringify(info)}\n`);

const limit = values.count === undefined ? Infinity : Number(values.count);
for (let i = 0; i < limit; i++) {
  // Four in flight at a time, as a proxy serving several connections would have.
  const batch = await Promise.all(
    [0, 1, 2, 3].map((k) =>
      recorder.record({
        kind: 'request',
        pod,
        request_id: `${process.pid}-${i}-${k}`,
        request: { method: 'POST', scheme: 'https', host: 'api.openai.com', port: 443, path: '/v1/chat/completions' },
        decision: { action: 'allow', code: 'llm.allowed', reason: 'LLM APIs are allowed with DLP' },
        bytes: { in: 0, out: 1000 + i },
      }),
    ),
  );
  process.stdout.write(batch.map((ev) => `ack ${ev!.seq} ${ev!.hash}\n`).join(''));
}
const { shipped } = await recorder.stop({ drainTimeoutMs: 20_000 });
process.stdout.write(`stopped ${shipped}\n`);
