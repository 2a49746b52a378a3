// Audit recorder configuration: validated once at start-up, defaults applied, then frozen. A bad
// value fails fast naming the field. Never read from the environment here; the sidecar's config
// module maps its env/flags onto this shape.
import { z } from 'zod';
import { Creator, deepFreeze, parseOrThrow } from '../../../api/src/index.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Session ids become a Loki label value and a file-name-safe token. */
export const SESSION_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export const FsyncPolicy = z
  .enum(['always', 'interval', 'none'])
  .describe(
    'always: record() resolves after write + fdatasync (group commit); interval: after write, synced every fsyncIntervalMs; none: after write, the OS syncs',
  );

export const SpoolConfig = z
  .object({
    maxBytes: z.number().int().min(64 * KiB).default(64 * MiB).describe('bytes the spool may hold on disk (unshipped events plus the segment being shipped) before onFull applies'),
    segmentBytes: z.number().int().min(4 * KiB).default(4 * MiB).describe('a segment is sealed and a new one started past this size'),
    fsync: FsyncPolicy.default('always'),
    fsyncIntervalMs: z.number().int().min(1).max(60_000).default(100),
    onFull: z.enum(['fail-closed', 'drop']).default('fail-closed'),
  })
  .strict()
  .refine((s) => s.segmentBytes * 2 <= s.maxBytes, { message: 'segmentBytes must be at most half of maxBytes', path: ['segmentBytes'] });

export const LokiConfig = z
  .object({
    url: z.url().describe('base URL of Loki (or a gateway); /loki/api/v1/push is appended'),
    tenant: z.string().min(1).optional().describe('sent as X-Scope-OrgID'),
    encoding: z.enum(['protobuf', 'json']).default('protobuf'),
    compression: z
      .enum(['snappy', 'none'])
      .default('snappy')
      .describe('protobuf bodies: snappy-compress (about 5x smaller), or frame as uncompressed snappy literals (saves the sidecar CPU)'),
    headers: z.record(z.string(), z.string()).default({}).describe('extra request headers, e.g. Authorization for a gateway'),
    batchMaxEvents: z.number().int().min(1).max(100_000).default(2000),
    batchMaxBytes: z.number().int().min(1 * KiB).max(64 * MiB).default(1 * MiB),
    lingerMs: z.number().int().min(0).max(10_000).default(20).describe('wait this long for a batch to fill once the first event is there'),
    timeoutMs: z.number().int().min(100).max(300_000).default(10_000),
    retryInitialMs: z.number().int().min(1).default(250),
    retryMaxMs: z.number().int().min(1).default(30_000),
  })
  .strict()
  .refine((l) => l.retryInitialMs <= l.retryMaxMs, { message: 'retryInitialMs must not exceed retryMaxMs', path: ['retryInitialMs'] });

export const AuditConfig = z
  .object({
    spoolDir: z.string().min(1),
    pod: z.object({ namespace: z.string().min(1), name: z.string().min(1), service_account: z.string().optional() }).strict(),
    creator: Creator.optional().describe('who created the pod (sluice.io/creator); stamped on the recorder\'s own events'),
    session: z.string().regex(SESSION_ID_PATTERN).optional().describe('default: resume the spool\'s session, else a new random id'),
    spool: SpoolConfig.default(SpoolConfig.parse({})),
    loki: LokiConfig.optional().describe('absent: events are spooled but not shipped'),
  })
  .strict();

export type AuditConfigInput = z.input<typeof AuditConfig>;
export type AuditConfig = z.infer<typeof AuditConfig>;
export type SpoolConfig = z.infer<typeof SpoolConfig>;
export type LokiConfig = z.infer<typeof LokiConfig>;


/** Validates, applies defaults and freezes; throws SchemaError naming every bad field. */
export function parseAuditConfig(raw: unknown): AuditConfig {
  return deepFreeze(parseOrThrow(AuditConfig, raw, 'audit config'));
}

/** The sidecar's `audit` settings; the pod, creator and session come from the running sidecar. */
export const SidecarAuditSettings = z
  .object({
    enabled: z.boolean().default(true).describe('off only for local experiments: a sidecar without an audit trail forwards unrecorded'),
    spoolDir: z.string().min(1).default('/var/run/sluice/spool'),
    spool: SpoolConfig.prefault({}),
    loki: LokiConfig.optional(),
  })
  .strict();
export type SidecarAuditSettings = z.infer<typeof SidecarAuditSettings>;
