// The real agent (`portway run --manifests DIR --config FILE`) doing layer2 end to end, as root: two node
// namespaces and a client on one bridge (the namespace harness), pods on both nodes, the same manifests
// for both agents (a pool, an L2Advertisement, a LoadBalancer Service). Each agent allocates the same
// address, programs the iptables rules for it and, on the elected node only, answers ARP for it.
import { afterAll, beforeAll, expect, test } from '@jest/globals';

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

import { rankNodes } from '../../../src/l2/election.js';
import { type NetnsProcess, Topology } from '../harness/topology.js';
import { lbManifests } from '../../unit/lb/manifest-fixtures.js';
import { arping, neighbourMac, requireNativeAddon } from './topology.js';
import { pollFor } from '../../fixtures/polling.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const VIP = '10.99.0.200';
const NODES = ['node1', 'node2'];
// Every agent computes this ranking; the first node owns the address while both are alive.
const [OWNER, STANDBY] = rankNodes(VIP, NODES) as [string, string];

let topo: Topology;
let dir: string;
const agents = new Map<string, NetnsProcess>();
const macs = new Map<string, string>();

async function linkMac(netns: string, ifname: string): Promise<string> {
  const { stdout } = await execa('ip', ['-n', netns, '-j', 'link', 'show', ifname]);
  return (JSON.parse(stdout) as Array<{ address: string }>)[0]?.address ?? '';
}

function startAgent(node: string): NetnsProcess {
  const netns = topo.node(node).netns;
  const proc = topo.start(netns, process.execPath, [
    '--import',
    'tsx',
    join(ROOT, 'src/cli/main.ts'),
    'run',
    '--manifests',
    join(dir, 'manifests'),
    '--config',
    join(dir, `${node}.yaml`),
  ]);
  agents.set(node, proc);
  return proc;
}

function killAgent(node: string): void {
  agents.get(node)?.child.kill('SIGKILL');
  agents.delete(node);
}

/** pollFor, failing with the tail of every agent's log. */
const waitFor = <T>(what: string, timeoutMs: number, probe: () => Promise<T | null>): Promise<T> =>
  pollFor(what, timeoutMs, probe, () =>
    [...agents].map(([n, a]) => `--- ${n}\n${a.output().split('\n').slice(-20).join('\n')}`).join('\n'),
  );

const client = () => topo.client.netns;

beforeAll(async () => {
  // Fail loudly, never skip: this suite is the proof that the agent announces.
  requireNativeAddon();
  if (process.getuid?.() !== 0)
    throw new Error('the layer2 agent e2e suite needs root (network namespaces, AF_PACKET)');
  topo = await Topology.create({ nodes: 2, podsPerNode: 1, ipv6: false, tag: 'l2agent' });
  dir = await mkdtemp(join(tmpdir(), 'portway-l2agent-'));
  await execa('mkdir', [join(dir, 'manifests')]);
  await writeFile(join(dir, 'manifests', 'cluster.yaml'), lbManifests());
  for (const n of topo.nodes) {
    macs.set(n.name, await linkMac(n.netns, 'eth0'));
    await writeFile(
      join(dir, `${n.name}.yaml`),
      [
        `nodeName: ${n.name}`,
        `nodeIPs: [${n.ip}]`,
        'clusterCIDRs: [10.244.0.0/16]',
        'iptables: { minSyncPeriod: 0s }',
        'loadBalancer: { memberPort: 7473 }',
      ].join('\n'),
    );
  }
  for (const n of NODES) startAgent(n);
  for (const n of NODES) await agents.get(n)?.waitFor(/layer2: started/, 30_000);
}, 90_000);

afterAll(async () => {
  await topo?.teardown();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('arping from the client gets exactly one answer, from the owner; TCP to VIP:80 reaches a pod', async () => {
  const ownerMac = macs.get(OWNER) as string;
  await waitFor('the owner to answer ARP', 20_000, async () =>
    (await arping(client(), VIP, 1, 0.2)).macs[0] === ownerMac ? true : null,
  );
  const r = await arping(client(), VIP, 5, 0.1);
  expect(r).toEqual({ transmitted: 5, received: 5, extra: 0, macs: Array(5).fill(ownerMac) });
  // The rules for the allocated address are in place (synced from the same manifests).
  const pods = new Set<string>();
  for (let i = 0; i < 6; i++) pods.add((await topo.tcpRequest(client(), VIP, 80, { timeoutMs: 3000 })).pod);
  expect([...pods].every((p) => ['node1-pod1', 'node2-pod1'].includes(p))).toBe(true);
  expect(await neighbourMac(client(), VIP)).toBe(ownerMac);
}, 60_000);

test('SIGKILL of the owner agent: the neighbour entry moves to the other node and TCP works again', async () => {
  const standbyMac = macs.get(STANDBY) as string;
  const killedAt = Date.now();
  killAgent(OWNER);
  await waitFor('the client neighbour entry to move', 15_000, async () =>
    (await neighbourMac(client(), VIP)) === standbyMac ? true : null,
  );
  const movedMs = Date.now() - killedAt;
  const answer = await topo.tcpRequest(client(), VIP, 80, { timeoutMs: 3000 });
  const workingMs = Date.now() - killedAt;
  process.stdout.write(
    `agent layer2 failover: neighbour entry moved ${movedMs} ms after SIGKILL of ${OWNER}'s agent; ` +
      `TCP via ${STANDBY} answered by ${answer.pod} at ${workingMs} ms\n`,
  );
  expect(movedMs).toBeLessThan(5000);
  expect(['node1-pod1', 'node2-pod1']).toContain(answer.pod);
  const r = await arping(client(), VIP, 3, 0.1);
  expect(r).toEqual({ transmitted: 3, received: 3, extra: 0, macs: Array(3).fill(standbyMac) });
}, 60_000);

test('the owner agent returns: ownership follows the deterministic choice again, never two answers', async () => {
  const ownerMac = macs.get(OWNER) as string;
  const restartedAt = Date.now();
  startAgent(OWNER);
  // Ask continuously through the restart, the startup hold and the handover.
  const during = await arping(client(), VIP, 60, 0.1);
  expect(during.extra).toBe(0);
  expect(during.received).toBeLessThanOrEqual(during.transmitted);
  await waitFor('the owner to answer again', 20_000, async () =>
    (await arping(client(), VIP, 1, 0.2)).macs[0] === ownerMac ? true : null,
  );
  const after = await arping(client(), VIP, 5, 0.1);
  expect(after).toEqual({ transmitted: 5, received: 5, extra: 0, macs: Array(5).fill(ownerMac) });
  await waitFor('the neighbour entry to move back', 10_000, async () =>
    (await neighbourMac(client(), VIP)) === ownerMac ? true : null,
  );
  process.stdout.write(
    `agent layer2 failback: ${OWNER} owns ${VIP} again ${Date.now() - restartedAt} ms after restart\n`,
  );
  expect((await topo.tcpRequest(client(), VIP, 80, { timeoutMs: 3000 })).pod).toMatch(/^node[12]-pod1$/);
}, 90_000);
