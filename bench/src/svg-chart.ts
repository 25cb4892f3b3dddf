import { escapeHtml } from './render-html';

/**
 * Small SVG charts for the HTML report, drawn here so that the report needs no script and no library:
 * lines on log-log axes (one per mode, whiskers from min to max) and grouped bars on a linear or a log axis.
 */
export interface ChartPoint {
  readonly x: number;
  readonly y: number;
  readonly low: number;
  readonly high: number;
}

export interface LineSeries {
  readonly name: string;
  readonly color: string;
  readonly dashed?: boolean;
  readonly points: readonly ChartPoint[];
}

export interface LineChartSpec {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly LineSeries[];
  readonly formatX: (x: number) => string;
  readonly formatY: (y: number) => string;
}

const WIDTH = 560;
const HEIGHT = 360;
const MARGIN = { left: 64, right: 16, top: 30, bottom: 46 };
const LEGEND_ROW = 16;
/** Horizontal room of one bar with its label, the bar itself, and the gap between groups. */
const BAR_SLOT = 84;
const BAR_WIDTH = 52;
const GROUP_GAP = 24;

const number = (value: number): string => (Math.round(value * 10) / 10).toString();

function text(x: number, y: number, content: string, attributes = ''): string {
  return `<text x="${number(x)}" y="${number(y)}" ${attributes}>${escapeHtml(content)}</text>`;
}

/** Powers of two from lo to hi, thinned to at most `most` ticks. */
export function powerOfTwoTicks(lo: number, hi: number, most = 9): number[] {
  const first = Math.floor(Math.log2(lo));
  const last = Math.ceil(Math.log2(hi));
  const step = Math.max(1, Math.ceil((last - first + 1) / most));
  const ticks: number[] = [];
  for (let exponent = first; exponent <= last; exponent += step) ticks.push(2 ** exponent);
  return ticks;
}

/** 1-2-5 steps per decade when the range is narrow, whole decades when it is wide. */
export function logTicks(lo: number, hi: number): number[] {
  const first = Math.floor(Math.log10(lo));
  const last = Math.ceil(Math.log10(hi));
  const multiples = last - first <= 2 ? [1, 2, 5] : [1];
  const ticks: number[] = [];
  for (let exponent = first; exponent <= last; exponent++) {
    for (const multiple of multiples) {
      const tick = multiple * 10 ** exponent;
      if (tick >= lo / 1.0001 && tick <= hi * 1.0001) ticks.push(tick);
    }
  }
  return ticks.length >= 2 ? ticks : [lo, hi];
}

function logScale(lo: number, hi: number, from: number, to: number): (value: number) => number {
  const a = Math.log(lo);
  const span = Math.log(hi) - a || 1;
  return (value) => from + ((Math.log(value) - a) / span) * (to - from);
}

function legend(series: ReadonlyArray<{ name: string; color: string; dashed?: boolean }>, top: number): string {
  const perRow = 3;
  const columnWidth = (WIDTH - MARGIN.left) / perRow;
  return series
    .map((entry, i) => {
      const x = MARGIN.left + (i % perRow) * columnWidth;
      const y = top + Math.floor(i / perRow) * LEGEND_ROW;
      const dash = entry.dashed ? ' stroke-dasharray="5 3"' : '';
      return `<line x1="${x}" y1="${y - 4}" x2="${x + 18}" y2="${y - 4}" stroke="${entry.color}" stroke-width="2.5"${dash}/>${text(x + 23, y, entry.name)}`;
    })
    .join('');
}

/** A log-log line chart; series without points are left out. */
export function lineChart(spec: LineChartSpec): string {
  const series = spec.series.filter((s) => s.points.length > 0);
  const legendHeight = Math.ceil(series.length / 3) * LEGEND_ROW + 6;
  const height = HEIGHT + legendHeight;
  const points = series.flatMap((s) => s.points);
  if (points.length === 0) return '';
  const xs = points.map((p) => p.x);
  const ys = points.flatMap((p) => [p.low, p.high, p.y]).filter((y) => y > 0);
  const [xLo, xHi] = [Math.min(...xs), Math.max(...xs)];
  const [yLo, yHi] = [Math.min(...ys) / 1.15, Math.max(...ys) * 1.15];
  const plotBottom = HEIGHT - MARGIN.bottom;
  const x = logScale(xLo, xHi === xLo ? xLo * 2 : xHi, MARGIN.left, WIDTH - MARGIN.right);
  const y = logScale(yLo, yHi, plotBottom, MARGIN.top);
  const parts: string[] = [text(WIDTH / 2, 18, spec.title, 'class="title" text-anchor="middle"')];
  const measured = [...new Set(xs)].sort((a, b) => a - b);
  for (const tick of measured.length <= 10 ? measured : powerOfTwoTicks(xLo, xHi)) {
    if (tick < xLo || tick > xHi) continue;
    parts.push(`<line class="grid" x1="${number(x(tick))}" y1="${MARGIN.top}" x2="${number(x(tick))}" y2="${plotBottom}"/>`);
    parts.push(text(x(tick), plotBottom + 14, spec.formatX(tick), 'text-anchor="middle"'));
  }
  for (const tick of logTicks(yLo, yHi)) {
    parts.push(`<line class="grid" x1="${MARGIN.left}" y1="${number(y(tick))}" x2="${WIDTH - MARGIN.right}" y2="${number(y(tick))}"/>`);
    parts.push(text(MARGIN.left - 5, y(tick) + 4, spec.formatY(tick), 'text-anchor="end"'));
  }
  parts.push(`<line class="axis" x1="${MARGIN.left}" y1="${plotBottom}" x2="${WIDTH - MARGIN.right}" y2="${plotBottom}"/>`);
  parts.push(`<line class="axis" x1="${MARGIN.left}" y1="${MARGIN.top}" x2="${MARGIN.left}" y2="${plotBottom}"/>`);
  parts.push(text((MARGIN.left + WIDTH - MARGIN.right) / 2, plotBottom + 32, spec.xLabel, 'text-anchor="middle"'));
  parts.push(text(14, (MARGIN.top + plotBottom) / 2, spec.yLabel, `text-anchor="middle" transform="rotate(-90 14 ${number((MARGIN.top + plotBottom) / 2)})"`));
  for (const s of series) {
    const sorted = [...s.points].sort((a, b) => a.x - b.x);
    const path = sorted.map((p) => `${number(x(p.x))},${number(y(p.y))}`).join(' ');
    const dash = s.dashed ? ' stroke-dasharray="5 3"' : '';
    parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2"${dash} points="${path}"><title>${escapeHtml(s.name)}</title></polyline>`);
    for (const p of sorted) {
      const title = `${s.name}: ${spec.formatX(p.x)}: ${spec.formatY(p.y)} [${spec.formatY(p.low)}-${spec.formatY(p.high)}]`;
      parts.push(
        `<line x1="${number(x(p.x))}" y1="${number(y(p.low))}" x2="${number(x(p.x))}" y2="${number(y(p.high))}" stroke="${s.color}" stroke-width="1"/>`,
      );
      parts.push(`<circle cx="${number(x(p.x))}" cy="${number(y(p.y))}" r="2.6" fill="${s.color}"><title>${escapeHtml(title)}</title></circle>`);
    }
  }
  parts.push(legend(series, HEIGHT + 4));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-label="${escapeHtml(spec.title)}">${parts.join('')}</svg>`;
}

export interface Bar {
  readonly name: string;
  readonly color: string;
  /** null: not measured (an empty slot with a dash). */
  readonly value: number | null;
  readonly low: number;
  readonly high: number;
}

export interface BarGroup {
  readonly label: string;
  readonly bars: readonly Bar[];
}

export interface BarChartSpec {
  readonly title: string;
  readonly yLabel: string;
  readonly groups: readonly BarGroup[];
  readonly formatY: (y: number) => string;
  /**
   * `log` when the values span orders of magnitude (0.2 us beside 10 us: on a linear axis the small bar
   * would be invisible); the bars then start at the decade below the smallest value.
   */
  readonly scale: 'linear' | 'log';
}

/** Nice round step for a linear axis from 0 to max with about 5 ticks. */
export function linearStep(max: number): number {
  const rough = max / 5;
  const power = 10 ** Math.floor(Math.log10(rough));
  return [1, 2, 2.5, 5, 10].map((m) => m * power).find((step) => step >= rough) ?? rough;
}

interface BarAxis {
  readonly y: (value: number) => number;
  readonly ticks: readonly number[];
}

function linearBarAxis(values: readonly number[], plotBottom: number): BarAxis {
  const step = linearStep(Math.max(...values) * 1.12);
  const top = Math.ceil((Math.max(...values) * 1.12) / step) * step;
  const ticks: number[] = [];
  for (let tick = 0; tick <= top * 1.0001; tick += step) ticks.push(tick);
  return { y: (value) => plotBottom - (value / top) * (plotBottom - MARGIN.top), ticks };
}

/** From the decade below the smallest positive value to a little above the largest. */
function logBarAxis(values: readonly number[], plotBottom: number): BarAxis {
  const positive = values.filter((value) => value > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.min(...positive)));
  const hi = Math.max(...positive) * 1.4;
  const scale = logScale(lo, hi, plotBottom, MARGIN.top);
  // A zero cannot be drawn on a log axis: it sits on the axis line.
  return { y: (value) => (value > 0 ? scale(value) : plotBottom), ticks: logTicks(lo, hi) };
}

/** Grouped bars (as the paper's Fig. 1 and Fig. 7) from the bottom of the axis, the value on each bar, whiskers min-max. */
export function barChart(spec: BarChartSpec): string {
  const width = Math.max(340, MARGIN.left + 30 + spec.groups.reduce((sum, group) => sum + group.bars.length * BAR_SLOT + GROUP_GAP, 0));
  const height = 300;
  const plotBottom = height - MARGIN.bottom;
  const values = spec.groups.flatMap((group) => group.bars.flatMap((bar) => (bar.value === null ? [] : [bar.low, bar.high, bar.value])));
  if (values.length === 0) return '';
  const { y, ticks } = spec.scale === 'log' ? logBarAxis(values, plotBottom) : linearBarAxis(values, plotBottom);
  const parts: string[] = [text(width / 2, 18, spec.title, 'class="title" text-anchor="middle"')];
  for (const tick of ticks) {
    parts.push(`<line class="grid" x1="${MARGIN.left}" y1="${number(y(tick))}" x2="${width - MARGIN.right}" y2="${number(y(tick))}"/>`);
    parts.push(text(MARGIN.left - 5, y(tick) + 4, spec.formatY(tick), 'text-anchor="end"'));
  }
  parts.push(text(14, (MARGIN.top + plotBottom) / 2, spec.yLabel, `text-anchor="middle" transform="rotate(-90 14 ${number((MARGIN.top + plotBottom) / 2)})"`));
  let left = MARGIN.left + 14;
  for (const group of spec.groups) {
    const groupStart = left;
    for (const bar of group.bars) {
      const centre = left + BAR_SLOT / 2;
      if (bar.value === null) {
        parts.push(text(centre, plotBottom - 4, 'n/a', 'text-anchor="middle"'));
      } else {
        const title = `${bar.name}: ${spec.formatY(bar.value)} [${spec.formatY(bar.low)}-${spec.formatY(bar.high)}]`;
        parts.push(
          `<rect x="${number(centre - BAR_WIDTH / 2)}" y="${number(y(bar.value))}" width="${BAR_WIDTH}" height="${number(plotBottom - y(bar.value))}" fill="${bar.color}"><title>${escapeHtml(title)}</title></rect>`,
        );
        parts.push(
          `<line x1="${number(centre)}" y1="${number(y(bar.low))}" x2="${number(centre)}" y2="${number(y(bar.high))}" stroke="#1d2430" stroke-width="1"/>`,
        );
        parts.push(text(centre, y(Math.max(bar.value, bar.high)) - 4, spec.formatY(bar.value), 'text-anchor="middle"'));
      }
      parts.push(text(centre, plotBottom + 14, bar.name, 'text-anchor="middle"'));
      left += BAR_SLOT;
    }
    parts.push(text((groupStart + left) / 2, plotBottom + 32, group.label, 'text-anchor="middle" font-weight="600"'));
    left += GROUP_GAP;
  }
  parts.push(`<line class="axis" x1="${MARGIN.left}" y1="${plotBottom}" x2="${width - MARGIN.right}" y2="${plotBottom}"/>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeHtml(spec.title)}">${parts.join('')}</svg>`;
}
