import * as path from 'node:path';

/**
 * The repository root, found from this file's place in the build: sources run compiled from
 * <root>/dist/ts-runtime/src/util/, so the root is four levels up.
 */
export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..', '..');
