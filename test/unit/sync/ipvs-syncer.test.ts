// The ipvs syncer against the validating fakes (IPVS table, ipsets, links, iptables): what a first
// sync writes, that a partial sync emits only the delta (and no iptables commit), that a full sync
// repairs drift, graceful termination with a fake clock, and that rebuilding a set never shows it empty.
import { describe, expect, it } from '@jest/globals';
import { parseConfig } from '../../../src/config/config.js';
import { createFakeDataplane, type FakeDataplane } from '../../../src/dataplane/index.js';
import { RecordingLogger } from '../../../src/observe/logger.js';
import { ipvsRenderOptionsFromConfig, renderIpvs } from '../../../src/render/ipvs/index.js';
import { ManualClock } from '../../../src/sync/clock.js';
import { SyncFailedError } from '../../../src/sync/iptables-syncer.js';
import { IpvsSyncer } from '../../../src/sync/ipvs-syncer.js';
import { MemorySysctlJournal } from '../../../src/sync/sysctls.js';
import { service, stateOf } from './fixtures.js';

const NODE_IP = '192.168.50.2';
const CONFIG = parseConfig(
  { mode: 'ipvs', nodeName: 'node-a', nodeIPs: [NODE_IP], clusterCIDRs: ['10.244.0.0/16'] },
  'test',
);
const WEB = { protocol: 'TCP', address: '10.96.0.10', port: 80 } as const;

function setup(
  opts: { gracefulTerminationTimeoutMs?: number; excludeCIDRs?: string[]; config?: typeof CONFIG } = {},
): {
  dp: FakeDataplane;
  clock: ManualClock;
  syncer: IpvsSyncer;
  leftoversRemoved: number[];
} {
  const dp = createFakeDataplane({
    sysctls: {
      'net/ipv4/ip_forward': '0',
      'net/ipv4/vs/conntrack': '0',
      'net/ipv4/vs/conn_reuse_mode': '1',
      'net/ipv4/vs/expire_nodest_conn': '0',
      'net/ipv4/vs/expire_quiescent_template': '0',
    },
  });
  const clock = new ManualClock(1_000);
  const leftoversRemoved: number[] = [];
  const syncer = new IpvsSyncer({
    families: [{ family: 'IPv4', iptables: dp.iptables.IPv4!, conntrack: dp.conntrack }],
    executors: { ipvs: dp.ipvs, ipset: dp.ipset, links: dp.ip },
    render: (state, family) =>
      renderIpvs(state, ipvsRenderOptionsFromConfig(opts.config ?? CONFIG, family, [NODE_IP])),
    clock,
    logger: new RecordingLogger(),
    sysctl: dp.sysctl,
    sysctlJournal: new MemorySysctlJournal(),
    gracefulTerminationTimeoutMs: opts.gracefulTerminationTimeoutMs ?? 900_000,
    ...(opts.excludeCIDRs ? { excludeCIDRs: opts.excludeCIDRs } : {}),
    removeOtherModeLeftovers: async () => {
      leftoversRemoved.push(clock.now());
    },
  });
  return { dp, clock, syncer, leftoversRemoved };
}

const restoresOf = (dp: FakeDataplane): string[] =>
  dp.ipvs.calls.flatMap((c) => (c.op === 'restore' ? [c.payload] : []));
const ipsetRestoresOf = (dp: FakeDataplane): string[] =>
  dp.ipset.calls.flatMap((c) => (c.op === 'restore' ? [c.payload] : []));

describe('IpvsSyncer', () => {
  it('first sync: virtual servers, sets, the address on kube-ipvs0, sysctls, the constant iptables rules — then the other mode goes', async () => {
    const { dp, syncer, leftoversRemoved } = setup();
    syncer.setState(stateOf(service('web', '10.96.0.10', ['10.244.1.11', '10.244.1.12'])));
    const result = await syncer.sync();
    expect(result.ipvs?.full).toBe(true);
    expect(dp.ipvs.dump()).toEqual({ 'TCP 10.96.0.10:80': ['10.244.1.11:8080 w1', '10.244.1.12:8080 w1'] });
    expect(dp.ipset.entriesOf('KUBE-CLUSTER-IP')).toEqual(['10.96.0.10,tcp:80']);
    expect(dp.ipset.entriesOf('KUBE-LOOP-BACK')).toEqual([
      '10.244.1.11,tcp:8080,10.244.1.11',
      '10.244.1.12,tcp:8080,10.244.1.12',
    ]);
    expect((await dp.ip.listAddresses('kube-ipvs0')).map((a) => `${a.address}/${a.prefixLength}`)).toEqual([
      '10.96.0.10/32',
    ]);
    expect(await dp.sysctl.get('net/ipv4/vs/conntrack')).toBe('1');
    expect(await dp.iptables.IPv4!.save('nat')).toContain('-A KUBE-SERVICES');
    expect(result.ipvs?.commands).toBe(3);
    expect(leftoversRemoved).toHaveLength(1);
    await syncer.sync();
    expect(leftoversRemoved).toHaveLength(1); // once
  });

  it('partial sync: one endpoint added costs one -a line, one set entry, no address change and no iptables commit', async () => {
    const { dp, syncer } = setup();
    syncer.setState(
      stateOf(service('web', '10.96.0.10', ['10.244.1.11']), service('db', '10.96.0.20', ['10.244.1.21'])),
    );
    await syncer.sync();
    const ipvsBefore = restoresOf(dp).length;
    const ipsetBefore = ipsetRestoresOf(dp).length;
    const iptablesBefore = dp.iptables.IPv4!.calls.filter((c) => c.op === 'restore').length;
    const batchesBefore = dp.ip.addressBatches;

    syncer.setState(
      stateOf(
        service('web', '10.96.0.10', ['10.244.1.11', '10.244.1.12']),
        service('db', '10.96.0.20', ['10.244.1.21']),
      ),
    );
    const result = await syncer.sync();
    expect(result.ipvs?.full).toBe(false);
    expect(restoresOf(dp).slice(ipvsBefore)).toEqual(['-a -t 10.96.0.10:80 -r 10.244.1.12:8080 -m -w 1\n']);
    expect(ipsetRestoresOf(dp).slice(ipsetBefore)).toEqual([
      'add KUBE-LOOP-BACK 10.244.1.12,tcp:8080,10.244.1.12\n',
    ]);
    expect(dp.ip.addressBatches).toBe(batchesBefore);
    expect(dp.iptables.IPv4!.calls.filter((c) => c.op === 'restore').length).toBe(iptablesBefore);
    expect(result.ipvs?.commands).toBe(2);

    // Nothing changed: nothing is run.
    const again = await syncer.sync();
    expect(again.ipvs?.commands).toBe(0);
    expect(restoresOf(dp).length).toBe(ipvsBefore + 1);
  });

  it('a new Service: its virtual server before its real servers, its address bound in the same sync; a removed one goes at once', async () => {
    const { dp, syncer } = setup();
    syncer.setState(stateOf(service('web', '10.96.0.10', ['10.244.1.11'])));
    await syncer.sync();
    const before = restoresOf(dp).length;
    syncer.setState(
      stateOf(service('web', '10.96.0.10', ['10.244.1.11']), service('db', '10.96.0.20', ['10.244.1.21'])),
    );
    await syncer.sync();
    expect(restoresOf(dp).slice(before)).toEqual([
      '-A -t 10.96.0.20:80 -s rr\n-a -t 10.96.0.20:80 -r 10.244.1.21:8080 -m -w 1\n',
    ]);
    expect((await dp.ip.listAddresses('kube-ipvs0')).map((a) => a.address).sort()).toEqual([
      '10.96.0.10',
      '10.96.0.20',
    ]);
    syncer.setState(stateOf(service('web', '10.96.0.10', ['10.244.1.11'])));
    await syncer.sync();
    expect(restoresOf(dp).at(-1)).toBe('-D -t 10.96.0.20:80\n');
    expect(dp.ipvs.dump()).toEqual({ 'TCP 10.96.0.10:80': ['10.244.1.11:8080 w1'] });
    expect((await dp.ip.listAddresses('kube-ipvs0')).map((a) => a.address)).toEqual(['10.96.0.10']);
  });

  it('a full sync reads the kernel back and repairs drift in IPVS, the sets and kube-ipvs0; excluded virtual servers stay', async () => {
    const { dp, syncer } = setup({ excludeCIDRs: ['10.200.0.0/16'] });
    syncer.setState(stateOf(service('web', '10.96.0.10', ['10.244.1.11', '10.244.1.12'])));
    await syncer.sync();
    const desiredIpvs = dp.ipvs.dump();
    // Behind portway's back: a real server deleted, a weight changed, foreign virtual servers, a set
    // entry gone and one added, the address unbound and another bound.
    await dp.ipvs.restore(
      [
        '-d -t 10.96.0.10:80 -r 10.244.1.11:8080',
        '-e -t 10.96.0.10:80 -r 10.244.1.12:8080 -m -w 5',
        '-A -t 10.96.0.99:80 -s rr',
        '-A -t 10.200.0.1:80 -s rr',
      ].join('\n'),
    );
    await dp.ipset.restore('del KUBE-CLUSTER-IP 10.96.0.10,tcp:80\nadd KUBE-CLUSTER-IP 10.96.0.99,tcp:80\n');
    await dp.ip.applyAddressChanges('kube-ipvs0', { add: ['10.96.0.99'], del: ['10.96.0.10'] });

    const partial = await syncer.sync();
    expect(partial.ipvs?.commands).toBe(0); // a partial sync trusts what it applied

    const full = await syncer.sync({ full: true });
    expect(full.ipvs?.drift).toEqual(
      expect.arrayContaining([
        'IPv4: real server 10.244.1.11:8080 of TCP 10.96.0.10:80 missing',
        'IPv4: real server 10.244.1.12:8080 of TCP 10.96.0.10:80 has weight 5, not 1',
        "IPv4: virtual server TCP 10.96.0.99:80 not portway's",
        "IPv4: ipset KUBE-CLUSTER-IP: 1 entries missing, 1 not portway's",
        'IPv4: address 10.96.0.10 not bound to the dummy link',
        "IPv4: address 10.96.0.99 on the dummy link not portway's",
      ]),
    );
    expect(full.ipvs?.drift).toHaveLength(6);
    expect(dp.ipvs.dump()).toEqual({ ...desiredIpvs, 'TCP 10.200.0.1:80': [] });
    expect(dp.ipset.entriesOf('KUBE-CLUSTER-IP')).toEqual(['10.96.0.10,tcp:80']);
    expect((await dp.ip.listAddresses('kube-ipvs0')).map((a) => a.address)).toEqual(['10.96.0.10']);
    expect(syncer.stats.driftDetected).toBe(6);
    // Repaired: the next full sync finds nothing.
    expect((await syncer.sync({ full: true })).ipvs?.drift).toEqual([]);
  });

  it('graceful termination (TCP): weight 0 while connections last, deleted once there are none', async () => {
    const { dp, clock, syncer } = setup();
    syncer.setState(stateOf(service('web', '10.96.0.10', ['10.244.1.11', '10.244.1.12'])));
    await syncer.sync();
    dp.ipvs.setConnections(WEB, '10.244.1.12:8080', 1, 2);

    syncer.setState(stateOf(service('web', '10.96.0.10', ['10.244.1.11'])));
    let r = await syncer.sync();
    expect(dp.ipvs.dump()).toEqual({ 'TCP 10.96.0.10:80': ['10.244.1.11:8080 w1', '10.244.1.12:8080 w0'] });
    expect(r.ipvs?.draining).toBe(1);

    await clock.advance(60_000);
    dp.ipvs.setConnections(WEB, '10.244.1.12:8080', 0, 1); // TIME_WAIT still counts
    r = await syncer.sync();
    expect(dp.ipvs.dump()['TCP 10.96.0.10:80']).toEqual(['10.244.1.11:8080 w1', '10.244.1.12:8080 w0']);
    expect(r.ipvs?.commands).toBe(0);

    await clock.advance(60_000);
    dp.ipvs.setConnections(WEB, '10.244.1.12:8080', 0, 0);
    r = await syncer.sync();
    expect(dp.ipvs.dump()['TCP 10.96.0.10:80']).toEqual(['10.244.1.11:8080 w1']);
    expect(r.ipvs).toMatchObject({ draining: 0, drained: 1 });
    expect(syncer.drainingRealServers().size).toBe(0);
  });

  it('graceful termination: a real server without connections goes at once; the linger bound deletes one that keeps them', async () => {
    const { dp, clock, syncer } = setup({ gracefulTerminationTimeoutMs: 120_000 });
    syncer.setState(stateOf(service('web', '10.96.0.10', ['10.244.1.11', '10.244.1.12', '10.244.1.13'])));
    await syncer.sync();
    dp.ipvs.setConnections(WEB, '10.244.1.13:8080', 4);
    syncer.setState(stateOf(service('web', '10.96.0.10', ['10.244.1.11'])));
    await syncer.sync();
    expect(dp.ipvs.dump()['TCP 10.96.0.10:80']).toEqual(['10.244.1.11:8080 w1', '10.244.1.13:8080 w0']);
    await clock.advance(119_000);
    await syncer.sync();
    expect(dp.ipvs.dump()['TCP 10.96.0.10:80']).toEqual(['10.244.1.11:8080 w1', '10.244.1.13:8080 w0']);
    await clock.advance(1_000);
    await syncer.sync();
    expect(dp.ipvs.dump()['TCP 10.96.0.10:80']).toEqual(['10.244.1.11:8080 w1']);
  });

  it('graceful termination: an endpoint that comes back while draining gets its weight back', async () => {
    const { dp, syncer } = setup();
    syncer.setState(stateOf(service('web', '10.96.0.10', ['10.244.1.11', '10.244.1.12'])));
    await syncer.sync();
    dp.ipvs.setConnections(WEB, '10.244.1.12:8080', 3);
    syncer.setState(stateOf(service('web', '10.96.0.10', ['10.244.1.11'])));
    await syncer.sync();
    syncer.setState(stateOf(service('web', '10.96.0.10', ['10.244.1.11', '10.244.1.12'])));
    await syncer.sync();
    expect(restoresOf(dp).at(-1)).toBe('-e -t 10.96.0.10:80 -r 10.244.1.12:8080 -m -w 1\n');
    expect(dp.ipvs.dump()['TCP 10.96.0.10:80']).toEqual(['10.244.1.11:8080 w1', '10.244.1.12:8080 w1']);
    expect(syncer.drainingRealServers().size).toBe(0);
  });

  it('graceful termination: UDP real servers are deleted at once, connections or not (as kube-proxy)', async () => {
    const { dp, syncer } = setup();
    syncer.setState(stateOf(service('dns', '10.96.0.53', ['10.244.1.11', '10.244.1.12'], 'UDP')));
    await syncer.sync();
    dp.ipvs.setConnections({ protocol: 'UDP', address: '10.96.0.53', port: 80 }, '10.244.1.12:8080', 5);
    syncer.setState(stateOf(service('dns', '10.96.0.53', ['10.244.1.11'], 'UDP')));
    await syncer.sync();
    expect(dp.ipvs.dump()).toEqual({ 'UDP 10.96.0.53:80': ['10.244.1.11:8080 w1'] });
    expect(dp.ipvs.calls.filter((c) => c.op === 'connections')).toEqual([]);
  });

  it('a set that changes almost whole is filled as a temporary set and swapped in: it is never seen empty', async () => {
    const { dp, syncer } = setup();
    // What an earlier agent left: the set holds entries of Services that are gone.
    await dp.ipset.restore(
      'create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536 comment -exist\n' +
        'add KUBE-CLUSTER-IP 10.96.7.1,tcp:80\nadd KUBE-CLUSTER-IP 10.96.7.2,tcp:80\nadd KUBE-CLUSTER-IP 10.96.7.3,tcp:80\n',
    );
    const seen: number[] = [];
    dp.ipset.afterEachLine = (fake) => {
      if (fake.setNames().includes('KUBE-CLUSTER-IP')) seen.push(fake.entriesOf('KUBE-CLUSTER-IP').length);
    };
    syncer.setState(stateOf(service('web', '10.96.0.10', ['10.244.1.11'])));
    const r = await syncer.sync();
    expect(r.ipvs?.counts.setsSwapped).toBe(1);
    expect(ipsetRestoresOf(dp).at(-1)).toMatch(
      /swap PORTWAY-TMP-[0-9A-F]{12} KUBE-CLUSTER-IP\ndestroy PORTWAY-TMP-/,
    );
    expect(dp.ipset.entriesOf('KUBE-CLUSTER-IP')).toEqual(['10.96.0.10,tcp:80']);
    expect(dp.ipset.setNames().filter((n) => n.startsWith('PORTWAY-TMP'))).toEqual([]);
    expect(seen.length).toBeGreaterThan(10);
    expect(Math.min(...seen)).toBeGreaterThan(0);
  });

  it('a failed ipvsadm -R leaves the next sync full, which reads the kernel and gets there', async () => {
    const { dp, syncer } = setup();
    syncer.setState(stateOf(service('web', '10.96.0.10', ['10.244.1.11'])));
    await syncer.sync();
    // Someone else adds the very real server portway is about to add: its -a fails.
    await dp.ipvs.restore('-a -t 10.96.0.10:80 -r 10.244.1.12:8080 -m -w 1');
    syncer.setState(stateOf(service('web', '10.96.0.10', ['10.244.1.11', '10.244.1.12'])));
    const failed = syncer.sync();
    await expect(failed).rejects.toThrow(SyncFailedError);
    await expect(failed).rejects.toThrow(/ipvs ipvsadm -R: .*Destination already exists/s);
    expect(syncer.stats.failures).toBe(1);
    const r = await syncer.sync();
    expect(r.ipvs?.full).toBe(true);
    expect(dp.ipvs.dump()['TCP 10.96.0.10:80']).toEqual(['10.244.1.11:8080 w1', '10.244.1.12:8080 w1']);
  });

  it('connection timeouts (ipvsadm --set) go with every full sync, not with partial ones', async () => {
    const config = parseConfig(
      { mode: 'ipvs', nodeName: 'node-a', nodeIPs: [NODE_IP], ipvs: { tcpTimeout: '15m', udpTimeout: '5m' } },
      'test',
    );
    const { dp, syncer } = setup({ config });
    syncer.setState(stateOf(service('web', '10.96.0.10', ['10.244.1.11'])));
    await syncer.sync();
    expect(restoresOf(dp)[0]).toMatch(/^--set 900 0 300\n-A -t 10\.96\.0\.10:80 -s rr\n/);
    syncer.setState(stateOf(service('web', '10.96.0.10', ['10.244.1.11', '10.244.1.12'])));
    await syncer.sync();
    expect(restoresOf(dp).at(-1)).not.toMatch(/--set/);
    await syncer.sync({ full: true });
    expect(restoresOf(dp).at(-1)).toBe('--set 900 0 300\n');
  });

  it('a removed UDP endpoint: its real server and its stale conntrack entries go in the same sync', async () => {
    const { dp, syncer } = setup();
    syncer.setState(stateOf(service('dns', '10.96.0.53', ['10.244.1.11', '10.244.1.12'], 'UDP')));
    await syncer.sync();
    dp.conntrack.flows.push(
      {
        family: 'IPv4',
        protocol: 'udp',
        origDst: '10.96.0.53',
        origDstPort: 80,
        replySrc: '10.244.1.12',
        replySrcPort: 8080,
      },
      {
        family: 'IPv4',
        protocol: 'udp',
        origDst: '10.96.0.53',
        origDstPort: 80,
        replySrc: '10.244.1.11',
        replySrcPort: 8080,
      },
    );
    syncer.setState(stateOf(service('dns', '10.96.0.53', ['10.244.1.11'], 'UDP')));
    await syncer.sync();
    expect(dp.conntrack.flows.map((f) => f.replySrc)).toEqual(['10.244.1.11']);
    expect(dp.ipvs.dump()).toEqual({ 'UDP 10.96.0.53:80': ['10.244.1.11:8080 w1'] });
  });
});
