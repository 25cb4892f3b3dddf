import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { resolveJobUser } from './user';
import { validateJobSpec } from './validate';
import { ffErrorOf } from '#test/support/ff-error';

const PASSWD = 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\nmpi:x:1001:1002::/home/mpi:/bin/sh\n';
const valid = { name: 'demo', cluster: { hosts: 1, containersPerHost: 2 }, ranks: 2, program: { command: '/bin/true' } };

test('user: names, uids and uid:gid pass the schema; anything else is named with the fix', () => {
  for (const user of ['nobody', '65534', '65534:65534', 'mpi-user_1'])
    assert.is(validateJobSpec({ ...valid, user }, { kind: 'file', path: 'j.yaml' }).user, user);
  assert.is(validateJobSpec(valid, { kind: 'file', path: 'j.yaml' }).user, undefined);
  for (const user of ['Root', '1:', ':1', 'a b', '$(id)', '', 65534]) {
    const error = ffErrorOf(() => validateJobSpec({ ...valid, user }, { kind: 'file', path: 'j.yaml' }));
    assert.is(error.code, 'SPEC_INVALID');
    assert.ok(
      error.notes.some((note) => note.includes('user') && note.includes('uid:gid')),
      error.notes.join('\n'),
    );
  }
});

test('resolving: root by default, uid:gid as given, names and bare uids through /etc/passwd', () => {
  assert.equal(resolveJobUser(undefined, PASSWD), { uid: 0, gid: 0 });
  assert.equal(resolveJobUser('123:456', PASSWD), { uid: 123, gid: 456 });
  assert.equal(resolveJobUser('nobody', PASSWD), { uid: 65534, gid: 65534 });
  assert.equal(resolveJobUser('mpi', PASSWD), { uid: 1001, gid: 1002 });
  assert.equal(resolveJobUser('1001', PASSWD), { uid: 1001, gid: 1002 });
  assert.equal(resolveJobUser('4242', PASSWD), { uid: 4242, gid: 4242 });
  const unknown = ffErrorOf(() => resolveJobUser('nosuch', PASSWD));
  assert.is(unknown.code, 'SPEC_INVALID');
  assert.match(unknown.message, /nosuch is not in this machine's \/etc\/passwd/);
  assert.is(ffErrorOf(() => resolveJobUser('4294967295', PASSWD)).code, 'SPEC_INVALID');
});

test.run();
