import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FfError } from '#runtime/errors';
import { REPO_ROOT } from '#runtime/util/repo-root';
import { formatRatio, formatSpread } from './format';
import { loadRawReport, type RawReport } from './raw';
import { renderText } from './render-text';
import { stdoutBlocks } from './report-content';
import { median } from './statistics';
import { barChart } from './svg-chart';
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

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('the fixture is a complete quick run: every mode, every repetition, NetPIPE; r refused by the launcher of its day', () => {
  const raw = fixture();
  assert.is(raw.profile.name, 'quick');
  assert.is(raw.modes.length, 9);
  assert.ok(
    raw.runs.every((run) => run.status === 'ok'),
    'the recorded run had no failed or invalid run',
  );
  assert.ok(raw.runs.some((run) => run.netpipe !== null));
  assert.match(raw.modes.find((mode) => mode.id === 'freeflow-router')!.refused ?? '', /^the launcher refuses it: interHost: /);
  assert.ok(
    raw.modes.every((mode) => mode.interHost !== 'auto'),
    'every mode names its inter-host plane',
  );
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
    assert.is(
      line('| shared memory (vader, one namespace) |'),
      `| shared memory (vader, one namespace) | ${expectedSpread(vaderLatency, 'us')} | ${expectedSpread(vaderBandwidth, 'MB/s')} |${line('| shared memory').split('|')[4]}|`,
    );
    assert.ok(line('| host mode (TCP over loopback) |').includes(expectedSpread(values(raw, 'tcp-loopback', 'latency', 8, 'latency_us'), 'us')));
    assert.ok(line('| overlay (TCP over the bridge) |').includes(expectedSpread(values(raw, 'bridge-tcp', 'bw', MiB4, 'bandwidth_mb_s'), 'MB/s')));

    assert.match(markdown, /^## Fig\. 7: overlay TCP vs freeflow, within and across hosts$/m);
    const freeflowLatency = values(raw, 'freeflow-same-host', 'latency', 8, 'latency_us');
    const bridgeLatency = values(raw, 'bridge-tcp', 'latency', 8, 'latency_us');
    assert.match(
      line('| (a) intra-host: latency 8 B |'),
      new RegExp(
        `^${escapeRegExp(`| (a) intra-host: latency 8 B | ${expectedSpread(bridgeLatency, 'us')} | - | freeflow: ${expectedSpread(freeflowLatency, 'us')} | ${expectedRatio(freeflowLatency, bridgeLatency)} | - | `)}shm in (\\d+)/\\1 runs, as the BTL reported \\|$`,
      ),
    );
    const overlayBandwidth = values(raw, 'overlay-tcp', 'bw', MiB4, 'bandwidth_mb_s');
    const handoffBandwidth = values(raw, 'freeflow-handoff', 'bw', MiB4, 'bandwidth_mb_s');
    assert.ok(
      line('| (b) inter-host: bandwidth 4 MiB |').includes(
        `| freeflow h: ${expectedSpread(handoffBandwidth, 'MB/s')} | ${expectedRatio(handoffBandwidth, overlayBandwidth)} | - |`,
      ),
    );
    assert.match(markdown, /^\| \(b\) inter-host: latency 8 B \|.*\| freeflow h: .*\| handoff \(h\) in 12\/12 runs, as the BTL reported \|$/m);
    assert.match(markdown, /^- \(b\) inter-host: freeflow r was not run: the launcher refuses it: interHost: /m);
    assert.match(markdown, /^> \*\*WARNING:\*\* mode freeflow r was not run: the launcher refuses it: interHost: /m);
    assert.match(markdown, /^\| default MTU: 8 B latency, freeflow h \/ overlay TCP \| [0-9.]+x \[[0-9.-]+\] \| at most 0\.85x: (met|NOT met) \|$/m);
    assert.match(markdown, /^\| default MTU: 4 MiB bandwidth, freeflow r \/ overlay TCP \| - \| at least 1\.50x: not measured \|$/m);

    // freeflow/vader and freeflow/TCP in the latency ratio table (the first one), column 8 B (after 1 B).
    assert.match(markdown, /^\| ratio \| 1 B \| 8 B \| 64 B \|/m);
    assert.is(line('| freeflow / vader |').split(' | ')[2], expectedRatio(freeflowLatency, vaderLatency));
    assert.is(line('| freeflow / bridge TCP |').split(' | ')[2], expectedRatio(freeflowLatency, bridgeLatency));
    assert.match(markdown, /\| 8 B latency, freeflow \(2 containers\) \/ vader \(1 namespace\) \| [0-9.]+x \[[0-9.-]+\] \| at most 0\.95x: (met|NOT met) \|/);
    assert.match(markdown, /bytes = 4096 \+ a x \(R \+ 128\).*R = btl_freeflow_ring_size = 524288 B.*a = 1\): 516\.1 KiB per rank/);
    assert.match(markdown, /^## Agreement with NetPIPE$/m);
    assert.match(markdown, /^\| 8 B \| [0-9.]+ us \[[0-9.-]+\] \| [0-9.]+ us/m);
    assert.match(
      markdown,
      /\| freeflow h \|.*\| network freeflow, interHost handoff \| handoff \(h\) in (\d+)\/\1 runs, as the BTL reported \| underlay 1500 \| ok \|/,
    );
    assert.not.match(markdown, /<svg/);
  });
});

/**
 * A cross-host report derived from the fixture's overlay TCP runs: every other cross-host mode's numbers
 * are the overlay's times a known factor (latency, bandwidth) in every repetition, so that every ratio
 * the report shows is known exactly. Only the rendering is under test here, not a measurement.
 */
function crossHostReport(factors: Readonly<Record<string, readonly [number, number]>>, refused: Readonly<Record<string, string>> = {}): RawReport {
  const raw = fixture();
  const overlayMode = raw.modes.find((mode) => mode.id === 'overlay-tcp')!;
  const overlayRuns = raw.runs.filter((run) => run.mode === 'overlay-tcp');
  const ids = Object.keys(factors) as Array<RawReport['modes'][number]['id']>;
  const modes = ids.map((id) => ({
    ...overlayMode,
    id,
    name: id,
    mtu: id.endsWith('-jumbo') ? ('jumbo' as const) : ('default' as const),
    refused: refused[id] ?? null,
  }));
  const runs = ids.flatMap((id) =>
    refused[id] !== undefined
      ? []
      : overlayRuns.map((run) => {
          const [latency, bandwidth] = factors[id]!;
          const results = run.mpi!.results.map((r) => ({
            ...r,
            latency_us: r.latency_us === undefined || r.latency_us === null ? r.latency_us : r.latency_us * latency,
            bandwidth_mb_s: r.bandwidth_mb_s === undefined || r.bandwidth_mb_s === null ? r.bandwidth_mb_s : r.bandwidth_mb_s * bandwidth,
          }));
          return { ...run, mode: id, mpi: { ...run.mpi!, results } };
        }),
  );
  return { ...raw, profile: { ...raw.profile, name: 'cross-host', modes: ids, netpipe: null }, modes, runs };
}

test('Fig. 7b: rows for h and r at both MTUs, ratios against overlay and host-mode TCP, and honest target verdicts', () => {
  const raw = crossHostReport(
    {
      'overlay-tcp': [1, 1],
      'host-tcp': [0.8, 1],
      'freeflow-handoff': [0.6, 2.5],
      'freeflow-router': [1.2, 1.4],
      'overlay-tcp-jumbo': [1, 2],
      'host-tcp-jumbo': [0.5, 2],
      'freeflow-handoff-jumbo': [0.6, 4],
      'freeflow-router-jumbo': [1, 1],
    },
    { 'freeflow-router-jumbo': 'the launcher refuses it: interHost: is not implemented yet' },
  );
  withReports(raw, ({ markdown, html }) => {
    const row = (prefix: string, freeflow: string): string[] => {
      const found = markdown.split('\n').find((text) => text.startsWith(prefix) && text.includes(`| ${freeflow}: `));
      if (found === undefined) throw new Error(`no Fig. 7 row ${prefix} for ${freeflow}`);
      return found.split(' | ');
    };
    // Columns: panel, overlay, host mode, freeflow, freeflow/overlay, freeflow/host mode, path.
    assert.equal(row('| (b) inter-host: latency 8 B', 'freeflow h').slice(4, 6), ['0.600x [0.600-0.600]', '0.750x [0.750-0.750]']);
    assert.equal(row('| (b) inter-host: bandwidth 4 MiB', 'freeflow h').slice(4, 6), ['2.50x [2.50-2.50]', '2.50x [2.50-2.50]']);
    assert.equal(row('| (b) inter-host: latency 8 B', 'freeflow r').slice(4, 6), ['1.20x [1.20-1.20]', '1.50x [1.50-1.50]']);
    assert.equal(row('| (b) inter-host, jumbo frames: latency 8 B', 'freeflow h').slice(4, 6), ['0.600x [0.600-0.600]', '1.20x [1.20-1.20]']);
    assert.equal(row('| (b) inter-host, jumbo frames: bandwidth 4 MiB', 'freeflow h').slice(4, 6), ['2.00x [2.00-2.00]', '2.00x [2.00-2.00]']);
    assert.match(row('| (b) inter-host, jumbo frames: latency 8 B', 'freeflow r')[6]!, /^not run: the launcher refuses it/);

    const target = (label: string): string => markdown.split('\n').find((text) => text.startsWith(`| ${label} |`)) ?? `no target ${label}`;
    assert.is(
      target('default MTU: 8 B latency, freeflow h / overlay TCP'),
      '| default MTU: 8 B latency, freeflow h / overlay TCP | 0.600x [0.600-0.600] | at most 0.85x: met |',
    );
    assert.is(
      target('default MTU: 8 B latency, freeflow h / host-mode TCP'),
      '| default MTU: 8 B latency, freeflow h / host-mode TCP | 0.750x [0.750-0.750] | at most 1.00x: met |',
    );
    assert.is(
      target('default MTU: 4 MiB bandwidth, freeflow h / overlay TCP'),
      '| default MTU: 4 MiB bandwidth, freeflow h / overlay TCP | 2.50x [2.50-2.50] | at least 2.20x: met |',
    );
    assert.is(
      target('default MTU: 4 MiB bandwidth, freeflow r / overlay TCP'),
      '| default MTU: 4 MiB bandwidth, freeflow r / overlay TCP | 1.40x [1.40-1.40] | at least 1.50x: NOT met |',
    );
    assert.is(
      target('default MTU: 8 B latency, freeflow r / overlay TCP'),
      '| default MTU: 8 B latency, freeflow r / overlay TCP | 1.20x [1.20-1.20] | recorded (no target) |',
    );
    assert.is(
      target('jumbo frames: 8 B latency, freeflow h / host-mode TCP'),
      '| jumbo frames: 8 B latency, freeflow h / host-mode TCP | 1.20x [1.20-1.20] | at most 1.00x: NOT met |',
    );
    assert.is(
      target('jumbo frames: 4 MiB bandwidth, freeflow h / overlay TCP'),
      '| jumbo frames: 4 MiB bandwidth, freeflow h / overlay TCP | 2.00x [2.00-2.00] | at least 2.20x: NOT met |',
    );
    assert.is(
      target('jumbo frames: 4 MiB bandwidth, freeflow r / overlay TCP'),
      '| jumbo frames: 4 MiB bandwidth, freeflow r / overlay TCP | - | at least 1.50x: not measured |',
    );

    // The Fig. 7 latency chart: one group per panel, overlay, host mode and the freeflow planes that ran.
    const start = html.indexOf('aria-label="Fig. 7: latency, 8 B (us, log axis)"');
    assert.ok(start > 0, 'a log-axis Fig. 7 latency chart');
    const chart = html.slice(start, html.indexOf('</svg>', start));
    assert.is(chart.match(/<rect /g)?.length, 4 + 3, 'bars: 4 at the default MTU, 3 with jumbo frames (r not run)');
  });
  const stdout = renderText(stdoutBlocks(raw, true));
  assert.match(stdout, /^Inter-host targets/m);
  assert.ok(stdout.indexOf('Inter-host targets') < stdout.indexOf('ffbench cross-host: medians'));
  assert.match(stdout, /containers, across hosts, jumbo frames: freeflow-handoff-jumbo [0-9.]+ us/);
});

test('log-axis bars: a 0.2 us bar beside a 10 us one is drawn tens of pixels tall, not a sliver', () => {
  const bars = [
    { name: 'shm', color: '#000', value: 0.2, low: 0.19, high: 0.21 },
    { name: 'tcp', color: '#000', value: 10, low: 9, high: 11 },
  ];
  const heights = (scale: 'linear' | 'log'): number[] =>
    [...barChart({ title: 't', yLabel: 'us', groups: [{ label: 'g', bars }], formatY: String, scale }).matchAll(/<rect [^>]*height="([0-9.]+)"/g)].map((m) =>
      Number(m[1]),
    );
  const [linearSmall, linearLarge] = heights('linear');
  const [logSmall, logLarge] = heights('log');
  assert.ok(linearSmall! < 5 && linearLarge! > 150, `linear: ${linearSmall} and ${linearLarge} px`);
  assert.ok(logSmall! > 30 && logLarge! > logSmall! * 3, `log: ${logSmall} and ${logLarge} px`);
});

test('report.html: self-contained, with the charts (one line per mode) and the tables', () => {
  const raw = fixture();
  withReports(raw, ({ html }) => {
    assert.match(html, /^<!DOCTYPE html>/);
    assert.not.match(html, /<script|<link|\bsrc=|\bhref=|@import|url\(/, 'nothing is fetched');
    const svgs = html.match(/<svg [^>]*aria-label="([^"]*)"/g) ?? [];
    const labels = svgs.map((svg) => /aria-label="([^"]*)"/.exec(svg)![1]);
    const expectedCharts = [
      /^Fig\. 1: latency, 8 B \(us, log axis\)$/,
      /^Fig\. 1: bandwidth, 4 MiB \(GB\/s\)$/,
      /^Fig\. 7: latency, 8 B \(us, log axis\)$/,
      /^Fig\. 7: bandwidth, 4 MiB \(GB\/s\)$/,
      /^Fig\. 7: CPU per byte, 4 MiB \(ns\/B\)$/,
      /^latency \(us\) against message size$/,
      /^bandwidth \(MB\/s\) against message size$/,
      /^CPU per byte \(ns\/B\) against message size$/,
      /NetPIPE latency$/,
    ];
    assert.is(labels.length, expectedCharts.length);
    for (const expected of expectedCharts) {
      assert.ok(
        labels.some((label) => expected.test(label!)),
        `a chart ${expected}: got ${labels.join(' | ')}`,
      );
    }
    const start = html.indexOf('aria-label="latency (us) against message size"');
    const latencyChart = html.slice(start, html.indexOf('</svg>', start));
    const measured = raw.modes.filter((mode) => mode.refused === null).length;
    assert.is(latencyChart.match(/<polyline/g)?.length, measured, 'one line per mode that ran');
    assert.is(latencyChart.match(/<circle/g)?.length, measured * 9, 'a point per mode and size');
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
    assert.match(markdown, /^\| {2}\| freeflow \(INVALID\) \| [0-9.]+ us/m);
    assert.match(markdown, /^## Runs with problems$/m);
    assert.match(html, /<div class="warning"><strong>WARNING:<\/strong> mode freeflow INVALID/);
  });
  const stdout = renderText(stdoutBlocks(broken, false));
  assert.match(stdout, /^!!! mode freeflow INVALID/m);
});

test('stdout: the headline table, then "freeflow X us vs bridge TCP Y us"; profile shm leads with the targets', () => {
  const raw = fixture();
  const headline = renderText(stdoutBlocks(raw, false));
  assert.match(headline, /^ffbench quick: medians \[min-max\] of 3 interleaved repetitions, .*CPUs/);
  assert.match(
    headline,
    /^freeflow between containers, same host \(vs bridge TCP\): 8 B latency [0-9.]+x lower, 4 MiB bandwidth [0-9.]+x (higher|lower \(worse\)); across hosts over h \(vs overlay TCP\): 8 B latency [0-9.]+x (lower|higher \(worse\)), 4 MiB bandwidth [0-9.]+x (higher|lower \(worse\)) \(medians of 3 paired repetitions on .+, \d+ CPUs\)$/m,
  );
  assert.match(headline, /^ {2}containers, same host +bridge TCP +[0-9.]+ us/m);
  assert.match(headline, /^ {24,}freeflow +[0-9.]+ us/m);
  assert.match(headline, /^ {2}- containers, same host: freeflow [0-9.]+ us \[[0-9.-]+\] vs bridge TCP [0-9.]+ us/m);
  assert.match(
    headline,
    /^ {2}- containers, across hosts: freeflow h [0-9.]+ us \[[0-9.-]+\] vs overlay TCP [0-9.]+ us \[[0-9.-]+\] \([0-9.]+x \[[0-9.-]+\]\); [0-9.]+ [GM]B\/s/m,
  );
  const targets = renderText(stdoutBlocks(raw, true));
  assert.match(targets, /^freeflow BTL targets/);
  assert.ok(targets.indexOf('freeflow BTL targets') < targets.indexOf('ffbench quick: medians'));
});

test('a raw.json of another schema version is refused with the reason', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ffbench-raw-'));
  try {
    const file = path.join(dir, 'raw.json');
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(FIXTURE, 'utf8')), schema_version: 1 }));
    const error = ((): FfError => {
      try {
        loadRawReport(file);
      } catch (caught) {
        return caught as FfError;
      }
      throw new Error('a schema_version 1 document was accepted');
    })();
    assert.is(error.code, 'BENCH_RESULT_INVALID');
    assert.match(error.message, /is not an ffbench freeflow-bench-report version 2 document:[\s\S]*schema_version/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a report directory that is not empty is refused: an earlier run is never overwritten', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ffbench-out-'));
  try {
    writeFileSync(path.join(dir, 'raw.json'), '{}');
    assert.throws(
      () => writeReports(fixture(), dir),
      (error: FfError) => error.code === 'USAGE' && /is not empty/.test(error.message),
    );
    assert.is(readFileSync(path.join(dir, 'raw.json'), 'utf8'), '{}');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
