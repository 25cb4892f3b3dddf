import { FfError } from '#runtime/errors';
import type { NetpipePlan } from './profiles';
import { resultPathInContainer } from './result-file';

/** Debian's netpipe-openmpi: NetPIPE's MPI module built against Open MPI. */
export const NETPIPE_PROGRAM = '/usr/bin/NPopenmpi';

/** NetPIPE's ping-pong at one message size. */
export interface NetpipePoint {
  readonly size: number;
  /** Half the round trip, in microseconds (NetPIPE's third column, in seconds there). */
  readonly latencyUs: number;
  /** size / half round trip, 10^6 bytes per second (NetPIPE's second column is the same in Mbit/s). */
  readonly bandwidthMBs: number;
}

/** NetPIPE's arguments: power-of-two sizes and their halfway points (-p 0: no +-3 byte perturbations). */
export function netpipeArgs(plan: Pick<NetpipePlan, 'upperBytes' | 'repeats'>): string[] {
  return ['-l', '1', '-u', String(plan.upperBytes), '-p', '0', '-n', String(plan.repeats), '-o', resultPathInContainer('netpipe')];
}

/** Parses NetPIPE's output file: one line per size, `bytes Mbps seconds`. */
export function parseNetpipeOutput(text: string, source: string): NetpipePoint[] {
  const points: NetpipePoint[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const fields = line.trim().split(/\s+/).map(Number);
    const [size, , seconds] = fields;
    if (fields.length !== 3 || !fields.every(Number.isFinite) || size === undefined || seconds === undefined || seconds <= 0 || size < 1) {
      throw new FfError('BENCH_RESULT_INVALID', `${source}: a line is not \`bytes Mbps seconds\`: ${JSON.stringify(line)}`, {
        hint: 'NetPIPE (Debian netpipe-openmpi 3.7) writes three numbers per line; check the installed version',
      });
    }
    points.push({ size, latencyUs: seconds * 1e6, bandwidthMBs: size / seconds / 1e6 });
  }
  if (points.length === 0) {
    throw new FfError('BENCH_RESULT_INVALID', `${source} holds no measurement`, { hint: 'NetPIPE stopped before its first size: see its output' });
  }
  return points;
}
