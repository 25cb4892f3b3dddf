import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatOutputLine, isIgnorable, LineSplitter, parseOutputLine } from './rank-output';

test('tagged lines become [rank N] lines on the stream the rank wrote to', () => {
  const line = parseOutputLine('[1,12]<stderr>:oops: [1,2]<stdout>: stays', 'stdout');
  assert.equal(line, { rank: 12, stream: 'stderr', text: 'oops: [1,2]<stdout>: stays' });
  assert.is(formatOutputLine(line), '[rank 12] oops: [1,2]<stdout>: stays');
});

test("mpirun's own lines stay as they are", () => {
  const line = parseOutputLine('mpirun detected that one or more processes exited', 'stderr');
  assert.is(line.rank, undefined);
  assert.is(formatOutputLine(line), 'mpirun detected that one or more processes exited');
});

test('lines split across chunks are joined; a last line without newline is kept', () => {
  const lines: string[] = [];
  const splitter = new LineSplitter((line) => lines.push(line));
  splitter.push('[1,0]<stdout>:hel');
  splitter.push('lo\n[1,1]<stdout>:a\n\nb');
  splitter.end();
  assert.equal(lines, ['[1,0]<stdout>:hello', '[1,1]<stdout>:a', '', 'b']);
});

test("only mpirun's documented-harmless setpgid race warning is dropped", () => {
  const warning = '[vm:14348] plm:rsh: Warning: setpgid(14360,14360) failed in parent with errno=Permission denied(13)';
  assert.ok(isIgnorable(parseOutputLine(warning, 'stderr')));
  assert.not.ok(isIgnorable(parseOutputLine(`[1,0]<stderr>:${warning}`, 'stderr')));
  assert.not.ok(isIgnorable(parseOutputLine('[vm:1] plm:rsh: Error: setpgid(0,0) failed in child with errno=Permission denied(13)', 'stderr')));
});

test.run();
