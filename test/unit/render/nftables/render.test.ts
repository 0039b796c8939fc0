// nftables mode's outcomes as kube-proxy decides them (which endpoints, drop or reject, masquerade),
// read off the structured ruleset: the dispatch elements, the per-service chains and interval maps.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import type { ServicePort } from '../../../../src/model/cluster-state.js';
import {
  detectorMatch,
  NUMGEN_MODULUS,
  numgenSlice,
  renderNftables,
  servicePortNameBase,
  type NftRuleSet,
} from '../../../../src/render/nftables/index.js';
import { GOLDEN_DIR, goldenCases, NFTABLES_FILES } from '../../../golden/golden-cases.js';
import { nftOptions } from '../../../fixtures/nftables-options.js';
import { ep, stateOf, svcPort } from '../fixtures.js';

const web = (extra: Partial<ServicePort> = {}): ServicePort =>
  svcPort('ns1', 'web', 'http', {
    clusterIPs: ['10.96.0.10'],
    endpoints: [
      ep('10.244.1.2', 8080, { nodeName: 'node-a' }),
      ep('10.244.2.3', 8080, { nodeName: 'node-b' }),
    ],
    ...extra,
  });
const BASE = servicePortNameBase({ namespace: 'ns1', serviceName: 'web', portName: 'http', protocol: 'TCP' });

const elements = (rs: NftRuleSet, name: string): string[] =>
  (rs.sets.find((s) => s.name === name)?.elements ?? []).map((e) =>
    e.value === undefined ? e.key : `${e.key} : ${e.value}`,
  );
const rules = (rs: NftRuleSet, name: string): string[] | undefined =>
  rs.chains.find((c) => c.name === name)?.rules;

describe('names', () => {
  it('are pinned: a changed name leaves stale chains on upgraded nodes', () => {
    // base32(sha256("ns1/web/tcp/http"))[:8], computed outside portway.
    expect(BASE).toBe('DK7ABAZC-ns1/web/tcp/http');
    expect(servicePortNameBase({ namespace: 'ns1', serviceName: 'web', portName: '', protocol: 'UDP' })).toBe(
      'NCKCD3MC-ns1/web/udp/',
    );
  });
});

describe('numgen slices', () => {
  it.each([1, 2, 3, 7, 1000])('%i endpoints share 0..2^20-1 without gap or overlap, evenly', (n) => {
    let next = 0;
    for (let i = 0; i < n; i++) {
      const [start, end = start] = numgenSlice(i, n).split('-').map(Number);
      expect(start).toBe(next);
      expect(end! - start! + 1).toBeGreaterThanOrEqual(Math.floor(NUMGEN_MODULUS / n));
      expect(end! - start! + 1).toBeLessThanOrEqual(Math.ceil(NUMGEN_MODULUS / n));
      next = end! + 1;
    }
    expect(next).toBe(NUMGEN_MODULUS);
  });
});

describe('renderNftables', () => {
  it('sends a cluster IP to its service chain, which masquerades off-cluster sources and picks an endpoint from the interval map', () => {
    const rs = renderNftables(stateOf(web()), nftOptions());
    expect(rs.table).toBe('portway');
    expect(rs.nftFamily).toBe('ip');
    expect(elements(rs, 'service-ips')).toEqual([`10.96.0.10 . tcp . 80 : goto svc-${BASE}`]);
    expect(rules(rs, `svc-${BASE}`)).toEqual([
      'ip daddr 10.96.0.10 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade',
      `meta l4proto tcp dnat ip to numgen random mod 1048576 map @eps-${BASE}`,
    ]);
    expect(elements(rs, `eps-${BASE}`)).toEqual([
      '0-524287 : 10.244.1.2 . 8080',
      '524288-1048575 : 10.244.2.3 . 8080',
    ]);
    expect(elements(rs, 'hairpin-endpoints')).toEqual(['10.244.1.2 . 10.244.1.2', '10.244.2.3 . 10.244.2.3']);
    expect(elements(rs, 'no-endpoint-services')).toEqual([]);
  });

  it('rejects a Service without endpoints and drops external traffic of a Local one without local endpoints', () => {
    const none = svcPort('ns1', 'none', '', { clusterIPs: ['10.96.0.20'] });
    const local = web({
      type: 'NodePort',
      nodePort: 30080,
      externalIPs: ['192.0.2.9'],
      externalTrafficPolicy: 'Local',
      endpoints: [ep('10.244.2.3', 8080, { nodeName: 'node-b' })],
    });
    const rs = renderNftables(stateOf(none, local), nftOptions());
    expect(elements(rs, 'no-endpoint-services')).toEqual([
      '10.96.0.20 . tcp . 80 : goto reject-chain',
      '192.0.2.9 . tcp . 80 : drop',
    ]);
    expect(elements(rs, 'no-endpoint-nodeports')).toEqual(['tcp . 30080 : drop']);
    // Pods and the node itself still reach it (Cluster policy), as kube-proxy's EXT chain does.
    expect(rules(rs, `ext-${BASE}`)).toEqual([
      `ip saddr 10.244.0.0/16 goto svc-${BASE}`,
      'fib saddr type local jump mark-for-masquerade',
      `fib saddr type local goto svc-${BASE}`,
    ]);
    expect(rules(rs, `svl-${BASE}`)).toBeUndefined();
  });

  it('internalTrafficPolicy Local sends the cluster IP to the local endpoints only', () => {
    const rs = renderNftables(stateOf(web({ internalTrafficPolicy: 'Local' })), nftOptions());
    expect(elements(rs, 'service-ips')).toEqual([`10.96.0.10 . tcp . 80 : goto svl-${BASE}`]);
    expect(elements(rs, `epl-${BASE}`)).toEqual(['0-1048575 : 10.244.1.2 . 8080']);
    expect(rules(rs, `svc-${BASE}`)).toBeUndefined();
  });

  it('falls back to serving terminating endpoints when none is ready', () => {
    const rs = renderNftables(
      stateOf(
        web({
          endpoints: [
            ep('10.244.1.2', 8080, { ready: false, serving: true, terminating: true }),
            ep('10.244.2.3', 8080, { ready: false, serving: false, terminating: true }),
          ],
        }),
      ),
      nftOptions(),
    );
    expect(elements(rs, `eps-${BASE}`)).toEqual(['0-1048575 : 10.244.1.2 . 8080']);
  });

  it('node ports match every local address but loopback, or the nodePortAddresses set', () => {
    const svc = web({ type: 'NodePort', nodePort: 30080 });
    const all = renderNftables(stateOf(svc), nftOptions());
    expect(rules(all, 'services')?.[1]).toBe(
      'fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports',
    );
    expect(elements(all, 'service-nodeports')).toEqual([`tcp . 30080 : goto ext-${BASE}`]);
    expect(rules(all, `ext-${BASE}`)).toEqual(['jump mark-for-masquerade', `goto svc-${BASE}`]);
    const some = renderNftables(stateOf(svc), nftOptions({ nodePortAddresses: ['192.168.0.0/24'] }));
    expect(rules(some, 'services')?.[1]).toBe(
      'ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports',
    );
    expect(elements(some, 'nodeport-ips')).toEqual(['192.168.0.2']);
  });

  it('limits LB traffic to loadBalancerSourceRanges (and the VIP itself when a range holds the node)', () => {
    const svc = web({
      type: 'LoadBalancer',
      nodePort: 30080,
      loadBalancerIngress: [{ ip: '192.0.2.50', ipMode: 'VIP' }],
      loadBalancerSourceRanges: ['203.0.113.0/24', '192.168.0.0/16'],
    });
    const rs = renderNftables(stateOf(svc), nftOptions());
    expect(elements(rs, 'firewall-ips')).toEqual([`192.0.2.50 . tcp . 80 : goto fw-${BASE}`]);
    expect(rules(rs, `fw-${BASE}`)).toEqual([`ip saddr != @src-${BASE} drop`]);
    expect(elements(rs, `src-${BASE}`)).toEqual(['203.0.113.0/24', '192.168.0.0/16', '192.0.2.50']);
  });

  it('ClientIP affinity keeps a chain and a client set per endpoint', () => {
    const rs = renderNftables(
      stateOf(web({ sessionAffinity: { type: 'ClientIP', timeoutSeconds: 600 } })),
      nftOptions(),
    );
    const ep1 = `${BASE}__10.244.1.2/8080`;
    expect(rules(rs, `svc-${BASE}`)).toEqual([
      'ip daddr 10.96.0.10 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade',
      `ip saddr @aff-${ep1} goto ep-${ep1}`,
      `ip saddr @aff-${BASE}__10.244.2.3/8080 goto ep-${BASE}__10.244.2.3/8080`,
      `numgen random mod 1048576 vmap @eps-${BASE}`,
    ]);
    expect(rules(rs, `ep-${ep1}`)).toEqual([
      `update @aff-${ep1} { ip saddr }`,
      'meta l4proto tcp dnat ip to 10.244.1.2:8080',
    ]);
    expect(rs.sets.find((s) => s.name === `aff-${ep1}`)?.timeoutSeconds).toBe(600);
  });

  it('masqueradeAll marks every cluster-IP packet; no detector marks none', () => {
    const all = renderNftables(stateOf(web()), nftOptions({ masqueradeAll: true }));
    expect(rules(all, `svc-${BASE}`)?.[0]).toBe('ip daddr 10.96.0.10 tcp dport 80 jump mark-for-masquerade');
    const none = renderNftables(stateOf(web()), nftOptions({ clusterCIDRs: [] }));
    expect(rules(none, `svc-${BASE}`)).toEqual([
      `meta l4proto tcp dnat ip to numgen random mod 1048576 map @eps-${BASE}`,
    ]);
  });

  it('IPv6 uses ip6 words and the family’s addresses only', () => {
    const dual = web({
      clusterIPs: ['10.96.0.10', 'fd00:96::10'],
      ipFamilies: ['IPv4', 'IPv6'],
      endpoints: [ep('10.244.1.2', 8080), ep('fd00:244:1::2', 8080)],
    });
    const rs = renderNftables(
      stateOf(dual),
      nftOptions({ family: 'IPv6', nodeIPs: ['fd00::2'], clusterCIDRs: ['fd00:244::/56'] }),
    );
    expect(rs.nftFamily).toBe('ip6');
    expect(elements(rs, 'service-ips')).toEqual([`fd00:96::10 . tcp . 80 : goto svc-${BASE}`]);
    expect(elements(rs, `eps-${BASE}`)).toEqual(['0-1048575 : fd00:244:1::2 . 8080']);
    expect(rules(rs, 'services')?.[1]).toContain('ip6 daddr != ::1');
  });

  it('refuses more endpoints than numgen slices, naming the service port', () => {
    const many = Array.from({ length: NUMGEN_MODULUS + 1 }, (_, i) =>
      ep(`10.${16 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, 8080),
    );
    expect(() => renderNftables(stateOf(web({ endpoints: many })), nftOptions())).toThrow(
      `servicePort ns1/web:http/tcp: endpoints: ${NUMGEN_MODULUS + 1} endpoints: nftables mode shares`,
    );
  });

  it('turns the local-traffic detector into nft matches', () => {
    expect(detectorMatch(['!', '-s', '10.244.0.0/16'], 'ip')).toBe('ip saddr != 10.244.0.0/16');
    expect(detectorMatch(['-i', 'veth+'], 'ip6')).toBe('iifname "veth*"');
    expect(detectorMatch(['!', '-i', 'cbr0'], 'ip')).toBe('iifname != "cbr0"');
    expect(detectorMatch(null, 'ip')).toBeNull();
  });
});

describe('the golden rulesets', () => {
  it('bind no anonymous set or map: every lookup names a set (anonymous ones are quadratic to load)', () => {
    const anonymous: string[] = [];
    for (const name of goldenCases()) {
      for (const { file } of NFTABLES_FILES) {
        for (const line of readFileSync(join(GOLDEN_DIR, name, file), 'utf8').split('\n')) {
          // `update @set { ip saddr }` names the set; its braces hold the key expression.
          if (
            line.startsWith('add rule ') &&
            line.replace(/update @\S+ \{ ip6? saddr \}/, '').includes('{')
          ) {
            anonymous.push(`${name}/${file}: ${line}`);
          }
        }
      }
    }
    expect(anonymous).toEqual([]);
  });
});
