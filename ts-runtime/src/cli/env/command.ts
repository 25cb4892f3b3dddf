import { componentPathSetting } from '../../launcher/mpirun-invocation';
import { assertNetworkAvailable, BTL_DIR } from '../../launcher/preflight';
import { parseOptions } from '../../util/parse-options';

/** `ffrun env`: the one environment setting with which the stock mpirun loads the freeflow BTL without ffrun. */
export function envCommand(args: readonly string[]): number {
  parseOptions('ffrun env', args, {}, 'ffrun env');
  assertNetworkAvailable('freeflow');
  const setting = componentPathSetting(BTL_DIR);
  process.stdout.write(`export ${setting.name}=${setting.value}\n`);
  process.stderr.write('# then: mpirun --mca pml ob1 --mca btl self,vader,freeflow,tcp ...\n');
  return 0;
}
