import { describe, expect, it } from '@jest/globals';
import type { ConntrackEntry } from '../../../src/dataplane/interfaces.js';
import { planConntrackCleanup, planConntrackSweep } from '../../../src/sync/conntrack-cleanup.js';
import { endpoint, servicePort } from './fixtures.js';

const dns = (over: Parameters<typeof servicePort>[1] = {}) =>
  servicePort('kube-system/dns:dns', { endpoints: [endpoint('10.244.1.5'), endpoint('10.244.2.5')], ...over });

const filters = (d: ReturnType<typeof planConntrackCleanup>) => d.map((x) => ({ ...x.filter, reason: x.reason }));

describe('planConntrackCleanup', () => {
  it('does nothing on the first sync or when nothing changed', () => {
    expect(planConntrackCleanup(null, [dns()], 'IPv4')).toEqual([]);
    expect(planConntrackCleanup([dns()], [dns()], 'IPv4')).toEqual([]);
  });

  it('a UDP endpoint that goes away: entries to every service address and the node port DNATed to it', () => {
    const before = dns({ nodePort: 30053, externalIPs: ['192.0.2.10'], loadBalancerIngress: [{ ip: '192.0.2.20', ipMode: 'VIP' }] });
    const after = { ...before, endpoints: [endpoint('10.244.1.5')] };
    expect(filters(planConntrackCleanup([before], [after], 'IPv4'))).toEqual([
      { family: 'IPv4', protocol: 'udp', origDst: '10.96.0.10', origDstPort: 53, replySrc: '10.244.2.5', reason: 'endpointRemoved' },
      { family: 'IPv4', protocol: 'udp', origDst: '192.0.2.10', origDstPort: 53, replySrc: '10.244.2.5', reason: 'endpointRemoved' },
      { family: 'IPv4', protocol: 'udp', origDst: '192.0.2.20', origDstPort: 53, replySrc: '10.244.2.5', reason: 'endpointRemoved' },
      { family: 'IPv4', protocol: 'udp', origDstPort: 30053, replySrc: '10.244.2.5', reason: 'endpointRemoved' },
    ]);
  });

  it('an endpoint that stops serving counts as gone; a Proxy-mode LB address is not a service address', () => {
    const before = dns({ loadBalancerIngress: [{ ip: '192.0.2.20', ipMode: 'Proxy' }] });
    const after = { ...before, endpoints: [endpoint('10.244.1.5'), endpoint('10.244.2.5', { ready: false, serving: false, terminating: true })] };
    expect(filters(planConntrackCleanup([before], [after], 'IPv4'))).toEqual([
      { family: 'IPv4', protocol: 'udp', origDst: '10.96.0.10', origDstPort: 53, replySrc: '10.244.2.5', reason: 'endpointRemoved' },
    ]);
  });

  it('TCP services are left alone', () => {
    const before = dns({ protocol: 'TCP' });
    expect(planConntrackCleanup([before], [{ ...before, endpoints: [] }], 'IPv4')).toEqual([]);
  });

  it('a service going from no endpoints to some clears every entry to it (they were rejected)', () => {
    const before = dns({ endpoints: [], nodePort: 30053 });
    const after = dns({ nodePort: 30053 });
    expect(filters(planConntrackCleanup([before], [after], 'IPv4'))).toEqual([
      { family: 'IPv4', protocol: 'udp', origDst: '10.96.0.10', origDstPort: 53, reason: 'serviceNewlyActive' },
      { family: 'IPv4', protocol: 'udp', origDstPort: 30053, reason: 'serviceNewlyActive' },
    ]);
    // a new Service with endpoints is newly active too
    expect(planConntrackCleanup([], [after], 'IPv4').map((d) => d.reason)).toEqual(['serviceNewlyActive', 'serviceNewlyActive']);
  });

  it('a changed cluster IP, external IP or node port clears entries to the old ones', () => {
    const before = dns({ nodePort: 30053, externalIPs: ['192.0.2.10'] });
    const after = dns({ nodePort: 30054, externalIPs: ['192.0.2.11'], clusterIPs: ['10.96.0.99'] });
    expect(filters(planConntrackCleanup([before], [after], 'IPv4'))).toEqual([
      { family: 'IPv4', protocol: 'udp', origDst: '10.96.0.10', origDstPort: 53, reason: 'addressRemoved' },
      { family: 'IPv4', protocol: 'udp', origDst: '192.0.2.10', origDstPort: 53, reason: 'addressRemoved' },
      { family: 'IPv4', protocol: 'udp', origDstPort: 30053, reason: 'nodePortChanged' },
    ]);
  });

  it('a removed UDP service port clears entries to its addresses and node port', () => {
    const before = dns({ nodePort: 30053 });
    expect(filters(planConntrackCleanup([before], [], 'IPv4'))).toEqual([
      { family: 'IPv4', protocol: 'udp', origDst: '10.96.0.10', origDstPort: 53, reason: 'servicePortRemoved' },
      { family: 'IPv4', protocol: 'udp', origDstPort: 30053, reason: 'servicePortRemoved' },
    ]);
  });

  it('only addresses and endpoints of the family being synced', () => {
    const before = dns({
      clusterIPs: ['10.96.0.10', 'fd00::10'],
      endpoints: [endpoint('10.244.1.5'), endpoint('fd00:244::5'), endpoint('fd00:244::6')],
    });
    const after = { ...before, endpoints: [endpoint('10.244.1.5'), endpoint('fd00:244::5')] };
    expect(planConntrackCleanup([before], [after], 'IPv4')).toEqual([]);
    expect(filters(planConntrackCleanup([before], [after], 'IPv6'))).toEqual([
      { family: 'IPv6', protocol: 'udp', origDst: 'fd00::10', origDstPort: 53, replySrc: 'fd00:244::6', reason: 'endpointRemoved' },
    ]);
  });

  it('an endpoint that moved to another port (same IP) counts as removed: entries DNATed to the old port', () => {
    const before = dns({ nodePort: 30053 });
    const after = dns({ nodePort: 30053, endpoints: [endpoint('10.244.1.5', { port: 5353 }), endpoint('10.244.2.5')] });
    expect(filters(planConntrackCleanup([before], [after], 'IPv4'))).toEqual([
      { family: 'IPv4', protocol: 'udp', origDst: '10.96.0.10', origDstPort: 53, replySrc: '10.244.1.5', replySrcPort: 53, reason: 'endpointRemoved' },
      { family: 'IPv4', protocol: 'udp', origDstPort: 30053, replySrc: '10.244.1.5', replySrcPort: 53, reason: 'endpointRemoved' },
    ]);
  });

  it('an endpoint going from ready to terminating but still serving keeps its flows', () => {
    const before = dns();
    const after = dns({ endpoints: [endpoint('10.244.1.5'), endpoint('10.244.2.5', { ready: false, serving: true, terminating: true })] });
    expect(planConntrackCleanup([before], [after], 'IPv4')).toEqual([]);
  });
});

describe('planConntrackSweep (the listed table, on full syncs)', () => {
  const entry = (origDst: string, origDstPort: number, replySrc: string, over: Partial<ConntrackEntry> = {}): ConntrackEntry => ({
    family: origDst.includes(':') ? 'IPv6' : 'IPv4',
    protocol: 'udp',
    origDst,
    origDstPort,
    replySrc,
    replySrcPort: 53,
    ...over,
  });

  it('deletes entries to a service address:port or node port whose reply source is not a serving endpoint', () => {
    const sp = dns({
      nodePort: 30053,
      externalIPs: ['192.0.2.10'],
      loadBalancerIngress: [{ ip: '192.0.2.20', ipMode: 'VIP' }, { ip: '192.0.2.30', ipMode: 'Proxy' }],
      endpoints: [endpoint('10.244.1.5'), endpoint('10.244.2.5', { ready: false, serving: true, terminating: true }), endpoint('10.244.3.5', { ready: false, serving: false, terminating: true })],
    });
    const entries = [
      entry('10.96.0.10', 53, '10.244.1.5'), // live endpoint: kept
      entry('10.96.0.10', 53, '10.244.2.5'), // terminating but serving: kept
      entry('10.96.0.10', 53, '10.244.3.5'), // no longer serving: deleted
      entry('10.96.0.10', 53, '10.244.3.5', { replySrcPort: 99 }), // same filter, once
      entry('10.96.0.10', 53, '10.96.0.10'), // not DNATed (made while the Service had no endpoints): deleted
      entry('10.96.0.10', 54, '10.244.9.9'), // another port: not this Service
      entry('192.0.2.10', 53, '10.244.9.9'), // external IP
      entry('192.0.2.20', 53, '10.244.9.9'), // load-balancer IP
      entry('192.0.2.30', 53, '10.244.9.9'), // Proxy-mode LB address: no rules, not ours
      entry('192.168.1.2', 30053, '10.244.9.9'), // node port, any node address
      entry('192.168.1.2', 30053, '10.244.1.5'), // node port to a live endpoint: kept
      entry('10.96.0.10', 53, '10.244.9.9', { protocol: 'tcp' }), // TCP: left alone
    ];
    expect(filters(planConntrackSweep([sp], entries, 'IPv4'))).toEqual([
      { family: 'IPv4', protocol: 'udp', origDst: '10.96.0.10', origDstPort: 53, replySrc: '10.244.3.5', reason: 'staleEntry' },
      { family: 'IPv4', protocol: 'udp', origDst: '10.96.0.10', origDstPort: 53, replySrc: '10.96.0.10', reason: 'staleEntry' },
      { family: 'IPv4', protocol: 'udp', origDst: '192.0.2.10', origDstPort: 53, replySrc: '10.244.9.9', reason: 'staleEntry' },
      { family: 'IPv4', protocol: 'udp', origDst: '192.0.2.20', origDstPort: 53, replySrc: '10.244.9.9', reason: 'staleEntry' },
      { family: 'IPv4', protocol: 'udp', origDstPort: 30053, replySrc: '10.244.9.9', reason: 'staleEntry' },
    ]);
  });

  it('an address:port two UDP Services share (the same external IP) keeps the flows of both', () => {
    // The API does not stop two Services from listing one external IP with one port: KUBE-SERVICES
    // holds a rule for each (the first matches), so either Service's endpoints may be the live ones.
    const a = dns({ externalIPs: ['192.0.2.10'], endpoints: [endpoint('10.244.1.5')] });
    const b = servicePort('kube-system/dns2:dns', { clusterIPs: ['10.96.0.11'], externalIPs: ['192.0.2.10'], endpoints: [endpoint('10.244.7.7')] });
    const entries = [
      entry('192.0.2.10', 53, '10.244.1.5'), // a's endpoint: kept
      entry('192.0.2.10', 53, '10.244.7.7'), // b's endpoint: kept
      entry('192.0.2.10', 53, '10.244.9.9'), // neither: deleted
    ];
    for (const order of [[a, b], [b, a]]) {
      expect(filters(planConntrackSweep(order, entries, 'IPv4'))).toEqual([
        { family: 'IPv4', protocol: 'udp', origDst: '192.0.2.10', origDstPort: 53, replySrc: '10.244.9.9', reason: 'staleEntry' },
      ]);
    }
  });

  it('a flow to another Service whose port equals a node port is that Service’s, not the node port’s', () => {
    // KUBE-SERVICES matches service addresses before its last rule jumps to KUBE-NODEPORTS: an entry
    // to 10.96.0.20:30053 was DNATed by the game Service, whatever port numbers node ports use.
    const np = dns({ nodePort: 30053 });
    const game = servicePort('games/udp:rtp', { clusterIPs: ['10.96.0.20'], port: 30053, endpoints: [endpoint('10.244.5.5')] });
    const entries = [
      entry('10.96.0.20', 30053, '10.244.5.5'), // game's live flow: kept
      entry('192.168.1.2', 30053, '10.244.9.9'), // the node port, to no endpoint: deleted
    ];
    expect(filters(planConntrackSweep([np, game], entries, 'IPv4'))).toEqual([
      { family: 'IPv4', protocol: 'udp', origDstPort: 30053, replySrc: '10.244.9.9', reason: 'staleEntry' },
    ]);
  });

  it('leaves Services without serving endpoints (nowhere better to go), TCP Services and other families', () => {
    const none = dns({ endpoints: [endpoint('10.244.1.5', { ready: false, serving: false })] });
    const tcp = dns({ protocol: 'TCP', clusterIPs: ['10.96.0.11'] });
    const dual = dns({ clusterIPs: ['10.96.0.12', 'fd00::12'], endpoints: [endpoint('fd00:244::5')] });
    const entries = [entry('10.96.0.10', 53, '10.244.9.9'), entry('10.96.0.11', 53, '10.244.9.9'), entry('10.96.0.12', 53, '10.244.9.9')];
    expect(planConntrackSweep([none, tcp, dual], entries, 'IPv4')).toEqual([]);
    expect(filters(planConntrackSweep([dual], [entry('fd00::12', 53, 'fd00:244::6')], 'IPv6'))).toEqual([
      { family: 'IPv6', protocol: 'udp', origDst: 'fd00::12', origDstPort: 53, replySrc: 'fd00:244::6', reason: 'staleEntry' },
    ]);
  });
});
