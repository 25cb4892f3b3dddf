import { readFileSync } from 'node:fs';
import { FfError } from '../errors';
import { FIELD_FIXES } from './schema';

export interface JobUser {
  readonly uid: number;
  readonly gid: number;
}

/**
 * The uid and gid of a spec's `user` (already matched against USER_PATTERN): `uid:gid` as given, a bare
 * uid with its primary group from the machine's /etc/passwd (else gid = uid), a name through
 * /etc/passwd. Undefined means root.
 */
export function resolveJobUser(user: string | undefined, passwdText?: string): JobUser {
  if (user === undefined) return { uid: 0, gid: 0 };
  const pair = /^(\d+):(\d+)$/.exec(user);
  if (pair) return checked(Number(pair[1]), Number(pair[2]), user);
  const entries = (passwdText ?? readPasswd())
    .split('\n')
    .map((line) => line.split(':'))
    .filter((fields) => fields.length >= 4 && /^\d+$/.test(fields[2]!) && /^\d+$/.test(fields[3]!));
  if (/^\d+$/.test(user)) {
    const entry = entries.find((fields) => fields[2] === user);
    return checked(Number(user), entry === undefined ? Number(user) : Number(entry[3]), user);
  }
  const entry = entries.find((fields) => fields[0] === user);
  if (entry === undefined) {
    throw new FfError('SPEC_INVALID', `user: ${user} is not in this machine's /etc/passwd`, { hint: FIELD_FIXES.user });
  }
  return checked(Number(entry[2]), Number(entry[3]), user);
}

function checked(uid: number, gid: number, user: string): JobUser {
  // 2^32-1 is (uid_t)-1, "no change" to the kernel.
  if (uid > 0xfffffffe || gid > 0xfffffffe) throw new FfError('SPEC_INVALID', `user: ${user} is out of range`, { hint: FIELD_FIXES.user });
  return { uid, gid };
}

function readPasswd(): string {
  try {
    return readFileSync('/etc/passwd', 'utf8');
  } catch {
    return '';
  }
}
