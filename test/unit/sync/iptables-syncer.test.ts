import { describe, expect, it } from '@jest/globals';
import { defaultConfig } from '../../../src/config/config.js';
import { FakeIptables } from '../../../src/dataplane/fake-iptables.js';
import type { Conntrack, ConntrackFilter, Sysctl } from '../../../src/dataplane/interfaces.js';
import { RecordingLogger } from '../../../src/observe/logger.js';
import { renderIptables, renderOptionsFromConfig } from '../../../src/render/iptables/index.js';
import { ManualClock } from '../../../src/sync/clock.js';
import { IptablesSyncer, SyncFailedError } from '../../../src/sync/iptables-syncer.js';
import { MemorySharedChainsJournal, MemorySysctlJournal } from '../../../src/sync/sysctls.js';
import { service, stateOf } from './fixtures.js';

const NODE_IP = '192.168.50.2';

class FakeConntrack implements Conntrack {
  readonly deleted: ConntrackFilter[] = [];
  async deleteEntries(filter: ConntrackFilter): Promise<number> {
    this.deleted.push(filter);
    return 1;
  }
}

class FakeSysctl implements Sysctl {
  constructor(readonly values: Record<string, string>) {}
  async get(key: string): Promise<string | null> {
    return this.values[key] ?? null;
  }
  async set(key: string, value: string): Promise<void> {
    this.values[key] = value;
  }
}

function setup(opts: { initialDump?: string } = {}) {
  const config = { ...defaultConfig(), nodeName: 'node-a' };
  const iptables = new FakeIptables(opts.initialDump !== undefined ? { initialDump: opts.initialDump } : {});
  const conntrack = new FakeConntrack();
  const clock = new ManualClock(1000);
  const logger = new RecordingLogger();
  const sysctl = new FakeSysctl({ 'net/ipv4/ip_forward': '0', 'net/ipv4/conf/all/route_localnet': '0' });
  const journal = new MemorySysctlJournal();
  const created = new MemorySharedChainsJournal();
  const syncer = new IptablesSyncer({
    families: [{ family: 'IPv4', iptables, conntrack }],
    render: (state, family) => renderIptables(state, renderOptionsFromConfig(config, family, [NODE_IP])),
    clock,
    logger,
    sysctl,
    sysctlJournal: journal,
    localhostNodePorts: config.iptables.localhostNodePorts,
    sharedChainsJournal: created,
  });
  return { iptables, conntrack, clock, logger, sysctl, journal, created, syncer };
}

const countRule = (dump: string, pattern: RegExp): number =>
  dump.split('\n').filter((l) => pattern.test(l)).length;

describe('IptablesSyncer against FakeIptables', () => {
  it('first sync is full: chains restored, built-in jumps inserted once, sysctls set and journalled', async () => {
    const h = setup();
    h.syncer.setState(stateOf(service('web', '10.96.0.10', ['10.244.1.5', '10.244.1.6'])));
    const r = await h.syncer.sync();
    expect(r.ok).toBe(true);
    expect(r.families[0]?.full).toBe(true);
    const dump = h.iptables.dump();
    expect(dump).toMatch(/^:KUBE-SERVICES - /m);
    expect(dump).toMatch(/^-A KUBE-SERVICES .*-d 10\.96\.0\.10\/32 .*-j KUBE-SVC-/m);
    expect(countRule(dump, /^-A PREROUTING .*-j KUBE-SERVICES$/)).toBe(1);
    expect(countRule(dump, /^-A POSTROUTING .*-j KUBE-POSTROUTING$/)).toBe(1);
    expect(r.families[0]?.jumpsInserted.length).toBeGreaterThan(5);
    expect(r.sysctlsChanged).toEqual([
      { key: 'net/ipv4/ip_forward', from: '0', to: '1' },
      { key: 'net/ipv4/conf/all/route_localnet', from: '0', to: '1' },
    ]);
    expect(h.journal.items.map((c) => c.key)).toEqual([
      'net/ipv4/ip_forward',
      'net/ipv4/conf/all/route_localnet',
    ]);
    expect(h.syncer.stats).toMatchObject({ syncs: 1, fullSyncs: 1, partialSyncs: 0, failures: 0 });
    expect(h.syncer.stats.lastPayloadBytes).toBeGreaterThan(0);
  });

  it('later syncs are partial, touch only changed chains and never duplicate built-in jumps', async () => {
    const h = setup();
    h.syncer.setState(
      stateOf(service('web', '10.96.0.10', ['10.244.1.5']), service('api', '10.96.0.11', ['10.244.1.7'])),
    );
    await h.syncer.sync();
    const jumpsAfterFirst = countRule(
      h.iptables.dump(),
      /^-A (PREROUTING|OUTPUT|INPUT|FORWARD|POSTROUTING) /,
    );
    // scale web up: one more endpoint
    h.syncer.setState(
      stateOf(
        service('web', '10.96.0.10', ['10.244.1.5', '10.244.1.6']),
        service('api', '10.96.0.11', ['10.244.1.7']),
      ),
    );
    const r2 = await h.syncer.sync();
    expect(r2.families[0]?.full).toBe(false);
    const restores = h.iptables.restores();
    const partial = restores.at(-1)!;
    expect(partial.opts.noflush).toBe(true);
    expect(partial.payload).not.toContain('*filter');
    expect(partial.payload).not.toMatch(/^:KUBE-SERVICES/m); // KUBE-SERVICES did not change
    expect(r2.families[0]?.plan?.changedChains.map((c) => c.chain.slice(0, 9))).toEqual([
      'KUBE-SVC-',
      'KUBE-SEP-',
    ]);
    // no save on a partial sync, no jump probing
    const callsOfSecond = h.iptables.calls.slice(
      h.iptables.calls.indexOf(h.iptables.calls.find((c) => c.op === 'restore')!) + 1,
    );
    expect(callsOfSecond.filter((c) => c.op === 'save')).toHaveLength(0);
    // several full syncs: jumps still there exactly once
    await h.syncer.sync({ full: true });
    await h.syncer.sync({ full: true });
    expect(countRule(h.iptables.dump(), /^-A (PREROUTING|OUTPUT|INPUT|FORWARD|POSTROUTING) /)).toBe(
      jumpsAfterFirst,
    );
    expect(h.syncer.stats).toMatchObject({ syncs: 4, fullSyncs: 3, partialSyncs: 1 });
    // a partial sync with nothing changed restores nothing
    const before = h.iptables.restores().length;
    await h.syncer.sync();
    expect(h.iptables.restores().length).toBe(before);
  });

  it('removing a Service deletes its chains in the same restore that rewrites KUBE-SERVICES', async () => {
    const h = setup();
    h.syncer.setState(
      stateOf(service('web', '10.96.0.10', ['10.244.1.5']), service('api', '10.96.0.11', ['10.244.1.7'])),
    );
    await h.syncer.sync();
    const apiChains = h.iptables.chainNames('nat').filter((c) => /^KUBE-(SVC|SEP)-/.test(c));
    expect(apiChains).toHaveLength(4);
    h.syncer.setState(stateOf(service('web', '10.96.0.10', ['10.244.1.5'])));
    const r = await h.syncer.sync();
    expect(r.families[0]?.full).toBe(false);
    expect(r.families[0]?.plan?.deletedChains).toHaveLength(2);
    expect(h.iptables.chainNames('nat').filter((c) => /^KUBE-(SVC|SEP)-/.test(c))).toHaveLength(2);
    expect(h.iptables.dump()).not.toContain('10.96.0.11');
  });

  it('a failed restore keeps the previous rules, is counted and logged, and makes the next sync full', async () => {
    const h = setup();
    h.syncer.setState(stateOf(service('web', '10.96.0.10', ['10.244.1.5'])));
    await h.syncer.sync();
    const good = h.iptables.dump();
    h.syncer.setState(stateOf(service('web', '10.96.0.10', ['10.244.1.5', '10.244.1.6'])));
    h.iptables.injectFailure('restore', new Error('iptables-restore: line 3 failed'));
    await expect(h.syncer.sync()).rejects.toBeInstanceOf(SyncFailedError);
    expect(h.iptables.dump()).toBe(good);
    expect(h.syncer.stats).toMatchObject({ failures: 1, restoreFailures: 1 });
    expect(h.syncer.stats.lastError).toMatch(/IPv4 iptables-restore: iptables-restore: line 3 failed/);
    const logged = h.logger.records.find((r) => r.level === 'error');
    expect(logged?.fields).toMatchObject({ family: 'IPv4', stage: 'iptables-restore' });
    // the retry is full even though nobody asked for it
    const r = await h.syncer.sync();
    expect(r.families[0]?.full).toBe(true);
    expect(h.iptables.dump()).toContain('10.244.1.6');
    expect(h.syncer.stats.lastError).toBeNull();
  });

  it('a full sync reports drift (someone flushed KUBE-SERVICES, deleted a jump) and repairs it', async () => {
    const h = setup();
    h.syncer.setState(stateOf(service('web', '10.96.0.10', ['10.244.1.5'])));
    await h.syncer.sync();
    const good = h.iptables.dump();
    await h.iptables.restore(
      '*nat\n-F KUBE-SERVICES\n-D PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\nCOMMIT\n',
      {
        noflush: true,
      },
    );
    expect(h.iptables.dump()).not.toBe(good);
    // a partial sync does not notice (nothing changed in the cluster)
    await h.syncer.sync();
    const r = await h.syncer.sync({ full: true });
    const drift = r.families[0]?.drift ?? [];
    expect(drift.map((d) => [d.table, d.chain, d.kind])).toEqual(
      expect.arrayContaining([
        ['nat', 'KUBE-SERVICES', 'rulesDiffer'],
        ['nat', 'PREROUTING', 'missingJump'],
      ]),
    );
    expect(h.iptables.dump()).toBe(good);
    expect(h.syncer.stats.driftDetected).toBeGreaterThanOrEqual(2);
    expect(h.logger.records.some((l) => l.level === 'warn' && /behind portway/.test(l.message))).toBe(true);
    // after the repair, a full sync finds nothing
    const again = await h.syncer.sync({ full: true });
    expect(again.families[0]?.drift).toEqual([]);
  });

  it('takes over a node programmed by kube-proxy without flushing: stale chains deleted, foreign chains kept', async () => {
    // what kube-proxy (and kubelet, and docker) left behind
    const initialDump = [
      '*nat',
      ':PREROUTING ACCEPT [0:0]',
      ':INPUT ACCEPT [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      ':POSTROUTING ACCEPT [0:0]',
      ':DOCKER - [0:0]',
      ':KUBE-MARK-MASQ - [0:0]',
      ':KUBE-SERVICES - [0:0]',
      ':KUBE-SVC-OLDOLDOLDOLDOLDO - [0:0]',
      ':KUBE-SEP-OLDOLDOLDOLDOLDO - [0:0]',
      ':KUBE-KUBELET-CANARY - [0:0]',
      '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      '-A DOCKER -j RETURN',
      '-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000',
      '-A KUBE-SERVICES -d 10.96.0.99/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-OLDOLDOLDOLDOLDO',
      '-A KUBE-SVC-OLDOLDOLDOLDOLDO -j KUBE-SEP-OLDOLDOLDOLDOLDO',
      '-A KUBE-SEP-OLDOLDOLDOLDOLDO -p tcp -m tcp -j DNAT --to-destination 10.244.9.9:80',
      'COMMIT',
      '',
    ].join('\n');
    const h = setup({ initialDump });
    h.syncer.setState(stateOf(service('web', '10.96.0.10', ['10.244.1.5'])));
    const r = await h.syncer.sync();
    expect(r.ok).toBe(true);
    // one restore, --noflush, no flush of the table
    const [restore] = h.iptables.restores();
    expect(restore?.opts.noflush).toBe(true);
    expect(restore?.payload).not.toMatch(/^-F/m);
    const nat = h.iptables.chainNames('nat');
    expect(nat).not.toContain('KUBE-SVC-OLDOLDOLDOLDOLDO');
    expect(nat).not.toContain('KUBE-SEP-OLDOLDOLDOLDOLDO');
    expect(nat).toEqual(expect.arrayContaining(['DOCKER', 'KUBE-KUBELET-CANARY']));
    expect(h.iptables.rulesOf('nat', 'DOCKER')).toEqual(['-A DOCKER -j RETURN']);
    // kube-proxy's PREROUTING jump was already there: not duplicated
    expect(countRule(h.iptables.dump(), /^-A PREROUTING .*-j KUBE-SERVICES$/)).toBe(1);
  });

  const KUBELET_FIREWALL =
    '*filter\n:INPUT ACCEPT [0:0]\n:KUBE-FIREWALL - [0:0]\n-A INPUT -j KUBE-FIREWALL\n' +
    '-A KUBE-FIREWALL -m comment --comment "kubelet firewall for dropping marked packets" -m mark --mark 0x8000/0x8000 -j DROP\nCOMMIT\n';

  it("records kubelet's KUBE-FIREWALL as it was before portway wrote it: absent, or its rules and jumps", async () => {
    const fresh = setup();
    fresh.syncer.setState(stateOf(service('web', '10.96.0.10', ['10.244.1.5'])));
    await fresh.syncer.sync();
    expect(fresh.created.items).toEqual([
      { family: 'IPv4', table: 'filter', chain: 'KUBE-FIREWALL', existedBefore: false, rules: [], jumps: [] },
    ]);
    const kubelet = setup({ initialDump: KUBELET_FIREWALL });
    kubelet.syncer.setState(stateOf(service('web', '10.96.0.10', ['10.244.1.5'])));
    await kubelet.syncer.sync();
    expect(kubelet.created.items).toEqual([
      {
        family: 'IPv4',
        table: 'filter',
        chain: 'KUBE-FIREWALL',
        existedBefore: true,
        rules: [
          '-A KUBE-FIREWALL -m comment --comment "kubelet firewall for dropping marked packets" -m mark --mark 0x8000/0x8000 -j DROP',
        ],
        jumps: ['-A INPUT -j KUBE-FIREWALL'],
      },
    ]);
    expect(countRule(kubelet.iptables.dump(), /^-A INPUT -j KUBE-FIREWALL$/)).toBe(1);
    // Later full syncs see portway's version of the chain: the first record stays.
    await kubelet.syncer.sync({ full: true });
    expect(kubelet.created.items[0]?.rules).toHaveLength(1);
    expect(kubelet.created.items[0]?.rules[0]).toContain('0x8000/0x8000');
  });

  it("does not write kubelet's KUBE-FIREWALL when its prior state cannot be recorded (the restore is abandoned)", async () => {
    const h = setup({ initialDump: KUBELET_FIREWALL });
    h.created.save = async () => {
      throw new Error('cannot write /run/portway/x/shared-chains.json (ENOSPC)');
    };
    h.syncer.setState(stateOf(service('web', '10.96.0.10', ['10.244.1.5'])));
    const filterOf = (dump: string) => dump.split('*nat')[0]!.replace(/^#.*$/gm, '').trim();
    const filterBefore = filterOf(h.iptables.dump());
    await expect(h.syncer.sync()).rejects.toThrow(
      /shared-chains journal: not writing filter\/KUBE-FIREWALL: cannot record .*ENOSPC/,
    );
    expect(filterOf(h.iptables.dump())).toBe(filterBefore);
    expect(h.iptables.dump()).not.toContain('KUBE-SERVICES');
    expect(h.syncer.stats.restoreFailures).toBe(0);
  });

  it('cleans UDP conntrack entries after the restore when a UDP endpoint goes away', async () => {
    const h = setup();
    h.syncer.setState(stateOf(service('dns', '10.96.0.53', ['10.244.1.5', '10.244.1.6'], 'UDP')));
    await h.syncer.sync();
    expect(h.conntrack.deleted).toEqual([]); // nothing on the first sync
    h.syncer.setState(stateOf(service('dns', '10.96.0.53', ['10.244.1.5'], 'UDP')));
    const r = await h.syncer.sync();
    expect(h.conntrack.deleted).toEqual([
      { family: 'IPv4', protocol: 'udp', origDst: '10.96.0.53', origDstPort: 80, replySrc: '10.244.1.6' },
    ]);
    expect(r.families[0]?.conntrackDeleted).toBe(1);
    expect(h.syncer.stats.conntrackEntriesDeleted).toBe(1);
  });

  it('a failure to insert a jump leaves rules recorded but makes the next sync full', async () => {
    const h = setup();
    h.syncer.setState(stateOf(service('web', '10.96.0.10', ['10.244.1.5'])));
    // The restore that inserts the built-in jumps (the one after the rules' restore) fails once.
    const restoreRules = h.iptables.restore.bind(h.iptables);
    let failJumps = true;
    h.iptables.restore = async (payload, opts) => {
      if (failJumps && /^-I PREROUTING /m.test(payload)) {
        failJumps = false;
        throw new Error('xtables lock held');
      }
      return restoreRules(payload, opts);
    };
    await expect(h.syncer.sync()).rejects.toThrow(/IPv4 built-in jumps: xtables lock held/);
    expect(h.syncer.lastApplied('IPv4')).not.toBeNull();
    const r = await h.syncer.sync();
    expect(r.families[0]?.full).toBe(true);
    expect(countRule(h.iptables.dump(), /^-A PREROUTING .*-j KUBE-SERVICES$/)).toBe(1);
  });

  it('inserts all missing built-in jumps with one restore, in kube-proxy order, and never twice', async () => {
    const h = setup();
    h.syncer.setState(stateOf(service('web', '10.96.0.10', ['10.244.1.5'], 'TCP', 30080)));
    const r = await h.syncer.sync();
    const jumpRestores = h.iptables
      .restores()
      .filter((x) => /^-[IA] (PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) /m.test(x.payload));
    expect(jumpRestores).toHaveLength(1);
    expect(r.families[0]?.jumpsInserted.length).toBeGreaterThan(5);
    // The order separate `iptables -I`/`-A` calls give: prepended ones last-inserted first, then appended.
    const jumps = r.families[0]!.jumpsInserted;
    for (const [table, chain] of [
      ['nat', 'PREROUTING'],
      ['nat', 'OUTPUT'],
      ['filter', 'INPUT'],
      ['filter', 'FORWARD'],
    ] as const) {
      const mine = jumps.filter((j) => j.table === table && j.chain === chain);
      const expected = [
        ...mine.filter((j) => j.position === 'prepend').reverse(),
        ...mine.filter((j) => j.position === 'append'),
      ].map((j) => `-A ${chain} ${j.spec}`);
      expect(expected.length).toBeGreaterThan(0);
      expect(h.iptables.rulesOf(table, chain)).toEqual(expected);
    }
    const input = h.iptables.rulesOf('filter', 'INPUT');
    await h.syncer.sync({ full: true });
    expect(h.iptables.rulesOf('filter', 'INPUT')).toEqual(input);
    expect(h.iptables.restores().filter((x) => /^-I /m.test(x.payload))).toHaveLength(1);
  });
});
