import type { Spread } from './statistics';
import type { Metric } from './summary';

/** Three significant digits, no exponent for the ranges benchmarks produce. */
export function formatNumber(value: number): string {
  const magnitude = Math.abs(value);
  if (magnitude >= 100) return value.toFixed(0);
  if (magnitude >= 10) return value.toFixed(1);
  if (magnitude >= 1) return value.toFixed(2);
  if (magnitude >= 0.01) return value.toFixed(3);
  return value.toPrecision(2);
}

/** A metric's value with its unit; bandwidth above 1000 MB/s in GB/s. */
export function formatValue(value: number, unit: Metric['unit']): string {
  if (unit === 'MB/s' && value >= 1000) return `${formatNumber(value / 1000)} GB/s`;
  return `${formatNumber(value)} ${unit}`;
}

/** "0.27 us [0.26-0.29]" or "-" when nothing was measured. */
export function formatSpread(spread: Spread | null, unit: Metric['unit']): string {
  if (spread === null) return '-';
  if (spread.n === 1) return formatValue(spread.median, unit);
  const scale = unit === 'MB/s' && spread.median >= 1000 ? 1000 : 1;
  return `${formatValue(spread.median, unit)} [${formatNumber(spread.min / scale)}-${formatNumber(spread.max / scale)}]`;
}

/** "0.07x [0.06-0.08]". */
export function formatRatio(ratio: Spread | null): string {
  if (ratio === null) return '-';
  const text = `${formatNumber(ratio.median)}x`;
  return ratio.n === 1 ? text : `${text} [${formatNumber(ratio.min)}-${formatNumber(ratio.max)}]`;
}
