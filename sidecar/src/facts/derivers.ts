// The registry of facts derivers: the one list a deriver is added to (its module exports a
// FactsDeriver, deriver.ts). derive-facts.ts runs them in this order, which is the order their facts
// appear in `PolicyInput.facts`; sidecar/test/facts/registry.test.ts fails when a deriver module is
// not listed here, two derivers fill one key, or a key of `Facts` (api/src/policy.ts) has no
// deriver and is not one the proxy sets itself (`upgrade`).
import { awsDeriver } from './aws-request.ts';
import type { FactsDeriver } from './deriver.ts';
import { gitDeriver } from './git-smart-http.ts';
import { graphqlDeriver } from './graphql-request.ts';
import { kubernetesDeriver } from './kubernetes-request.ts';
import { llmDeriver } from './llm-request.ts';

export const DERIVERS: readonly FactsDeriver[] = [gitDeriver, awsDeriver, kubernetesDeriver, llmDeriver, graphqlDeriver];
