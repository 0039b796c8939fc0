// The main job on a fresh machine, live: the bundled examples/ become a small bare-metal cluster of
// network namespaces (two nodes, the three "hello" pods, a client on the LAN), the portway agent runs on
// each node against examples/manifests, and a client's requests spread across the pods through the
// ClusterIP (from a pod), NodePort and LoadBalancer Services. Everything is torn down at the end, on
// Ctrl-C and on failure. Needs root. Run through ./hack/demo.sh (installs and builds first).
//
//   node --import tsx hack/demo.ts [--requests 12] [--tsx]     (--tsx: agent from sources, not ./bin/portway)
import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { parse, stringify } from 'yaml';
import { withAllocatedAddresses } from '../src/cli/commands/dry-run.js';
import { parseConfig } from '../src/config/config.js';
import { loadClusterState, type ClusterState } from '../src/model/index.js';
import { forgetNetnsState } from '../src/sync/netns-state.js';
import { Topology, type NodeInfo, type PodInfo } from '../test/e2e/harness/topology.js';
import { AgentProcess, RULES_APPLIED, TrafficClient } from '../test/e2e/traffic/traffic-env.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MANIFESTS = join(ROOT, 'examples/manifests');
const CONFIG = join(ROOT, 'examples/config.yaml');
const argv = process.argv.slice(2);
const REQUESTS = Number(argv[argv.indexOf('--requests') + 1] ?? 12) || 12;
const FROM_SOURCES = argv.includes('--tsx');

const say = (line = ''): void => void process.stdout.write(line + '\n');

interface DemoNode {
  /** The example's node name (node-a) and the harness node it runs on. */
  name: string;
  address: string;
  harness: NodeInfo;
  pods: Array<{ name: string; pod: PodInfo }>;
}

/**
 * Map the examples onto the harness: the k-th Node (by name) is harness node k; each endpoint's address
 * must be one the harness gives a pod of that node (10.244.k.(10+j)) — the examples are written for it.
 */
function planTopology(state: ClusterState): {
  podsPerNode: number[];
  pods: Map<string, { node: number; index: number; name: string }>;
} {
  const nodes = [...state.nodes].sort((a, b) => a.name.localeCompare(b.name));
  const pods = new Map<string, { node: number; index: number; name: string }>();
  for (const sp of state.servicePorts) {
    for (const ep of sp.endpoints) {
      const k = nodes.findIndex((n) => n.name === ep.nodeName) + 1;
      const m = /^10\.244\.(\d+)\.(\d+)$/.exec(ep.ip);
      if (k === 0 || !m || Number(m[1]) !== k || Number(m[2]) <= 10) {
        throw new Error(
          `examples: endpoint ${ep.ip} of ${sp.id} (node ${ep.nodeName}) does not fit the demo topology (node k's pods are 10.244.k.11, .12, …)`,
        );
      }
      pods.set(ep.ip, { node: k, index: Number(m[2]) - 10, name: ep.targetName ?? ep.ip });
    }
  }
  const podsPerNode = nodes.map((_, i) =>
    Math.max(0, ...[...pods.values()].filter((p) => p.node === i + 1).map((p) => p.index)),
  );
  return { podsPerNode, pods };
}

/** The echo servers' ports: the target ports of the example's first TCP and UDP service ports. */
function echoPorts(state: ClusterState): { tcp: number; udp: number } {
  const tcp = state.servicePorts.find((sp) => sp.protocol === 'TCP')?.endpoints[0]?.port ?? 8080;
  const udp = state.servicePorts.find((sp) => sp.protocol === 'UDP')?.endpoints[0]?.port ?? 0;
  return { tcp, udp };
}

async function show(
  title: string,
  client: TrafficClient,
  proto: 'tcp' | 'udp',
  host: string,
  port: number,
): Promise<number> {
  say(`${title} (${REQUESTS} requests):`);
  const counts = new Map<string, number>();
  let failures = 0;
  for (let i = 0; i < REQUESTS; i++) {
    const r = await client.request(proto, host, port, { timeoutMs: 2000 });
    if (r.ok) {
      say(`  You've hit ${r.pod}`);
      counts.set(r.pod ?? '', (counts.get(r.pod ?? '') ?? 0) + 1);
    } else {
      say(`  request failed: ${r.error}`);
      failures++;
    }
  }
  say(
    `  per pod: ${[...counts]
      .sort()
      .map(([pod, n]) => `${pod} ${n}`)
      .join(', ')}${failures ? `, failed ${failures}` : ''}`,
  );
  say();
  return failures;
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('demo: needs root (it builds network namespaces and programs iptables in them)\n');
    return 2;
  }
  const { state, problems } = await loadClusterState([MANIFESTS]);
  if (problems.length > 0)
    throw new Error(`examples/manifests has problems: ${problems.map((p) => p.message).join('; ')}`);
  const baseConfig = (parse(await readFile(CONFIG, 'utf8')) ?? {}) as Record<string, unknown>;
  const plan = planTopology(state);
  const ports = echoPorts(state);

  let topo: Topology | null = null;
  let dir: string | null = null;
  const agents: AgentProcess[] = [];
  const clients: TrafficClient[] = [];
  let interrupted = false;
  const teardown = async (): Promise<void> => {
    await Promise.allSettled(clients.map((c) => c.stop()));
    await Promise.allSettled(agents.map((a) => a.stop()));
    const netnsIds = topo ? await Promise.all(topo.nodes.map((n) => netnsId(n.netns))) : [];
    await topo?.teardown();
    if (dir) await rm(dir, { recursive: true, force: true });
    for (const id of netnsIds) if (id) await forgetNetnsState(id);
  };
  const onSignal = (): void => {
    if (interrupted) return;
    interrupted = true;
    say('\ndemo: interrupted; tearing down');
    void teardown().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    topo = await Topology.create({
      nodes: plan.podsPerNode.length,
      podsPerNode: plan.podsPerNode,
      ipv6: false,
      echo: false,
      tag: 'demo',
    });
    dir = await mkdtemp(join(tmpdir(), 'portway-demo-'));
    const sortedNodes = [...state.nodes].sort((a, b) => a.name.localeCompare(b.name));
    const demoNodes: DemoNode[] = [];
    for (const [i, n] of sortedNodes.entries()) {
      const harness = topo.nodes[i]!;
      const address = n.addresses.find((a) => a.includes('.')) ?? harness.ip;
      // The example's node address goes on the node's LAN interface, beside the harness's own.
      if (address !== harness.ip)
        await execa('ip', ['-n', harness.netns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
      // Real nodes have a default route; service traffic the node itself sends needs one.
      await execa('ip', ['-n', harness.netns, 'route', 'add', 'default', 'dev', 'eth0']);
      const pods = harness.pods.map((pod) => ({
        pod,
        name: [...plan.pods.entries()].find(([ip]) => ip === pod.ip)?.[1].name ?? pod.name,
      }));
      demoNodes.push({ name: n.name, address, harness, pods });
    }
    const allPods = demoNodes.flatMap((n) => n.pods);
    await Promise.all(allPods.map(({ pod, name }) => topo!.startEcho({ ...pod, name }, ports)));
    say(
      `portway demo: ${demoNodes.map((n) => `${n.name} ${n.address}`).join(', ')}; ` +
        `pods ${allPods.map((p) => `${p.name} ${p.pod.ip}`).join(', ')}; client ${topo.client.ip}`,
    );

    for (const n of demoNodes) {
      const configPath = join(dir, `${n.name}.yaml`);
      await writeFile(configPath, stringify({ ...baseConfig, nodeName: n.name, nodeIPs: [n.address] }));
      const cli = FROM_SOURCES
        ? [process.execPath, '--import', 'tsx', join(ROOT, 'src/cli/main.ts')]
        : [process.execPath, join(ROOT, 'bin/portway')];
      agents.push(
        new AgentProcess(n.harness, [...cli, 'run', '--manifests', MANIFESTS, '--config', configPath], {
          ...process.env,
          LC_ALL: 'C',
        }),
      );
    }
    await Promise.all(agents.map((a) => a.waitForCount(RULES_APPLIED, 1, 60_000)));
    say(
      `portway agents running on ${demoNodes.map((n) => n.name).join(', ')} (ip netns exec NODE portway run --manifests examples/manifests)`,
    );
    say();

    let failures = 0;
    const lastNode = demoNodes.at(-1)!;
    const podClientOn = lastNode.pods[0];
    const clusterIP = state.servicePorts.find((sp) => sp.type === 'ClusterIP' && sp.protocol === 'TCP');
    const nodePort = state.servicePorts.find((sp) => sp.type === 'NodePort');
    // The agents allocate LoadBalancer addresses from examples/manifests/pool.yaml; so does this.
    const lb = withAllocatedAddresses(state, parseConfig(baseConfig)).servicePorts.find(
      (sp) => sp.type === 'LoadBalancer' && sp.loadBalancerIngress.length > 0,
    );
    if (clusterIP && podClientOn) {
      const c = await TrafficClient.start(podClientOn.pod.netns);
      clients.push(c);
      failures += await show(
        `ClusterIP ${clusterIP.id} ${clusterIP.clusterIPs[0]}:${clusterIP.port}, from pod ${podClientOn.name} on ${lastNode.name}`,
        c,
        'tcp',
        clusterIP.clusterIPs[0]!,
        clusterIP.port,
      );
      const udp = state.servicePorts.find((sp) => sp.protocol === 'UDP' && sp.clusterIPs.length > 0);
      if (udp)
        failures += await show(
          `ClusterIP ${udp.id} (UDP) ${udp.clusterIPs[0]}:${udp.port}, from pod ${podClientOn.name}`,
          c,
          'udp',
          udp.clusterIPs[0]!,
          udp.port,
        );
    }
    const client = await TrafficClient.start(topo.client.netns);
    clients.push(client);
    if (nodePort) {
      for (const n of demoNodes)
        failures += await show(
          `NodePort ${nodePort.id} ${n.address}:${nodePort.nodePort}, from the client`,
          client,
          'tcp',
          n.address,
          nodePort.nodePort,
        );
    }
    if (lb) {
      // Layer2: the client treats the VIP as on its LAN and asks by ARP; the one node portway elected
      // answers with its own MAC (no route to a node, no address on any interface).
      const vip = lb.loadBalancerIngress[0]!.ip;
      await execa('ip', ['-n', topo.client.netns, 'route', 'add', `${vip}/32`, 'dev', topo.client.ifname]);
      const macs = new Map<string, string>();
      for (const n of demoNodes) macs.set(await linkMac(n.harness.netns, n.harness.ifname), n.name);
      failures += await show(`LoadBalancer ${lb.id} ${vip}:${lb.port}, from the client (ARP)`, client, 'tcp', vip, lb.port);
      const ownerMac = await neighbourMac(topo.client.netns, vip);
      const ownerName = macs.get(ownerMac ?? '') ?? 'nobody';
      say(`  ${vip} is at ${ownerMac ?? '?'}: node ${ownerName} answers ARP for it (portway layer2 announcement)`);
      const ownerAgent = agents.find((a) => a.node === demoNodes.find((n) => n.name === ownerName)?.harness);
      if (ownerAgent && demoNodes.length > 1) {
        say(`  killing the portway agent on ${ownerName} (SIGKILL) …`);
        const killedAt = Date.now();
        ownerAgent.child.kill('SIGKILL');
        let moved: string | null = null;
        while (Date.now() - killedAt < 15_000) {
          await execa('ip', ['netns', 'exec', topo.client.netns, 'arping', '-c', '1', '-w', '1', '-I', topo.client.ifname, vip], {
            reject: false,
          });
          const mac = await neighbourMac(topo.client.netns, vip);
          if (mac && mac !== ownerMac) {
            moved = mac;
            break;
          }
        }
        if (moved) {
          say(`  ${vip} moved to ${macs.get(moved) ?? moved} ${Date.now() - killedAt} ms after the kill`);
          failures += await show(`LoadBalancer ${lb.id} ${vip}:${lb.port} after failover, from the client`, client, 'tcp', vip, lb.port);
        } else {
          say(`  ${vip} did not move within 15 s`);
          failures += 1;
        }
      }
    }
    say(
      failures === 0
        ? 'demo: every request answered; tearing down'
        : `demo: ${failures} request(s) failed; tearing down`,
    );
    return failures === 0 ? 0 : 1;
  } catch (err) {
    process.stderr.write(`demo failed: ${(err as Error).message}\n`);
    for (const a of agents) process.stderr.write(`--- agent on ${a.node.name}\n${a.tail(15)}\n`);
    return 1;
  } finally {
    if (!interrupted) await teardown();
  }
}

async function linkMac(netns: string, ifname: string): Promise<string> {
  const r = await execa('ip', ['-n', netns, '-j', 'link', 'show', ifname]);
  return ((JSON.parse(r.stdout) as Array<{ address: string }>)[0]?.address ?? '').toLowerCase();
}

async function neighbourMac(netns: string, ip: string): Promise<string | null> {
  const r = await execa('ip', ['-n', netns, '-j', 'neigh', 'show', ip], { reject: false });
  const entries = JSON.parse(r.stdout || '[]') as Array<{ lladdr?: string; state?: string[] }>;
  return entries.find((e) => e.lladdr && !e.state?.includes('FAILED'))?.lladdr?.toLowerCase() ?? null;
}

async function netnsId(netns: string): Promise<string | null> {
  const res = await execa('ip', ['netns', 'exec', netns, 'readlink', '/proc/self/ns/net'], { reject: false });
  return /\[(\d+)\]/.exec(String(res.stdout))?.[1] ?? null;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`demo failed: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
