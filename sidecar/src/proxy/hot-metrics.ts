// Metrics the request path touches on every request, without prom-client's per-call work
// (a closure, a label object checked and hashed into a string, then a map lookup — ~1–3 µs per
// call, five calls per request). The series are the same: a histogram without labels exported in
// prom-client's own shape through the same registry, and counters whose increments are summed
// here and handed to prom-client when the registry is read (its `collect` hook), so a scrape
// costs one prom-client call per label set, never one per request. Never holds more than one
// number per label set; never exports anything prom-client would not.
import { Counter } from 'prom-client';
import type { Metric, MetricValueWithName, Registry } from 'prom-client';

/** A histogram without labels: a bucket index found by a short loop, three numbers updated. */
export class BucketHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  readonly #bounds: readonly number[];
  /** per bucket, not cumulative; the last one is +Inf */
  #counts: Float64Array;
  #sum = 0;
  #count = 0;

  constructor(o: { name: string; help: string; buckets: readonly number[]; registers: readonly Registry[] }) {
    this.name = o.name;
    this.help = o.help;
    this.#bounds = [...o.buckets].sort((a, b) => a - b);
    this.#counts = new Float64Array(this.#bounds.length + 1);
    for (const r of o.registers) r.registerMetric(this as unknown as Metric);
  }

  observe(value: number): void {
    // As prom-client: a value that is not a number is a bug at the caller, not a sample.
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    const b = this.#bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    this.#counts[i]!++;
    this.#sum += value;
    this.#count++;
  }

  reset(): void {
    this.#counts = new Float64Array(this.#bounds.length + 1);
    this.#sum = 0;
    this.#count = 0;
  }

  /** prom-client's histogram shape: cumulative `_bucket{le}` series, `+Inf`, then `_sum` and `_count`. */
  get(): { name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: MetricValueWithName<string>[] } {
    const values: MetricValueWithName<string>[] = [];
    let acc = 0;
    this.#bounds.forEach((le, i) => {
      acc += this.#counts[i]!;
      values.push({ labels: { le }, value: acc, metricName: `${this.name}_bucket` });
    });
    values.push({ labels: { le: '+Inf' }, value: this.#count, metricName: `${this.name}_bucket` });
    values.push({ labels: {}, value: this.#sum, metricName: `${this.name}_sum` });
    values.push({ labels: {}, value: this.#count, metricName: `${this.name}_count` });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

/**
 * A prom-client counter with two labels whose increments are summed here (two map lookups per
 * call) and added to it when the registry is read. The label values must already be bounded.
 */
export class SummedCounter {
  readonly #pending = new Map<string, Map<string, number>>();

  constructor(o: { name: string; help: string; labelNames: readonly [string, string]; registers: Registry[] }) {
    const pending = this.#pending;
    const [a, b] = o.labelNames;
    new Counter({
      name: o.name,
      help: o.help,
      labelNames: [a, b],
      registers: o.registers,
      collect() {
        for (const [va, byB] of pending) for (const [vb, n] of byB) this.inc({ [a]: va, [b]: vb }, n);
        pending.clear();
      },
    });
  }

  add(a: string, b: string, n = 1): void {
    let byB = this.#pending.get(a);
    if (!byB) this.#pending.set(a, (byB = new Map<string, number>()));
    byB.set(b, (byB.get(b) ?? 0) + n);
  }
}
