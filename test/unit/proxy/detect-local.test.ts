// kube-proxy's detectLocalMode (src/proxy/local-traffic.ts), seen through the iptables render: which match marks traffic from this node's pods
// (ClusterCIDR / NodeCIDR: `-s CIDR`; BridgeInterface: `-i br0`; InterfaceNamePrefix: `-i veth+`),
// and none when nothing applies. The rules it feeds: the cluster IP masquerade in KUBE-SVC-* and the
// pod short-circuit in KUBE-EXT-* of an externalTrafficPolicy Local service.
import { defaultConfig, parseConfig } from '../../../src/config/config.js';
import type { ClusterState, IPFamily, NodeInfo } from '../../../src/model/cluster-state.js';
import {
  IptablesRenderCache,
  renderIptables,
  renderOptionsFromConfig,
  RenderInputError,
  serializeRuleSet,
  type IptablesRenderOptions,
} from '../../../src/render/iptables/index.js';
import { localTrafficDetectorOf } from '../../../src/proxy/index.js';
import type { IptablesRuleSet } from '../../../src/render/types.js';
import { ep, options, stateOf, svcPort } from '../render/fixtures.js';

const SVC1 = 'KUBE-SVC-XPGD46QRK7WJZT7O';
const EXT1 = 'KUBE-EXT-XPGD46QRK7WJZT7O';
const SVL1 = 'KUBE-SVL-XPGD46QRK7WJZT7O';

function chain(rs: IptablesRuleSet, name: string): string[] {
  return rs.tables.find((t) => t.name === 'nat')?.chains.find((c) => c.name === name)?.rules ?? [];
}

/** A dual-stack NodePort service with eTP Local and one endpoint per family on this node. */
function stateWith(nodes: NodeInfo[]): ClusterState {
  const state = stateOf(
    svcPort('ns1', 'svc1', 'p80', {
      type: 'NodePort',
      nodePort: 30080,
      externalTrafficPolicy: 'Local',
      clusterIPs: ['172.30.0.41', 'fd00:30::41'],
      ipFamilies: ['IPv4', 'IPv6'],
      endpoints: [
        ep('10.1.0.1', 8080, { nodeName: 'test-node' }),
        ep('fd00:1::1', 8080, { nodeName: 'test-node' }),
      ],
    }),
  );
  state.nodes = nodes;
  return state;
}

const thisNode = (podCIDRs?: string[]): NodeInfo => ({
  name: 'test-node',
  addresses: ['192.168.0.2', 'fd00:99::2'],
  ready: true,
  labels: {},
  ...(podCIDRs === undefined ? {} : { podCIDRs }),
});

function familyOptions(family: IPFamily, extra: Partial<IptablesRenderOptions>): IptablesRenderOptions {
  return options({
    family,
    nodeIPs: family === 'IPv4' ? ['192.168.0.2'] : ['fd00:99::2'],
    clusterCIDRs: family === 'IPv4' ? ['10.0.0.0/8'] : ['fd00::/48'],
    ...extra,
  });
}

/** The detector-dependent rules of svc1: [cluster IP masquerade rule or '', EXT pod rule or '']. */
function detectorRules(state: ClusterState, family: IPFamily, extra: Partial<IptablesRenderOptions>) {
  const rs = renderIptables(state, familyOptions(family, extra));
  const masq = chain(rs, SVC1).find((r) => r.endsWith('-j KUBE-MARK-MASQ')) ?? '';
  const pod = chain(rs, EXT1).find((r) => r.includes('pod traffic for')) ?? '';
  return { masq, pod, ext: chain(rs, EXT1) };
}

describe.each<[IPFamily, string, string, string]>([
  ['IPv4', '172.30.0.41', '10.244.1.0/24', '10.0.0.0/8'],
  ['IPv6', 'fd00:30::41', 'fd00:244:0:1::/64', 'fd00::/48'],
])('detectLocalMode (%s)', (family, clusterIP, podCIDR, clusterCIDR) => {
  const node = thisNode(['10.244.1.0/24', 'fd00:244:0:1::/64']);
  const state = stateWith([node]);

  test('ClusterCIDR (the default): -s clusterCIDR', () => {
    for (const extra of [{}, { detectLocalMode: 'ClusterCIDR' as const }]) {
      const { masq, pod } = detectorRules(state, family, extra);
      expect(masq).toBe(
        `-A ${SVC1} -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d ${clusterIP} --dport 80 ! -s ${clusterCIDR} -j KUBE-MARK-MASQ`,
      );
      expect(pod).toBe(
        `-A ${EXT1} -m comment --comment "pod traffic for ns1/svc1:p80 external destinations" -s ${clusterCIDR} -j ${SVC1}`,
      );
    }
  });

  test("NodeCIDR: -s the Node's pod CIDR of the family; clusterCIDRs are not used", () => {
    const { masq, pod } = detectorRules(state, family, { detectLocalMode: 'NodeCIDR' });
    expect(masq).toContain(`--dport 80 ! -s ${podCIDR} -j KUBE-MARK-MASQ`);
    expect(masq).not.toContain(clusterCIDR + ' ');
    expect(pod).toContain(` -s ${podCIDR} -j ${SVC1}`);
  });

  test('NodeCIDR takes the first pod CIDR of the family only (kube-proxy: cidrs[0])', () => {
    const second = family === 'IPv4' ? '10.245.0.0/24' : 'fd00:245::/64';
    const otherFamily = family === 'IPv4' ? 'fd00:9::/64' : '10.9.0.0/24';
    const s = stateWith([thisNode([otherFamily, podCIDR, second])]);
    const { masq } = detectorRules(s, family, { detectLocalMode: 'NodeCIDR' });
    expect(masq).toContain(`! -s ${podCIDR} -j`);
    expect(masq).not.toContain(second);
  });

  test('NodeCIDR with no pod CIDR of the family: no detector for that family', () => {
    const other = family === 'IPv4' ? ['fd00:244:0:1::/64'] : ['10.244.1.0/24'];
    const s = stateWith([thisNode(other)]);
    const { masq, pod, ext } = detectorRules(s, family, { detectLocalMode: 'NodeCIDR' });
    expect(masq).toBe('');
    expect(pod).toBe('');
    // The rest of the EXT chain is unchanged: LOCAL traffic masqueraded and sent to the SVC chain.
    expect(ext.filter((r) => r.includes('--src-type LOCAL'))).toHaveLength(2);
    expect(ext[ext.length - 1]).toBe(`-A ${EXT1} -j ${SVL1}`);
    expect(localTrafficDetectorOf(s, familyOptions(family, { detectLocalMode: 'NodeCIDR' }))).toEqual({
      mode: 'NodeCIDR',
      ifLocal: null,
      ifNotLocal: null,
      reason: 'noNodePodCIDR',
    });
  });

  test('NodeCIDR when this node is not in the state (or has no name): no detector', () => {
    for (const [s, nodeName] of [
      [stateWith([{ ...node, name: 'other-node' }]), 'test-node'],
      [state, ''],
    ] as const) {
      const { masq, pod } = detectorRules(s, family, { detectLocalMode: 'NodeCIDR', nodeName });
      expect(masq).toBe('');
      expect(pod).toBe('');
      expect(localTrafficDetectorOf(s, familyOptions(family, { detectLocalMode: 'NodeCIDR', nodeName })).reason).toBe(
        'nodeNotFound',
      );
    }
  });

  test('BridgeInterface: -i br0 / ! -i br0, the same in both families', () => {
    const { masq, pod } = detectorRules(state, family, { detectLocalMode: 'BridgeInterface', bridgeInterface: 'cbr0' });
    expect(masq).toBe(
      `-A ${SVC1} -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d ${clusterIP} --dport 80 ! -i cbr0 -j KUBE-MARK-MASQ`,
    );
    expect(pod).toBe(
      `-A ${EXT1} -m comment --comment "pod traffic for ns1/svc1:p80 external destinations" -i cbr0 -j ${SVC1}`,
    );
  });

  test('InterfaceNamePrefix: -i veth+ / ! -i veth+', () => {
    const { masq, pod } = detectorRules(state, family, {
      detectLocalMode: 'InterfaceNamePrefix',
      interfaceNamePrefix: 'veth',
    });
    expect(masq).toContain(`--dport 80 ! -i veth+ -j KUBE-MARK-MASQ`);
    expect(pod).toContain(`external destinations" -i veth+ -j ${SVC1}`);
  });

  test('masqueradeAll still masquerades everything, whatever the detector', () => {
    const { masq } = detectorRules(state, family, {
      detectLocalMode: 'BridgeInterface',
      bridgeInterface: 'cbr0',
      masqueradeAll: true,
    });
    expect(masq).toBe(
      `-A ${SVC1} -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d ${clusterIP} --dport 80 -j KUBE-MARK-MASQ`,
    );
  });
});

describe('detector inputs the renderer rejects', () => {
  const state = stateWith([thisNode(['10.244.1.0/24'])]);
  test('an interface mode without its interface, or a bad name, names the option', () => {
    expect(() => renderIptables(state, options({ detectLocalMode: 'BridgeInterface' }))).toThrow(
      /options: bridgeInterface: must not be empty/,
    );
    expect(() =>
      renderIptables(state, options({ detectLocalMode: 'InterfaceNamePrefix', interfaceNamePrefix: 'veth+' })),
    ).toThrow(/options: interfaceNamePrefix: .*give the prefix alone/);
    expect(() => renderIptables(state, options({ detectLocalMode: 'BridgeInterface', bridgeInterface: 'br0\n-A X' }))).toThrow(
      RenderInputError,
    );
  });

  test('a Node pod CIDR that is no CIDR is skipped (no detector); an unmasked one is masked', () => {
    // The model reports and drops such entries; a hand-built state must not reach the rules either.
    const bad = stateWith([thisNode(['10.244.1.1/33'])]);
    expect(localTrafficDetectorOf(bad, options({ detectLocalMode: 'NodeCIDR' })).reason).toBe('noNodePodCIDR');
    const unmasked = stateWith([thisNode(['10.244.1.1/24'])]);
    expect(localTrafficDetectorOf(unmasked, options({ detectLocalMode: 'NodeCIDR' })).ifLocal).toEqual([
      '-s',
      '10.244.1.0/24',
    ]);
  });

  test('an unknown mode is refused', () => {
    expect(() => renderIptables(state, options({ detectLocalMode: 'PodCIDR' as never }))).toThrow(
      /options: detectLocalMode: "PodCIDR" is not a detectLocalMode/,
    );
  });
});

describe('renderOptionsFromConfig with detectLocalMode', () => {
  test('carries the mode and only the setting it uses', () => {
    const bridge = parseConfig({ detectLocalMode: 'BridgeInterface', detectLocal: { bridgeInterface: 'br0', interfaceNamePrefix: 'veth' } });
    const o = renderOptionsFromConfig(bridge, 'IPv6', []);
    expect(o.detectLocalMode).toBe('BridgeInterface');
    expect(o.bridgeInterface).toBe('br0');
    expect(o.interfaceNamePrefix).toBeUndefined();
    const prefix = parseConfig({ detectLocalMode: 'InterfaceNamePrefix', detectLocal: { interfaceNamePrefix: 'cali' } });
    expect(renderOptionsFromConfig(prefix, 'IPv4', [])).toMatchObject({ detectLocalMode: 'InterfaceNamePrefix', interfaceNamePrefix: 'cali' });
    // The default leaves the options as they were before detectLocalMode existed.
    const plain = renderOptionsFromConfig(defaultConfig(), 'IPv4', []);
    expect('detectLocalMode' in plain).toBe(false);
  });

  test('several CIDRs of a family are only an error for the ClusterCIDR detector', () => {
    const clusterCIDRs = ['10.0.0.0/16', '10.1.0.0/16'];
    expect(() => renderOptionsFromConfig({ ...defaultConfig(), clusterCIDRs }, 'IPv4', [])).toThrow(/clusterCIDRs/);
    const nodeCIDR = { ...defaultConfig(), clusterCIDRs, detectLocalMode: 'NodeCIDR' as const };
    expect(renderOptionsFromConfig(nodeCIDR, 'IPv4', []).detectLocalMode).toBe('NodeCIDR');
  });

  test('a hand-built config missing the interface is refused by key', () => {
    const config = { ...defaultConfig(), detectLocalMode: 'InterfaceNamePrefix' as const };
    expect(() => renderOptionsFromConfig(config, 'IPv4', [])).toThrow(
      /config: detectLocal\.interfaceNamePrefix: must be set when detectLocalMode is InterfaceNamePrefix/,
    );
  });
});

describe('render cache and the NodeCIDR detector', () => {
  test("a change of the Node's pod CIDRs re-renders every service (same ServicePort objects)", () => {
    const before = stateWith([thisNode(['10.244.1.0/24'])]);
    const after: ClusterState = { ...before, nodes: [thisNode(['10.244.7.0/24'])] };
    const opts = options({ detectLocalMode: 'NodeCIDR' });
    const cache = new IptablesRenderCache();
    renderIptables(before, opts, cache);
    const cached = renderIptables(after, opts, cache);
    expect(cache.misses).toBe(1);
    expect(serializeRuleSet(cached)).toBe(serializeRuleSet(renderIptables(after, opts)));
    expect(chain(cached, SVC1).join('\n')).toContain('! -s 10.244.7.0/24');
    // Unchanged pod CIDRs: served from the cache.
    renderIptables({ ...after, nodes: [thisNode(['10.244.7.0/24'])] }, opts, cache);
    expect(cache.hits).toBe(1);
    expect(cache.misses).toBe(0);
  });
});
