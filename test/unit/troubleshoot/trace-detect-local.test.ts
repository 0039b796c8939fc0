// `trace` over rules rendered with each detectLocalMode: the `-i` matches of the interface detectors
// are decided by the interface the packet arrives on, and asked for when it is not given.
import type { ClusterState } from '../../../src/model/cluster-state.js';
import { renderIptables, type IptablesRenderOptions } from '../../../src/render/iptables/index.js';
import { PacketWalkError } from '../../../src/troubleshoot/packet-walker.js';
import { traceServicePacket } from '../../../src/troubleshoot/trace.js';
import { endpoint, stateOf, svcPort } from '../../fixtures/cluster-state.js';

const NODE_IP = '10.99.0.2';
const CLUSTER_IP = '10.96.0.150';

/** A NodePort service, eTP Local: one endpoint on this node (node-a), one on node-b. */
function state(): ClusterState {
  const s = stateOf(
    svcPort('shop', 'web', 'http', {
      type: 'NodePort',
      nodePort: 30150,
      externalTrafficPolicy: 'Local',
      clusterIPs: [CLUSTER_IP],
      endpoints: [
        endpoint('10.244.1.151', 8080, { nodeName: 'node-a' }),
        endpoint('10.244.2.151', 8080, { nodeName: 'node-b' }),
      ],
    }),
  );
  s.nodes = [{ name: 'node-a', addresses: [NODE_IP], ready: true, labels: {}, podCIDRs: ['10.244.1.0/24'] }];
  return s;
}

function rules(extra: Partial<IptablesRenderOptions>) {
  return renderIptables(state(), {
    family: 'IPv4',
    nodeName: 'node-a',
    nodeIPs: [NODE_IP],
    clusterCIDRs: ['10.244.0.0/16'],
    masqueradeAll: false,
    masqueradeBit: 14,
    nodePortAddresses: [],
    localhostNodePorts: false,
    randomFully: false,
    largeClusterEndpointThreshold: 1000,
    ...extra,
  });
}

const arriving = { localAddresses: [NODE_IP], locallyGenerated: false };
const packet = (sourceIP: string, destIP: string, destPort: number, inInterface?: string) => ({
  protocol: 'TCP',
  sourceIP,
  destIP,
  destPort,
  ...(inInterface === undefined ? {} : { inInterface }),
});

describe('trace with detectLocalMode BridgeInterface', () => {
  const rs = rules({ detectLocalMode: 'BridgeInterface', bridgeInterface: 'cbr0' });

  it('a pod on the bridge reaches the cluster IP without masquerade', () => {
    const t = traceServicePacket(rs, packet('10.244.1.9', CLUSTER_IP, 80, 'cbr0'), arriving);
    expect(t.outcome.endpoints).toEqual(['10.244.1.151:8080', '10.244.2.151:8080']);
    expect(t.outcome.markedForMasquerade).toBe(false);
  });

  it('the same source arriving on another interface is masqueraded (the detector is the interface)', () => {
    const t = traceServicePacket(rs, packet('10.244.1.9', CLUSTER_IP, 80, 'eth0'), arriving);
    expect(t.outcome.markedForMasquerade).toBe(true);
    expect(t.explanation).toContain('! -i cbr0 -j KUBE-MARK-MASQ');
  });

  it('an unknown ingress interface is reported, not guessed', () => {
    expect(() => traceServicePacket(rs, packet('10.244.1.9', CLUSTER_IP, 80), arriving)).toThrow(PacketWalkError);
    expect(() => traceServicePacket(rs, packet('10.244.1.9', CLUSTER_IP, 80), arriving)).toThrow(
      /! -i cbr0.*not known/,
    );
  });

  it('traffic from the node itself has no input interface: masqueraded, no interface needed', () => {
    const t = traceServicePacket(rs, packet(NODE_IP, CLUSTER_IP, 80), { ...arriving, locallyGenerated: true });
    expect(t.outcome.markedForMasquerade).toBe(true);
  });
});

describe('trace with detectLocalMode InterfaceNamePrefix', () => {
  const rs = rules({ detectLocalMode: 'InterfaceNamePrefix', interfaceNamePrefix: 'veth' });

  it('a pod (veth…) to the NodePort takes the cluster-wide endpoints (pod short-circuit of eTP Local)', () => {
    const t = traceServicePacket(rs, packet('10.244.1.9', NODE_IP, 30150, 'veth1a2b'), arriving);
    expect(t.outcome.endpoints).toEqual(['10.244.1.151:8080', '10.244.2.151:8080']);
  });

  it('an external client (eth0) to the NodePort gets only the local endpoint', () => {
    const t = traceServicePacket(rs, packet('192.0.2.7', NODE_IP, 30150, 'eth0'), arriving);
    expect(t.outcome.endpoints).toEqual(['10.244.1.151:8080']);
  });
});

describe('trace with detectLocalMode NodeCIDR', () => {
  const rs = rules({ detectLocalMode: 'NodeCIDR' });

  it("only this node's pod CIDR counts as local: another node's pod is masqueraded", () => {
    const local = traceServicePacket(rs, packet('10.244.1.9', CLUSTER_IP, 80), arriving);
    expect(local.outcome.markedForMasquerade).toBe(false);
    const remotePod = traceServicePacket(rs, packet('10.244.2.9', CLUSTER_IP, 80), arriving);
    expect(remotePod.outcome.markedForMasquerade).toBe(true);
    // With the ClusterCIDR detector (10.244.0.0/16) the remote pod is not masqueraded.
    const clusterWide = traceServicePacket(rules({}), packet('10.244.2.9', CLUSTER_IP, 80), arriving);
    expect(clusterWide.outcome.markedForMasquerade).toBe(false);
  });
});
