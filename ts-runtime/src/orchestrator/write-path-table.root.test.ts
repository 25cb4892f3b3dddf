import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EXAMPLE_PLAN as plan } from '#test/support/example-plan';
import { formatPathTable } from './path-table';
import { PATH_TABLE_FILE, writePathTables } from './write-path-table';

// Root: the tables are chowned to the job's user (root by default).

test('writing puts the same table into every host directory and leaves no temporary file', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'ffpaths-'));
  try {
    const dirs = ['h0', 'h1'].map((name) => path.join(root, name));
    for (const dir of dirs) mkdirSync(dir);
    writePathTables(plan, dirs);
    writePathTables(plan, dirs); // replacing an existing table works too
    for (const dir of dirs) {
      assert.equal(readdirSync(dir), [PATH_TABLE_FILE]);
      assert.is(readFileSync(path.join(dir, PATH_TABLE_FILE), 'utf8'), formatPathTable(plan));
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('the table holds the job key: mode 0600, owned by the job user; a planted temporary name is not followed', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'ffpaths-'));
  try {
    const dir = path.join(root, 'h0');
    mkdirSync(dir);
    writePathTables(plan, [dir], { uid: 65534, gid: 65534 });
    const stat = statSync(path.join(dir, PATH_TABLE_FILE));
    assert.equal([stat.mode & 0o777, stat.uid, stat.gid], [0o600, 65534, 65534]);
    const victim = path.join(root, 'victim');
    symlinkSync(victim, path.join(dir, `.${PATH_TABLE_FILE}.${process.pid}.tmp`));
    assert.throws(() => writePathTables(plan, [dir]));
    assert.not.ok(readdirSync(root).includes('victim'), 'the symlink was followed');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
