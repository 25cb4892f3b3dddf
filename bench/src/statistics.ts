/** The median of the repetitions, with the smallest and largest value, so that the spread is visible. */
export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** How many values. */
  readonly n: number;
}

/** The middle value; the mean of the two middle ones for an even count. */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Median, min and max of the finite values; null when there is none. */
export function spreadOf(values: readonly number[]): Spread | null {
  const finite = values.filter((value) => Number.isFinite(value));
  if (finite.length === 0) return null;
  return { median: median(finite), min: Math.min(...finite), max: Math.max(...finite), n: finite.length };
}

/**
 * The ratio of two modes from interleaved repetitions: each repetition's value of `numerator` divided by
 * the same repetition's value of `denominator` (measured moments apart, so under the same conditions),
 * then median, min and max of those ratios. Repetitions missing on either side are left out.
 */
export function pairedRatio(numerator: ReadonlyMap<number, number>, denominator: ReadonlyMap<number, number>): Spread | null {
  const ratios: number[] = [];
  for (const [repetition, value] of numerator) {
    const base = denominator.get(repetition);
    if (base !== undefined && base > 0) ratios.push(value / base);
  }
  return spreadOf(ratios);
}
