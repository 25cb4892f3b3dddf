import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FfError } from '../errors';
import { assertNetworkAvailable, assertOpenMpiInstalled } from './preflight';

test('network freeflow without the built BTL: NETWORK_UNAVAILABLE names the file and the build command', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ffbtl-'));
  try {
    assertNetworkAvailable('overlay', dir);
    assert.throws(
      () => assertNetworkAvailable('freeflow', dir),
      (e: FfError) => e.code === 'NETWORK_UNAVAILABLE' && e.message.includes(path.join(dir, 'mca_btl_freeflow.so')) && /npm run build/.test(e.hint ?? ''),
    );
    writeFileSync(path.join(dir, 'mca_btl_freeflow.so'), '');
    assertNetworkAvailable('freeflow', dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Open MPI missing from PATH: MISSING_DEPENDENCY with npm run setup', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ffpath-'));
  try {
    assert.throws(
      () => assertOpenMpiInstalled(dir),
      (e: FfError) => e.code === 'MISSING_DEPENDENCY' && /mpirun and ompi_info/.test(e.message) && /npm run setup/.test(e.hint ?? ''),
    );
    for (const tool of ['mpirun', 'ompi_info']) {
      writeFileSync(path.join(dir, tool), '#!/bin/sh\n');
      chmodSync(path.join(dir, tool), 0o755);
    }
    assertOpenMpiInstalled(`/nonexistent:${dir}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
