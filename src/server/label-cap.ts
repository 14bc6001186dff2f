/** The label value every value beyond a {@link LabelCap}'s limit is folded into. */
export const OTHER = 'other';

/**
 * Bounds the distinct values of a metric label: the first `limit` values seen are kept as they are, the rest
 * count as `other`, so a store with thousands of pipelines (or a step named from data) cannot blow up the number
 * of series Prometheus has to keep.
 */
export class LabelCap {
  private readonly kept = new Set<string>();

  constructor(private readonly limit: number) {}

  /** `value`, or `other` once `limit` other values were kept. */
  of(value: string): string {
    if (this.kept.has(value)) return value;
    if (this.kept.size >= this.limit) return OTHER;
    this.kept.add(value);
    return value;
  }
}
