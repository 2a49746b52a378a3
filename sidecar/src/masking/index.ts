// sluice masking: inline secret redaction for responses and outbound DLP for requests and git pushes.
// It finds secrets by rule; it never logs, records or counts a secret's value, only rule id, direction,
// offset and length. Docs: docs/masking.md.
//
// The API the proxy calls (one request):
//
//   const maskers = new MaskerCache(rules);               // once: BUILTIN_RULES, or mergeRules(BUILTIN_RULES, parseRuleFile(text, path))
//   const metrics = registerMaskingMetrics(registry);      // once
//   const masker = maskers.get(decision.mask ?? []);       // rule ids chosen by policy; '*' = all
//   // masker.unknownRuleIds: ids policy named that no rule has (audit them)
//
//   // Response (to the agent):
//   outboundRequestHeaders = applyHeaderChanges(reqHeaders, planRequestForMaskedResponse(reqHeaders));
//   const plan = planBodyMasking(resHeaders, { status });  // → { action, reason, decode, encode, headerChanges, flushAt }
//   switch (plan.action) {
//     case 'mask':  headers = applyHeaderChanges(resHeaders, plan.headerChanges);
//                   pipeline(upstream, ...maskingStages(plan, { masker, direction: 'response',
//                            onRedaction: (r) => { metrics.recordRedaction(r); audit.masking.push(r); } }), agent);
//     case 'pass':  pipe through untouched (binary media by policy, git fetch data).
//     case 'refuse': do not forward (unknown coding, partial content): fail closed, plan.reason is the code.
//   }
//
//   // Request body (outbound DLP), same plan on the request headers:
//   //   decision.dlp === 'mask'  → maskingStages(plan, { masker, direction: 'request', onRedaction })
//   //   decision.dlp === 'block' → scan while buffering (masker.maskBuffer or a MaskingTransform whose
//   //                               onRedaction marks the request), 403 with the first rule id.
//   //   plan.action === 'scan-pack' (git push) → const c = new PackCollector(limits); c.push(chunk)...;
//   //       const v = c.verdict(masker.scanner);  // 'clean' → forward c.body(); 'secrets' → 403 naming
//   //       v.findings[0].rule; 'unscannable' → hold or deny per policy (never forward unscanned).
//   //       metrics.recordPackVerdict(v).
//
// In the request pipeline (setup.ts): loadMasking(config, registry).feature works in before-forward
// (the request for a response it masks, outbound DLP) and response-headers (the body's masking).
//
// Rules are data (rule-schema.ts): literal-keyword pattern rules and `name = value` assignment rules,
// each with id, description, confidence, optional validator and keep-length. Platform teams add
// their own in JSON/YAML; `decision.mask` picks rule ids per destination.
export { BUILTIN_RULES, BUILTIN_RULE_IDS } from './builtin-rules.ts';
export { MaskingRuleError, mergeRules, parseRuleFile, parseRules } from './rule-schema.ts';
export type { AssignmentRuleSpec, PatternRuleSpec, RuleSpec, RuleSpecInput } from './rule-schema.ts';
export { Scanner } from './scanner.ts';
export type { Finding, ScanResult, ScannerInfo } from './scanner.ts';
export { MaskerCache, applyFindings, createMasker, replacementFor } from './masker.ts';
export type { Direction, Masker, Redaction, RuleSelection } from './masker.ts';
export { MaskingTransform, StreamMasker, maskingTransform } from './stream.ts';
export type { MaskingTransformOptions } from './stream.ts';
export { DEFAULT_PASS_TYPES, applyHeaderChanges, planBodyMasking, planRequestBodyMasking, planRequestForMaskedResponse, sniffRequestBody } from './body-plan.ts';
export { DEFAULT_DECODE_LIMITS, escapeFragment, isTextLike, percentFragment, scanDecoded } from './decoded-views.ts';
export type { DecodeLimits, DecodedScan, DecodedScanOptions, ViewEncoding, ViewFinding } from './decoded-views.ts';
export { DecodedViewsTransform, DlpStreamError, segmentEnd } from './decoded-stream.ts';
export type { DecodedStreamOptions } from './decoded-stream.ts';
export { DEFAULT_EXEMPT_HEADERS, maskRequestHead } from './request-head.ts';
export type { HeadFinding, MaskedHead } from './request-head.ts';
export { UNRECORDABLE, maskAuditText, maskAuditValue } from './audit-text.ts';
export type { BodyAction, BodyPlan, BodyPlanOptions, ContentCoding, HeaderChanges } from './body-plan.ts';
export { SUPPORTED_CODINGS, createDecoder, createEncoder, maskingStages } from './body-codecs.ts';
export {
  DEFAULT_PACK_LIMITS,
  PackCollector,
  PackError,
  applyDelta,
  parseReceivePackRequest,
  scanPack,
  scanReceivePack,
} from './packfile.ts';
export type { PackFinding, PackLimits, PackVerdict, ReceivePackRequest, RefUpdate } from './packfile.ts';
export { registerMaskingMetrics } from './metrics.ts';
export { loadMasking, maskingFeature } from './setup.ts';
export type { LoadedMasking } from './setup.ts';
export { DEFAULT_MASKING_PASS_TYPES } from './request-phases.ts';
export type { MaskingDeps } from './request-phases.ts';
export type { MaskingMetrics } from './metrics.ts';
export { VALIDATORS, base62Crc32, isPlaceholder, isWordlike, looksRandom } from './validators.ts';
