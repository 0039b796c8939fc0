// One sync of iptables mode: for each IP family with node addresses, render → plan → restore, then
// the built-in jumps and the UDP conntrack cleanup. The BoundedFrequencyRunner decides when; this
// decides what. Level-triggered: every sync renders the whole current snapshot.
//
// Invariants:
//  - lastApplied is recorded only after the restore succeeded; it is what partial plans diff against;
//  - any failure leaves the previous rules in force (a restore is atomic) and makes the family's next
//    sync full;
//  - a full sync reads iptables-save, reports drift against lastApplied, deletes stale owned chains
//    (ours or kube-proxy's) and re-checks the built-in jumps; it never flushes first, so taking over
//    a node programmed by kube-proxy (or an earlier portway) replaces chains atomically;
//  - the first sync of a process reads the dump before writing: chains the kernel already holds as
//    desired are adopted and only the others written (src/sync/adopt.ts), so a restart onto a
//    programmed node costs a dump and a comparison, not a rewrite of every chain.
import type { Conntrack, ConntrackEntry, Iptables, Sysctl } from '../dataplane/interfaces.js';
import { splitRuleSpec } from '../dataplane/iptables-text.js';
import type { ClusterState, IPFamily, ServicePort } from '../model/cluster-state.js';
import type { Logger } from '../observe/logger.js';
import {
  planFullRestoreStreamed,
  planIptablesRestore,
  SHARED_CHAIN_NAMES,
  type IptablesPlan,
} from '../plan/iptables-plan.js';
import { IptablesRenderCache } from '../render/iptables/render.js';
import type { BuiltinJump, IptablesRuleSet, TableName } from '../render/types.js';
import type { Clock } from './clock.js';
import { planAdoption, type Adoption } from './adopt.js';
import { planConntrackCleanup, planConntrackSweep, type ConntrackDeletion } from './conntrack-cleanup.js';
import {
  detectDriftInScan,
  prepareExpectedSaveTexts,
  scanIptablesSave,
  scannedHasJump,
  type DriftFinding,
  type ScannedTable,
} from './drift.js';
import {
  applySysctls,
  planSysctls,
  type SharedChainRecord,
  type SharedChainsJournal,
  type SysctlChange,
  type SysctlJournal,
} from './sysctls.js';
import { LeftoversAfterFirstSync } from './mode-takeover.js';

export interface FamilyDataplane {
  family: IPFamily;
  iptables: Iptables;
  /** Absent = no conntrack cleanup (fakes); with the real tool missing, each cleanup fails, logged and counted. */
  conntrack?: Conntrack;
}

/** Counters and timings a metrics exporter reads (no Prometheus types here). */
export interface SyncStats {
  syncs: number;
  fullSyncs: number;
  partialSyncs: number;
  failures: number;
  restoreFailures: number;
  /** Clock time of the last sync attempt / the last fully successful one; null before the first. */
  lastSyncAt: number | null;
  lastSuccessAt: number | null;
  lastSyncDurationMs: number;
  totalSyncDurationMs: number;
  lastPayloadBytes: number;
  totalPayloadBytes: number;
  driftDetected: number;
  jumpsInserted: number;
  conntrackEntriesDeleted: number;
  conntrackFailures: number;
  lastError: string | null;
}

export const emptySyncStats = (): SyncStats => ({
  syncs: 0,
  fullSyncs: 0,
  partialSyncs: 0,
  failures: 0,
  restoreFailures: 0,
  lastSyncAt: null,
  lastSuccessAt: null,
  lastSyncDurationMs: 0,
  totalSyncDurationMs: 0,
  lastPayloadBytes: 0,
  totalPayloadBytes: 0,
  driftDetected: 0,
  jumpsInserted: 0,
  conntrackEntriesDeleted: 0,
  conntrackFailures: 0,
  lastError: null,
});

export interface FamilySyncResult {
  family: IPFamily;
  full: boolean;
  ok: boolean;
  /** The failure, when !ok. */
  error?: string;
  plan?: Pick<
    IptablesPlan,
    'changedChains' | 'deletedChains' | 'flushedChains' | 'bytes' | 'lines' | 'listFirst'
  >;
  drift: DriftFinding[];
  jumpsInserted: BuiltinJump[];
  jumpsRemoved: BuiltinJump[];
  conntrackDeleted: number;
  /**
   * Set when this (first) sync adopted rules the kernel already held: desired chains kept as they
   * were, chains written because they were missing or differed, and owned chains deleted.
   */
  adopted?: { kept: number; rewritten: number; deleted: number };
  /**
   * Clock time spent per stage ('render', 'iptables-save' = waiting for the dump and comparing it,
   * 'plan', 'iptables-restore', 'built-in jumps', 'conntrack', …), for logs and benchmarks.
   */
  stageMs: Record<string, number>;
}

export interface SyncResult {
  ok: boolean;
  durationMs: number;
  families: FamilySyncResult[];
  sysctlsChanged: SysctlChange[];
  /** Set when the sysctls could not be checked, recorded or set (the rules may still have been applied). */
  sysctlError?: string;
}

export interface IptablesSyncerOptions {
  families: FamilyDataplane[];
  /**
   * Pure renderer for one family (renderIptables with the node's options bound). `cache` is the
   * family's own render cache, kept by the syncer across syncs: pass it on to renderIptables so that
   * a sync re-renders only the service ports that changed (same output, milliseconds at 10k Services).
   */
  render: (state: ClusterState, family: IPFamily, cache: IptablesRenderCache) => IptablesRuleSet;
  clock: Clock;
  logger: Logger;
  sysctl?: Sysctl;
  sysctlJournal?: SysctlJournal;
  localhostNodePorts?: boolean;
  listFirstMinLines?: number;
  /**
   * Records shared chains (kubelet's KUBE-FIREWALL) as they were before portway first wrote them, for
   * cleanup. Written before the restore that changes them; when it cannot be, that restore is not made.
   */
  sharedChainsJournal?: SharedChainsJournal;
  /**
   * Called once, after the first sync that succeeded in full: ipvs mode's leftovers (virtual servers,
   * sets, kube-ipvs0, its chains) go only once iptables mode's rules serve (src/sync/mode-takeover.ts).
   * A failure is logged; it is tried again after the next sync.
   */
  removeOtherModeLeftovers?: () => Promise<void>;
}

interface FamilyState {
  dp: FamilyDataplane;
  lastApplied: IptablesRuleSet | null;
  lastServicePorts: readonly ServicePort[] | null;
  needFull: boolean;
  renderCache: IptablesRenderCache;
}

function jumpKey(j: BuiltinJump): string {
  return `${j.table} ${j.chain} ${j.position} ${j.spec}`;
}

export class IptablesSyncer {
  readonly stats: SyncStats = emptySyncStats();
  private state: ClusterState | null = null;
  private readonly families: FamilyState[];
  private sysctlsDone = false;
  private readonly leftovers: LeftoversAfterFirstSync;

  constructor(private readonly opts: IptablesSyncerOptions) {
    this.leftovers = new LeftoversAfterFirstSync(opts.removeOtherModeLeftovers, opts.logger);
    if (opts.families.length === 0)
      throw new Error('iptables syncer: no IP family to program (no node addresses?)');
    this.families = opts.families.map((dp) => ({
      dp,
      lastApplied: null,
      lastServicePorts: null,
      needFull: true,
      renderCache: new IptablesRenderCache(),
    }));
  }

  /** The snapshot the next sync renders. */
  setState(state: ClusterState): void {
    this.state = state;
  }

  /** The rule set last restored successfully for a family (null before the first success). */
  lastApplied(family: IPFamily): IptablesRuleSet | null {
    return this.families.find((f) => f.dp.family === family)?.lastApplied ?? null;
  }

  /** Force the next sync of every family to be full. */
  requireFullSync(): void {
    for (const f of this.families) f.needFull = true;
  }

  /**
   * Sync every family. Throws (after trying all families) when any failed, so the runner backs off;
   * the returned/attached result says what happened per family.
   */
  async sync(opts: { full?: boolean } = {}): Promise<SyncResult> {
    const state = this.state;
    if (state === null) throw new Error('iptables syncer: sync before the first cluster state');
    const start = this.opts.clock.now();
    this.stats.syncs++;
    this.stats.lastSyncAt = start;
    const result: SyncResult = { ok: true, durationMs: 0, families: [], sysctlsChanged: [] };

    if (!this.sysctlsDone && this.opts.sysctl) {
      try {
        const wanted = planSysctls(
          this.families.map((f) => f.dp.family),
          this.opts.localhostNodePorts ?? false,
        );
        result.sysctlsChanged = await applySysctls(
          this.opts.sysctl,
          wanted,
          this.opts.sysctlJournal ?? noJournal,
        );
        this.sysctlsDone = true;
        for (const c of result.sysctlsChanged)
          this.opts.logger.info({ sysctl: c.key, from: c.from, to: c.to }, 'set sysctl');
      } catch (err) {
        // Not fatal for the rules themselves: log, count, and try again next sync.
        result.sysctlError = errorText(err);
        this.opts.logger.error({ err: result.sysctlError }, 'setting sysctls failed');
        result.ok = false;
      }
    }

    let anyFull = false;
    for (const fam of this.families) {
      const full = opts.full === true || fam.needFull || fam.lastApplied === null;
      anyFull ||= full;
      const r = await this.syncFamily(fam, state, full);
      result.families.push(r);
      if (!r.ok) result.ok = false;
    }

    const duration = this.opts.clock.now() - start;
    result.durationMs = duration;
    this.stats.lastSyncDurationMs = duration;
    this.stats.totalSyncDurationMs += duration;
    if (anyFull) this.stats.fullSyncs++;
    else this.stats.partialSyncs++;
    if (result.ok) {
      this.stats.lastSuccessAt = this.opts.clock.now();
      this.stats.lastError = null;
    } else {
      this.stats.failures++;
      const firstError =
        result.families.find((f) => !f.ok)?.error ?? `sysctls: ${result.sysctlError ?? 'change failed'}`;
      this.stats.lastError = firstError;
      throw new SyncFailedError(firstError, result);
    }
    await this.leftovers.afterSuccessfulSync();
    return result;
  }

  private async syncFamily(fam: FamilyState, state: ClusterState, full: boolean): Promise<FamilySyncResult> {
    const { family, iptables } = fam.dp;
    const log = this.opts.logger;
    const res: FamilySyncResult = {
      family,
      full,
      ok: false,
      drift: [],
      jumpsInserted: [],
      jumpsRemoved: [],
      conntrackDeleted: 0,
      stageMs: {},
    };
    let stage = 'render';
    let stageStart = this.opts.clock.now();
    const enter = (next: string): void => {
      const t = this.opts.clock.now();
      res.stageMs[stage] = (res.stageMs[stage] ?? 0) + (t - stageStart);
      stage = next;
      stageStart = t;
    };
    try {
      // A full sync reads the kernel's tables: start iptables-save (another process) first, so it runs
      // while this one renders — at 10k Services each takes a large part of a second.
      const reading = full ? readTables(iptables, tablesOf(fam.lastApplied)) : null;
      // Awaited below; until then a failed save must not count as an unhandled rejection.
      reading?.catch(() => undefined);
      // A render error is the one reported (a failed save is already handled above).
      const desired: IptablesRuleSet = this.opts.render(state, family, fam.renderCache);

      let saved: Map<string, ScannedTable> | null = null;
      // This process's first sync onto a kernel that already holds owned chains (a restart, an
      // upgrade, a takeover from kube-proxy): chains that already print as desired are adopted and
      // only the others written (src/sync/adopt.ts). Onto an empty kernel the dump is all but empty.
      let adoption: Adoption | null = null;
      if (reading && fam.lastApplied === null) {
        enter('iptables-save');
        // (Preparing the expected printouts while the dump is written was measured no faster at 10k:
        // with two cores, iptables-save slowed down by as much as the comparison saved.)
        const kernel = await reading;
        enter('adopt');
        adoption = planAdoption(desired, kernel);
        if (adoption) {
          saved = kernel;
          res.adopted = {
            kept: adoption.kept,
            rewritten: adoption.rewritten.length,
            deleted: adoption.stale.length,
          };
          enter('shared-chains journal');
          await this.recordSharedChains(family, desired, kernel);
        }
      }
      if (reading && adoption === null) {
        // Full: iptables-restore parses the rewrite of every chain while iptables-save (started above)
        // and the drift check run; stale chains the dump shows and the COMMIT follow once they are
        // done (planFullRestoreStreamed). The dump is of the kernel before this restore, always.
        enter('plan');
        const streamed = planFullRestoreStreamed(desired, fam.lastApplied, this.listFirstOptions());
        enter('iptables-restore');
        const started = this.opts.clock.now();
        let observeFailed = false;
        let recordFailed = false;
        const rest = (async (): Promise<string> => {
          try {
            // While the dump is being written: how the last applied chains should print (kept per
            // chain, so only chains new since the last full sync cost anything), leaving string
            // comparisons.
            if (fam.lastApplied) await prepareExpectedSaveTexts(fam.lastApplied);
            saved = await reading;
            res.stageMs['iptables-save (during restore)'] = this.opts.clock.now() - started;
            // Before the COMMIT (which waits for this tail): a shared chain's prior state is on disk
            // before the restore replaces it, or the restore is abandoned.
            try {
              await this.recordSharedChains(family, desired, saved);
            } catch (err) {
              recordFailed = true;
              throw err;
            }
            if (fam.lastApplied) res.drift = this.reportDrift(family, fam.lastApplied, saved);
            res.stageMs['drift (during restore)'] =
              this.opts.clock.now() - started - res.stageMs['iptables-save (during restore)'];
            const finished = streamed.finish(observedChainsOf(saved));
            res.plan = {
              changedChains: streamed.changedChains,
              deletedChains: finished.deletedChains,
              flushedChains: finished.flushedChains,
              bytes: finished.bytes,
              lines: finished.lines,
              listFirst: streamed.listFirst,
            };
            return finished.tail;
          } catch (err) {
            observeFailed = true;
            throw err;
          }
        })();
        try {
          // Chunks made as the tool reads them: the ~40 MB nat table at 10k Services never exists as one string.
          await iptables.restoreStreamed(streamed.headChunks, rest, {
            noflush: true,
            listFirst: streamed.listFirst,
          });
        } catch (err) {
          if (recordFailed) stage = 'shared-chains journal';
          else if (observeFailed) stage = 'iptables-save';
          else this.stats.restoreFailures++;
          throw err;
        }
        this.countPayload(res.plan?.bytes ?? 0);
      } else {
        enter('plan');
        const plan = planIptablesRestore(desired, adoption?.kernelHolds ?? fam.lastApplied, {
          full: false,
          // Adopting: owned chains the dump shows that are not desired are deleted (the planner keeps
          // to owned names, as on full syncs).
          ...(saved ? { observedChains: observedChainsOf(saved) } : {}),
          ...this.listFirstOptions(),
        });
        res.plan = {
          changedChains: plan.changedChains,
          deletedChains: plan.deletedChains,
          flushedChains: plan.flushedChains,
          bytes: plan.bytes,
          lines: plan.lines,
          listFirst: plan.listFirst,
        };
        if (plan.payload !== '') {
          enter('iptables-restore');
          try {
            await iptables.restore(plan.payload, { noflush: true, listFirst: plan.listFirst });
          } catch (err) {
            this.stats.restoreFailures++;
            throw err;
          }
          this.countPayload(plan.bytes);
        }
      }
      // From here on the kernel holds `desired`'s chains, whatever happens to the jumps below.
      const previous = fam.lastApplied;
      const previousPorts = fam.lastServicePorts;
      fam.lastApplied = desired;
      // After a full sync most chains may be new: learn how they print now, in slices between other
      // work, so that the next full sync's drift check is string comparisons only (and does not
      // compete with its two iptables-save processes for the CPU). Partial syncs add few chains;
      // the next full sync prepares those itself.
      if (full) void prepareExpectedSaveTexts(desired).catch(() => undefined);

      enter('built-in jumps');
      const jumps = await this.ensureJumps(iptables, desired, previous, saved, full);
      res.jumpsInserted = jumps.inserted;
      res.jumpsRemoved = jumps.removed;

      enter('conntrack');
      res.conntrackDeleted = await this.cleanConntrack(fam.dp, previousPorts, state.servicePorts, full);
      // Only now: when a step above failed, the next sync still sees this change and cleans for it.
      fam.lastServicePorts = state.servicePorts;

      enter('done');
      fam.needFull = false;
      res.ok = true;
      log.info(
        {
          family,
          full,
          changedChains: res.plan?.changedChains.length ?? 0,
          deletedChains: res.plan?.deletedChains.length ?? 0,
          bytes: res.plan?.bytes ?? 0,
          jumpsInserted: jumps.inserted.length,
          conntrackDeleted: res.conntrackDeleted,
          ...(res.adopted ? { adopted: res.adopted } : {}),
        },
        res.plan?.bytes ? 'iptables rules applied' : 'iptables already up to date',
      );
    } catch (err) {
      const failedStage = stage;
      enter(failedStage);
      fam.needFull = true;
      res.error = `${family} ${stage}: ${errorText(err)}`;
      log.error(
        { family, stage, full, err: errorText(err) },
        'iptables sync failed; previous rules stay in force, next sync is full',
      );
    }
    return res;
  }

  private listFirstOptions(): { listFirstMinLines?: number } {
    return this.opts.listFirstMinLines !== undefined
      ? { listFirstMinLines: this.opts.listFirstMinLines }
      : {};
  }

  private countPayload(bytes: number): void {
    this.stats.lastPayloadBytes = bytes;
    this.stats.totalPayloadBytes += bytes;
  }

  /** Compare the dump with what was applied last; log and count what differs. */
  private reportDrift(
    family: IPFamily,
    lastApplied: IptablesRuleSet,
    saved: Map<string, ScannedTable>,
  ): DriftFinding[] {
    const drift = detectDriftInScan(lastApplied, saved);
    if (drift.length > 0) {
      this.stats.driftDetected += drift.length;
      this.opts.logger.warn(
        {
          family,
          drift: drift.map((d) => ({
            table: d.table,
            chain: d.chain,
            kind: d.kind,
            missing: d.missingRules.length,
            extra: d.extraRules.length,
          })),
        },
        'rules changed behind portway’s back; the full sync repairs them',
      );
    }
    return drift;
  }

  /**
   * Make the built-in chains jump into portway's chains exactly once each. On full syncs the save
   * dump says what is there; a jump it does not show is confirmed absent with -C before inserting
   * (the kernel's printout is authoritative, our canonical form is only a guess). On partial syncs
   * only jumps new since lastApplied are checked; jumps no longer desired are deleted.
   */
  private async ensureJumps(
    iptables: Iptables,
    desired: IptablesRuleSet,
    previous: IptablesRuleSet | null,
    saved: Map<string, ScannedTable> | null,
    full: boolean,
  ): Promise<{ inserted: BuiltinJump[]; removed: BuiltinJump[] }> {
    const inserted: BuiltinJump[] = [];
    const removed: BuiltinJump[] = [];
    const before = new Set((previous?.builtinJumps ?? []).map(jumpKey));
    const toCheck =
      full || previous === null
        ? desired.builtinJumps
        : desired.builtinJumps.filter((j) => !before.has(jumpKey(j)));
    for (const jump of toCheck) {
      if (saved && scannedHasJump(saved, jump, desired.family)) continue;
      if (await iptables.checkRule(jump.table, jump.chain, splitRuleSpec(jump.spec))) continue;
      inserted.push(jump);
    }
    if (inserted.length > 0) {
      // All in one restore: every commit that adds a rule to a built-in nat chain makes the kernel
      // re-validate all that chain reaches (~0.3 s at 10k Services), so one commit, not one per jump.
      await iptables.restore(builtinJumpsPayload(inserted), { noflush: true });
      this.stats.jumpsInserted += inserted.length;
    }
    const now = new Set(desired.builtinJumps.map(jumpKey));
    for (const jump of previous?.builtinJumps ?? []) {
      if (now.has(jumpKey(jump))) continue;
      if (await iptables.deleteRule(jump.table, jump.chain, splitRuleSpec(jump.spec))) removed.push(jump);
    }
    return { inserted, removed };
  }

  /**
   * Journal the shared chains this sync writes (KUBE-FIREWALL) as the dump read before the restore
   * shows them: absent (portway creates it; cleanup deletes it) or present with kubelet's rules and
   * jumps (cleanup puts those back). The first record of a chain wins: later dumps show portway's own
   * version. Throws when the record cannot be written, so that the restore is not made.
   */
  private async recordSharedChains(
    family: IPFamily,
    desired: IptablesRuleSet,
    saved: Map<string, ScannedTable>,
  ): Promise<void> {
    const journal = this.opts.sharedChainsJournal;
    if (!journal) return;
    const seen = desired.tables.flatMap((t) =>
      t.chains
        .filter((c) => SHARED_CHAIN_NAMES.has(c.name))
        .map((c) => sharedChainAsSaved(family, t.name, c.name, saved)),
    );
    if (seen.length === 0) return;
    const known = await journal.load();
    const fresh = seen.filter(
      (c) => !known.some((k) => k.family === c.family && k.table === c.table && k.chain === c.chain),
    );
    if (fresh.length === 0) return;
    try {
      await journal.save([...known, ...fresh]);
    } catch (err) {
      throw new Error(
        `not writing ${fresh.map((c) => `${c.table}/${c.chain}`).join(', ')}: cannot record ${fresh.length === 1 ? 'its' : 'their'} ` +
          `current state first, so cleanup could not restore it: ${errorText(err)}`,
        { cause: err },
      );
    }
  }

  /**
   * Conntrack failures are logged and counted, not fatal: the rules are already right. Full syncs
   * (the first included) then sweep the listed table, which catches what no recorded change names.
   */
  private async cleanConntrack(
    dp: FamilyDataplane,
    before: readonly ServicePort[] | null,
    after: readonly ServicePort[],
    full: boolean,
  ): Promise<number> {
    const conntrack = dp.conntrack;
    if (!conntrack) return 0;
    let deleted = 0;
    const run = async (deletions: ConntrackDeletion[]): Promise<void> => {
      for (const d of deletions) {
        try {
          deleted += await conntrack.deleteEntries(d.filter);
        } catch (err) {
          this.stats.conntrackFailures++;
          this.opts.logger.warn(
            { family: dp.family, filter: d.filter, reason: d.reason, err: errorText(err) },
            'conntrack cleanup failed',
          );
        }
      }
    };
    await run(planConntrackCleanup(before, after, dp.family));
    if (full && conntrack.listEntries) {
      let entries: ConntrackEntry[] | null = null;
      try {
        entries = await conntrack.listEntries(dp.family, 'udp');
      } catch (err) {
        this.stats.conntrackFailures++;
        this.opts.logger.warn({ family: dp.family, err: errorText(err) }, 'conntrack list failed');
      }
      if (entries) await run(planConntrackSweep(after, entries, dp.family));
    }
    this.stats.conntrackEntriesDeleted += deleted;
    return deleted;
  }
}

/** A sync in which at least one family (or the sysctls) failed; carries the per-family result. */
export class SyncFailedError extends Error {
  constructor(
    message: string,
    readonly result: SyncResult,
  ) {
    super(message);
    this.name = 'SyncFailedError';
  }
}

const noJournal: SysctlJournal = {
  load: async () => [],
  save: async () => undefined,
  clear: async () => undefined,
};

function tablesOf(...sets: Array<IptablesRuleSet | null>): TableName[] {
  const names = new Set<TableName>(['filter', 'nat']);
  for (const s of sets) for (const t of s?.tables ?? []) names.add(t.name);
  return [...names];
}

/**
 * A restore that inserts (prepend: -I, in order, so the last one listed ends up first — as separate
 * `iptables -I` calls would) or appends the given built-in jumps, table by table.
 */
export function builtinJumpsPayload(jumps: readonly BuiltinJump[]): string {
  const byTable = new Map<TableName, string[]>();
  for (const j of jumps) {
    const lines = byTable.get(j.table) ?? [];
    lines.push(`${j.position === 'prepend' ? '-I' : '-A'} ${j.chain} ${j.spec}`);
    byTable.set(j.table, lines);
  }
  return [...byTable].map(([table, lines]) => `*${table}\n${lines.join('\n')}\nCOMMIT\n`).join('');
}

/** Chain names per table as a dump shows them (filter and nat: the tables portway writes). */
function observedChainsOf(saved: Map<string, ScannedTable>): Partial<Record<TableName, string[]>> {
  const observed: Partial<Record<TableName, string[]>> = {};
  for (const [name, t] of saved)
    if (name === 'filter' || name === 'nat') observed[name] = t.chains.map((c) => c.name);
  return observed;
}

async function readTables(iptables: Iptables, tables: TableName[]): Promise<Map<string, ScannedTable>> {
  // Both dumps at once (two processes), each scanned as it arrives.
  const scanned = await Promise.all(
    tables.map(
      async (t) =>
        scanIptablesSave(await iptables.save(t)).get(t) ?? { name: t, chains: [], ruleText: new Map() },
    ),
  );
  return new Map(tables.map((t, i) => [t, scanned[i]!]));
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const BUILTIN_CHAINS = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'];

/** A shared chain as an iptables-save dump shows it: present or not, its rules, and the built-in jumps to it. */
export function sharedChainAsSaved(
  family: IPFamily,
  table: string,
  chain: string,
  saved: Map<string, ScannedTable>,
): SharedChainRecord {
  const scanned = saved.get(table);
  const linesOf = (name: string): string[] =>
    (scanned?.ruleText.get(name) ?? '').split('\n').filter((l) => l !== '');
  const jumps = BUILTIN_CHAINS.flatMap((b) =>
    linesOf(b).filter((line) => {
      const spec = splitRuleSpec(line);
      return spec.some((tok, i) => (tok === '-j' || tok === '-g') && spec[i + 1] === chain);
    }),
  );
  const existedBefore = scanned?.chains.some((c) => c.name === chain) ?? false;
  return { family, table, chain, existedBefore, rules: existedBefore ? linesOf(chain) : [], jumps };
}
