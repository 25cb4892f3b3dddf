import { FfError } from '../../errors';
import type { MpirunOutcome } from '../../launcher/run-mpirun';

/** What srun says when the plugin that defines --freeflow was not loaded on the submitting side. */
export const SPANK_NOT_LOADED_PATTERN = /unrecognized option '--freeflow|ffrun-fork-agent: the freeflow SPANK plugin did not prepare this task/;
const PLUGIN_REFUSED = /freeflow: (.*)/;
const UNREACHABLE =
  /Unable to contact slurm controller|Unable to allocate resources: .*(Socket timed out|Connection refused)|Zero Bytes were transmitted or received/;

/**
 * srun's own failures that are not the program's: the SPANK plugin missing or refusing, the controller not
 * answering. undefined when the ranks ran (their exit code is then the job's, as with mpirun).
 */
export function srunFailure(outcome: MpirunOutcome, srunLines: readonly string[]): FfError | undefined {
  if (outcome.exitCode === 0) return undefined;
  const text = srunLines.join('\n');
  if (SPANK_NOT_LOADED_PATTERN.test(text)) {
    return new FfError('SPANK_PLUGIN_NOT_LOADED', 'the freeflow SPANK plugin is not loaded by this Slurm (srun or a node does not know --freeflow)', {
      hint: "list it in the plugstack.conf that slurm.conf's PlugStackConfig names, on the submit host and every node: `required <repo>/build/lib/spank_freeflow.so` (docs/slurm.md), then restart slurmd",
      notes: srunLines.slice(0, 5),
    });
  }
  const refusal = srunLines.map((line) => PLUGIN_REFUSED.exec(line)?.[1]).find((match) => match !== undefined);
  if (refusal !== undefined && /spank|plugin|task_init/i.test(text)) {
    return new FfError('SLURM_MISCONFIGURED', `the freeflow SPANK plugin refused the job's tasks: ${refusal}`, {
      hint: "the job's state directory or a node's shared directory is not as ffrun left it (docs/slurm.md lists what the plugin checks)",
      notes: srunLines.slice(0, 5),
    });
  }
  if (UNREACHABLE.test(text)) {
    return new FfError('SLURM_UNREACHABLE', 'srun could not reach slurmctld', {
      hint: 'check that slurmctld runs and that SlurmctldHost in slurm.conf is reachable from here (`scontrol ping`)',
      notes: srunLines.slice(0, 5),
    });
  }
  return undefined;
}
