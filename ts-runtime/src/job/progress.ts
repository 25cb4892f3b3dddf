import { formatDuration } from '../util/units';

/** Progress of slow steps on stderr, with elapsed times, so stdout stays for rank output or JSON. */
export interface Progress {
  /** Runs a slow step, announcing it and its duration. */
  step<T>(label: string, work: () => Promise<T>): Promise<T>;
  /** A one-line note (e.g. from the cluster while it sets up). */
  note(message: string): void;
}

export function stderrProgress(write: (text: string) => void = (text) => process.stderr.write(text)): Progress {
  const started = Date.now();
  const stamp = (): string => `[ffrun ${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s]`;
  return {
    async step(label, work) {
      write(`${stamp()} ${label} ...\n`);
      const stepStart = Date.now();
      try {
        const result = await work();
        write(`${stamp()} ${label}: done in ${formatDuration(Date.now() - stepStart)}\n`);
        return result;
      } catch (error) {
        write(`${stamp()} ${label}: failed after ${formatDuration(Date.now() - stepStart)}\n`);
        throw error;
      }
    },
    note(message) {
      write(`${stamp()}   ${message}\n`);
    },
  };
}
