// The facts settings that mirror the organisation (LLM provider hosts, Kubernetes API server names,
// AWS host suffixes) follow the organisation the sidecar runs with, so an allow-list change from a
// SluicePolicy applies to the classification of requests and to the policy at once, never half.
// Pure mapping plus a holder whose reads always see one whole config. It never widens what a
// request may do: facts only describe a request; the policy decides.
import type { Organisation } from '../../../api/src/index.ts';
import { parseFactsConfig } from '../facts/derive-facts.ts';
import type { FactsConfig } from '../facts/derive-facts.ts';

type LlmKind = FactsConfig['llmHosts'][string];

/** Anthropic's API carries its key in x-api-key and speaks /v1/messages; every other provider speaks OpenAI's shape. */
function llmKind(provider: Organisation['llm']['providers'][number]): LlmKind {
  return provider.name.includes('anthropic') || provider.key_header === 'x-api-key' ? 'anthropic' : 'openai';
}

const exact = (host: string) => !host.startsWith('*.');

/**
 * `base` (the sidecar's settings) with the organisation's hosts: its exact LLM provider hosts added
 * to llmHosts (a wildcard host is classified by path shape, as any other host), its API server names
 * added to kubernetesHosts, its AWS host suffixes added to awsHostSuffixes.
 */
export function factsFromOrganisation(org: Organisation, base: FactsConfig): FactsConfig {
  const llmHosts: Record<string, LlmKind> = { ...base.llmHosts };
  for (const p of org.llm.providers) for (const h of p.hosts.filter(exact)) llmHosts[h] = llmKind(p);
  const union = (a: readonly string[], b: readonly string[]) => [...new Set([...a, ...b])];
  return parseFactsConfig({
    ...base,
    llmHosts,
    kubernetesHosts: union(base.kubernetesHosts, org.kubernetes.api_servers.filter(exact)),
    awsHostSuffixes: union(base.awsHostSuffixes, org.aws.host_suffixes),
  });
}

/**
 * A FactsConfig whose fields read the one currently in service: the gateway holds this object for
 * its lifetime and the sidecar swaps what is behind it when the organisation changes. Each field
 * read is one frozen config's; the lists themselves are never changed in place.
 */
export class LiveFactsConfig {
  #current: FactsConfig;

  constructor(initial: FactsConfig) {
    this.#current = initial;
  }

  set(next: FactsConfig): void {
    this.#current = next;
  }

  get current(): FactsConfig {
    return this.#current;
  }

  /** The object to hand to the gateway. */
  view(): FactsConfig {
    const read = (): FactsConfig => this.#current;
    return Object.freeze({
      get llmHosts() {
        return read().llmHosts;
      },
      get kubernetesHosts() {
        return read().kubernetesHosts;
      },
      get awsHostSuffixes() {
        return read().awsHostSuffixes;
      },
      get maxGitCommandBytes() {
        return read().maxGitCommandBytes;
      },
      get maxAwsFormBytes() {
        return read().maxAwsFormBytes;
      },
      get maxLlmBodyBytes() {
        return read().maxLlmBodyBytes;
      },
    });
  }
}
