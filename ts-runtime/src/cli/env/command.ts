import { componentPathSetting } from '../../launcher/mpirun-invocation';
import { assertNetworkAvailable, BTL_DIR } from '../../launcher/preflight';

/** `ffrun env`: the one environment setting with which the stock mpirun loads the freeflow BTL without ffrun. */
export function envCommand(): number {
  assertNetworkAvailable('freeflow');
  const setting = componentPathSetting(BTL_DIR);
  process.stdout.write(`export ${setting.name}=${setting.value}\n`);
  process.stderr.write('# then: mpirun --mca pml ob1 --mca btl self,vader,freeflow,tcp ...\n');
  return 0;
}
