// One sync of ipvs mode: render every family, compare with what was applied last (partial) or with
// what the kernel shows (full), and apply the difference in at most three commands — one `ipset
// restore -exist`, one `ipvsadm -R`, one `ip -batch` on kube-ipvs0 — then the mode's constant iptables
// rules through the iptables syncer, which writes them only when they change (and does the built-in
// jumps and the UDP conntrack cleanup exactly as in iptables mode).
//
// Invariants:
//  - the node state a partial sync diffs against is recorded only after all three commands succeeded;
//    any failure makes the next sync full, which reads the kernel back and repairs whatever is off;
//  - graceful termination: a real server the desired state no longer has (its virtual server stays)
//    goes to weight 0 and is deleted once IPVS counts no connection on it (TCP), or at once (UDP, SCTP:
//    as kube-proxy), or when it has lingered gracefulTerminationTimeout. Virtual servers that go are
//    deleted at once, as kube-proxy does;
//  - virtual servers in ipvs.excludeCIDRs are never touched.
import type { IpLinks, Ipset, Ipvs, Sysctl } from '../dataplane/interfaces.js';
import type { ClusterState, IPFamily } from '../model/cluster-state.js';
import type { Logger } from '../observe/logger.js';
import {
  drainKey,
  emptyIpvsPlanCounts,
  leftoverRealServers,
  nodeStateAfterPlan,
  nodeStateDifferences,
  nodeStateOfKernel,
  nodeStateOfRuleSet,
  planIpvsSync,
  type IpvsNodeState,
  type IpvsPlanCounts,
  type LeftoverRealServer,
} from '../plan/ipvs-plan.js';
import { KUBE_IPVS_DUMMY_DEVICE, parseIpvsadmRules, type IpvsRuleSet } from '../render/ipvs/index.js';
import type { IptablesRuleSet } from '../render/types.js';
import type { Clock } from './clock.js';
import {
  IptablesSyncer,
  SyncFailedError,
  type FamilyDataplane,
  type SyncResult,
  type SyncStats,
} from './iptables-syncer.js';
import { applySysctls, type SharedChainsJournal, type SysctlJournal } from './sysctls.js';
import { LeftoversAfterFirstSync } from './mode-takeover.js';

/** The node-wide executors of ipvs mode (both families share them). */
export interface IpvsExecutors {
  ipvs: Ipvs;
  ipset: Ipset;
  links: IpLinks;
}

export interface IpvsSyncerOptions {
  /** Per family: the iptables executor of the constant rules and conntrack. */
  families: FamilyDataplane[];
  executors: IpvsExecutors;
  /** Pure renderer for one family (renderIpvs with the node's options bound). */
  render: (state: ClusterState, family: IPFamily) => IpvsRuleSet;
  clock: Clock;
  logger: Logger;
  sysctl?: Sysctl;
  sysctlJournal?: SysctlJournal;
  sharedChainsJournal?: SharedChainsJournal;
  /** ipvs.excludeCIDRs: virtual servers there are not portway's. */
  excludeCIDRs?: readonly string[];
  /** ipvs.gracefulTerminationTimeout in ms: the longest a removed TCP real server may drain. */
  gracefulTerminationTimeoutMs: number;
  /**
   * Called once, after the first sync that succeeded in full: the other mode's leftovers (iptables
   * mode's KUBE-SVC-* chains, portway's or kube-proxy's) go only once the IPVS state serves, so that
   * no Service answers nothing in between. A failure is logged; it is tried again after the next sync.
   */
  removeOtherModeLeftovers?: () => Promise<void>;
}

/** What one sync did to IPVS, the sets and kube-ipvs0 (all families together). */
export interface IpvsSyncReport {
  full: boolean;
  counts: IpvsPlanCounts;
  /** Differences between the kernel and what was applied last, found by a full sync (and repaired). */
  drift: string[];
  /** Real servers draining at weight 0 after this sync, and those deleted by it after draining. */
  draining: number;
  drained: number;
  /** Commands run: ipset restore, ipvsadm -R, ip -batch (0–3; a full sync also reads the kernel). */
  commands: number;
  stageMs: Record<string, number>;
}

export interface IpvsSyncResult extends SyncResult {
  ipvs?: IpvsSyncReport;
}

interface FamilyState {
  family: IPFamily;
  last: IpvsNodeState | null;
}

export class IpvsSyncer {
  private state: ClusterState | null = null;
  private readonly families: FamilyState[];
  private readonly iptables: IptablesSyncer;
  /** The iptables part of each family's latest rendering, handed to the iptables syncer. */
  private readonly renderedIptables = new Map<IPFamily, IptablesRuleSet>();
  /** drainKey → clock time the real server started draining. */
  private readonly drainingSince = new Map<string, number>();
  private needFull = true;
  private sysctlsDone = false;
  private readonly leftovers: LeftoversAfterFirstSync;

  constructor(private readonly opts: IpvsSyncerOptions) {
    this.leftovers = new LeftoversAfterFirstSync(opts.removeOtherModeLeftovers, opts.logger);
    if (opts.families.length === 0)
      throw new Error('ipvs syncer: no IP family to program (no node addresses?)');
    this.families = opts.families.map((dp) => ({ family: dp.family, last: null }));
    this.iptables = new IptablesSyncer({
      families: opts.families,
      render: (_state, family) => {
        const rules = this.renderedIptables.get(family);
        if (!rules) throw new Error(`ipvs syncer: no rendering of ${family}`);
        return rules;
      },
      clock: opts.clock,
      logger: opts.logger,
      ...(opts.sharedChainsJournal ? { sharedChainsJournal: opts.sharedChainsJournal } : {}),
    });
  }

  /** Counters of the syncs (shared with the iptables part: one sync counts once). */
  get stats(): SyncStats {
    return this.iptables.stats;
  }

  setState(state: ClusterState): void {
    this.state = state;
  }

  lastApplied(family: IPFamily): IptablesRuleSet | null {
    return this.iptables.lastApplied(family);
  }

  /** What the last successful sync left in the kernel for a family (IPVS, sets, addresses), or null. */
  lastNodeState(family: IPFamily): IpvsNodeState | null {
    return this.families.find((f) => f.family === family)?.last ?? null;
  }

  /** Real servers draining now (drainKey → since). */
  drainingRealServers(): ReadonlyMap<string, number> {
    return this.drainingSince;
  }

  async sync(opts: { full?: boolean } = {}): Promise<IpvsSyncResult> {
    const state = this.state;
    if (state === null) throw new Error('ipvs syncer: sync before the first cluster state');
    const clock = this.opts.clock;
    const start = clock.now();
    const full = opts.full === true || this.needFull || this.families.some((f) => f.last === null);
    const report: IpvsSyncReport = {
      full,
      counts: emptyIpvsPlanCounts(),
      drift: [],
      draining: 0,
      drained: 0,
      commands: 0,
      stageMs: {},
    };
    let stage = 'render';
    let stageStart = start;
    const enter = (next: string): void => {
      const t = clock.now();
      report.stageMs[stage] = (report.stageMs[stage] ?? 0) + (t - stageStart);
      stage = next;
      stageStart = t;
    };
    const result: IpvsSyncResult = {
      ok: true,
      durationMs: 0,
      families: [],
      sysctlsChanged: [],
      ipvs: report,
    };
    try {
      const rendered = new Map<IPFamily, IpvsRuleSet>();
      for (const f of this.families) rendered.set(f.family, this.opts.render(state, f.family));

      if (!this.sysctlsDone && this.opts.sysctl) {
        enter('sysctls');
        result.sysctlsChanged = await applySysctls(
          this.opts.sysctl,
          wantedSysctls([...rendered.values()]),
          this.opts.sysctlJournal ?? noJournal,
        );
        this.sysctlsDone = true;
        for (const c of result.sysctlsChanged)
          this.opts.logger.info({ sysctl: c.key, from: c.from, to: c.to }, 'set sysctl');
      }

      const { ipvs, ipset, links } = this.opts.executors;
      let kernel: Map<IPFamily, IpvsNodeState> | null = null;
      if (full) {
        enter('dummy link');
        // As kube-proxy: created when missing and left down; a /32 (/128) bound to it makes the kernel
        // take the address as local (a host route in the local table), and no other route uses it.
        await links.ensureDummyInterface(KUBE_IPVS_DUMMY_DEVICE);
        enter('read kernel');
        const [saved, sets, addresses] = await Promise.all([
          ipvs.save(),
          ipset.list(),
          links.listAddresses(KUBE_IPVS_DUMMY_DEVICE),
        ]);
        const table = parseIpvsadmRules(saved);
        kernel = new Map();
        for (const f of this.families)
          kernel.set(f.family, nodeStateOfKernel(rendered.get(f.family)!, table, sets, addresses));
      }

      enter('plan');
      const now = clock.now();
      const planned: Array<{
        f: FamilyState;
        desired: IpvsNodeState;
        observed: IpvsNodeState;
        draining: Set<string>;
      }> = [];
      const stillDraining = new Set<string>();
      let ipsetPayload = '';
      let ipvsPayload = '';
      const bind: string[] = [];
      const unbind: string[] = [];
      for (const f of this.families) {
        const rs = rendered.get(f.family)!;
        const desired = nodeStateOfRuleSet(rs);
        const observed = kernel?.get(f.family) ?? f.last!;
        if (kernel && f.last) {
          const drift = nodeStateDifferences(f.last, observed, this.opts.excludeCIDRs ?? []);
          report.drift.push(...drift.map((d) => `${f.family}: ${d}`));
        }
        const draining = await this.judgeLeftovers(leftoverRealServers(desired, observed), now, report);
        for (const k of draining) stillDraining.add(k);
        const plan = planIpvsSync(rs, desired, observed, {
          draining,
          ...(this.opts.excludeCIDRs ? { excludeCIDRs: this.opts.excludeCIDRs } : {}),
        });
        ipsetPayload += plan.ipsetPayload;
        ipvsPayload += plan.ipvsPayload;
        bind.push(...plan.bind);
        unbind.push(...plan.unbind);
        for (const k of Object.keys(report.counts) as Array<keyof IpvsPlanCounts>)
          report.counts[k] += plan.counts[k];
        planned.push({ f, desired, observed, draining });
      }
      // Connection timeouts (ipvsadm --set) are node-wide and cannot be read back: set on full syncs.
      const timeouts = full ? [...rendered.values()].find((rs) => rs.timeouts !== null)?.timeouts : undefined;
      if (timeouts)
        ipvsPayload =
          `--set ${timeouts.tcpSeconds} ${timeouts.tcpFinSeconds} ${timeouts.udpSeconds}\n` + ipvsPayload;
      for (const k of [...this.drainingSince.keys()]) if (!stillDraining.has(k)) this.drainingSince.delete(k);
      report.draining = stillDraining.size;
      if (report.drift.length > 0) {
        this.stats.driftDetected += report.drift.length;
        this.opts.logger.warn(
          { drift: report.drift.slice(0, 20), count: report.drift.length },
          'IPVS, ipsets or kube-ipvs0 changed behind portway’s back; the full sync repairs them',
        );
      }

      // Sets first (new entries before the virtual servers that need them), then IPVS, then the
      // addresses (bound once their virtual servers exist).
      if (ipsetPayload !== '') {
        enter('ipset restore');
        await ipset.restore(ipsetPayload);
        report.commands++;
      }
      if (ipvsPayload !== '') {
        enter('ipvsadm -R');
        await ipvs.restore(ipvsPayload);
        report.commands++;
      }
      if (bind.length + unbind.length > 0) {
        enter('ip -batch');
        await links.applyAddressChanges(KUBE_IPVS_DUMMY_DEVICE, { add: bind, del: unbind });
        report.commands++;
      }
      for (const p of planned) {
        p.f.last = nodeStateAfterPlan(p.desired, p.observed, {
          draining: p.draining,
          ...(this.opts.excludeCIDRs ? { excludeCIDRs: this.opts.excludeCIDRs } : {}),
        });
      }
      this.needFull = false;
      for (const [family, rs] of rendered) this.renderedIptables.set(family, rs.iptables);
      enter('done');
    } catch (err) {
      enter(stage);
      this.needFull = true;
      const message = `ipvs ${stage}: ${errorText(err)}`;
      this.opts.logger.error(
        { stage, full, err: errorText(err) },
        'ipvs sync failed; what was applied stays, the next sync is full',
      );
      const stats = this.stats;
      stats.syncs++;
      stats.failures++;
      if (stage === 'ipset restore' || stage === 'ipvsadm -R' || stage === 'ip -batch')
        stats.restoreFailures++;
      stats.lastSyncAt = start;
      stats.lastError = message;
      result.ok = false;
      result.durationMs = clock.now() - start;
      throw new SyncFailedError(message, result);
    }

    // The constant iptables rules, written only when they changed (the iptables syncer diffs them),
    // and the conntrack cleanup of iptables mode.
    this.iptables.setState(state);
    let iptablesResult: SyncResult;
    try {
      iptablesResult = await this.iptables.sync({ full });
    } catch (err) {
      if (err instanceof SyncFailedError) {
        this.needFull = true;
        throw new SyncFailedError(err.message, {
          ...err.result,
          sysctlsChanged: result.sysctlsChanged,
          ipvs: report,
        } as IpvsSyncResult);
      }
      throw err;
    }
    const merged: IpvsSyncResult = {
      ...iptablesResult,
      sysctlsChanged: result.sysctlsChanged,
      durationMs: clock.now() - start,
      ipvs: report,
    };
    this.opts.logger.info(
      {
        full,
        ...nonZero(report.counts),
        commands: report.commands,
        draining: report.draining,
        drained: report.drained,
        drift: report.drift.length,
      },
      report.commands > 0 ? 'ipvs state applied' : 'ipvs state already up to date',
    );
    await this.leftovers.afterSuccessfulSync();
    return merged;
  }

  /**
   * Graceful termination: which leftover real servers stay (at weight 0) for now. UDP and SCTP ones
   * go at once (kube-proxy: no graceful termination for them); TCP ones once IPVS counts no active or
   * inactive connection on them, or once they lingered gracefulTerminationTimeout.
   */
  private async judgeLeftovers(
    leftovers: LeftoverRealServer[],
    now: number,
    report: IpvsSyncReport,
  ): Promise<Set<string>> {
    const keep = new Set<string>();
    const connections = new Map<string, Map<string, number> | null>();
    for (const l of leftovers) {
      const key = drainKey(l.virtualServer, l.server);
      const since = this.drainingSince.get(key);
      if (l.protocol !== 'TCP') continue;
      if (since !== undefined && now - since >= this.opts.gracefulTerminationTimeoutMs) {
        this.opts.logger.info(
          { virtualServer: l.virtualServer, realServer: l.server, lingeredMs: now - since },
          'real server still had connections at the end of ipvs.gracefulTerminationTimeout; deleting it',
        );
        report.drained++;
        continue;
      }
      let counts = connections.get(l.virtualServer);
      if (counts === undefined) {
        const listed = await this.opts.executors.ipvs.realServerConnections(l);
        counts =
          listed === null
            ? null
            : new Map(
                listed.map((r) => [
                  r.address.includes(':') ? `[${r.address}]:${r.port}` : `${r.address}:${r.port}`,
                  r.activeConnections + r.inactiveConnections,
                ]),
              );
        connections.set(l.virtualServer, counts);
      }
      const open = counts?.get(l.server) ?? 0;
      if (open === 0) {
        if (since !== undefined) report.drained++;
        continue;
      }
      if (since === undefined) this.drainingSince.set(key, now);
      keep.add(key);
    }
    return keep;
  }
}

/** The rendered sysctls of every family, each key once (the first family's value wins). */
function wantedSysctls(sets: readonly IpvsRuleSet[]): Array<{ key: string; value: string; why: string }> {
  const out = new Map<string, { key: string; value: string; why: string }>();
  for (const rs of sets)
    for (const s of rs.sysctls)
      if (!out.has(s.key)) out.set(s.key, { key: s.key, value: s.value, why: s.reason });
  return [...out.values()];
}

function nonZero(counts: IpvsPlanCounts): Partial<IpvsPlanCounts> {
  return Object.fromEntries(Object.entries(counts).filter(([, v]) => v !== 0));
}

const noJournal: SysctlJournal = {
  load: async () => [],
  save: async () => undefined,
  clear: async () => undefined,
};

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
