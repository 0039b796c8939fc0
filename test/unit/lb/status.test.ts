import { allocate } from '../../../src/lb/allocator.js';
import { formatLbStatus, planIngressStatusPatches } from '../../../src/lb/status.js';
import type { AddressPool } from '../../../src/model/cluster-state.js';
import { pool, svc } from './fixtures.js';

const bad: AddressPool = {
  name: 'bad',
  addresses: [{ first: '10.9.0.9', last: '10.9.0.1', family: 'IPv4', text: '10.9.0.9-10.9.0.1' }],
  autoAssign: true,
  avoidBuggyIPs: false,
};
const services = [
  svc('web'),
  svc('shop/api'),
  svc('dns', { statusIngress: [{ ip: '10.0.0.9', ipMode: 'VIP' }], loadBalancerIP: '10.0.0.1' }),
  svc('internal', { type: 'ClusterIP' }),
];

describe('formatLbStatus', () => {
  test('an annotation value quoted in a reason cannot break the report into fake lines', () => {
    const hostile = svc('web', { annotations: { 'portway.io/loadBalancerIPs': '10.0.0.1\nshop/api  p  10.0.0.7  node-a' } });
    const report = formatLbStatus([hostile], allocate([hostile], [pool('p', ['10.0.0.0/31'])], {}));
    expect(report.split('\n').filter((l) => l.startsWith('default/web'))).toHaveLength(1);
    expect(report).not.toMatch(/^shop\/api/m);
    expect(report).toContain('\\u000ashop/api');
  });


  test('lists every portway Service with its address or reason, then pool problems', () => {
    const result = allocate(services, [pool('p', ['10.0.0.0/31']), bad], {});
    expect(formatLbStatus(services, result)).toBe(
      [
        'LoadBalancer Services: 3, with addresses: 2, without: 1',
        'SERVICE      POOL  ADDRESSES  ANNOUNCED BY  PROBLEM',
        'default/dns  p     10.0.0.1   -',
        'default/web  p     10.0.0.0   -',
        'shop/api     -     -          -             no available addresses: pools p are exhausted (or conflict with sharers)',
        '',
        'Address pool problems (these pools are not used):',
        '  IPAddressPool bad: spec.addresses[0]: range "10.9.0.9-10.9.0.1" has its first address after its last',
        '',
      ].join('\n'),
    );
  });

  test('shows the announcing node when layer2 decisions are given', () => {
    const result = allocate([svc('web')], [pool('p', ['10.0.0.0/31'])], {});
    const text = formatLbStatus([svc('web')], result, {
      l2Decisions: [
        { ip: '10.0.0.0', owner: 'node-b', reason: 'notOwner', eligible: ['node-b'], interfaces: [] },
      ],
    });
    expect(text).toContain('default/web  p     10.0.0.0   node-b');
  });
});

describe('planIngressStatusPatches', () => {
  test('patches only Services whose status differs; lost addresses are cleared', () => {
    const result = allocate(services, [pool('p', ['10.0.0.0/31'])], {});
    const withStatus = services.map((s) =>
      s.name === 'web' ? { ...s, statusIngress: [{ ip: '10.0.0.0', ipMode: 'VIP' as const }] } : s,
    );
    const stale = [
      ...withStatus,
      svc('gone', { statusIngress: [{ ip: '10.0.0.1', ipMode: 'VIP' }], loadBalancerIP: '10.0.0.1' }),
    ];
    expect(planIngressStatusPatches(stale, result)).toEqual([
      {
        namespace: 'default',
        name: 'dns',
        patch: { status: { loadBalancer: { ingress: [{ ip: '10.0.0.1' }] } } },
      },
      { namespace: 'default', name: 'gone', patch: { status: { loadBalancer: { ingress: [] } } } },
    ]);
  });
});
