import { formatDuration } from '#runtime/util/units';
import type { RunRecord } from './raw';
import type { ScheduledRun } from './schedule';

const BAR_WIDTH = 24;

/** Which runs cost the same: the same measurement in the same mode (its duration in the last repetition predicts the next). */
const keyOf = (run: Pick<ScheduledRun, 'mode' | 'work'>): string => `${run.mode}/${run.work.kind === 'mpi' ? run.work.pass : run.work.kind}`;

/**
 * Progress of a long run on stderr. On a terminal, one line redrawn in place: a bar, done/total, the
 * time left and the next run; elsewhere (logs, CI) one line per finished run. The time left sums, for
 * every run still to come, how long the same measurement took in its last repetition (the average run
 * while the first repetition goes).
 */
export class RunProgressBar {
  private runs: readonly ScheduledRun[] = [];
  private done = 0;
  private lastAt = 0;
  private readonly lastDuration = new Map<string, number>();
  private totalMs = 0;

  constructor(
    private readonly write: (text: string) => void,
    private readonly interactive: boolean,
    private readonly describe: (run: ScheduledRun) => string,
    private readonly now: () => number = Date.now,
  ) {}

  start(runs: readonly ScheduledRun[]): void {
    this.runs = runs;
    this.lastAt = this.now();
    if (this.interactive) this.draw();
  }

  /** Call once per run, in schedule order. */
  finished(record: RunRecord): void {
    const at = this.now();
    const took = at - this.lastAt;
    this.lastAt = at;
    this.done++;
    this.totalMs += took;
    this.lastDuration.set(keyOf(record), took);
    const run = this.runs[this.done - 1];
    const problem = record.status === 'ok' ? '' : `${record.status.toUpperCase()}: ${record.problem ?? ''}`;
    if (this.interactive) {
      if (problem !== '') this.write(`\r\x1b[2K[ffbench] ${run === undefined ? record.mode : this.describe(run)}: ${problem}\n`);
      this.draw();
      return;
    }
    const what = run === undefined ? record.mode : this.describe(run);
    this.write(
      `[ffbench ${String(this.done).padStart(String(this.runs.length).length)}/${this.runs.length}] ${what}: ${problem || 'ok'} (${formatDuration(took)}), about ${formatDuration(this.remainingMs())} left\n`,
    );
  }

  /** Ends the redrawn line so that later output starts on a fresh one. */
  end(): void {
    if (this.interactive && this.runs.length > 0) this.write('\n');
  }

  remainingMs(): number {
    const average = this.done === 0 ? 0 : this.totalMs / this.done;
    return this.runs.slice(this.done).reduce((sum, run) => sum + (this.lastDuration.get(keyOf(run)) ?? average), 0);
  }

  private draw(): void {
    const total = this.runs.length;
    const filled = total === 0 ? BAR_WIDTH : Math.round((this.done / total) * BAR_WIDTH);
    const next = this.runs[this.done];
    const left = this.done === 0 ? '' : `, about ${formatDuration(this.remainingMs())} left`;
    const line = `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${this.done}/${total}${left}${next === undefined ? '' : `; next: ${this.describe(next)}`}`;
    this.write(`\r\x1b[2K${line}`);
  }
}
