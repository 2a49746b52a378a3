// Facts for the policy: what the rest of the sidecar uses of this folder, and the one pipeline
// phase it works in. A new deriver is a module here exporting a FactsDeriver (deriver.ts), one line
// in derivers.ts and its facts' schema in api/src/policy.ts; nothing in the proxy changes.
import type { Feature } from '../proxy/pipeline.ts';
import type { FactsConfig } from './derive-facts.ts';
import { deriveRequestFacts } from './request-phase.ts';

export { DEFAULT_FACTS_CONFIG, FactsConfig, FactsError, classifyForFacts, deriveFacts, parseFactsConfig } from './derive-facts.ts';
export type { ClassifiedRequest, FactsRequest } from './derive-facts.ts';

/** facts: classify the request once, read the bounded body prefix its facts need, derive them. */
export function factsFeature(config: FactsConfig): Feature {
  return { name: 'facts', phases: { facts: deriveRequestFacts(config) } };
}
