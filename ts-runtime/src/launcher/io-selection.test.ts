import { execFileSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { IO_MCA_SETTINGS } from './io-selection';

test('every io setting names an MCA framework and a component that this Open MPI has', () => {
  const info = execFileSync('ompi_info', [], { encoding: 'utf8' });
  for (const [framework, component] of IO_MCA_SETTINGS) {
    assert.match(info, new RegExp(`MCA ${framework}: ${component} \\(`), `ompi_info lists no ${framework} component ${component}`);
  }
  assert.equal(IO_MCA_SETTINGS, [['sharedfp', 'lockedfile']]);
});

test.run();
