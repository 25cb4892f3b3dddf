import type { Block, Table } from './blocks';

/** Pipes would end a cell early. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

function renderTable(table: Table): string[] {
  const align = table.headers.map((_, column) => (column === 0 || (table.leftColumns ?? []).includes(column) ? '---' : '---:'));
  return [`| ${table.headers.map(cell).join(' | ')} |`, `|${align.join('|')}|`, ...table.rows.map((row) => `| ${row.map(cell).join(' | ')} |`)];
}

/** summary.md: every block but the charts (they need the HTML report). */
export function renderMarkdown(blocks: readonly Block[]): string {
  const parts: string[] = [];
  for (const block of blocks) {
    switch (block.kind) {
      case 'heading':
        parts.push(`${'#'.repeat(block.level)} ${block.text}`);
        break;
      case 'paragraph':
        parts.push(block.text);
        break;
      case 'warning':
        parts.push(`> **WARNING:** ${block.text}`);
        break;
      case 'list':
        parts.push(block.items.map((item) => `- ${item}`).join('\n'));
        break;
      case 'table':
        parts.push(renderTable(block.table).join('\n'));
        break;
      case 'code':
        parts.push(['```', ...block.lines, '```'].join('\n'));
        break;
      case 'chart':
        break;
    }
  }
  return `${parts.join('\n\n')}\n`;
}
