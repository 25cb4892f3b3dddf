import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatOutputLine, isIgnorable, RankOutputParser, type OutputLine } from './rank-output';

function parse(chunks: readonly string[], stream: 'stdout' | 'stderr' = 'stdout'): OutputLine[] {
  const lines: OutputLine[] = [];
  const parser = new RankOutputParser(stream, (line) => lines.push(line));
  for (const chunk of chunks) parser.push(chunk);
  parser.end();
  return lines;
}

test('tagged lines become [rank N] lines on the stream the rank wrote to', () => {
  const [line] = parse(['[1,12]<stderr>:oops\n']);
  assert.equal(line, { rank: 12, stream: 'stderr', text: 'oops' });
  assert.is(formatOutputLine(line!), '[rank 12] oops');
});

test("mpirun's own lines stay as they are", () => {
  const [line] = parse(['mpirun detected that one or more processes exited\n'], 'stderr');
  assert.equal(line, { rank: undefined, stream: 'stderr', text: 'mpirun detected that one or more processes exited' });
  assert.is(formatOutputLine(line!), 'mpirun detected that one or more processes exited');
});

test('lines and tags split across chunks are joined; a last line without newline is kept', () => {
  const lines = parse(['[1,0]<stdout>:hel', 'lo\n[1,', '1]<stdout>:a\n[1,1]<stdout>:\nb']);
  assert.equal(lines.map(formatOutputLine), ['[rank 0] hello', '[rank 1] a', '[rank 1] ', 'b']);
});

test('a long line that mpirun delivered in several tagged chunks, interleaved with another rank, comes back whole', () => {
  const long = 'x'.repeat(5000);
  const lines = parse([
    `[1,0]<stdout>:{"json": "${long.slice(0, 3000)}`,
    `[1,1]<stdout>:rank one says hi\n`,
    `[1,0]<stdout>:${long.slice(3000)}"}\n[1,0]<stdout>:next\n`,
  ]);
  assert.equal(lines.map(formatOutputLine), ['[rank 1] rank one says hi', `[rank 0] {"json": "${long}"}`, '[rank 0] next']);
});

test("only mpirun's documented-harmless setpgid race warning is dropped", () => {
  const warning = '[vm:14348] plm:rsh: Warning: setpgid(14360,14360) failed in parent with errno=Permission denied(13)';
  const [own, tagged] = parse([`${warning}\n[1,0]<stderr>:${warning}\n`], 'stderr');
  assert.ok(isIgnorable(own!));
  assert.not.ok(isIgnorable(tagged!));
  const [error] = parse(['[vm:1] plm:rsh: Error: setpgid(0,0) failed in child with errno=Permission denied(13)\n'], 'stderr');
  assert.not.ok(isIgnorable(error!));
});

test.run();
