import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { planeDecide } from '../native/addon';
import type { HostCapabilities } from '../native/capabilities';
import { decideInterHost, decidePaths, planeBetween, type HostAgentState } from './decide-paths';
import { pathChars } from './path-kind';
import { placeRanks } from './placement';

function host(fs = 'tmpfs', bytes = 1 << 30, rdma = false): HostCapabilities {
  return { rdma, ucxTransports: ['tcp'], cpus: 2, sharedDir: { fs, bytes } };
}
const up: HostAgentState = { reachable: true };
const down = (problem: string): HostAgentState => ({ reachable: false, problem });

const rows = (paths: ReturnType<typeof decidePaths>) => paths.map(pathChars);
const demo = placeRanks({ hosts: 2, containersPerHost: 2, slotsPerContainer: 1 }, 4, 'fill');
const three = placeRanks({ hosts: 3, containersPerHost: 1, slotsPerContainer: 1 }, 3, 'fill');

/** The plan of `slots` on `hosts` with the given agents: rows of the matrix and the pairs of hosts. */
function plan(
  slots: typeof demo,
  hosts: HostCapabilities[],
  agents: HostAgentState[],
  requested: 'auto' | 'handoff' | 'router' | 'tcp' = 'auto',
  network: 'freeflow' | 'overlay' = 'freeflow',
) {
  const interHost = decideInterHost(network, requested, hosts, agents);
  return { rows: rows(decidePaths(slots, hosts, network, interHost)), interHost };
}

test('auto, both agents answered, no RDMA: h across hosts, m within (the default between hosts)', () => {
  const { rows: matrix, interHost } = plan(demo, [host(), host()], [up, up]);
  assert.equal(matrix, ['smhh', 'mshh', 'hhsm', 'hhms']);
  assert.equal(interHost.pairs, [{ hosts: [0, 1], plane: 'handoff', reason: 'FF_PLANE_REASON_NO_COMMON_RDMA', why: interHost.pairs[0]!.why }]);
  assert.match(interHost.pairs[0]!.why, /do not both have RDMA/);
  assert.is(interHost.requested, 'auto');
  assert.equal(interHost.agents, [up, up]);
});

test('auto, 3 hosts, the agent of h2 unreachable: t for pairs touching h2 (with its problem), h between h0 and h1', () => {
  const { rows: matrix, interHost } = plan(three, [host(), host(), host()], [up, up, down('connect ECONNREFUSED /x/h2.sock')]);
  assert.equal(matrix, ['sht', 'hst', 'tts']);
  const byPair = Object.fromEntries(interHost.pairs.map((pair) => [pair.hosts.join('-'), pair]));
  assert.is(byPair['0-1']!.plane, 'handoff');
  for (const key of ['0-2', '1-2']) {
    assert.is(byPair[key]!.plane, 'tcp');
    assert.is(byPair[key]!.reason, 'FF_PLANE_REASON_AGENT_UNREACHABLE');
    assert.match(byPair[key]!.why, /h2: connect ECONNREFUSED \/x\/h2\.sock$/);
    assert.not.match(byPair[key]!.why, /h[01]:/);
  }
  assert.is(planeBetween(interHost, 2, 0), 'tcp');
  assert.is(planeBetween(interHost, 1, 0), 'handoff');
});

test('auto, no agent answered anywhere: t everywhere across hosts, m kept within hosts', () => {
  const { rows: matrix, interHost } = plan(demo, [host(), host()], [down('a'), down('b')]);
  assert.equal(matrix, ['smtt', 'mstt', 'ttsm', 'ttms']);
  assert.match(interHost.pairs[0]!.why, /h0: a; h1: b$/);
});

test('auto with RDMA: r only where both hosts have an active RDMA port and both agents answered', () => {
  const rdma = host('tmpfs', 1 << 30, true);
  const both = plan(demo, [rdma, rdma], [up, up]);
  assert.equal(both.rows, ['smrr', 'msrr', 'rrsm', 'rrms']);
  assert.is(both.interHost.pairs[0]!.reason, 'FF_PLANE_REASON_BOTH_RDMA');
  const one = plan(demo, [rdma, host()], [up, up]);
  assert.equal(one.rows, ['smhh', 'mshh', 'hhsm', 'hhms']);
  assert.is(one.interHost.pairs[0]!.reason, 'FF_PLANE_REASON_NO_COMMON_RDMA');
  const noAgent = plan(demo, [rdma, rdma], [up, down('gone')]);
  assert.equal(noAgent.rows, ['smtt', 'mstt', 'ttsm', 'ttms']);
  assert.is(noAgent.interHost.pairs[0]!.reason, 'FF_PLANE_REASON_AGENT_UNREACHABLE');
});

test('forced router: r with both agents, RDMA or not (UCX over tcp here); t with CHOICE_NEEDS_AGENT when one is missing', () => {
  const forced = plan(demo, [host(), host()], [up, up], 'router');
  assert.equal(forced.rows, ['smrr', 'msrr', 'rrsm', 'rrms']);
  assert.is(forced.interHost.pairs[0]!.reason, 'FF_PLANE_REASON_USER_ROUTER');
  const missing = plan(three, [host(), host(), host()], [up, up, down('did not start')], 'router');
  assert.equal(missing.rows, ['srt', 'rst', 'tts']);
  assert.is(missing.interHost.pairs[1]!.reason, 'FF_PLANE_REASON_CHOICE_NEEDS_AGENT');
});

test('forced handoff: h with both agents (RDMA or not); t with CHOICE_NEEDS_AGENT when one is missing', () => {
  const rdma = host('tmpfs', 1 << 30, true);
  const forced = plan(demo, [rdma, rdma], [up, up], 'handoff');
  assert.equal(forced.rows, ['smhh', 'mshh', 'hhsm', 'hhms']);
  assert.is(forced.interHost.pairs[0]!.reason, 'FF_PLANE_REASON_USER_HANDOFF');
  const missing = plan(three, [host(), host(), host()], [down('did not start'), up, up], 'handoff');
  assert.equal(missing.rows, ['stt', 'tsh', 'ths']);
  assert.is(missing.interHost.pairs[0]!.reason, 'FF_PLANE_REASON_CHOICE_NEEDS_AGENT');
  assert.match(missing.interHost.pairs[0]!.why, /h0: did not start$/);
});

test('forced tcp: t across hosts even when every agent answered', () => {
  const { rows: matrix, interHost } = plan(demo, [host(), host()], [up, up], 'tcp');
  assert.equal(matrix, ['smtt', 'mstt', 'ttsm', 'ttms']);
  assert.is(interHost.pairs[0]!.reason, 'FF_PLANE_REASON_USER_TCP');
});

test('h is never planned within a host, even without shared memory there', () => {
  assert.equal(plan(demo, [host('ext4'), host()], [up, up]).rows, ['sthh', 'tshh', 'hhsm', 'hhms']);
  assert.equal(plan(demo, [host(), host('tmpfs', 0)], [up, up]).rows, ['smhh', 'mshh', 'hhst', 'hhts']);
});

test('network overlay (status quo): containers never share memory, never h, whatever the agents', () => {
  const { rows: matrix, interHost } = plan(demo, [host(), host()], [up, up], 'auto', 'overlay');
  assert.equal(matrix, ['sttt', 'tstt', 'ttst', 'ttts']);
  assert.is(interHost.pairs[0]!.reason, 'NETWORK_OVERLAY');
  const slots = placeRanks({ hosts: 1, containersPerHost: 2, slotsPerContainer: 2 }, 3, 'fill');
  assert.equal(plan(slots, [host()], [up], 'auto', 'overlay').rows, ['smt', 'mst', 'tts']);
});

test('one host: no pair of hosts to decide', () => {
  const slots = placeRanks({ hosts: 1, containersPerHost: 2, slotsPerContainer: 1 }, 2, 'fill');
  const { rows: matrix, interHost } = plan(slots, [host()], [down('no ffagent is needed by this job')]);
  assert.equal(matrix, ['sm', 'ms']);
  assert.equal(interHost.pairs, []);
});

test('3 hosts, every agent up but h1 and h2 cannot complete their handshake: t between them naming both, h elsewhere', () => {
  const probed = (reached: number[], unreached: { host: number; reason: string }[]): HostAgentState => ({ reachable: true, peers: { reached, unreached } });
  const agents = [
    probed([1, 2], []),
    probed([0], [{ host: 2, reason: 'FF_AGENT_PEER_UNREACHABLE' }]),
    probed([0], [{ host: 1, reason: 'FF_AGENT_PEER_UNREACHABLE' }]),
  ];
  for (const requested of ['auto', 'handoff', 'router'] as const) {
    const { rows: matrix, interHost } = plan(three, [host(), host(), host()], agents, requested);
    const across = requested === 'router' ? 'r' : 'h';
    assert.equal(matrix, [`s${across}${across}`, `${across}st`, `${across}ts`], requested);
    const pair12 = interHost.pairs.find((pair) => pair.hosts.join('-') === '1-2')!;
    assert.is(pair12.reason, 'FF_PLANE_REASON_AGENTS_CANNOT_REACH');
    assert.match(pair12.why, /h1's ffagent could not complete the handshake with h2's: FF_AGENT_PEER_UNREACHABLE/);
    assert.match(pair12.why, /h2's ffagent could not complete the handshake with h1's/);
  }
  // one direction is enough to rule the pair out (the handshake is the data path of h)
  const oneWay = [probed([1, 2], []), probed([0, 2], []), probed([0], [{ host: 1, reason: 'FF_AGENT_HOST_NOT_ALLOWED' }])];
  assert.equal(plan(three, [host(), host(), host()], oneWay).rows, ['shh', 'hst', 'hts']);
  // with tcp chosen the probe changes nothing
  assert.is(plan(three, [host(), host(), host()], agents, 'tcp').interHost.pairs[2]!.reason, 'FF_PLANE_REASON_USER_TCP');
});

test('every pair plane is the core policy (ff_plane_decide)', () => {
  const states = [up, down('x')];
  for (const requested of ['auto', 'handoff', 'router', 'tcp'] as const) {
    for (const [agentA, agentB, rdmaA, rdmaB] of [
      [0, 0, false, false],
      [0, 1, false, true],
      [1, 1, true, true],
      [1, 0, true, false],
      [1, 1, false, false],
    ] as const) {
      const interHost = decideInterHost('freeflow', requested, [host('tmpfs', 1, rdmaA), host('tmpfs', 1, rdmaB)], [states[agentA]!, states[agentB]!]);
      const core = planeDecide(requested, { agentReachable: agentA === 0, rdmaActive: rdmaA }, { agentReachable: agentB === 0, rdmaActive: rdmaB });
      const pair = interHost.pairs[0]!;
      assert.equal([pair.plane, pair.reason], [core.plane, core.reason]);
    }
  }
});

test.run();
