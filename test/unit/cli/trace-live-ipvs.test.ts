// `portway trace --live` in ipvs mode: the walk takes the kernel's iptables rules, sets, IPVS table and
// kube-ipvs0 addresses (through the ipvs-live reader; here its in-memory fake), not what the manifests
// ask for. Each kernel starts as portway would program it from examples/manifests (node-a, ipvs mode)
// and then drifts: a virtual server with a real server the manifests do not have.
import { describe, expect, it } from '@jest/globals';
import { join } from 'node:path';
import { liveTraceRules, type LiveKernel } from '../../../src/cli/commands/trace.js';
import { liveHopRules, traceUrl, type LiveNode } from '../../../src/cli/commands/trace-url.js';
import { renderIpvsFamily, withAllocatedAddresses } from '../../../src/cli/commands/dry-run.js';
import { parseConfig, type Config } from '../../../src/config/config.js';
import { loadConfigFile } from '../../../src/config/load.js';
import { loadClusterState } from '../../../src/model/index.js';
import type { ClusterState } from '../../../src/model/cluster-state.js';
import { FakeIpLinks } from '../../../src/dataplane/ip.js';
import { FakeIpset } from '../../../src/dataplane/ipset.js';
import { FakeIpvsLiveReader, parseLiveIpvsadmSave } from '../../../src/dataplane/ipvs-live.js';
import { serializeIpsets, serializeIpvs, serializeIpvsIptables } from '../../../src/render/ipvs/index.js';
import { traceServicePacket } from '../../../src/troubleshoot/index.js';
import { CliExit } from '../../../src/cli/exit.js';
import { repoRoot } from '../../fixtures/cli-process.js';
import { lbManifests, stateOf } from '../lb/manifest-fixtures.js';
import { shopBackend, shopTraceConfig } from '../ingress/ingress-fixture.js';

/** A node programmed as portway renders `state` in ipvs mode, plus `extraRealServer` on the virtual server `vs`. */
async function driftedKernel(
  state: ClusterState,
  config: Config,
  vs: { address: string; port: number },
  extraRealServer: { address: string; port: number },
  missingSetLine?: string,
) {
  const rs = renderIpvsFamily(withAllocatedAddresses(state, config), config, 'IPv4');
  const ipset = new FakeIpset();
  await ipset.restore(
    serializeIpsets(rs)
      .split('\n')
      .filter((line) => line !== missingSetLine)
      .join('\n'),
  );
  const ip = new FakeIpLinks({ eth0: config.nodeIPs.map((a) => `${a}/24`) });
  await ip.ensureDummyInterface('kube-ipvs0');
  for (const a of rs.boundAddresses) await ip.addAddress('kube-ipvs0', `${a}/32`);
  const reader = new FakeIpvsLiveReader(ipset, ip);
  reader.virtualServers = parseLiveIpvsadmSave(serializeIpvs(rs)).virtualServers;
  const target = reader.virtualServers.find(
    (v) => v.protocol === 'TCP' && v.address === vs.address && v.port === vs.port,
  )!;
  target.realServers.push({ ...extraRealServer, weight: 1, forwarding: 'masquerade' });
  const kernel: LiveKernel = {
    ruleDump: async () => serializeIpvsIptables(rs, { includeBuiltinJumps: true }),
    interfaceAddresses: () => ip.listAddresses(),
    ipvs: async () => reader,
  };
  return { kernel, reader, rendered: rs };
}

describe('trace --live, mode ipvs', () => {
  /** examples/manifests on node-a, its kernel with 10.244.9.9:8080 added to 10.96.0.10:80 (and a set line left out). */
  const examples = async (missingSetLine?: string) => {
    const config = await loadConfigFile(join(repoRoot, 'test/fixtures/cli/ipvs-config.yaml'));
    const { state } = await loadClusterState([join(repoRoot, 'examples/manifests')]);
    const drifted = await driftedKernel(
      state,
      config,
      { address: '10.96.0.10', port: 80 },
      { address: '10.244.9.9', port: 8080 },
      missingSetLine,
    );
    return { config, state, ...drifted };
  };
  const packet = { protocol: 'TCP', sourceIP: '10.244.1.11', destIP: '10.96.0.10', destPort: 80 };

  it("walks the kernel's IPVS table: the real server only the kernel has is one of the packet's ends", async () => {
    const { config, state, kernel } = await examples();
    const { rules, localAddresses } = await liveTraceRules('ipvs', 'IPv4', kernel);
    const node = { localAddresses, locallyGenerated: false, recentEntries: [] };
    const live = traceServicePacket(rules, packet, node);
    expect(live.outcome.verdict).toBe('ACCEPT');
    expect(live.outcome.ipvs?.virtualServer).toBe('TCP 10.96.0.10:80');
    expect(live.outcome.endpoints).toEqual([
      '10.244.1.11:8080',
      '10.244.1.12:8080',
      '10.244.2.11:8080',
      '10.244.9.9:8080',
    ]);
    // The kernel knows no Service: the explanation names none, and the kernel's real server with its share.
    expect(live.explanation).toContain('ipvs virtual server: TCP 10.96.0.10:80, scheduler rr');
    expect(live.explanation).toContain('10.244.9.9:8080 weight 1: 25.0% of new connections');
    // The manifests' rules (the dry run) do not have it.
    const dry = traceServicePacket(
      renderIpvsFamily(withAllocatedAddresses(state, config), config, 'IPv4'),
      packet,
      { ...node, localAddresses: config.nodeIPs },
    );
    expect(dry.outcome.endpoints).not.toContain('10.244.9.9:8080');
  });

  it("walks the kernel's sets: a node port missing from KUBE-NODE-PORT-TCP is not masqueraded", async () => {
    const { kernel } = await examples();
    const nodePort = { protocol: 'TCP', sourceIP: '192.0.2.7', destIP: '10.99.0.2', destPort: 30080 };
    const walk = async (k: LiveKernel) => {
      const { rules, localAddresses } = await liveTraceRules('ipvs', 'IPv4', k);
      return traceServicePacket(rules, nodePort, {
        localAddresses,
        locallyGenerated: false,
        recentEntries: [],
      });
    };
    expect((await walk(kernel)).explanation).toContain('[set KUBE-NODE-PORT-TCP matched 30080]');
    const drifted = await examples('add KUBE-NODE-PORT-TCP 30080');
    const missing = await walk(drifted.kernel);
    expect(missing.explanation).not.toContain('[set KUBE-NODE-PORT-TCP matched 30080]');
    // IPVS still takes it (the node address is local), but nothing marks it for masquerading.
    expect((await walk(kernel)).outcome.branches.every((b) => b.masquerade)).toBe(true);
    expect(missing.outcome.branches.some((b) => b.masquerade)).toBe(false);
  });

  it('a kernel without IPVS is a one-line error naming why, not a stack trace', async () => {
    const { kernel, reader } = await examples();
    reader.availability = { available: false, reason: 'the kernel has no IPVS' };
    const err = await liveTraceRules('ipvs', 'IPv4', kernel).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CliExit);
    expect((err as CliExit).message).toBe(
      'trace --live (mode ipvs): cannot read IPVS: the kernel has no IPVS',
    );
  });

  it('iptables mode reads no IPVS: the rules are the iptables dump alone', async () => {
    const { kernel } = await examples();
    const { rules } = await liveTraceRules('iptables', 'IPv4', {
      ...kernel,
      ipvs: () => Promise.reject(new Error('IPVS read in iptables mode')),
    });
    expect(typeof rules).toBe('string');
  });
});

// --live --url in ipvs mode: hops 2 and 4 walk the kernel's IPVS table too, and its drift from the
// cluster's objects is named at the hop.
describe('trace --live --url, mode ipvs', () => {
  it('hop 4 fails naming the kernel-only real server of the backend virtual server', async () => {
    const config = parseConfig({ ...shopTraceConfig, mode: 'ipvs' });
    const written = 'status: { loadBalancer: { ingress: [{ ip: 10.99.0.200 }] } }\n';
    const state = stateOf(lbManifests() + shopBackend('http') + written);
    const { kernel } = await driftedKernel(
      state,
      config,
      { address: '10.96.0.60', port: 80 },
      { address: '10.244.9.9', port: 9000 },
    );
    const { rules } = await liveTraceRules('ipvs', 'IPv4', kernel);
    if (typeof rules === 'string' || !('kind' in rules)) throw new Error('expected the live ipvs rules');
    const { kind: _kind, iptables, ...ipvs } = rules;
    const live: LiveNode = {
      name: config.nodeName,
      dumps: { IPv4: iptables as string },
      addresses: (await kernel.interfaceAddresses()).map((a) => a.address),
      ipvs,
    };
    const t = traceUrl('http://myapp.example.com/', '10.99.0.100', state, config, [], liveHopRules(live));
    // Hop 2 reaches the controller through the kernel's LoadBalancer virtual server; hop 4 fails on the stale real server.
    expect(t.hops[1]!.rules).toMatchObject({ ipvsVirtualServer: 'TCP 10.99.0.200:80', verdict: 'ACCEPT' });
    expect(t.failedAt).toBe(4);
    expect(t.hops[3]!.detail).toContain(
      'still sends 33.3% of new connections to 10.244.9.9:9000, which the cluster no longer has as serving endpoints',
    );
    expect(t.hops[3]!.rules).toMatchObject({
      node: `${config.nodeName} (kernel)`,
      ipvsVirtualServer: 'TCP 10.96.0.60:80',
      endpoints: ['10.244.1.21:9000', '10.244.2.21:9000', '10.244.9.9:9000'],
      differsFromCluster: { kernelOnly: ['10.244.9.9:9000'], clusterOnly: [] },
    });
  });
});
