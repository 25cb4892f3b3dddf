import type { Block, Table } from './blocks';

export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** `code` spans written in the blocks' text as backticks; [min-max] ranges set smaller, beside their median. */
function inline(text: string): string {
  return escapeHtml(text)
    .replace(/`([^`]+)`/g, '<code>$1</code>')
    .replace(/\[([0-9.]+-[0-9.]+)\]/g, '<span class="range">[$1]</span>');
}

function renderTable(table: Table): string {
  const align = (column: number): string => (column === 0 || (table.leftColumns ?? []).includes(column) ? 'l' : 'r');
  const head = table.headers.map((text, column) => `<th class="${align(column)}">${inline(text)}</th>`).join('');
  const rows = table.rows.map((row) => `<tr>${row.map((text, column) => `<td class="${align(column)}">${inline(text)}</td>`).join('')}</tr>`);
  return `<div class="scroll"><table><thead><tr>${head}</tr></thead><tbody>${rows.join('')}</tbody></table></div>`;
}

const STYLE = `
body { font: 14px/1.45 system-ui, sans-serif; color: #1d2430; max-width: 1180px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #d6dbe3; padding-bottom: .2em; } h3 { margin-top: 1.4em; }
table { border-collapse: collapse; margin: .6em 0 1em; font-variant-numeric: tabular-nums; }
th, td { padding: .25em .7em; border-bottom: 1px solid #e3e7ee; white-space: nowrap; } th { background: #f3f5f8; }
td.l { white-space: normal; } td:first-child { white-space: nowrap; } .scroll { overflow-x: auto; }
.range { color: #6b7485; font-size: 85%; } td.r .range { display: block; line-height: 1.1; }
.l { text-align: left; } .r { text-align: right; }
.warning { background: #fff3cd; border-left: 4px solid #e0a800; padding: .5em .8em; margin: .8em 0; }
pre { background: #f6f8fa; padding: .6em; overflow-x: auto; font-size: 12px; }
code { background: #f1f3f6; padding: 0 .2em; border-radius: 3px; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
svg { background: #fff; border: 1px solid #e3e7ee; }
svg text { font: 11px system-ui, sans-serif; fill: #1d2430; }
svg .title { font-size: 13px; font-weight: 600; }
svg .grid { stroke: #e8ebf0; } svg .axis { stroke: #8a93a3; }
`;

/** report.html: one self-contained file (inline CSS and SVG, no script, nothing fetched). */
export function renderHtml(title: string, blocks: readonly Block[]): string {
  const body: string[] = [];
  let charts: string[] = [];
  const flushCharts = (): void => {
    if (charts.length > 0) body.push(`<div class="charts">${charts.join('')}</div>`);
    charts = [];
  };
  for (const block of blocks) {
    if (block.kind === 'chart') {
      charts.push(block.svg);
      continue;
    }
    flushCharts();
    switch (block.kind) {
      case 'heading':
        body.push(`<h${block.level}>${inline(block.text)}</h${block.level}>`);
        break;
      case 'paragraph':
        body.push(`<p>${inline(block.text)}</p>`);
        break;
      case 'warning':
        body.push(`<div class="warning"><strong>WARNING:</strong> ${inline(block.text)}</div>`);
        break;
      case 'list':
        body.push(`<ul>${block.items.map((item) => `<li>${inline(item)}</li>`).join('')}</ul>`);
        break;
      case 'table':
        body.push(renderTable(block.table));
        break;
      case 'code':
        body.push(`<pre>${escapeHtml(block.lines.join('\n'))}</pre>`);
        break;
    }
  }
  flushCharts();
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
${body.join('\n')}
</body>
</html>
`;
}
