// Audit recorder configuration: validated once at start-up, defaults applied, then frozen. A bad
// value fails fast naming the field. Never read from the environment here; the sidecar's config
// module maps its env/flags onto this shape.
import { z } from 'zod';
import { Creator, SPOOL_DIR, deepFreeze, parseOrThrow } from '../../../api/src/index.ts';
import { SESSION_ID_PATTERN } from '../../../lib/src/audit/spool-format.ts';

const KiB = 1024;
const MiB = 1024 * KiB;


export const FsyncPolicy = z
  .enum(['always', 'interval', 'none'])
  .describe(
    'always: record() resolves after write + fdatasync (group commit); interval: after write, synced every fsyncIntervalMs; none: after write, the OS syncs',
  );

export const SpoolConfig = z
  .object({
    maxBytes: z.number().int().min(64 * KiB).default(64 * MiB).describe('bytes the spool may hold on disk (unshipped events plus the segment being shipped) before onFull applies; with store none, the size of the ring (oldest events trimmed past it)'),
    segmentBytes: z.number().int().min(4 * KiB).default(4 * MiB).describe('a segment is sealed and a new one started past this size'),
    fsync: FsyncPolicy.default('always'),
    fsyncIntervalMs: z.number().int().min(1).max(60_000).default(100),
    onFull: z.enum(['fail-closed', 'drop']).default('fail-closed').describe('with a store: refuse records (503) or drop them (counted, a `dropped` event) when full; with store none the ring trims instead'),
  })
  .strict()
  .refine((s) => s.segmentBytes * 2 <= s.maxBytes, { message: 'segmentBytes must be at most half of maxBytes', path: ['segmentBytes'] });

/** Push settings shared by every store: the wire format is Loki's push API for each of them. */
const pushFields = {
  url: z.url().describe('base URL of the store (or a gateway); the store type\'s push path is appended'),
  encoding: z.enum(['protobuf', 'json']).default('protobuf'),
  compression: z
    .enum(['snappy', 'none'])
    .default('snappy')
    .describe('protobuf bodies: snappy-compress (about 5x smaller), or frame as uncompressed snappy literals (saves the sidecar CPU)'),
  headers: z.record(z.string(), z.string()).default({}).describe('extra request headers, e.g. Authorization for a gateway'),
  batchMaxEvents: z.number().int().min(1).max(100_000).default(2000),
  batchMaxBytes: z.number().int().min(1 * KiB).max(64 * MiB).default(1 * MiB),
  maxEntryBytes: z
    .number()
    .int()
    .min(1 * KiB)
    .max(64 * MiB)
    .default(256 * KiB)
    .describe('an event line longer than this is shipped as an `omitted` stub (and a chained `dropped` event saying so) instead of being refused by the store again and again; the default is Loki’s default max_line_size (VictoriaLogs takes longer lines: raise it there to keep bigger events whole)'),
  lingerMs: z.number().int().min(0).max(10_000).default(20).describe('wait this long for a batch to fill once the first event is there'),
  timeoutMs: z.number().int().min(100).max(300_000).default(10_000),
  retryInitialMs: z.number().int().min(1).default(250),
  retryMaxMs: z.number().int().min(1).default(30_000),
};

const retryOrder = { message: 'retryInitialMs must not exceed retryMaxMs', path: ['retryInitialMs'] };

/** The legacy `loki:` block (kept working): a Loki store without `type`. */
export const LokiConfig = z
  .object({
    ...pushFields,
    url: z.url().describe('base URL of Loki (or a gateway); /loki/api/v1/push is appended'),
    tenant: z.string().min(1).optional().describe('sent as X-Scope-OrgID'),
  })
  .strict()
  .refine((l) => l.retryInitialMs <= l.retryMaxMs, retryOrder);

export const LokiStoreConfig = z
  .object({
    type: z.literal('loki'),
    ...pushFields,
    tenant: z.string().min(1).optional().describe('sent as X-Scope-OrgID'),
    pushPath: z.literal('/loki/api/v1/push').default('/loki/api/v1/push').describe("Loki's push API"),
  })
  .strict()
  .refine((l) => l.retryInitialMs <= l.retryMaxMs, retryOrder);

export const VictoriaLogsStoreConfig = z
  .object({
    type: z.literal('victorialogs'),
    ...pushFields,
    accountID: z.number().int().min(0).optional().describe('VictoriaLogs tenant: sent as the AccountID header'),
    projectID: z.number().int().min(0).optional().describe('VictoriaLogs tenant: sent as the ProjectID header'),
    pushPath: z.literal('/insert/loki/api/v1/push').default('/insert/loki/api/v1/push').describe("VictoriaLogs' Loki-compatible push API"),
    // Without it VictoriaLogs parses a JSON line into fields and stores something else than the
    // bytes that were hashed; the chain needs the line kept byte for byte.
    disableMessageParsing: z.literal(true).default(true).describe('sent as disable_message_parsing=1: the line is stored byte for byte (the hash chain needs it)'),
  })
  .strict()
  .refine((l) => l.retryInitialMs <= l.retryMaxMs, retryOrder);

export const StoreConfig = z.discriminatedUnion('type', [LokiStoreConfig, VictoriaLogsStoreConfig]);

/** A union's error names what was wrong inside the store object, not just "invalid input". */
function storeError(iss: { code?: string; input?: unknown; errors?: unknown }): string {
  const expected = 'expected "none" or {type: loki|victorialogs, url, …}';
  if (iss.input === null || typeof iss.input !== 'object') return `${expected}, got ${JSON.stringify(iss.input) ?? String(iss.input)}`;
  const nested = ((iss.errors as { path: PropertyKey[]; message: string }[][] | undefined) ?? []).at(-1) ?? [];
  return nested.length ? nested.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`).join('; ') : expected;
}

/**
 * Where audit events go: `none` (an explicit choice: a bounded local ring, oldest events trimmed
 * when full, nothing shipped) or a store reached with the Loki push API.
 */
export const AuditStore = z
  .union([z.literal('none'), StoreConfig], { error: storeError })
  .describe("none: keep a bounded local ring of events and ship nothing (loudly warned); or {type: loki|victorialogs, url, …}");

/** The store a config names: `store`, else the legacy `loki` block, else undefined (not set). */
export function resolveStore(c: { store?: AuditStore | undefined; loki?: LokiConfig | undefined }): AuditStore | undefined {
  // A legacy `loki` block wins over `store: none`: the chart's default values carry `store: none`
  // and Helm merges a user's old `audit.loki` next to it.
  if (c.loki && (c.store === undefined || c.store === 'none')) return LokiStoreConfig.parse({ type: 'loki', ...c.loki });
  return c.store;
}

const oneStore = (c: { store?: unknown; loki?: unknown }) => !(typeof c.store === 'object' && c.store !== null && c.loki !== undefined);
const oneStoreMessage = { message: 'give audit.store {type, url} or the legacy audit.loki, not both', path: ['loki'] };

export const AuditConfig = z
  .object({
    spoolDir: z.string().min(1),
    pod: z.object({ namespace: z.string().min(1), name: z.string().min(1), service_account: z.string().optional() }).strict(),
    creator: Creator.optional().describe('who created the pod (sluice.io/creator); stamped on the recorder\'s own events'),
    session: z.string().regex(SESSION_ID_PATTERN).optional().describe('default: resume the spool\'s session, else a new random id'),
    spool: SpoolConfig.default(SpoolConfig.parse({})),
    store: AuditStore.optional().describe('absent (and no loki): none, with a warning at start'),
    loki: LokiConfig.optional().describe('legacy form of store: {type: loki, …}'),
  })
  .strict()
  .refine(oneStore, oneStoreMessage);

export type AuditConfigInput = z.input<typeof AuditConfig>;
export type AuditConfig = z.infer<typeof AuditConfig>;
export type SpoolConfig = z.infer<typeof SpoolConfig>;
export type LokiConfig = z.infer<typeof LokiConfig>;
export type StoreConfig = z.infer<typeof StoreConfig>;
export type AuditStore = z.infer<typeof AuditStore>;


/** Validates, applies defaults and freezes; throws SchemaError naming every bad field. */
export function parseAuditConfig(raw: unknown): AuditConfig {
  return deepFreeze(parseOrThrow(AuditConfig, raw, 'audit config'));
}

/** The sidecar's `audit` settings; the pod, creator and session come from the running sidecar. */
export const SidecarAuditSettings = z
  .object({
    enabled: z.boolean().default(true).describe('off only for local experiments: a sidecar without an audit trail forwards unrecorded'),
    spoolDir: z.string().min(1).default(SPOOL_DIR),
    spool: SpoolConfig.prefault({}),
    // Absent (and no legacy loki): none, warned at every start. A refinement here would stop the
    // chart from deriving its values schema (omit); the recorder refuses both at once.
    store: AuditStore.optional(),
    loki: LokiConfig.optional(),
  })
  .strict();
export type SidecarAuditSettings = z.infer<typeof SidecarAuditSettings>;
