import { z } from 'zod';
import { FfError } from '../errors';
import { loadAddon, messageOf } from './addon';

/** The core's ff_path_kind_name of each path (docs/path-table.md). */
const pathKindSchema = z.enum(['self', 'shm', 'tcp', 'router', 'handoff']);

const pathTableSchema = z.strictObject({
  jobId: z.string().min(1),
  key: z.string().regex(/^[0-9a-f]{32}$/),
  hosts: z.array(z.strictObject({ index: z.number().int().nonnegative(), name: z.string().min(1) })),
  ranks: z.array(z.strictObject({ rank: z.number().int().nonnegative(), host: z.number().int().nonnegative(), container: z.string().min(1) })),
  paths: z.array(z.array(pathKindSchema)),
});
/** A path table as the core read it. */
export type ReadPathTable = z.infer<typeof pathTableSchema>;

/**
 * Reads a path table with the core's reader (ff_path_table_parse, native/src/path_table.c), the one the
 * BTL and the SPANK plugin use, so that what ffrun writes is checked by what reads it. A table the core
 * refuses throws with the core's message, which names the line and the problem.
 */
export function parsePathTable(text: string): ReadPathTable {
  let raw: unknown;
  try {
    raw = loadAddon().parsePathTable(text);
  } catch (error) {
    if (error instanceof FfError) throw error;
    const status = (error as { status?: unknown } | null)?.status;
    throw new FfError('INTERNAL', `path table is malformed: ${messageOf(error)}`, {
      hint: 'the writer (orchestrator/path-table.ts) and docs/path-table.md disagree: report a bug',
      notes: typeof status === 'string' ? [status] : [],
      cause: error,
    });
  }
  const result = pathTableSchema.safeParse(raw);
  if (result.success) return result.data;
  throw new FfError('ADDON_FAILED', `the native addon returned a malformed path table:\n${z.prettifyError(result.error)}`, {
    hint: 'the addon and the TypeScript runtime are out of step: run npm run build',
  });
}
