import { FfError } from '../errors';
import { pathChars, PATH_SINCE_VERSION, pathKindOfChar, type PathKind } from './path-kind';
import type { PlacedRank, PlannedHost } from './plan';

/** The content of a path table (docs/path-table.md), version 1 or 2. */
export interface PathTable {
  readonly jobId: string;
  readonly key: string;
  readonly hosts: readonly PlannedHost[];
  readonly ranks: readonly Pick<PlacedRank, 'rank' | 'host' | 'container'>[];
  readonly paths: readonly (readonly PathKind[])[];
}

/** The newest format this code reads and writes; 2 added the path `h` (handoff). */
export const PATH_TABLE_VERSION = 2;
const OLDEST_VERSION = 1;
const HEADER = 'freeflow-path-table';

/** The lowest version that defines every path of the table: a job without `h` writes version 1, byte for
 * byte what ffrun wrote before format 2, so readers of version 1 (an older installed BTL) keep working. */
export function pathTableVersionFor(paths: readonly (readonly PathKind[])[]): number {
  return Math.max(OLDEST_VERSION, ...paths.flat().map((kind) => PATH_SINCE_VERSION[kind]));
}

export function formatPathTable(table: PathTable): string {
  const lines = [
    `# written by ffrun; format: docs/path-table.md`,
    `${HEADER} ${pathTableVersionFor(table.paths)}`,
    `job ${table.jobId}`,
    `key ${table.key}`,
    `hosts ${table.hosts.length}`,
    ...table.hosts.map((host) => `host ${host.index} ${host.name}`),
    `ranks ${table.ranks.length}`,
    ...table.ranks.map((rank) => `rank ${rank.rank} ${rank.host} ${rank.container}`),
    'paths',
    ...table.paths.map(pathChars),
    'end',
  ];
  return `${lines.join('\n')}\n`;
}

/**
 * Parses a path table as strictly as the native reader: every directive in order, counts that match,
 * no unknown path character, `end` last. Used to check what ffrun writes and in tests.
 */
export function parsePathTable(text: string): PathTable {
  const lines = text
    .split('\n')
    .map((line, index) => ({ number: index + 1, fields: line.split(' '), text: line }))
    .filter((line) => line.text !== '' && !line.text.startsWith('#'));
  let cursor = 0;
  const next = (directive: string, arity: number): string[] => {
    const line = lines[cursor++];
    if (line === undefined) fail(`missing \`${directive}\` (file truncated?)`);
    if (line.fields[0] !== directive || line.fields.length !== arity + 1)
      fail(`line ${line.number}: expected \`${directive}\` with ${arity} field(s), got \`${line.text}\``);
    return line.fields.slice(1);
  };
  const [version] = next(HEADER, 1);
  const major = Number(version);
  if (!/^[0-9]+$/.test(version ?? '') || major < OLDEST_VERSION || major > PATH_TABLE_VERSION)
    fail(`unsupported version ${version} (this reader knows ${OLDEST_VERSION}..${PATH_TABLE_VERSION})`);
  const [jobId] = next('job', 1) as [string];
  if (!/^[a-z0-9]+$/.test(jobId)) fail(`job id ${jobId} is not [a-z0-9]+`);
  const [key] = next('key', 1) as [string];
  if (!/^[0-9a-f]{32}$/.test(key)) fail(`key ${key} is not 32 lower-case hex digits`);
  const hostCount = count(next('hosts', 1)[0]);
  const hosts = Array.from({ length: hostCount }, (_, index) => {
    const [hostIndex, name] = next('host', 2) as [string, string];
    if (count(hostIndex) !== index) fail(`host ${hostIndex} out of order (expected ${index})`);
    return { index, name };
  });
  const rankCount = count(next('ranks', 1)[0]);
  const ranks = Array.from({ length: rankCount }, (_, rank) => {
    const [rankText, hostText, container] = next('rank', 3) as [string, string, string];
    if (count(rankText) !== rank) fail(`rank ${rankText} out of order (expected ${rank})`);
    const host = count(hostText);
    if (host >= hostCount) fail(`rank ${rank} is on host ${host}, but there are ${hostCount} hosts`);
    return { rank, host, container };
  });
  next('paths', 0);
  const paths = ranks.map((_, from) => {
    const line = lines[cursor++];
    if (line === undefined || line.text.length !== rankCount) fail(`path row ${from} must have ${rankCount} characters`);
    return [...line.text].map((char, to) => {
      const kind = pathKindOfChar(char, major) ?? fail(`unknown path character '${char}' at ${from}->${to} (format ${major})`);
      if (kind === 'handoff' && ranks[from]!.host === ranks[to]!.host) fail(`path ${from}->${to}: 'h' is for ranks on different hosts only`);
      return kind;
    });
  });
  next('end', 0);
  if (cursor !== lines.length) fail('directives after `end`');
  return { jobId, key, hosts, ranks, paths };
}

function count(text: string | undefined): number {
  if (text === undefined || !/^(0|[1-9][0-9]*)$/.test(text)) fail(`\`${text}\` is not a count`);
  return Number(text);
}

function fail(problem: string): never {
  throw new FfError('INTERNAL', `path table is malformed: ${problem}`, {
    hint: 'the writer (orchestrator/path-table.ts) and docs/path-table.md disagree: report a bug',
  });
}
