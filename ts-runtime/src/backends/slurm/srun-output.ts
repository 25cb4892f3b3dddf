import type { OutputLine } from '../../launcher/rank-output';

/**
 * srun --label prefixes every line of a task with its rank ("3: text", right-aligned to the widest rank,
 * " 3: text" among 10 or more); srun's own lines ("srun: error: ...") carry no label. srun --unbuffered
 * forwards output as it comes, so a line may arrive in pieces: lines are rebuilt per stream.
 */
const LABEL = /^ *(\d+): ?(.*)$/s;

export class SrunOutputParser {
  private buffer = '';

  constructor(
    private readonly stream: 'stdout' | 'stderr',
    private readonly onLine: (line: OutputLine) => void,
  ) {}

  push(chunk: string): void {
    this.buffer += chunk;
    let newline: number;
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      this.emit(this.buffer.slice(0, newline));
      this.buffer = this.buffer.slice(newline + 1);
    }
  }

  end(): void {
    if (this.buffer !== '') this.emit(this.buffer);
    this.buffer = '';
  }

  private emit(text: string): void {
    const label = LABEL.exec(text);
    this.onLine(label === null ? { rank: undefined, stream: this.stream, text } : { rank: Number(label[1]), stream: this.stream, text: label[2]! });
  }
}
