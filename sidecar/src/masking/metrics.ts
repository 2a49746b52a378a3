// Prometheus counters for masking. Labels are bounded: rule ids come from the loaded rule set,
// direction is request|response, verdicts and reasons are fixed codes. No value ever becomes a label.
import { Counter } from 'prom-client';
import type { Registry } from 'prom-client';
import type { Redaction } from './masker.ts';
import type { PackVerdict } from './packfile.ts';

export interface MaskingMetrics {
  /** Use as (or call from) a MaskingTransform's onRedaction. */
  recordRedaction(r: Redaction): void;
  recordScannedBytes(direction: Redaction['direction'], bytes: number): void;
  recordPackVerdict(v: PackVerdict): void;
  /** A response cut mid-stream because it could not be scanned (a decompression bomb, an undecodable run, an unmaskable secret). */
  recordResponseCut(code: string): void;
}

export function registerMaskingMetrics(registry: Registry): MaskingMetrics {
  const redactions = new Counter({
    name: 'sluice_masking_redactions_total',
    help: 'Secrets redacted or found, by rule id and direction',
    labelNames: ['rule', 'direction'] as const,
    registers: [registry],
  });
  const scanned = new Counter({
    name: 'sluice_masking_scanned_bytes_total',
    help: 'Body bytes scanned by the masking engine, by direction',
    labelNames: ['direction'] as const,
    registers: [registry],
  });
  const packs = new Counter({
    name: 'sluice_masking_pack_verdicts_total',
    help: 'git push packfile scan verdicts (clean, secrets, unscannable) with the unscannable reason code',
    labelNames: ['verdict', 'reason'] as const,
    registers: [registry],
  });
  const cuts = new Counter({
    name: 'sluice_masking_responses_cut_total',
    help: 'Responses cut mid-stream because they could not be scanned for secrets, by code',
    labelNames: ['code'] as const,
    registers: [registry],
  });
  return {
    recordResponseCut(code) {
      cuts.inc({ code });
    },
    recordRedaction(r) {
      redactions.inc({ rule: r.rule, direction: r.direction });
    },
    recordScannedBytes(direction, bytes) {
      scanned.inc({ direction }, bytes);
    },
    recordPackVerdict(v) {
      packs.inc({ verdict: v.verdict, reason: v.verdict === 'unscannable' ? v.reason : '' });
      if (v.verdict === 'secrets') for (const f of v.findings) redactions.inc({ rule: f.rule, direction: 'request' });
    },
  };
}
