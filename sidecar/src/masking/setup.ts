// Loads the masking rules (built-in plus an optional file) and declares masking's work in the
// request pipeline: before-forward (a response it will mask is asked for whole and decodable, then
// outbound DLP), response-headers (the body's masking plan and transforms).
import { readFile } from 'node:fs/promises';
import type { Registry } from 'prom-client';
import { useAuditMasker } from '../proxy/audit-records.ts';
import type { Feature } from '../proxy/pipeline.ts';
import { BUILTIN_RULES } from './builtin-rules.ts';
import { MaskerCache } from './masker.ts';
import type { Masker } from './masker.ts';
import type { MaskingConfig } from './masking-config.ts';
import { registerMaskingMetrics } from './metrics.ts';
import type { MaskingMetrics } from './metrics.ts';
import { DEFAULT_MASKING_PASS_TYPES, maskResponseRequest, outboundDlp, planResponseMasking } from './request-phases.ts';
import type { MaskingDeps } from './request-phases.ts';
import { mergeRules, parseRuleFile } from './rule-schema.ts';

export interface LoadedMasking {
  /** masking in the request pipeline. */
  feature: Feature;
  /** Every loaded rule (built-in plus the rule file): for what sluice shows elsewhere (approvals). */
  all: Masker;
  /** The loaded rules by selection, and their metrics: for what is inspected outside the pipeline (WebSocket messages). */
  maskers: MaskerCache;
  metrics: MaskingMetrics;
}

/** masking: before-forward (response request changes, then outbound DLP), response-headers (body masking). */
export function maskingFeature(deps: MaskingDeps): Feature {
  return {
    name: 'masking',
    phases: {
      // Response masking's request changes first (Range, Accept-Encoding), then DLP on what is sent.
      'before-forward': (ctx) => {
        maskResponseRequest(ctx, deps);
        return outboundDlp(ctx, deps);
      },
      'response-headers': (ctx, head) => planResponseMasking(ctx, head, deps),
    },
  };
}

export async function loadMasking(config: MaskingConfig, registry: Registry): Promise<LoadedMasking> {
  const rules = config.rulesFile ? mergeRules(BUILTIN_RULES, parseRuleFile(await readFile(config.rulesFile, 'utf8'), config.rulesFile)) : BUILTIN_RULES;
  const maskers = new MaskerCache(rules);
  const metrics = registerMaskingMetrics(registry);
  // Audit records are masked with every loaded rule, whatever a decision masks on the wire.
  useAuditMasker(maskers.get('*'));
  return {
    all: maskers.get('*'),
    maskers,
    metrics,
    feature: maskingFeature({
      maskers,
      metrics,
      passTypes: config.passTypes ?? DEFAULT_MASKING_PASS_TYPES,
      maxBlockScanBytes: config.maxBlockScanBytes,
      packLimits: { maxPackBytes: config.maxPackBytes },
    }),
  };
}
