import type { Block, Table } from './blocks';

function isLeft(table: Table, column: number): boolean {
  return column === 0 || (table.leftColumns ?? []).includes(column);
}

/** A table as aligned columns separated by two spaces. */
export function renderTextTable(table: Table): string[] {
  const all = [table.headers, ...table.rows];
  const widths = table.headers.map((_, column) => Math.max(...all.map((row) => (row[column] ?? '').length)));
  const line = (row: readonly string[]): string =>
    row
      .map((cell, column) => (isLeft(table, column) ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)))
      .join('  ')
      .trimEnd();
  return [line(table.headers), ...table.rows.map(line)];
}

/** Blocks for a terminal: charts are left out (they are in the HTML report). */
export function renderText(blocks: readonly Block[]): string {
  const out: string[] = [];
  for (const block of blocks) {
    switch (block.kind) {
      case 'heading':
        out.push('', block.level === 1 ? block.text.toUpperCase() : block.text);
        break;
      case 'paragraph':
        out.push(block.text);
        break;
      case 'warning':
        out.push(`!!! ${block.text}`);
        break;
      case 'list':
        out.push(...block.items.map((item) => `  - ${item}`));
        break;
      case 'table':
        out.push(...renderTextTable(block.table).map((row) => `  ${row}`));
        break;
      case 'code':
        out.push(...block.lines.map((text) => `  | ${text}`));
        break;
      case 'chart':
        break;
    }
  }
  return `${out.join('\n').replace(/^\n+/, '')}\n`;
}
