import { loadJobSpecFile } from '../spec/load';
import { parseRenderArgs } from './args';
import { renderKubernetes } from './k8s/manifests';
import { manifestStream, writeManifests } from './k8s/write';

/** `ffrun render k8s <spec> ...`: the manifests on stdout, or one file each under -o DIR (paths on stderr). */
export function renderCommand(args: readonly string[]): number {
  const parsed = parseRenderArgs(args);
  const spec = loadJobSpecFile(parsed.specPath);
  const manifests = renderKubernetes(spec, { image: parsed.image, namespace: parsed.namespace, agentPort: parsed.agentPort }, parsed.specPath);
  if (parsed.outDir === undefined) {
    process.stdout.write(manifestStream(manifests));
    return 0;
  }
  for (const file of writeManifests(parsed.outDir, manifests)) process.stderr.write(`wrote ${file}\n`);
  return 0;
}
