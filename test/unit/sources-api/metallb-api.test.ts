// The agent's API source where MetalLB's CRDs are installed: its pools and advertisements are listed,
// watched and read as portway's own; its BGP objects are reported once by name and ignored.
import { KubeConfig } from '@kubernetes/client-node';
import { ClusterStateBuilder } from '../../../src/model/incremental.js';
import { RecordingLogger } from '../../../src/observe/logger.js';
import { ApiSource, WATCHED_RESOURCES } from '../../../src/sources/api/api-source.js';
import { METALLB_RESOURCES, StandInApiServer } from '../../stand-in/api-server.js';
import { eventually } from '../../fixtures/polling.js';

const metallbPool = (name: string, cidr: string) => ({
  apiVersion: 'metallb.io/v1beta1',
  kind: 'IPAddressPool',
  metadata: { name, namespace: 'metallb-system' },
  spec: { addresses: [cidr] },
});

describe('ApiSource with MetalLB CRDs installed', () => {
  let server: StandInApiServer;
  let source: ApiSource | undefined;
  const logger = new RecordingLogger();
  beforeEach(async () => {
    server = new StandInApiServer({ extraResources: METALLB_RESOURCES });
    await server.start();
  });
  afterEach(async () => {
    await source?.stop();
    source = undefined;
    await server.stop();
  });

  it('lists and watches MetalLB pools and advertisements, and names each BGP object once', async () => {
    server.put(metallbPool('production', '192.0.2.240/28'));
    server.put({
      apiVersion: 'metallb.io/v1beta1',
      kind: 'L2Advertisement',
      metadata: { name: 'l2', namespace: 'metallb-system' },
      spec: { ipAddressPools: ['production'] },
    });
    server.put({
      apiVersion: 'metallb.io/v1beta2',
      kind: 'BGPPeer',
      metadata: { name: 'tor-1', namespace: 'metallb-system' },
      spec: { myASN: 64500, peerASN: 64501, peerAddress: '192.0.2.1' },
    });
    const kc = new KubeConfig();
    kc.loadFromString(server.kubeconfig());
    source = new ApiSource({
      kubeConfig: kc,
      normalise: new ClusterStateBuilder({ keepLastGood: true }),
      logger,
      backoff: { initialMs: 20, maxMs: 200 },
    });
    await source.start();
    expect(source.current().state.addressPools.map((p) => p.name)).toEqual(['production']);
    expect(source.current().state.l2Advertisements.map((a) => a.ipAddressPools)).toEqual([['production']]);
    expect(source.current().problems.map((p) => `${p.kind} ${p.object}: ${p.message}`)).toEqual([
      'metallb.io BGPPeer metallb-system/tor-1: BGP is not supported by portway; ignored',
    ]);
    // Served kinds are watched (BGPAdvertisement, BFDProfile and Community are not served here: not asked again).
    const served = WATCHED_RESOURCES.length - 3;
    await eventually('watches open', () => server.openWatchCount === served);

    server.put(metallbPool('second', '198.51.100.0/30'));
    await eventually('pool added', () => source!.current().state.addressPools.length === 2);
    server.put(metallbPool('third', '203.0.113.0/30'));
    await eventually('third pool', () => source!.current().state.addressPools.length === 3);
    const bgpLogs = logger.records.filter((r) => r.message.includes('BGPPeer'));
    expect(bgpLogs).toHaveLength(1); // reported once, not on every change
    expect(bgpLogs[0]!.message).toContain(
      'metallb.io BGPPeer metallb-system/tor-1: BGP is not supported by portway',
    );
  });
});
