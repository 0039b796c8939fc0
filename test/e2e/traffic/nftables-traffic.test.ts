// nftables mode with real connections (issue 14): node1 of a two-node topology (node1: two pods, node2:
// one pod, a client on the LAN) is programmed with portway's nftables table by the real `nft -f`, and
// every answer says which pod served it and which source address that pod saw. Covered: a cluster IP
// from the client (masqueraded: it is off-cluster) in IPv4 and IPv6, a pod reaching itself through
// its Service (hairpin: masqueraded, or the reply would bypass the DNAT), a node port, and endpoint
// changes — one removed, then added back (the count changes both times) — applied as element-only
// batches: the planned batch holds no chain, rule or set command, and traffic follows it; last, one such
// change sent over netlink from this process (src/dataplane/nft-netlink, native/netlink), without nft.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execa } from 'execa';
import { parseConfig } from '../../../src/config/config.js';
import { elementCommandOps, NftNetlink } from '../../../src/dataplane/nft-netlink/index.js';
import type { ClusterState, IPFamily } from '../../../src/model/cluster-state.js';
import { loadClusterState } from '../../../src/model/index.js';
import { ipFamilyOf } from '../../../src/model/ip.js';
import { planNftablesUpdate } from '../../../src/plan/nftables-plan.js';
import {
  nftablesRenderOptionsFromConfig,
  renderNftables,
  serializeNftables,
  type NftRuleSet,
} from '../../../src/render/nftables/index.js';
import {
  CLIENT_IP,
  CLIENT_IP6,
  echoRequest,
  execInNetns,
  Topology,
  type NodeInfo,
} from '../harness/topology.js';
import { echoHttpPort, endpointSliceObject, serviceObject, toYaml, type ServiceSpec } from './traffic-env.js';

const isRoot = process.getuid?.() === 0;
const hasNft =
  (await execa('nft', ['--version'], { reject: false }).catch(() => ({ exitCode: 1 }))).exitCode === 0;
if (!isRoot || !hasNft) console.warn('\n*** nftables-traffic: SKIPPED — needs root and nft ***\n');
const maybe = isRoot && hasNft ? describe : describe.skip;

const TRIES = 30;
const web: ServiceSpec = {
  name: 'web',
  type: 'NodePort',
  clusterIP: '10.96.0.10',
  ports: [echoHttpPort(30080)],
};
const self: ServiceSpec = { name: 'self', clusterIP: '10.96.0.11', ports: [echoHttpPort()] };
const WEB6_IP = 'fd00:96::10';

let topo: Topology;
let node1: NodeInfo;
let dir: string;
/** What node1's kernel holds, per family (the last ruleset applied). */
const applied = new Map<IPFamily, NftRuleSet>();

/** A dual-stack `web` (IPv4 slice from traffic-env, an IPv6 slice written here) and a one-pod `self`. */
function manifests(webPods: string[]): string {
  const pods = webPods.map((name) => topo.pod(name));
  const web6 = serviceObject(web) as { spec: Record<string, unknown> };
  web6.spec.clusterIPs = [web.clusterIP, WEB6_IP];
  web6.spec.ipFamilies = ['IPv4', 'IPv6'];
  web6.spec.ipFamilyPolicy = 'RequireDualStack';
  const slice6 = endpointSliceObject(
    web,
    pods.map((p) => ({ ip: p.ip6!, node: `node${p.node}` })),
    'web-v6',
  );
  slice6.addressType = 'IPv6';
  const pod1 = topo.pod('node1-pod1');
  return toYaml([
    web6,
    endpointSliceObject(
      web,
      pods.map((p) => ({ ip: p.ip, node: `node${p.node}` })),
    ),
    slice6,
    serviceObject(self),
    endpointSliceObject(self, [{ ip: pod1.ip, node: 'node1' }]),
  ]);
}

async function stateOf(webPods: string[]): Promise<ClusterState> {
  const path = join(dir, 'manifests.yaml');
  writeFileSync(path, manifests(webPods));
  const { state, problems } = await loadClusterState([path]);
  expect(problems).toEqual([]);
  return state;
}

function renderNode1(state: ClusterState, family: IPFamily): NftRuleSet {
  const config = parseConfig({
    mode: 'nftables',
    nodeName: 'node1',
    nodeIPs: [node1.ip, node1.ip6!],
    clusterCIDRs: ['10.244.0.0/16', 'fd44::/48'],
  });
  const nodeIPs = config.nodeIPs.filter((ip) => ipFamilyOf(ip) === family);
  return renderNftables(state, nftablesRenderOptionsFromConfig(config, family, nodeIPs));
}

async function nftLoad(text: string): Promise<void> {
  const r = await execInNetns(node1.netns, 'nft', ['-f', '-'], { input: text });
  if (r.exitCode !== 0) throw new Error(`nft -f failed: ${r.stderr}\n${text}`);
}

/** Plan from what node1 holds to `state`, apply it, and return the batch of each family. */
async function applyState(
  state: ClusterState,
): Promise<Map<IPFamily, ReturnType<typeof planNftablesUpdate>>> {
  const batches = new Map<IPFamily, ReturnType<typeof planNftablesUpdate>>();
  for (const family of ['IPv4', 'IPv6'] as const) {
    const desired = renderNode1(state, family);
    const update = planNftablesUpdate(applied.get(family) ?? null, desired);
    if (update.text !== '') await nftLoad(update.text);
    applied.set(family, desired);
    batches.set(family, update);
  }
  return batches;
}

/** Pods that answered TRIES requests, and the client addresses they saw. */
async function hits(
  netns: string,
  host: string,
  port: number,
): Promise<{ pods: Set<string>; clients: Set<string> }> {
  const pods = new Set<string>();
  const clients = new Set<string>();
  for (let i = 0; i < TRIES; i++) {
    const a = await echoRequest(netns, 'tcp', host, port);
    pods.add(a.pod);
    clients.add(a.client);
  }
  return { pods, clients };
}

maybe('nftables mode: real traffic through the nft-loaded table', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pw-nft-traffic-'));
    topo = await Topology.create({ nodes: 2, podsPerNode: [2, 1], tag: 'nft' });
    node1 = topo.node(1);
    await topo.addRoute(topo.client.netns, '10.96.0.0/16', node1.ip);
    await execa('ip', ['-n', topo.client.netns, '-6', 'route', 'replace', 'fd00:96::/64', 'via', node1.ip6!]);
    const first = await applyState(await stateOf(['node1-pod1', 'node1-pod2', 'node2-pod1']));
    expect(first.get('IPv4')?.fullReplace).toBe(true);
  }, 60_000);

  afterAll(async () => {
    await topo?.teardown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the full load is the serializer’s text and the kernel holds the table in both families', async () => {
    for (const [family, rs] of applied) {
      expect(serializeNftables(rs).startsWith(`add table ${rs.nftFamily} portway\n`)).toBe(true);
      const list = await execInNetns(node1.netns, 'nft', ['list', 'table', rs.nftFamily, 'portway']);
      expect([family, list.exitCode]).toEqual([family, 0]);
    }
  });

  it('a cluster IP from the off-cluster client reaches every endpoint, masqueraded', async () => {
    const { pods, clients } = await hits(topo.client.netns, web.clusterIP, 80);
    expect([...pods].sort()).toEqual(['node1-pod1', 'node1-pod2', 'node2-pod1']);
    expect(clients.has(CLIENT_IP)).toBe(false);
  }, 60_000);

  it('an IPv6 cluster IP from the client reaches every endpoint, masqueraded', async () => {
    const { pods, clients } = await hits(topo.client.netns, WEB6_IP, 80);
    expect([...pods].sort()).toEqual(['node1-pod1', 'node1-pod2', 'node2-pod1']);
    expect(clients.has(CLIENT_IP6)).toBe(false);
  }, 60_000);

  it('a pod reaching itself through its Service gets the answer (hairpin masquerade)', async () => {
    const pod1 = topo.pod('node1-pod1');
    const a = await echoRequest(pod1.netns, 'tcp', self.clusterIP, 80);
    expect(a.pod).toBe('node1-pod1');
    expect(a.client).not.toBe(pod1.ip);
  });

  it('a pod reaching another pod through a Service is not masqueraded', async () => {
    const pod2 = topo.pod('node1-pod2');
    const a = await echoRequest(pod2.netns, 'tcp', self.clusterIP, 80);
    expect([a.pod, a.client]).toEqual(['node1-pod1', pod2.ip]);
  });

  it('the node port answers on the node address', async () => {
    const { pods } = await hits(topo.client.netns, node1.ip, 30080);
    expect([...pods].sort()).toEqual(['node1-pod1', 'node1-pod2', 'node2-pod1']);
  }, 60_000);

  it('endpoint changes (3 → 2 → 3 endpoints) are element-only batches, and traffic follows them', async () => {
    const assertElementOnly = (batches: Awaited<ReturnType<typeof applyState>>): void => {
      for (const [family, b] of batches) {
        const lines = b.text.split('\n').filter(Boolean);
        expect([family, b.elementOnly]).toEqual([family, true]);
        expect(lines.length).toBeGreaterThan(0);
        // Every command adds or deletes elements: no chain, rule, set or table command.
        expect(lines.filter((l) => !/^(add|delete) element (ip|ip6) portway /.test(l))).toEqual([]);
      }
    };
    assertElementOnly(await applyState(await stateOf(['node1-pod1', 'node2-pod1'])));
    const two = await hits(topo.client.netns, web.clusterIP, 80);
    expect([...two.pods].sort()).toEqual(['node1-pod1', 'node2-pod1']);

    // Back to three: the count changes again, which a rule holding `numgen random mod N` could not take.
    assertElementOnly(await applyState(await stateOf(['node1-pod1', 'node1-pod2', 'node2-pod1'])));
    const three = await hits(topo.client.netns, web.clusterIP, 80);
    expect([...three.pods].sort()).toEqual(['node1-pod1', 'node1-pod2', 'node2-pod1']);
    const six = await hits(topo.client.netns, WEB6_IP, 80);
    expect([...six.pods].sort()).toEqual(['node1-pod1', 'node1-pod2', 'node2-pod1']);
  }, 120_000);

  it('an element-only change sent over netlink from this process (no nft) is what the kernel then holds, and traffic follows', async () => {
    const state = await stateOf(['node1-pod2', 'node2-pod1']);
    const client = NftNetlink.open({ netns: node1.netns });
    try {
      for (const family of ['IPv4', 'IPv6'] as const) {
        const desired = renderNode1(state, family);
        const update = planNftablesUpdate(applied.get(family)!, desired);
        expect(update.elementOnly).toBe(true);
        const timing = client.applyElements(
          elementCommandOps(desired.nftFamily, desired.table, update.elementCommands),
        );
        expect(timing.messages).toBe(update.elementCommands.length + 2);
        applied.set(family, desired);
        // The kernel's elements of the service's map are exactly the rendered ones.
        const eps = desired.sets.find((s) => s.role === 'endpoints')!;
        const text = await execInNetns(node1.netns, 'nft', [
          'list',
          'map',
          desired.nftFamily,
          'portway',
          eps.name,
        ]);
        for (const e of eps.elements) expect(text.stdout).toContain(`${e.key} : ${e.value}`);
      }
    } finally {
      client.close();
    }
    const v4 = await hits(topo.client.netns, web.clusterIP, 80);
    expect([...v4.pods].sort()).toEqual(['node1-pod2', 'node2-pod1']);
    const v6 = await hits(topo.client.netns, WEB6_IP, 80);
    expect([...v6.pods].sort()).toEqual(['node1-pod2', 'node2-pod1']);
  }, 120_000);
});
