import { allocate } from '../../../src/lb/allocator.js';
import {
  type AnnouncedAddress,
  type ElectionInputs,
  collectAnnouncedAddresses,
  decideOwner,
  rankNodes,
} from '../../../src/l2/election.js';
import type { L2Advertisement, NodeInfo, ServicePort } from '../../../src/model/cluster-state.js';
import { pool, svc } from '../lb/fixtures.js';

const node = (name: string, over: Partial<NodeInfo> = {}): NodeInfo => ({
  name,
  addresses: [],
  ready: true,
  labels: {},
  ...over,
});
const ad = (over: Partial<L2Advertisement> = {}): L2Advertisement => ({
  name: 'l2',
  ipAddressPools: [],
  ipAddressPoolSelectors: [],
  nodeSelectors: [],
  interfaces: [],
  ...over,
});
const addr = (ip: string, over: Partial<AnnouncedAddress> = {}): AnnouncedAddress => ({
  ip,
  pool: 'p',
  services: ['default/a'],
  externalTrafficPolicy: 'Cluster',
  nodesWithReadyEndpoints: [],
  hasServingEndpoints: true,
  ...over,
});
const nodes = [node('node-a'), node('node-b', { labels: { l2: 'yes' } }), node('node-c')];
const inputs = (over: Partial<ElectionInputs> = {}): ElectionInputs => ({
  nodes,
  pools: [pool('p', ['192.168.1.0/24'], { labels: { tier: 'edge' } })],
  advertisements: [ad()],
  aliveNodes: new Set(['node-a', 'node-b', 'node-c']),
  ...over,
});

describe('rankNodes', () => {
  // Pinned against `printf 'node-x#IP' | openssl dgst -sha256`: a changed order would move every address on upgrade.
  test('orders by sha256(node#ip)', () => {
    expect(rankNodes('192.168.1.100', ['node-a', 'node-b', 'node-c'])).toEqual([
      'node-c',
      'node-b',
      'node-a',
    ]);
    expect(rankNodes('192.168.1.101', ['node-b', 'node-a', 'node-c'])).toEqual([
      'node-c',
      'node-a',
      'node-b',
    ]);
  });
});

describe('decideOwner', () => {
  test('the first ranked eligible node announces; the others are notOwner', () => {
    const decisions = ['node-a', 'node-b', 'node-c'].map((me) =>
      decideOwner(me, addr('192.168.1.100'), inputs()),
    );
    expect(decisions.map((d) => d.reason)).toEqual(['notOwner', 'notOwner', '']);
    expect(decisions.every((d) => d.owner === 'node-c')).toBe(true);
    expect(decisions[2]?.eligible).toEqual(['node-c', 'node-b', 'node-a']);
  });

  test('a dead or NotReady owner is replaced by the next in rank', () => {
    const dead = inputs({ aliveNodes: new Set(['node-a', 'node-b']) });
    expect(decideOwner('node-b', addr('192.168.1.100'), dead)).toMatchObject({ reason: '', owner: 'node-b' });
    const notReady = inputs({ nodes: [node('node-a'), node('node-b'), node('node-c', { ready: false })] });
    expect(decideOwner('node-b', addr('192.168.1.100'), notReady).owner).toBe('node-b');
  });

  test('a node always counts itself alive', () => {
    expect(decideOwner('node-c', addr('192.168.1.100'), inputs({ aliveNodes: new Set() })).reason).toBe('');
  });

  test('nodeSelectors limit the candidates', () => {
    const onlyB = inputs({
      advertisements: [ad({ nodeSelectors: [{ matchLabels: { l2: 'yes' }, matchExpressions: [] }] })],
    });
    expect(decideOwner('node-c', addr('192.168.1.100'), onlyB)).toMatchObject({
      reason: 'notOwner',
      owner: 'node-b',
    });
    expect(decideOwner('node-b', addr('192.168.1.100'), onlyB).reason).toBe('');
  });

  test('Local: only nodes with a ready endpoint; none at all is noLocalEndpoints', () => {
    const local = addr('192.168.1.100', {
      externalTrafficPolicy: 'Local',
      nodesWithReadyEndpoints: ['node-a'],
    });
    expect(decideOwner('node-a', local, inputs()).reason).toBe('');
    expect(decideOwner('node-c', local, inputs()).reason).toBe('notOwner');
    expect(
      decideOwner('node-c', addr('192.168.1.100', { externalTrafficPolicy: 'Local' }), inputs()).reason,
    ).toBe('noLocalEndpoints');
    const deadA = inputs({ aliveNodes: new Set(['node-b', 'node-c']) });
    expect(decideOwner('node-c', local, deadA).reason).toBe('noEligibleNodes');
  });

  test('a node whose NetworkUnavailable condition is True never announces; the next in rank owns', () => {
    // Rank for 192.168.1.100: node-c > node-b > node-a.
    const cUnavailable = inputs({
      nodes: [node('node-a'), node('node-b'), node('node-c', { networkUnavailable: true })],
    });
    expect(decideOwner('node-c', addr('192.168.1.100'), cUnavailable)).toEqual({
      ip: '192.168.1.100',
      owner: 'node-b',
      reason: 'nodeNetworkUnavailable',
      eligible: ['node-b', 'node-a'],
      interfaces: [],
    });
    expect(decideOwner('node-b', addr('192.168.1.100'), cUnavailable)).toMatchObject({
      owner: 'node-b',
      reason: '',
      eligible: ['node-b', 'node-a'],
    });
    expect(decideOwner('node-a', addr('192.168.1.100'), cUnavailable)).toMatchObject({
      owner: 'node-b',
      reason: 'notOwner',
    });
    // Decided for no node in particular (`portway status`): the same owner.
    expect(decideOwner('', addr('192.168.1.100'), cUnavailable).owner).toBe('node-b');
  });

  test('NetworkUnavailable on every otherwise eligible node: no owner, with that reason', () => {
    const all = inputs({ nodes: nodes.map((n) => ({ ...n, networkUnavailable: true as const })) });
    for (const me of ['node-a', 'node-c', '']) {
      expect(decideOwner(me, addr('192.168.1.100'), all)).toMatchObject({
        owner: null,
        reason: 'nodeNetworkUnavailable',
        eligible: [],
      });
    }
    // Local: the only node with an endpoint has its network unavailable.
    const local = addr('192.168.1.100', {
      externalTrafficPolicy: 'Local',
      nodesWithReadyEndpoints: ['node-c'],
    });
    const cUnavailable = inputs({
      nodes: [node('node-a'), node('node-b'), node('node-c', { networkUnavailable: true })],
    });
    expect(decideOwner('node-c', local, cUnavailable)).toMatchObject({
      owner: null,
      reason: 'nodeNetworkUnavailable',
    });
    // Nobody is a candidate at all: still noEligibleNodes.
    const noneReady = inputs({
      nodes: nodes.map((n) => ({ ...n, ready: false, networkUnavailable: true as const })),
    });
    expect(decideOwner('node-c', addr('192.168.1.100'), noneReady).reason).toBe('noEligibleNodes');
  });

  test('the other exclusions come first: a NotReady or labelled-out node keeps notOwner', () => {
    const cNotReady = inputs({
      nodes: [node('node-a'), node('node-b'), node('node-c', { ready: false, networkUnavailable: true })],
    });
    expect(decideOwner('node-c', addr('192.168.1.100'), cNotReady)).toMatchObject({
      owner: 'node-b',
      reason: 'notOwner',
    });
    const cExcluded = inputs({
      nodes: [
        node('node-a'),
        node('node-b'),
        node('node-c', {
          networkUnavailable: true,
          labels: { 'node.kubernetes.io/exclude-from-external-load-balancers': '' },
        }),
      ],
    });
    expect(decideOwner('node-c', addr('192.168.1.100'), cExcluded).reason).toBe('notOwner');
  });

  test('pools not covered by any advertisement are not announced; pool selection by name or label', () => {
    expect(
      decideOwner(
        'node-c',
        addr('192.168.1.100'),
        inputs({ advertisements: [ad({ ipAddressPools: ['other'] })] }),
      ).reason,
    ).toBe('notAdvertised');
    expect(
      decideOwner(
        'node-c',
        addr('192.168.1.100'),
        inputs({ advertisements: [ad({ ipAddressPools: ['p'] })] }),
      ).reason,
    ).toBe('');
    const bySel = ad({
      ipAddressPoolSelectors: [
        { matchLabels: {}, matchExpressions: [{ key: 'tier', operator: 'In', values: ['edge'] }] },
      ],
    });
    expect(decideOwner('node-c', addr('192.168.1.100'), inputs({ advertisements: [bySel] })).reason).toBe('');
    expect(decideOwner('node-c', addr('192.168.1.100'), inputs({ advertisements: [] })).reason).toBe(
      'notAdvertised',
    );
  });

  test('interfaces: union of the advertisements selecting this node, empty = all', () => {
    const two = [ad({ interfaces: ['eth1'] }), ad({ name: 'x', interfaces: ['eth0', 'eth1'] })];
    expect(decideOwner('node-c', addr('192.168.1.100'), inputs({ advertisements: two })).interfaces).toEqual([
      'eth0',
      'eth1',
    ]);
    expect(
      decideOwner('node-c', addr('192.168.1.100'), inputs({ advertisements: [...two, ad({ name: 'all' })] }))
        .interfaces,
    ).toEqual([]);
  });

  // MetalLB's ShouldAnnounce returns early when no endpoint can serve, whatever the traffic policy.
  test('Cluster: no Service on the address with a serving endpoint is noEndpoints on every node', () => {
    const empty = addr('192.168.1.100', { hasServingEndpoints: false });
    for (const me of ['node-a', 'node-b', 'node-c'])
      expect(decideOwner(me, empty, inputs())).toMatchObject({ owner: null, reason: 'noEndpoints' });
  });

  test('nodes labelled exclude-from-external-load-balancers (any value) never announce', () => {
    const excluded = inputs({
      nodes: [
        node('node-a'),
        node('node-b'),
        node('node-c', { labels: { 'node.kubernetes.io/exclude-from-external-load-balancers': '' } }),
      ],
    });
    // node-c ranks first for this address when it is eligible (see the test above).
    expect(decideOwner('node-c', addr('192.168.1.100'), excluded)).toMatchObject({
      reason: 'notOwner',
      owner: 'node-b',
      eligible: ['node-b', 'node-a'],
    });
    expect(decideOwner('node-b', addr('192.168.1.100'), excluded).reason).toBe('');
  });

  // MetalLB elects IPv6 addresses like IPv4 ones (and announces them by NDP): same hash, same reasons.
  test('IPv6 addresses are elected like IPv4 ones', () => {
    const ranked = rankNodes('2001:db8::1', ['node-a', 'node-b', 'node-c']);
    const owner = ranked[0] as string;
    expect(decideOwner(owner, addr('2001:db8::1'), inputs())).toMatchObject({
      reason: '',
      owner,
      eligible: ranked,
    });
    const other = ranked[1] as string;
    expect(decideOwner(other, addr('2001:db8::1'), inputs())).toMatchObject({ reason: 'notOwner', owner });
  });
});

describe('dual-stack Services (MetalLB hashes a Service on its first address)', () => {
  test('the IPv4 and IPv6 addresses of one Service have the same owner, elected on the first address', () => {
    const services = [svc('a', { ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv4', 'IPv6'] })];
    const allocation = allocate(services, [pool('p', ['192.168.1.10/32', '2001:db8::10/128'])], {});
    const sp = {
      id: 'default/a',
      namespace: 'default',
      serviceName: 'a',
      endpoints: [
        { ip: '10.0.0.1', port: 80, family: 'IPv4', ready: true, serving: true, terminating: false },
      ],
    } as unknown as ServicePort;
    const got = collectAnnouncedAddresses({ services, servicePorts: [sp] }, allocation);
    expect(got.map((a) => [a.ip, a.electionKey])).toEqual([
      ['192.168.1.10', '192.168.1.10'],
      ['2001:db8::10', '192.168.1.10'],
    ]);
    // With these names the two addresses' own hashes disagree: only the shared key keeps them together.
    const names = ['n1', 'n2', 'n3', 'n4', 'n5', 'n6'];
    expect(rankNodes('192.168.1.10', names)[0]).not.toBe(rankNodes('2001:db8::10', names)[0]);
    const many = inputs({
      nodes: names.map((n) => node(n)),
      pools: [pool('p', ['192.168.1.10/32', '2001:db8::10/128'])],
    });
    const owners = got.map((a) => decideOwner('n1', a, many).owner);
    expect(owners).toEqual([rankNodes('192.168.1.10', names)[0], rankNodes('192.168.1.10', names)[0]]);
  });
});

describe('collectAnnouncedAddresses', () => {
  test('one entry per address; shared addresses list every Service; Local only if all are Local', () => {
    const share = { 'portway.io/allow-shared-ip': 'k' };
    const services = [
      svc('a', { annotations: share, externalTrafficPolicy: 'Local', selector: { app: 'x' } }),
      svc('b', {
        annotations: share,
        externalTrafficPolicy: 'Local',
        selector: { app: 'x' },
        ports: [{ name: 'q', protocol: 'UDP', port: 53, nodePort: 0 }],
      }),
      svc('c'),
    ];
    const allocation = allocate(services, [pool('p', ['192.168.1.1-192.168.1.2'])], {});
    const sp = (name: string, nodeName: string, ready = true): ServicePort =>
      ({
        id: `default/${name}`,
        namespace: 'default',
        serviceName: name,
        endpoints: [
          { ip: '10.0.0.1', port: 80, family: 'IPv4', ready, serving: ready, terminating: false, nodeName },
        ],
      }) as unknown as ServicePort;
    const got = collectAnnouncedAddresses(
      { services, servicePorts: [sp('a', 'node-a'), sp('b', 'node-b'), sp('c', 'node-c', false)] },
      allocation,
    );
    expect(got).toEqual([
      {
        ip: '192.168.1.1',
        pool: 'p',
        services: ['default/a', 'default/b'],
        externalTrafficPolicy: 'Local',
        nodesWithReadyEndpoints: ['node-a', 'node-b'],
        hasServingEndpoints: true,
        electionKey: '192.168.1.1',
      },
      {
        ip: '192.168.1.2',
        pool: 'p',
        services: ['default/c'],
        externalTrafficPolicy: 'Cluster',
        nodesWithReadyEndpoints: [],
        hasServingEndpoints: false,
        electionKey: '192.168.1.2',
      },
    ]);
  });

  // MetalLB's EndpointCanServe: ready, or serving while terminating; such a node stays eligible for Local.
  test('an endpoint terminating but still serving counts; one neither ready nor serving does not', () => {
    const services = [svc('a', { externalTrafficPolicy: 'Local' })];
    const allocation = allocate(services, [pool('p', ['192.168.1.1-192.168.1.2'])], {});
    const ep = (nodeName: string, ready: boolean, serving: boolean) => ({
      ip: '10.0.0.1',
      port: 80,
      family: 'IPv4' as const,
      ready,
      serving,
      terminating: !ready,
      nodeName,
    });
    const sp = {
      id: 'default/a',
      namespace: 'default',
      serviceName: 'a',
      endpoints: [
        ep('node-a', false, true),
        ep('node-b', false, false),
        { ...ep('node-c', false, true), terminating: false },
      ],
    } as unknown as ServicePort;
    const [got] = collectAnnouncedAddresses({ services, servicePorts: [sp] }, allocation);
    expect(got).toMatchObject({ nodesWithReadyEndpoints: ['node-a'], hasServingEndpoints: true });
    expect(decideOwner('node-a', got as AnnouncedAddress, inputs()).reason).toBe('');
  });
});
