// Loads the masking rules (built-in plus an optional file) and builds the two masking stages.
import { readFile } from 'node:fs/promises';
import type { Registry } from 'prom-client';
import { BUILTIN_RULES, MaskerCache, mergeRules, parseRuleFile, registerMaskingMetrics } from '../../masking/index.ts';
import type { Masker, MaskingMetrics } from '../../masking/index.ts';
import type { MaskingConfig } from '../../masking/masking-config.ts';
import { useAuditMasker } from '../audit-records.ts';
import type { Stage } from '../request-context.ts';
import type { Answerer } from './answer.ts';
import { DEFAULT_MASKING_PASS_TYPES, outboundDlpStage, responseMaskingStage } from './masking.ts';

export interface LoadedMasking {
  /** Response masking first (it rewrites the upstream request's Range/Accept-Encoding), then DLP. */
  stages(answer: Answerer): Stage[];
  /** Every loaded rule (built-in plus the rule file): for what sluice shows elsewhere (approvals). */
  all: Masker;
  /** The loaded rules by selection, and their metrics: for what is inspected outside the stages (WebSocket messages). */
  maskers: MaskerCache;
  metrics: MaskingMetrics;
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
    stages(answer) {
      const deps = {
        maskers,
        metrics,
        answer,
        passTypes: config.passTypes ?? DEFAULT_MASKING_PASS_TYPES,
        maxBlockScanBytes: config.maxBlockScanBytes,
        packLimits: { maxPackBytes: config.maxPackBytes },
      };
      return [responseMaskingStage(deps), outboundDlpStage(deps)];
    },
  };
}
