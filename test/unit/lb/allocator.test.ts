import {
  ANNOTATION_ADDRESS_POOL,
  ANNOTATION_ALLOW_SHARED_IP,
  ANNOTATION_LOAD_BALANCER_IPS,
  allocate,
  type AllocationResult,
} from '../../../src/lb/allocator.js';
import type { AddressPool, ServiceInfo } from '../../../src/model/cluster-state.js';
import { pool, selector, svc } from './fixtures.js';

const ipsOf = (r: AllocationResult, key: string) => r.assignments.get(key)?.ips;
const run = (
  services: ServiceInfo[],
  pools: AddressPool[],
  ns: Record<string, Record<string, string>> = {},
  prev?: AllocationResult,
) => allocate(services, pools, ns, prev);

describe('allocate: pools and ranges', () => {
  test('first free address of a CIDR, services in namespace/name order', () => {
    const r = run([svc('b'), svc('a'), svc('other/a')], [pool('p', ['192.168.1.0/30'])]);
    expect(ipsOf(r, 'default/a')).toEqual(['192.168.1.0']);
    expect(ipsOf(r, 'default/b')).toEqual(['192.168.1.1']);
    expect(ipsOf(r, 'other/a')).toEqual(['192.168.1.2']);
    expect(r.assignments.get('default/a')?.pool).toBe('p');
    expect(r.reasons.size).toBe(0);
  });

  test('a-b ranges and several ranges are used in the order written', () => {
    const r = run([svc('a'), svc('b'), svc('c')], [pool('p', ['10.0.0.9-10.0.0.10', '10.0.5.1/32'])]);
    expect([ipsOf(r, 'default/a'), ipsOf(r, 'default/b'), ipsOf(r, 'default/c')]).toEqual([
      ['10.0.0.9'],
      ['10.0.0.10'],
      ['10.0.5.1'],
    ]);
  });

  test('exhaustion gives a reason naming the pool', () => {
    const r = run([svc('a'), svc('b')], [pool('tiny', ['10.0.0.1/32'])]);
    expect(ipsOf(r, 'default/a')).toEqual(['10.0.0.1']);
    expect(r.assignments.has('default/b')).toBe(false);
    expect(r.reasons.get('default/b')).toMatch(/no available addresses: pools tiny are exhausted/);
  });

  test('no pools at all', () => {
    const r = run([svc('a')], []);
    expect(r.reasons.get('default/a')).toBe('no auto-assigning address pool admits this Service');
  });

  test('avoidBuggyIPs skips .0 and .255 and refuses to hand them out on request', () => {
    const r = run(
      [svc('a'), svc('b'), svc('c', { loadBalancerIP: '10.0.1.255' })],
      [pool('p', ['10.0.0.255-10.0.1.1'], { avoidBuggyIPs: true })],
    );
    expect(ipsOf(r, 'default/a')).toEqual(['10.0.1.1']);
    expect(r.reasons.get('default/b')).toMatch(/exhausted/);
    expect(r.reasons.get('default/c')).toBe('address 10.0.1.255 is not in any address pool');
  });

  test('avoidBuggyIPs does not apply to IPv6', () => {
    const r = run(
      [svc('a', { ipFamilies: ['IPv6'], clusterIPs: ['fd00::10'] })],
      [pool('p', ['2001:db8::/126'], { avoidBuggyIPs: true })],
    );
    expect(ipsOf(r, 'default/a')).toEqual(['2001:db8::']);
  });

  test('autoAssign=false pools are used only on request (annotation or address)', () => {
    const pools = [pool('expensive', ['1.2.3.4/32'], { autoAssign: false }), pool('cheap', ['10.0.0.1/32'])];
    const r = run(
      [svc('a'), svc('b'), svc('c', { annotations: { [ANNOTATION_ADDRESS_POOL]: 'expensive' } })],
      pools,
    );
    expect(ipsOf(r, 'default/a')).toEqual(['10.0.0.1']);
    expect(r.reasons.get('default/b')).toMatch(/pools cheap are exhausted/);
    expect(ipsOf(r, 'default/c')).toEqual(['1.2.3.4']);
    const r2 = run([svc('d', { loadBalancerIP: '1.2.3.4' })], pools);
    expect(r2.assignments.get('default/d')).toEqual({ ips: ['1.2.3.4'], pool: 'expensive' });
  });

  test('unknown pool in the annotation', () => {
    const r = run(
      [svc('a', { annotations: { [ANNOTATION_ADDRESS_POOL]: 'nope' } })],
      [pool('p', ['10.0.0.0/24'])],
    );
    expect(r.reasons.get('default/a')).toMatch(/pool nope does not exist/);
  });
});

describe('allocate: which Services are ours', () => {
  test('only type LoadBalancer without a foreign loadBalancerClass', () => {
    const r = run(
      [
        svc('a', { type: 'ClusterIP' }),
        svc('b', { loadBalancerClass: 'other.io/lb' }),
        svc('c', { loadBalancerClass: 'portway.io/lb' }),
      ],
      [pool('p', ['10.0.0.0/24'])],
    );
    expect([...r.assignments.keys()]).toEqual(['default/c']);
    expect(r.reasons.size).toBe(0);
  });
});

describe('allocate: requested addresses', () => {
  const pools = [pool('p', ['10.0.0.0/24']), pool('q', ['10.0.1.0/24'])];

  test('spec.loadBalancerIP and the annotation form', () => {
    const r = run(
      [
        svc('a', { loadBalancerIP: '10.0.0.50' }),
        svc('b', { annotations: { [ANNOTATION_LOAD_BALANCER_IPS]: '10.0.1.7' } }),
        svc('c'),
      ],
      pools,
    );
    expect(r.assignments.get('default/a')).toEqual({ ips: ['10.0.0.50'], pool: 'p' });
    expect(r.assignments.get('default/b')).toEqual({ ips: ['10.0.1.7'], pool: 'q' });
    expect(ipsOf(r, 'default/c')).toEqual(['10.0.0.0']);
  });

  test('a requested address not in any pool', () => {
    const r = run([svc('a', { loadBalancerIP: '172.16.0.1' })], pools);
    expect(r.reasons.get('default/a')).toBe('address 172.16.0.1 is not in any address pool');
  });

  test('a requested address already taken by a Service that does not share', () => {
    const r = run(
      [svc('a', { loadBalancerIP: '10.0.0.5' }), svc('b', { loadBalancerIP: '10.0.0.5' })],
      pools,
    );
    expect(ipsOf(r, 'default/a')).toEqual(['10.0.0.5']);
    expect(r.reasons.get('default/b')).toMatch(/address 10.0.0.5 is in use by default\/a/);
  });

  test('a requested address of the wrong family', () => {
    const r = run([svc('a', { loadBalancerIP: '2001:db8::1' })], [...pools, pool('v6', ['2001:db8::/120'])]);
    expect(r.reasons.get('default/a')).toMatch(/wrong family/);
  });

  test('both request forms at once is an error', () => {
    const r = run(
      [svc('a', { loadBalancerIP: '10.0.0.1', annotations: { [ANNOTATION_LOAD_BALANCER_IPS]: '10.0.0.2' } })],
      pools,
    );
    expect(r.reasons.get('default/a')).toMatch(/both spec.loadBalancerIP and annotation/);
  });

  test('garbage in the annotation names it', () => {
    const r = run([svc('a', { annotations: { [ANNOTATION_LOAD_BALANCER_IPS]: '10.0.0.1,bogus' } })], pools);
    expect(r.reasons.get('default/a')).toBe(
      'annotation portway.io/loadBalancerIPs: "bogus" is not an IP address',
    );
  });

  test('request and pool annotation must agree', () => {
    const r = run(
      [svc('a', { loadBalancerIP: '10.0.0.9', annotations: { [ANNOTATION_ADDRESS_POOL]: 'q' } })],
      pools,
    );
    expect(r.reasons.get('default/a')).toMatch(/not in the pool q the annotation asks for/);
  });

  test('requested addresses are served before first-free allocation regardless of name order', () => {
    const r = run([svc('a'), svc('z', { loadBalancerIP: '10.0.0.0' })], [pool('p', ['10.0.0.0/31'])]);
    // a comes first by name and takes .0; z asked for .0 and is refused: name order decides, like MetalLB's event order.
    expect(ipsOf(r, 'default/a')).toEqual(['10.0.0.0']);
    expect(r.reasons.get('default/z')).toMatch(/in use by default\/a/);
  });
});

describe('allocate: sharing', () => {
  const pools = [pool('p', ['10.0.0.1-10.0.0.3'])];
  const share = (key: string) => ({ [ANNOTATION_ALLOW_SHARED_IP]: key });

  test('same key and different ports share one address', () => {
    const r = run(
      [
        svc('a', {
          annotations: share('k'),
          ports: [{ name: 'dns', protocol: 'UDP', port: 53, nodePort: 0 }],
        }),
        svc('b', {
          annotations: share('k'),
          ports: [{ name: 'dns', protocol: 'TCP', port: 53, nodePort: 0 }],
        }),
      ],
      pools,
    );
    expect(ipsOf(r, 'default/a')).toEqual(['10.0.0.1']);
    expect(ipsOf(r, 'default/b')).toEqual(['10.0.0.1']);
  });

  test('a port clash makes the second one take the next address (auto) or fail (requested)', () => {
    const r = run([svc('a', { annotations: share('k') }), svc('b', { annotations: share('k') })], pools);
    expect(ipsOf(r, 'default/b')).toEqual(['10.0.0.2']);
    const r2 = run(
      [
        svc('a', { annotations: share('k'), loadBalancerIP: '10.0.0.1' }),
        svc('b', { annotations: share('k'), loadBalancerIP: '10.0.0.1' }),
      ],
      pools,
    );
    expect(r2.reasons.get('default/b')).toBe('port TCP/80 on 10.0.0.1 is already used by default/a');
  });

  test('different sharing keys conflict', () => {
    const r = run(
      [
        svc('a', { annotations: share('k1'), loadBalancerIP: '10.0.0.1' }),
        svc('b', { annotations: share('k2'), loadBalancerIP: '10.0.0.1', ports: [] }),
      ],
      pools,
    );
    expect(r.reasons.get('default/b')).toMatch(/sharing key "k1", not "k2"/);
  });

  test('different externalTrafficPolicy conflicts; Local needs the same selector', () => {
    const p443 = [{ name: 'https', protocol: 'TCP' as const, port: 443, nodePort: 0 }];
    const r = run(
      [
        svc('a', { annotations: share('k'), loadBalancerIP: '10.0.0.1' }),
        svc('b', {
          annotations: share('k'),
          loadBalancerIP: '10.0.0.1',
          ports: p443,
          externalTrafficPolicy: 'Local',
        }),
      ],
      pools,
    );
    expect(r.reasons.get('default/b')).toMatch(/different externalTrafficPolicy/);
    const local = {
      annotations: share('k'),
      loadBalancerIP: '10.0.0.2',
      externalTrafficPolicy: 'Local' as const,
    };
    const r2 = run(
      [
        svc('c', { ...local, selector: { app: 'x' } }),
        svc('d', { ...local, selector: { app: 'x' }, ports: p443 }),
        svc('e', {
          ...local,
          selector: { app: 'y' },
          ports: [{ name: 'x', protocol: 'TCP', port: 8080, nodePort: 0 }],
        }),
      ],
      pools,
    );
    expect(ipsOf(r2, 'default/d')).toEqual(['10.0.0.2']);
    expect(r2.reasons.get('default/e')).toMatch(/different externalTrafficPolicy or \(for Local\) selector/);
  });

  test('auto allocation with a key prefers an earlier shareable address over a later free one', () => {
    const r = run(
      [
        svc('a', { annotations: share('k'), loadBalancerIP: '10.0.0.2' }),
        svc('b', { annotations: share('k'), ports: [{ name: 'x', protocol: 'TCP', port: 81, nodePort: 0 }] }),
        svc('c'),
      ],
      pools,
    );
    // .1 is free and comes first: first-fit takes it even though .2 could be shared.
    expect(ipsOf(r, 'default/b')).toEqual(['10.0.0.1']);
    expect(ipsOf(r, 'default/c')).toEqual(['10.0.0.3']);
  });

  test('a service with no sharing key never lands on a shared address', () => {
    const r = run(
      [
        svc('a', { annotations: share('k') }),
        svc('b', { ports: [{ name: 'x', protocol: 'TCP', port: 81, nodePort: 0 }] }),
      ],
      pools,
    );
    expect(ipsOf(r, 'default/b')).toEqual(['10.0.0.2']);
  });
});

describe('allocate: pool choice by serviceAllocation', () => {
  test('priority: lower number first, unset after set, pools without serviceAllocation last', () => {
    const sa = (priority?: number) => ({
      namespaces: [],
      namespaceSelectors: [],
      serviceSelectors: [],
      ...(priority === undefined ? {} : { priority }),
    });
    const pools = [
      pool('a-plain', ['10.0.0.1/32']),
      pool('b-noprio', ['10.0.1.1/32'], { serviceAllocation: sa() }),
      pool('c-prio20', ['10.0.2.1/32'], { serviceAllocation: sa(20) }),
      pool('d-prio10', ['10.0.3.1/32'], { serviceAllocation: sa(10) }),
    ];
    const r = run([svc('s1'), svc('s2'), svc('s3'), svc('s4'), svc('s5')], pools);
    expect(['s1', 's2', 's3', 's4'].map((n) => r.assignments.get(`default/${n}`)?.pool)).toEqual([
      'd-prio10',
      'c-prio20',
      'b-noprio',
      'a-plain',
    ]);
    expect(r.reasons.get('default/s5')).toMatch(/exhausted/);
  });

  test('namespaces, namespaceSelectors and serviceSelectors restrict a pool', () => {
    const pools = [
      pool('team', ['10.1.0.1/32'], {
        serviceAllocation: {
          priority: 1,
          namespaces: ['team-a'],
          namespaceSelectors: [selector({ tier: 'gold' })],
          serviceSelectors: [],
        },
      }),
      pool('web', ['10.2.0.1/32'], {
        serviceAllocation: {
          priority: 2,
          namespaces: [],
          namespaceSelectors: [],
          serviceSelectors: [selector({ role: 'web' })],
        },
      }),
    ];
    const ns = { 'team-b': { tier: 'gold' }, other: {} };
    const r = run([svc('team-a/x'), svc('other/y', { labels: { role: 'web' } }), svc('other/z')], pools, ns);
    expect(r.assignments.get('team-a/x')?.pool).toBe('team');
    expect(r.assignments.get('other/y')?.pool).toBe('web');
    expect(r.reasons.get('other/z')).toBe('no auto-assigning address pool admits this Service');
    const r2 = run([svc('team-b/x')], pools, ns);
    expect(r2.assignments.get('team-b/x')?.pool).toBe('team');
    // A request into a restricted pool from outside is refused.
    const r3 = run([svc('other/w', { loadBalancerIP: '10.1.0.1' })], pools, ns);
    expect(r3.reasons.get('other/w')).toMatch(/serviceAllocation does not admit/);
  });
});

describe('allocate: existing addresses', () => {
  const pools = [pool('p', ['10.0.0.0/29'])];

  test('an address in status is kept across restarts, and is processed before new Services', () => {
    const r = run([svc('a'), svc('z', { statusIngress: [{ ip: '10.0.0.0', ipMode: 'VIP' }] })], pools);
    expect(ipsOf(r, 'default/z')).toEqual(['10.0.0.0']);
    expect(ipsOf(r, 'default/a')).toEqual(['10.0.0.1']);
  });

  test('the previous result is kept even when status was not written yet', () => {
    const first = run([svc('b')], pools);
    const second = run([svc('a'), svc('b')], pools, {}, first);
    expect(ipsOf(second, 'default/b')).toEqual(['10.0.0.0']);
    expect(ipsOf(second, 'default/a')).toEqual(['10.0.0.1']);
  });

  test('pool edits: kept while still inside a pool, moved when the pool no longer holds it', () => {
    const first = run([svc('a'), svc('b')], pools);
    const grown = run([svc('a'), svc('b')], [pool('p', ['10.0.0.0/28'])], {}, first);
    expect(grown.assignments).toEqual(first.assignments);
    const renamed = run([svc('a'), svc('b')], [pool('renamed', ['10.0.0.0/29'])], {}, first);
    expect(ipsOf(renamed, 'default/a')).toEqual(['10.0.0.0']);
    expect(renamed.assignments.get('default/a')?.pool).toBe('renamed');
    const shrunk = run([svc('a'), svc('b')], [pool('p', ['10.0.0.1-10.0.0.3'])], {}, first);
    expect(ipsOf(shrunk, 'default/b')).toEqual(['10.0.0.1']);
    expect(ipsOf(shrunk, 'default/a')).toEqual(['10.0.0.2']);
  });

  test('a changed request moves the Service; a status address outside every pool is dropped', () => {
    const first = run([svc('a')], pools);
    const moved = run([svc('a', { loadBalancerIP: '10.0.0.5' })], pools, {}, first);
    expect(ipsOf(moved, 'default/a')).toEqual(['10.0.0.5']);
    const stray = run([svc('a', { statusIngress: [{ ip: '192.0.2.1', ipMode: 'VIP' }] })], pools);
    expect(ipsOf(stray, 'default/a')).toEqual(['10.0.0.0']);
  });

  test('deterministic: input order does not matter', () => {
    const services = [
      svc('c'),
      svc('x/a'),
      svc('b', { statusIngress: [{ ip: '10.0.0.3', ipMode: 'VIP' }] }),
      svc('a'),
    ];
    const r1 = run(services, pools);
    const r2 = run([...services].reverse(), [...pools].reverse());
    expect([...r1.assignments.entries()].sort()).toEqual([...r2.assignments.entries()].sort());
  });
});

describe('allocate: dual stack', () => {
  const dual = pool('dual', ['10.0.0.0/30', '2001:db8::/126']);
  const v4only = pool('v4', ['10.1.0.0/30']);
  const ds = (
    policy: ServiceInfo['ipFamilyPolicy'],
    families: ServiceInfo['ipFamilies'] = ['IPv4', 'IPv6'],
  ) =>
    ({
      ipFamilyPolicy: policy,
      ipFamilies: families,
      clusterIPs: ['10.96.0.1', 'fd00::1'],
    }) satisfies Partial<ServiceInfo>;

  test('RequireDualStack gets one address per family from one pool, in ipFamilies order', () => {
    const r = run([svc('a', ds('RequireDualStack', ['IPv6', 'IPv4']))], [v4only, dual]);
    expect(r.assignments.get('default/a')).toEqual({ ips: ['2001:db8::', '10.0.0.0'], pool: 'dual' });
  });

  test('RequireDualStack without a dual pool fails with a family reason', () => {
    const r = run([svc('a', ds('RequireDualStack'))], [v4only]);
    expect(r.reasons.get('default/a')).toMatch(/wrong family/);
  });

  test('PreferDualStack falls back to the primary family', () => {
    const r = run([svc('a', ds('PreferDualStack'))], [v4only]);
    expect(r.assignments.get('default/a')).toEqual({ ips: ['10.1.0.0'], pool: 'v4' });
  });

  test('dual-stack request needs one address per family', () => {
    const r = run(
      [
        svc('a', {
          ...ds('RequireDualStack'),
          annotations: { [ANNOTATION_LOAD_BALANCER_IPS]: '2001:db8::2,10.0.0.2' },
        }),
      ],
      [dual],
    );
    expect(ipsOf(r, 'default/a')).toEqual(['10.0.0.2', '2001:db8::2']);
    const r2 = run([svc('b', { ...ds('RequireDualStack'), loadBalancerIP: '10.0.0.2' })], [dual]);
    expect(r2.reasons.get('default/b')).toMatch(/wrong family/);
    const r3 = run(
      [svc('c', { annotations: { [ANNOTATION_LOAD_BALANCER_IPS]: '10.0.0.1,10.0.0.2' } })],
      [dual],
    );
    expect(r3.reasons.get('default/c')).toMatch(/more than one address of the same family/);
  });

  // MetalLB's convergeBalancer: a PreferDualStack Service holding one address gets the missing family
  // from the same pool once that pool has one (AllocateFromPoolForAdditionalFamily), keeping the first.
  test('PreferDualStack holding one family gains the other when its pool grows one', () => {
    const first = run([svc('a', ds('PreferDualStack'))], [pool('p', ['10.1.0.0/30'])]);
    expect(ipsOf(first, 'default/a')).toEqual(['10.1.0.0']);
    const grown = [pool('p', ['10.1.0.0/30', '2001:db8::/126'])];
    const second = run([svc('a', ds('PreferDualStack'))], grown, {}, first);
    expect(second.assignments.get('default/a')).toEqual({ ips: ['10.1.0.0', '2001:db8::'], pool: 'p' });
    // The same from a status written earlier (restart), and the new address is not handed out twice.
    const fromStatus = run(
      [
        svc('b'),
        svc('a', { ...ds('PreferDualStack'), statusIngress: [{ ip: '10.1.0.1', ipMode: 'VIP' }] }),
        svc('c', { ipFamilies: ['IPv6'], clusterIPs: ['fd00::2'] }),
      ],
      grown,
    );
    expect(ipsOf(fromStatus, 'default/a')).toEqual(['10.1.0.1', '2001:db8::']);
    expect(ipsOf(fromStatus, 'default/c')).toEqual(['2001:db8::1']);
    // Another pool's addresses are not used for the second family, and a requested address is left as asked.
    const otherPool = run(
      [svc('a', ds('PreferDualStack'))],
      [pool('p', ['10.1.0.0/30']), pool('v6', ['2001:db8:1::/126'])],
      {},
      first,
    );
    expect(ipsOf(otherPool, 'default/a')).toEqual(['10.1.0.0']);
    const requested = run(
      [svc('a', { ...ds('PreferDualStack'), loadBalancerIP: '10.1.0.0' })],
      grown,
      {},
      first,
    );
    expect(ipsOf(requested, 'default/a')).toEqual(['10.1.0.0']);
  });

  test('IPv6-only Service skips IPv4-only pools', () => {
    const r = run([svc('a', { ipFamilies: ['IPv6'], clusterIPs: ['fd00::1'] })], [v4only, dual]);
    expect(r.assignments.get('default/a')).toEqual({ ips: ['2001:db8::'], pool: 'dual' });
  });
});

describe('allocate: invalid pools', () => {
  test('a reversed range names the pool and the field; other pools keep working', () => {
    const bad: AddressPool = {
      name: 'bad',
      addresses: [{ first: '10.0.0.9', last: '10.0.0.1', family: 'IPv4', text: '10.0.0.9-10.0.0.1' }],
      autoAssign: true,
      avoidBuggyIPs: false,
    };
    const r = run([svc('a')], [bad, pool('good', ['10.1.0.1/32'])]);
    expect(r.problems).toEqual([
      expect.objectContaining({
        kind: 'IPAddressPool',
        object: 'bad',
        field: 'spec.addresses[0]',
        message:
          'IPAddressPool bad: spec.addresses[0]: range "10.0.0.9-10.0.0.1" has its first address after its last',
      }),
    ]);
    expect(r.assignments.get('default/a')?.pool).toBe('good');
  });

  test('overlapping pools: the later name is left out with a message naming both', () => {
    const r = run([svc('a'), svc('b')], [pool('b-pool', ['10.0.0.0/24']), pool('a-pool', ['10.0.0.128/25'])]);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]?.message).toBe(
      'IPAddressPool b-pool: spec.addresses[0]: "10.0.0.0/24" overlaps "10.0.0.128/25" of IPAddressPool a-pool',
    );
    expect(ipsOf(r, 'default/a')).toEqual(['10.0.0.128']);
  });
});

// MetalLB reads metallb.io/* and, when absent, the deprecated metallb.universe.tf/* form (controller/service.go).
describe('allocate: MetalLB annotation names', () => {
  const pools = () => [
    pool('a', ['192.168.1.0/30']),
    pool('manual', ['192.168.9.0/30'], { autoAssign: false }),
  ];

  test.each(['metallb.io', 'metallb.universe.tf'])(
    '%s/address-pool and /loadBalancerIPs are honoured',
    (prefix) => {
      const r = run(
        [
          svc('by-pool', { annotations: { [`${prefix}/address-pool`]: 'manual' } }),
          svc('by-ip', { annotations: { [`${prefix}/loadBalancerIPs`]: '192.168.9.2' } }),
        ],
        pools(),
      );
      expect(ipsOf(r, 'default/by-pool')).toEqual(['192.168.9.0']);
      expect(ipsOf(r, 'default/by-ip')).toEqual(['192.168.9.2']);
    },
  );

  test.each(['metallb.io', 'metallb.universe.tf'])('%s/allow-shared-ip shares an address', (prefix) => {
    const share = { [`${prefix}/allow-shared-ip`]: 'k' };
    const r = run(
      [
        svc('x', { annotations: share }),
        svc('y', { annotations: share, ports: [{ name: 'dns', protocol: 'UDP', port: 53, nodePort: 0 }] }),
      ],
      pools(),
    );
    expect(ipsOf(r, 'default/x')).toEqual(['192.168.1.0']);
    expect(ipsOf(r, 'default/y')).toEqual(['192.168.1.0']);
  });

  test("portway.io's name wins over MetalLB's, and metallb.io over metallb.universe.tf", () => {
    const r = run(
      [
        svc('p', { annotations: { [ANNOTATION_ADDRESS_POOL]: 'a', 'metallb.io/address-pool': 'manual' } }),
        svc('m', {
          annotations: { 'metallb.io/address-pool': 'manual', 'metallb.universe.tf/address-pool': 'a' },
        }),
      ],
      pools(),
    );
    expect(r.assignments.get('default/p')?.pool).toBe('a');
    expect(r.assignments.get('default/m')?.pool).toBe('manual');
  });

  test('errors name the annotation as written', () => {
    const r = run([svc('bad', { annotations: { 'metallb.universe.tf/loadBalancerIPs': 'nope' } })], pools());
    expect(r.reasons.get('default/bad')).toBe(
      'annotation metallb.universe.tf/loadBalancerIPs: "nope" is not an IP address',
    );
  });
});

describe('allocate: when sharers can no longer share, the incumbent keeps the address (issue 9)', () => {
  const pools = [pool('p', ['10.0.0.1-10.0.0.3'])];
  const share = (key: string) => ({ [ANNOTATION_ALLOW_SHARED_IP]: key });
  const tcp = (port: number) => [{ name: `p${port}`, protocol: 'TCP' as const, port, nodePort: 0 }];
  /** Two Services sharing one address; `base` is applied to both (e.g. a traffic policy). */
  const sharers = (base: Partial<ServiceInfo> = {}): Record<'a' | 'b', ServiceInfo> => ({
    a: svc('a', { annotations: share('k'), ports: tcp(80), ...base }),
    b: svc('b', { annotations: share('k'), ports: tcp(443), ...base }),
  });
  // Each way MetalLB's checkSharing refuses: the sharing key, an overlapping port, the backend key
  // (externalTrafficPolicy, and for Local the selector).
  const breaks: Array<[string, Partial<ServiceInfo>, (s: ServiceInfo) => Partial<ServiceInfo>]> = [
    ['a different sharing key', {}, () => ({ annotations: share('other') })],
    ['no sharing key any more', {}, () => ({ annotations: {} })],
    ['a port the other one uses', {}, (s) => ({ ports: s.name === 'a' ? tcp(443) : tcp(80) })],
    ['externalTrafficPolicy Local', {}, () => ({ externalTrafficPolicy: 'Local' })],
    [
      'another selector under externalTrafficPolicy Local',
      { externalTrafficPolicy: 'Local', selector: { app: 'shared' } },
      () => ({ selector: { app: 'other' } }),
    ],
  ];

  describe.each(breaks)('%s', (_what, base, change) => {
    test.each([
      ['a', 'b'],
      ['b', 'a'],
    ] as const)('changed %s loses, unchanged %s keeps the address', (changed, unchanged) => {
      const before = sharers(base);
      const prev = run([before.a, before.b], pools);
      expect([ipsOf(prev, 'default/a'), ipsOf(prev, 'default/b')]).toEqual([['10.0.0.1'], ['10.0.0.1']]);
      // Status as the writer left it: both Services show the shared address.
      const withStatus = (s: ServiceInfo): ServiceInfo => ({
        ...s,
        statusIngress: [{ ip: '10.0.0.1', ipMode: 'VIP' }],
      });
      const after = { ...before, [changed]: { ...before[changed], ...change(before[changed]) } };
      const r = run([withStatus(after.a), withStatus(after.b)], pools, {}, prev);
      expect(ipsOf(r, `default/${unchanged}`)).toEqual(['10.0.0.1']);
      expect(ipsOf(r, `default/${changed}`)).toEqual(['10.0.0.2']);
      // A later computation from this one keeps both where they are.
      const again = run([withStatus(after.a), withStatus(after.b)], pools, {}, r);
      expect(ipsOf(again, `default/${unchanged}`)).toEqual(['10.0.0.1']);
      expect(ipsOf(again, `default/${changed}`)).toEqual(['10.0.0.2']);
    });
  });

  test.each([
    ['a', 'b'],
    ['b', 'a'],
  ] as const)(
    'a changed %s that requests the address is refused, naming the holder %s',
    (changed, unchanged) => {
      const requested = { loadBalancerIP: '10.0.0.1' };
      const before = {
        a: svc('a', { annotations: share('k'), ports: tcp(80), ...requested }),
        b: svc('b', { annotations: share('k'), ports: tcp(443), ...requested }),
      };
      const prev = run([before.a, before.b], pools);
      const after = { ...before, [changed]: { ...before[changed], annotations: share('other') } };
      const r = run([after.a, after.b], pools, {}, prev);
      expect(ipsOf(r, `default/${unchanged}`)).toEqual(['10.0.0.1']);
      expect(r.assignments.has(`default/${changed}`)).toBe(false);
      expect(r.reasons.get(`default/${changed}`)).toMatch(
        new RegExp(
          `address 10\\.0\\.0\\.1 is in use by default/${unchanged} with sharing key "k", not "other"`,
        ),
      );
    },
  );

  test('a holder known from the previous result wins over one known only from status', () => {
    // b holds 10.0.0.1 in the previous result; a arrives claiming it in status with a clashing port.
    const prev = run([svc('b', { annotations: share('k'), ports: tcp(80) })], pools);
    const a = svc('a', {
      annotations: share('k'),
      ports: tcp(80),
      statusIngress: [{ ip: '10.0.0.1', ipMode: 'VIP' }],
    });
    const r = run([a, svc('b', { annotations: share('k'), ports: tcp(80) })], pools, {}, prev);
    expect(ipsOf(r, 'default/b')).toEqual(['10.0.0.1']);
    expect(ipsOf(r, 'default/a')).toEqual(['10.0.0.2']);
  });
});
