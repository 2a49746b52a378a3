// The evaluation path sluice's engine used before issue 23 (kept for bench/policy's side-by-side
// row): the SDK's LoadedPolicy.evaluate (input bytes copied in, result JSON.parse'd by the SDK)
// followed by the api/ Decision schema on every result. Bench code only; never in the sidecar.
import { loadPolicy } from '@open-policy-agent/opa-wasm';
import type { LoadedPolicy } from '@open-policy-agent/opa-wasm';
import { Decision, POLICY_ENTRYPOINT, engineDeny } from '../../api/src/index.ts';
import type { PolicyInput } from '../../api/src/index.ts';
import type { PolicyBundle } from '../../lib/src/policy/bundle.ts';

const encoder = new TextEncoder();

export class SdkPathEngine {
  readonly #policy: LoadedPolicy;
  readonly #entrypoint: number;
  readonly #podJson = new WeakMap<object, string>();

  private constructor(policy: LoadedPolicy) {
    this.#policy = policy;
    this.#entrypoint = (policy.entrypoints as Record<string, number>)[POLICY_ENTRYPOINT]!;
  }

  static async load(bundle: PolicyBundle): Promise<SdkPathEngine> {
    const policy = await loadPolicy(bundle.wasm);
    policy.setData(bundle.data as object);
    return new SdkPathEngine(policy);
  }

  evaluate(input: PolicyInput): Decision {
    let pod = this.#podJson.get(input.pod);
    if (pod === undefined) {
      pod = JSON.stringify(input.pod);
      this.#podJson.set(input.pod, pod);
    }
    const json = `{"request":${JSON.stringify(input.request)},"facts":${JSON.stringify(input.facts)},"pod":${pod},"session":${JSON.stringify(input.session)}}`;
    const raw = this.#policy.evaluate(encoder.encode(json).buffer, this.#entrypoint) as unknown;
    const result = Array.isArray(raw) && raw.length === 1 ? (raw[0] as { result?: unknown }).result : undefined;
    const parsed = Decision.safeParse(result);
    return parsed.success ? parsed.data : engineDeny('policy.malformed_decision', 'malformed');
  }
}
