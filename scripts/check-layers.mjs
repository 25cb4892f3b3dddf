#!/usr/bin/env node
// The import check of `npm run lint` (madge): no module imports one that imports it back at run time
// (type-only imports are erased by tsc and cannot cycle at load time), and no folder imports a folder that
// imports it back, type-only imports included (a layer that needs another's types depends on it). A folder
// is a top-level folder of ts-runtime/src (its subfolders included: cli/run belongs to cli), bench/src, or
// test; test files (*.test.ts) sit above every folder and are left out of the folder graph.
import madge from 'madge';
import * as path from 'node:path';

const ROOTS = ['ts-runtime/src', 'bench/src', 'test'];

export function folderOf(file) {
  const runtime = 'ts-runtime/src/';
  if (file.startsWith(runtime)) {
    const rest = file.slice(runtime.length);
    return rest.includes('/') ? runtime + rest.split('/')[0] : 'ts-runtime/src';
  }
  return ROOTS.find((root) => file === root || file.startsWith(`${root}/`)) ?? path.dirname(file);
}

/** Strongly connected components of more than one node (Tarjan), each as a sorted list. */
export function cyclesOf(graph) {
  let index = 0;
  const indices = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const cycles = [];
  const visit = (node) => {
    indices.set(node, index);
    low.set(node, index++);
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!indices.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node), low.get(next)));
      } else if (onStack.has(next)) low.set(node, Math.min(low.get(node), indices.get(next)));
    }
    if (low.get(node) === indices.get(node)) {
      const component = [];
      let member;
      do {
        member = stack.pop();
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1) cycles.push(component.sort());
    }
  };
  for (const node of graph.keys()) if (!indices.has(node)) visit(node);
  return cycles;
}

/** A `#runtime/*` alias resolves through package.json `imports` to dist/ (the emitted JS); back to the source. */
function sourceOf(file) {
  return file.startsWith('dist/') && file.endsWith('.js') ? `${file.slice('dist/'.length, -'.js'.length)}.ts` : file;
}

function sourceGraph(modules) {
  const graph = {};
  for (const [file, imports] of Object.entries(modules)) {
    if (file.startsWith('dist/')) continue;
    graph[file] = [...new Set(imports.map(sourceOf))];
  }
  return graph;
}

async function main() {
  const graphOf = (skipTypeImports) =>
    madge(ROOTS, { baseDir: process.cwd(), fileExtensions: ['ts'], tsConfig: 'tsconfig.json', detectiveOptions: { ts: { skipTypeImports } } });
  const [result, runtime] = await Promise.all([graphOf(false), graphOf(true)]);
  const modules = sourceGraph(result.obj());
  let failed = false;

  for (const cycle of cyclesOf(new Map(Object.entries(sourceGraph(runtime.obj()))))) {
    failed = true;
    console.error(`modules that import each other at run time: ${cycle.join(', ')}`);
  }

  const folders = new Map();
  const witness = new Map();
  for (const [file, imports] of Object.entries(modules)) {
    // A test sits above every layer and nothing imports it: it cannot close a cycle.
    if (file.endsWith('.test.ts')) continue;
    const from = folderOf(file);
    if (!folders.has(from)) folders.set(from, new Set());
    for (const imported of imports) {
      const to = folderOf(imported);
      if (to === from) continue;
      folders.get(from).add(to);
      if (!witness.has(`${from} ${to}`)) witness.set(`${from} ${to}`, `${file} imports ${imported}`);
    }
  }
  for (const cycle of cyclesOf(folders)) {
    failed = true;
    const edges = [...witness.entries()].filter(([key]) => {
      const [from, to] = key.split(' ');
      return cycle.includes(from) && cycle.includes(to);
    });
    console.error(`folders that import each other: ${cycle.join(', ')}\n${edges.map(([, why]) => `  ${why}`).join('\n')}`);
  }

  const unresolved = result.warnings().skipped.filter((name) => name.startsWith('.') || name.startsWith('#'));
  for (const name of unresolved) {
    failed = true;
    console.error(`import not resolved (check tsconfig paths): ${name}`);
  }

  if (failed) {
    console.error('fix: move what both sides need into the lower layer (e.g. ts-runtime/src/job for running jobs), so that imports go one way');
    process.exit(1);
  }
  console.log(`imports go one way: ${Object.keys(modules).length} modules in ${folders.size} folders, no cycles`);
}

await main();
