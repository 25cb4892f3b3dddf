import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatBytes, formatDuration, formatSize } from './units';

test('memory amounts: bytes below 1 KiB, one decimal above, up the units', () => {
  assert.is(formatBytes(512), '512 B');
  assert.is(formatBytes(528_486), '516.1 KiB');
  assert.is(formatBytes(1.5 * 1024 * 1024), '1.5 MiB');
  assert.is(formatBytes(23.5 * 1024 ** 3), '23.5 GiB');
});

test('message sizes are exact: a power of 1024 or bytes', () => {
  assert.is(formatSize(1), '1 B');
  assert.is(formatSize(4096), '4 KiB');
  assert.is(formatSize(4 * 1024 * 1024), '4 MiB');
  assert.is(formatSize(1536), '1536 B');
});

test('durations: hundredths below 10 s, tenths below a minute, then minutes and seconds', () => {
  assert.is(formatDuration(420), '0.42 s');
  assert.is(formatDuration(12_340), '12.3 s');
  assert.is(formatDuration(65_000), '1 min 05 s');
});

test.run();
