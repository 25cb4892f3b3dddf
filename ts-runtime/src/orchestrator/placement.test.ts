import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FfError } from '../errors';
import { placeRanks } from './placement';

const where = (slots: ReturnType<typeof placeRanks>) => slots.map((s) => `h${s.host}c${s.containerIndex}`);

test('fill: container after container, host after host', () => {
  assert.equal(where(placeRanks({ hosts: 2, containersPerHost: 2, slotsPerContainer: 1 }, 4, 'fill')), ['h0c0', 'h0c1', 'h1c0', 'h1c1']);
  assert.equal(where(placeRanks({ hosts: 2, containersPerHost: 1, slotsPerContainer: 2 }, 3, 'fill')), ['h0c0', 'h0c0', 'h1c0']);
});

test('round-robin: hosts interleaved, then around again', () => {
  assert.equal(where(placeRanks({ hosts: 2, containersPerHost: 2, slotsPerContainer: 2 }, 6, 'round-robin')), ['h0c0', 'h1c0', 'h0c1', 'h1c1', 'h0c0', 'h1c0']);
});

test('ranks are numbered in order', () => {
  assert.equal(
    placeRanks({ hosts: 1, containersPerHost: 3, slotsPerContainer: 1 }, 3, 'fill').map((s) => s.rank),
    [0, 1, 2],
  );
});

test('more ranks than slots: TOO_MANY_RANKS says how many slots and how to get more', () => {
  try {
    placeRanks({ hosts: 2, containersPerHost: 2, slotsPerContainer: 1 }, 5, 'fill');
    assert.unreachable();
  } catch (error) {
    assert.instance(error, FfError);
    assert.is((error as FfError).code, 'TOO_MANY_RANKS');
    assert.match((error as FfError).message, /5 ranks do not fit: 2 hosts x 2 containers x 1 slots = 4 slots/);
    assert.match((error as FfError).hint ?? '', /--slots-per-container/);
  }
});

test.run();
