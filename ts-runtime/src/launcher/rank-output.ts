/** A line of mpirun's output, with the rank that wrote it when mpirun tagged it (`--tag-output`). */
export interface OutputLine {
  readonly rank: number | undefined;
  readonly stream: 'stdout' | 'stderr';
  readonly text: string;
}

const TAG = /^\[\d+,(\d+)\]<(stdout|stderr)>:(.*)$/;

/** Turns `[1,2]<stdout>:hello` into rank 2's stdout line `hello`; untagged lines are mpirun's own. */
export function parseOutputLine(line: string, stream: 'stdout' | 'stderr'): OutputLine {
  const match = TAG.exec(line);
  if (match === null) return { rank: undefined, stream, text: line };
  return { rank: Number(match[1]), stream: match[2] as 'stdout' | 'stderr', text: match[3]! };
}

/**
 * mpirun's rsh launcher prints this when its rsh child has already exec'd the agent before the parent
 * calls setpgid on it (a race on a busy machine); Open MPI's own source says to ignore it
 * (orte/mca/plm/rsh/plm_rsh_module.c), so ffrun does not show it.
 */
const IGNORABLE = /^\[[^\]]+\] plm:rsh: Warning: setpgid\(\d+,\d+\) failed in parent with errno=Permission denied\(13\)$/;

export function isIgnorable(line: OutputLine): boolean {
  return line.rank === undefined && IGNORABLE.test(line.text);
}

export function formatOutputLine(line: OutputLine): string {
  return line.rank === undefined ? line.text : `[rank ${line.rank}] ${line.text}`;
}

/** Splits a byte stream into lines, holding a partial last line until it is complete or the stream ends. */
export class LineSplitter {
  private pending = '';

  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: string): void {
    const parts = (this.pending + chunk).split('\n');
    this.pending = parts.pop() ?? '';
    for (const part of parts) this.onLine(part);
  }

  end(): void {
    if (this.pending !== '') this.onLine(this.pending);
    this.pending = '';
  }
}
