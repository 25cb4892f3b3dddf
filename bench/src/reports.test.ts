import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FfError } from '../../ts-runtime/src/errors';
import { REPO_ROOT } from '../../ts-runtime/src/util/repo-root';
import { formatRatio, formatSpread } from './format';
import { loadRawReport, type RawReport } from './raw';
import { renderText } from './render-text';
import { stdoutBlocks } from './report-content';
import { median } from './statistics';
import { writeReports } from './write-reports';

/** A raw.json recorded from a real quick run on the development machine (bench/README.md). */
const FIXTURE = path.join(REPO_ROOT, 'bench', 'fixtures', 'quick-raw.json');

const fixture = (): RawReport => loadRawReport(FIXTURE);

/** Straight from the runs, without the summary code: one value per repetition. */
function values(raw: RawReport, mode: string, benchmark: string, size: number, field: 'latency_us' | 'bandwidth_mb_s'): Map<number, number> {
  const byRepetition = new Map<number, number>();
  for (const run of raw.runs) {
    if (run.mode !== mode || run.mpi?.benchmark !== benchmark) continue;
    const value = run.mpi.results.find((result) => result.size === size)?.[field];
    if (typeof value === 'number') byRepetition.set(run.repetition, value);
  }
  return byRepetition;
}

function expectedSpread(byRepetition: Map<number, number>, unit: 'us' | 'MB/s'): string {
  const list = [...byRepetition.values()];
  return formatSpread({ median: median(list), min: Math.min(...list), max: Math.max(...list), n: list.length }, unit);
}

function expectedRatio(candidate: Map<number, number>, baseline: Map<number, number>): string {
  const ratios = [...candidate].map(([repetition, value]) => value / baseline.get(repetition)!);
  return formatRatio({ median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios), n: ratios.length });
}

function withReports<T>(raw: RawReport, use: (files: { markdown: string; html: string; json: string }) => T): T {
  const dir = mkdtempSync(path.join(tmpdir(), 'ffbench-report-'));
  try {
    const files = writeReports(raw, path.join(dir, 'out'));
    return use({ markdown: readFileSync(files.summary, 'utf8'), html: readFileSync(files.html, 'utf8'), json: readFileSync(files.raw, 'utf8') });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const MiB4 = 4 * 1024 * 1024;

test('the fixture is a complete quick run: every mode, every repetition, NetPIPE', () => {
  const raw = fixture();
  assert.is(raw.profile.name, 'quick');
  assert.is(raw.modes.length, 8);
  assert.ok(raw.runs.every((run) => run.status === 'ok'), 'the recorded run had no failed or invalid run');
  assert.ok(raw.runs.some((run) => run.netpipe !== null));
});

test('summary.md: the numbers behind Fig. 1 and Fig. 7 and the ratios freeflow/vader and freeflow/TCP', () => {
  const raw = fixture();
  withReports(raw, ({ markdown, json }) => {
    assert.equal(JSON.parse(json), JSON.parse(JSON.stringify(raw)), 'raw.json is the document itself');
    const line = (prefix: string): string => {
      const found = markdown.split('\n').find((text) => text.startsWith(prefix));
      if (found === undefined) throw new Error(`summary.md has no line starting ${prefix}`);
      return found;
    };
    const vaderLatency = values(raw, 'vader', 'latency', 8, 'latency_us');
    const vaderBandwidth = values(raw, 'vader', 'bw', MiB4, 'bandwidth_mb_s');
    assert.match(markdown, /^## Fig\. 1: shared memory vs host mode vs overlay$/m);
    assert.is(line('| shared memory (vader, one namespace) |'), `| shared memory (vader, one namespace) | ${expectedSpread(vaderLatency, 'us')} | ${expectedSpread(vaderBandwidth, 'MB/s')} |${line('| shared memory').split('|')[4]}|`);
    assert.ok(line('| host mode (TCP over loopback) |').includes(expectedSpread(values(raw, 'tcp-loopback', 'latency', 8, 'latency_us'), 'us')));
    assert.ok(line('| overlay (TCP over the bridge) |').includes(expectedSpread(values(raw, 'bridge-tcp', 'bw', MiB4, 'bandwidth_mb_s'), 'MB/s')));

    assert.match(markdown, /^## Fig\. 7: overlay TCP vs freeflow, within and across hosts$/m);
    const freeflowLatency = values(raw, 'freeflow-same-host', 'latency', 8, 'latency_us');
    const bridgeLatency = values(raw, 'bridge-tcp', 'latency', 8, 'latency_us');
    assert.is(
      line('| (a) intra-host: latency 8 B |'),
      `| (a) intra-host: latency 8 B | ${expectedSpread(bridgeLatency, 'us')} | ${expectedSpread(freeflowLatency, 'us')} | ${expectedRatio(freeflowLatency, bridgeLatency)} |`,
    );
    const overlayBandwidth = values(raw, 'overlay-tcp', 'bw', MiB4, 'bandwidth_mb_s');
    const crossBandwidth = values(raw, 'freeflow-cross-host', 'bw', MiB4, 'bandwidth_mb_s');
    assert.ok(line('| (b) inter-host: bandwidth 4 MiB |').endsWith(`| ${expectedRatio(crossBandwidth, overlayBandwidth)} |`));

    // freeflow/vader and freeflow/TCP in the latency ratio table (the first one), column 8 B (after 1 B).
    assert.match(markdown, /^\| ratio \| 1 B \| 8 B \| 64 B \|/m);
    assert.is(line('| freeflow / vader |').split(' | ')[2], expectedRatio(freeflowLatency, vaderLatency));
    assert.is(line('| freeflow / bridge TCP |').split(' | ')[2], expectedRatio(freeflowLatency, bridgeLatency));
    assert.match(markdown, /\| 8 B latency, freeflow \(2 containers\) \/ vader \(1 namespace\) \| [0-9.]+x \[[0-9.-]+\] \| at most 1\.00x: (met|NOT met) \|/);
    assert.match(markdown, /bytes = 4096 \+ a x \(R \+ 128\).*R = btl_freeflow_ring_size = 524288 B.*a = 1\): 516\.1 KiB per rank/);
    assert.match(markdown, /^## Agreement with NetPIPE$/m);
    assert.match(markdown, /^\| 8 B \| [0-9.]+ us \[[0-9.-]+\] \| [0-9.]+ us/m);
    assert.match(markdown, /\| freeflow x-host \|.*\| tcp in (\d+)\/\1 runs, as the BTL reported \(declined: path-table-says-tcp\) \|/);
    assert.not.match(markdown, /<svg/);
  });
});

test('report.html: self-contained, with the charts (one line per mode) and the tables', () => {
  const raw = fixture();
  withReports(raw, ({ html }) => {
    assert.match(html, /^<!DOCTYPE html>/);
    assert.not.match(html, /<script|<link|\bsrc=|\bhref=|@import|url\(/, 'nothing is fetched');
    const svgs = html.match(/<svg [^>]*aria-label="([^"]*)"/g) ?? [];
    const labels = svgs.map((svg) => /aria-label="([^"]*)"/.exec(svg)![1]);
    const expectedCharts = [
      /^Fig\. 1: latency, 8 B \(us\)$/,
      /^Fig\. 1: bandwidth, 4 MiB \(GB\/s\)$/,
      /^Fig\. 7: latency, 8 B \(us\)$/,
      /^Fig\. 7: bandwidth, 4 MiB \(GB\/s\)$/,
      /^Fig\. 7: CPU per byte, 4 MiB \(ns\/B\)$/,
      /^latency \(us\) against message size$/,
      /^bandwidth \(MB\/s\) against message size$/,
      /^CPU per byte \(ns\/B\) against message size$/,
      /NetPIPE latency$/,
    ];
    assert.is(labels.length, expectedCharts.length);
    for (const expected of expectedCharts) {
      assert.ok(labels.some((label) => expected.test(label!)), `a chart ${expected}: got ${labels.join(' | ')}`);
    }
    const start = html.indexOf('aria-label="latency (us) against message size"');
    const latencyChart = html.slice(start, html.indexOf('</svg>', start));
    assert.is(latencyChart.match(/<polyline/g)?.length, raw.modes.length, 'one line per mode');
    assert.is(latencyChart.match(/<circle/g)?.length, raw.modes.length * 9, 'a point per mode and size');
    assert.ok((html.match(/<table>/g)?.length ?? 0) >= 10);
    assert.match(html, /<td class="l">shared memory \(vader, one namespace\)<\/td>/);
  });
});

test('an invalid mode and a busy machine are said loudly in every report', () => {
  const raw = fixture();
  const freeflowRun = raw.runs.find((run) => run.mode === 'freeflow-same-host' && run.work.kind === 'mpi')!;
  const problem = 'the BTL reports: rank 0 -> rank 1 used tcp (segment-not-found), not shm';
  const broken: RawReport = {
    ...raw,
    machine: { ...raw.machine, load: { ...raw.machine.load, high: true } },
    runs: raw.runs.map((run) => (run === freeflowRun ? { ...run, status: 'invalid', problem, output: ['[rank 0] some output'] } : run)),
  };
  withReports(broken, ({ markdown, html }) => {
    assert.match(markdown, /^> \*\*WARNING:\*\* the machine was busy/m);
    assert.ok(markdown.includes(`> **WARNING:** mode freeflow INVALID: measured, but not what the mode claims: ${problem}`));
    assert.match(markdown, /^\|  \| freeflow \(INVALID\) \| [0-9.]+ us/m);
    assert.match(markdown, /^## Runs with problems$/m);
    assert.match(html, /<div class="warning"><strong>WARNING:<\/strong> mode freeflow INVALID/);
  });
  const stdout = renderText(stdoutBlocks(broken, false));
  assert.match(stdout, /^!!! mode freeflow INVALID/m);
});

test('stdout: the headline table, then "freeflow X us vs bridge TCP Y us"; profile shm leads with the targets', () => {
  const raw = fixture();
  const headline = renderText(stdoutBlocks(raw, false));
  assert.match(headline, /^ffbench quick: medians \[min-max\] of 3 interleaved repetitions/);
  assert.match(headline, /^ {2}containers, same host +bridge TCP +[0-9.]+ us/m);
  assert.match(headline, /^ {24,}freeflow +[0-9.]+ us/m);
  assert.match(headline, /^ {2}- containers, same host: freeflow [0-9.]+ us \[[0-9.-]+\] vs bridge TCP [0-9.]+ us/m);
  const targets = renderText(stdoutBlocks(raw, true));
  assert.match(targets, /^freeflow BTL targets/);
  assert.ok(targets.indexOf('freeflow BTL targets') < targets.indexOf('ffbench quick: medians'));
});

test('a raw.json of another schema version is refused with the reason', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ffbench-raw-'));
  try {
    const file = path.join(dir, 'raw.json');
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(FIXTURE, 'utf8')), schema_version: 2 }));
    const error = ((): FfError => {
      try {
        loadRawReport(file);
      } catch (caught) {
        return caught as FfError;
      }
      throw new Error('a schema_version 2 document was accepted');
    })();
    assert.is(error.code, 'BENCH_RESULT_INVALID');
    assert.match(error.message, /is not an ffbench freeflow-bench-report version 1 document:[\s\S]*schema_version/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a report directory that is not empty is refused: an earlier run is never overwritten', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ffbench-out-'));
  try {
    writeFileSync(path.join(dir, 'raw.json'), '{}');
    assert.throws(() => writeReports(fixture(), dir), (error: FfError) => error.code === 'USAGE' && /is not empty/.test(error.message));
    assert.is(readFileSync(path.join(dir, 'raw.json'), 'utf8'), '{}');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
