// The e2e harness itself: pods answer over TCP and UDP, nodes route each other's pod CIDRs,
// and teardown leaves no namespace behind.
import { listNetns, Topology, ECHO_TCP_PORT, ECHO_UDP_PORT, sweepStaleTopologies, NETNS_PREFIX } from '../harness/topology.js';

describe('e2e topology', () => {
  let topo: Topology;
  beforeAll(async () => {
    topo = await Topology.create({ nodes: 2, podsPerNode: [2, 1] });
  }, 60_000);
  afterAll(async () => {
    await topo?.teardown();
  });

  it('has the namespaces and addresses it promises', async () => {
    expect(topo.nodes.map((n) => [n.name, n.ip, n.podCidr])).toEqual([
      ['node1', '10.99.0.11', '10.244.1.0/24'],
      ['node2', '10.99.0.12', '10.244.2.0/24'],
    ]);
    expect(topo.pods.map((p) => [p.name, p.ip])).toEqual([
      ['node1-pod1', '10.244.1.11'],
      ['node1-pod2', '10.244.1.12'],
      ['node2-pod1', '10.244.2.11'],
    ]);
    const present = await listNetns();
    for (const ns of topo.namespaces()) expect(present).toContain(ns);
    const fwd = await topo.exec(topo.node(1).netns, 'sysctl', ['-n', 'net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding']);
    expect(fwd.stdout.split('\n').filter(Boolean)).toEqual(['1', '1']);
  });

  it('pods answer TCP and UDP with their own name, from their node and across nodes', async () => {
    const [p11, p12, p21] = topo.pods;
    expect(await topo.tcpRequest(topo.node(1).netns, p11!.ip, ECHO_TCP_PORT)).toEqual({ pod: 'node1-pod1', client: '10.244.1.1' });
    expect(await topo.udpRequest(topo.node(1).netns, p12!.ip, ECHO_UDP_PORT)).toEqual({ pod: 'node1-pod2', client: topo.node(1).podGateway });
    // Across nodes: node1 → node2's pod goes over the LAN route.
    expect(await topo.tcpRequest(topo.node(1).netns, p21!.ip, ECHO_TCP_PORT)).toEqual({ pod: 'node2-pod1', client: '10.99.0.11' });
    // Pod to pod across nodes keeps the pod source address (no masquerade without rules).
    expect(await topo.udpRequest(p11!.netns, p21!.ip, ECHO_UDP_PORT)).toEqual({ pod: 'node2-pod1', client: p11!.ip });
    // Pod to pod on the same node is routed by the node (point-to-point links).
    expect(await topo.tcpRequest(p12!.netns, p11!.ip, ECHO_TCP_PORT)).toEqual({ pod: 'node1-pod1', client: p12!.ip });
  });

  it('works over IPv6 too', async () => {
    const p21 = topo.pod('node2-pod1');
    const p11 = topo.pod('node1-pod1');
    expect(await topo.tcpRequest(p11.netns, p21.ip6!, ECHO_TCP_PORT)).toEqual({ pod: 'node2-pod1', client: p11.ip6 });
    expect(await topo.udpRequest(topo.node(2).netns, p21.ip6!, ECHO_UDP_PORT)).toEqual({ pod: 'node2-pod1', client: topo.node(2).ip6 });
  });

  it('the client is outside the cluster: it reaches nodes on the LAN but not pods', async () => {
    const arp = await topo.exec(topo.client.netns, 'arping', ['-c', '1', '-w', '2', '-I', 'eth0', topo.node(2).ip]);
    expect(arp.exitCode).toBe(0);
    await expect(topo.tcpRequest(topo.client.netns, topo.pod('node1-pod1').ip, ECHO_TCP_PORT, { timeoutMs: 500 })).rejects.toThrow(/failed/);
  });

  it('a request to a closed port fails with a reason instead of hanging', async () => {
    await expect(topo.tcpRequest(topo.node(1).netns, topo.pod('node1-pod1').ip, 9, { timeoutMs: 1000 })).rejects.toThrow(/ECONNREFUSED/);
    await expect(topo.udpRequest(topo.node(1).netns, topo.pod('node1-pod1').ip, 9, { timeoutMs: 500 })).rejects.toThrow(/failed/);
  });

  it('starts arbitrary processes in a namespace', async () => {
    const p = topo.start(topo.node(2).netns, process.execPath, ['-e', 'console.log("up"); setInterval(() => {}, 1000)']);
    await p.waitFor(/^up$/m);
    await p.stop();
    expect(p.child.exitCode !== null || p.child.signalCode !== null).toBe(true);
  });
});

describe('e2e topology cleanup', () => {
  it('teardown removes every namespace, even after a half-built failure', async () => {
    const topo = await Topology.create({ nodes: 1, podsPerNode: 1, ipv6: false });
    const names = topo.namespaces();
    await topo.teardown();
    await topo.teardown(); // twice is fine
    const present = await listNetns();
    for (const ns of names) expect(present).not.toContain(ns);
    await expect(Topology.create({ nodes: 2, podsPerNode: [1] })).rejects.toThrow(/podsPerNode has 1 entries/);
    await expect(Topology.create({ nodes: 1, podsPerNode: [300] })).rejects.toThrow(/pods per node must be 0..200/);
    // A namespace already holding node2's name makes the build fail after the LAN, client and node1 exist.
    const { execa } = await import('execa');
    await execa('ip', ['netns', 'add', `${NETNS_PREFIX}${process.pid}-clash-node2`]);
    await expect(Topology.create({ nodes: 2, tag: 'clash' })).rejects.toThrow(/clash-node2/);
    expect((await listNetns()).filter((n) => n.startsWith(`${NETNS_PREFIX}${process.pid}-`))).toEqual([]);

  });

  it('sweeps namespaces left by a dead run', async () => {
    const { execa } = await import('execa');
    const dead = `${NETNS_PREFIX}999999999-dead-node1`;
    await execa('ip', ['netns', 'add', dead]);
    expect(await sweepStaleTopologies()).toContain(dead);
    expect(await listNetns()).not.toContain(dead);
  });
});
