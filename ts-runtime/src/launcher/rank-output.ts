/** A line of mpirun's output, with the rank that wrote it when mpirun tagged it (`--tag-output`). */
export interface OutputLine {
  readonly rank: number | undefined;
  readonly stream: 'stdout' | 'stderr';
  readonly text: string;
}

/**
 * mpirun --tag-output marks every chunk a rank's output arrives in, not every line: `[1,2]<stdout>:` at
 * the start of each chunk and after each newline inside it. A long line therefore arrives in pieces, with
 * a tag in the middle where a chunk ended, possibly after another rank's piece. This parser rebuilds each
 * rank's lines from the pieces; text outside any tag is mpirun's own.
 */
const TAG_PATTERN = String.raw`\[\d+,(\d+)\]<(stdout|stderr|stddiag)>:`;
const TAG_AT_START = new RegExp(`^${TAG_PATTERN}`);
const TAG_ANYWHERE = new RegExp(TAG_PATTERN, 'g');
/** What the end of a chunk may hold of a tag cut in two. */
const TAG_PREFIX = /\[(\d+(,(\d+(\](<([a-z]+(>:?)?)?)?)?)?)?)?$/;

interface Source {
  readonly rank: number;
  readonly stream: 'stdout' | 'stderr';
}

export class RankOutputParser {
  private buffer = '';
  /** Whose text is being read: set by a tag, cleared by the newline that ends the line. */
  private source: Source | undefined;
  private readonly partial = new Map<string, string>();

  constructor(
    private readonly stream: 'stdout' | 'stderr',
    private readonly onLine: (line: OutputLine) => void,
  ) {}

  push(chunk: string): void {
    this.buffer += chunk;
    this.parse(false);
  }

  end(): void {
    this.parse(true);
    for (const [key, text] of this.partial) {
      const [rank, stream] = key.split(':');
      this.onLine({ rank: Number(rank), stream: stream as Source['stream'], text });
    }
    this.partial.clear();
  }

  private parse(final: boolean): void {
    let at = 0;
    const text = this.buffer;
    while (at < text.length) {
      if (this.source === undefined) {
        const tag = TAG_AT_START.exec(text.slice(at));
        if (tag !== null) {
          this.source = sourceOf(tag);
          at += tag[0].length;
          continue;
        }
        const newline = text.indexOf('\n', at);
        if (newline < 0) {
          if (!final) break; // an untagged line, or a tag, still arriving
          this.onLine({ rank: undefined, stream: this.stream, text: text.slice(at) });
          at = text.length;
          break;
        }
        this.onLine({ rank: undefined, stream: this.stream, text: text.slice(at, newline) });
        at = newline + 1;
        continue;
      }
      const newline = text.indexOf('\n', at);
      TAG_ANYWHERE.lastIndex = at;
      const tag = TAG_ANYWHERE.exec(text);
      if (tag !== null && (newline < 0 || tag.index < newline)) {
        this.append(this.source, text.slice(at, tag.index));
        this.source = sourceOf(tag);
        at = tag.index + tag[0].length;
        continue;
      }
      if (newline >= 0) {
        const line = this.take(this.source) + text.slice(at, newline);
        this.onLine({ rank: this.source.rank, stream: this.source.stream, text: line });
        this.source = undefined;
        at = newline + 1;
        continue;
      }
      // No newline yet: keep what could be the start of a tag for the next chunk.
      const held = final ? 0 : (TAG_PREFIX.exec(text.slice(at))?.[0].length ?? 0);
      this.append(this.source, text.slice(at, text.length - held));
      at = text.length - held;
      break;
    }
    this.buffer = text.slice(at);
  }

  private append(source: Source, piece: string): void {
    if (piece === '') return;
    const key = `${source.rank}:${source.stream}`;
    this.partial.set(key, (this.partial.get(key) ?? '') + piece);
  }

  private take(source: Source): string {
    const key = `${source.rank}:${source.stream}`;
    const text = this.partial.get(key) ?? '';
    this.partial.delete(key);
    return text;
  }
}

function sourceOf(tag: RegExpExecArray): Source {
  return { rank: Number(tag[1]), stream: tag[2] === 'stdout' ? 'stdout' : 'stderr' };
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
