/**
 * The reports' content as plain blocks, written once and rendered three ways: Markdown (summary.md),
 * HTML with charts (report.html) and aligned text (stdout).
 */
export interface Table {
  readonly headers: readonly string[];
  readonly rows: ReadonlyArray<readonly string[]>;
  /** Columns after the first are right-aligned (numbers) unless listed here. */
  readonly leftColumns?: readonly number[];
}

export type Block =
  | { readonly kind: 'heading'; readonly level: 1 | 2 | 3; readonly text: string }
  | { readonly kind: 'paragraph'; readonly text: string }
  | { readonly kind: 'warning'; readonly text: string }
  | { readonly kind: 'list'; readonly items: readonly string[] }
  | { readonly kind: 'table'; readonly table: Table }
  /** Only the HTML report draws charts: an SVG element, already rendered. */
  | { readonly kind: 'chart'; readonly svg: string }
  /** Preformatted lines (a failed run's output). */
  | { readonly kind: 'code'; readonly lines: readonly string[] };

export const heading = (level: 1 | 2 | 3, text: string): Block => ({ kind: 'heading', level, text });
export const paragraph = (text: string): Block => ({ kind: 'paragraph', text });
export const warning = (text: string): Block => ({ kind: 'warning', text });
export const table = (value: Table): Block => ({ kind: 'table', table: value });
