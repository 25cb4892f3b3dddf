import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { median, pairedRatio, spreadOf } from './statistics';

test('median: the middle value, or the mean of the two middle ones; order does not matter', () => {
  assert.is(median([3, 1, 2]), 2);
  assert.is(median([4, 1, 3, 2]), 2.5);
  assert.is(median([7]), 7);
  assert.throws(() => median([]), /no values/);
});

test('spread: median, min, max and count of the finite values; null when there is none', () => {
  assert.equal(spreadOf([0.5, 0.25, 0.9, Number.NaN, 0.75]), { median: 0.625, min: 0.25, max: 0.9, n: 4 });
  assert.is(spreadOf([]), null);
  assert.is(spreadOf([Number.POSITIVE_INFINITY]), null);
});

test('paired ratio: repetition by repetition, then median, min and max; unpaired repetitions are left out', () => {
  const candidate = new Map([
    [1, 2],
    [2, 3],
    [3, 10],
    [4, 5],
  ]);
  const baseline = new Map([
    [1, 4],
    [2, 3],
    [3, 5],
  ]);
  // 2/4, 3/3, 10/5; repetition 4 has no baseline.
  assert.equal(pairedRatio(candidate, baseline), { median: 1, min: 0.5, max: 2, n: 3 });
  assert.is(pairedRatio(candidate, new Map()), null);
  assert.is(pairedRatio(new Map([[1, 1]]), new Map([[1, 0]])), null, 'a zero baseline gives no ratio');
});

test('paired ratios keep a shared slowdown out: a ratio of medians would not', () => {
  // Repetition 2 ran while the machine was busy: both modes slowed down by 10x, side by side.
  const fast = new Map([
    [1, 1],
    [2, 10],
    [3, 1.1],
  ]);
  const slow = new Map([
    [1, 2],
    [2, 20],
    [3, 2.2],
  ]);
  assert.equal(pairedRatio(fast, slow), { median: 0.5, min: 0.5, max: 0.5, n: 3 });
});

test.run();
