// The shape of one kind of facts, as the registry (derivers.ts) lists it: how to recognise a request
// it applies to (its shape), how much of the body it needs, whether a prefix read so far is enough,
// and the facts under its key of `Facts` (api/src/policy.ts, the contract Rego reads). The key and
// the value's type are checked against that contract by the type system. Pure functions; a throw is
// a deriver bug that derive-facts.ts turns into a FactsError (the request is denied).
import type { Facts } from '../../../api/src/index.ts';
import type { FactsConfig } from './derive-facts.ts';
import type { FactsRequest } from './request.ts';

export interface FactsDeriver<K extends keyof Facts = keyof Facts, Shape = unknown> {
  /** Where its facts go in `PolicyInput.facts`. */
  readonly key: K;
  classify(req: FactsRequest, config: FactsConfig): Shape | undefined;
  /** Most body bytes its facts can use (0: none). */
  bodyPrefixNeeded(shape: Shape, config: FactsConfig): number;
  /** 0 when the prefix read so far is enough, else the least number of further bytes worth waiting for. */
  moreBodyNeeded(req: FactsRequest, shape: Shape, prefix: Buffer, config: FactsConfig): number;
  /** Its facts, or undefined when none can be derived (never guessed: policy treats absence as unknown). */
  derive(req: FactsRequest, shape: Shape, body: Buffer | undefined, config: FactsConfig): Facts[K] | undefined;
}

/**
 * A deriver of one request shape, as one of the list's unknown shapes (method parameters are
 * bivariant: the registry only hands a deriver the shape its own classify returned).
 */
export function defineDeriver<K extends keyof Facts, Shape>(d: FactsDeriver<K, Shape>): FactsDeriver<K> {
  return d;
}
