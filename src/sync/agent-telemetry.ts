// What `portway run` reports about its syncs, in both modes: kube-proxy's metrics (queued/last-sync
// timestamps, durations, restore failures, rule counts, change counts, network programming latency,
// services without local endpoints), proxy health (a queued change not applied within healthTimeout
// makes /healthz 503), the health-check node ports, and this node's Node object for /healthz.
// The agent calls changeQueued() for every new state and syncStarted()/syncFinished() around each
// sync; everything here is bookkeeping over injected clocks.
import type { ClusterState, Endpoint, IPFamily } from '../model/cluster-state.js';
import type { ProxyHealth } from '../observe/health.js';
import type { Logger } from '../observe/logger.js';
import type { ProxyMetrics } from '../observe/metrics.js';
import type { IptablesRuleSet, RenderedChain } from '../render/types.js';
import { ObjectChangeTracker } from './agent-change-tracker.js';
import type { AgentSource } from './agent-source.js';
import type { SyncResult } from './iptables-syncer.js';

/**
 * Service ports whose Local traffic policy leaves this node without usable endpoints, as kube-proxy's
 * iptables proxier counts them for kubeproxy_sync_proxy_rules_no_local_endpoints_total while it
 * writes the DROP rules: per IP family (a service port counts in each family that has a cluster IP
 * of it), and only when the family has some usable endpoint somewhere (none at all is a REJECT).
 * Usable = ready, or serving and terminating (proxy.CategorizeEndpoints: a local terminating
 * endpoint keeps a Local policy served even while ready ones exist on other nodes). "External"
 * needs an externally accessible type (NodePort, LoadBalancer, or ClusterIP with externalIPs),
 * whether or not a node port or an ingress address exists yet. The figures of the families are
 * added up: single-stack, the same as kube-proxy's; dual-stack, what kube-proxy ≥ 1.33 gives
 * summed over its ip_family label.
 */
export function countNoLocalEndpoints(
  state: ClusterState,
  nodeName: string,
  families: readonly IPFamily[] = ['IPv4', 'IPv6'],
): { internal: number; external: number } {
  let internal = 0;
  let external = 0;
  for (const sp of state.servicePorts) {
    const internalLocal = sp.internalTrafficPolicy === 'Local';
    const externalLocal =
      sp.externalTrafficPolicy === 'Local' &&
      (sp.type === 'NodePort' || sp.type === 'LoadBalancer' || sp.externalIPs.length > 0);
    if (!internalLocal && !externalLocal) continue;
    for (const family of families) {
      if (!sp.clusterIPs.some((ip) => ip.includes(':') === (family === 'IPv6'))) continue;
      let hasAny = false;
      let hasLocal = false;
      for (const ep of sp.endpoints) {
        if (ep.family !== family || !usable(ep)) continue;
        hasAny = true;
        if (nodeName !== '' && ep.nodeName === nodeName) {
          hasLocal = true;
          break;
        }
      }
      if (!hasAny || hasLocal) continue;
      if (internalLocal) internal++;
      if (externalLocal) external++;
    }
  }
  return { internal, external };
}

/** An endpoint some traffic policy may use: ready, or the serving-terminating fallback. */
function usable(ep: Endpoint): boolean {
  return ep.ready || (ep.serving && ep.terminating);
}

/** Rules in a chain, without materialising `rules` when the renderer kept the text (large rule sets). */
function rulesIn(chain: RenderedChain): number {
  if (chain.text === undefined) return chain.rules.length;
  let n = 0;
  for (let i = chain.text.indexOf('\n'); i !== -1; i = chain.text.indexOf('\n', i + 1)) n++;
  return n;
}

type ChainRef = { table: string; chain: string };

/**
 * Rules owned per table (kubeproxy_sync_proxy_rules_iptables_total) and written by the last sync
 * (…_iptables_last). Counted in full after a full sync; after a partial one only the chains it wrote
 * or removed are recounted (the others are unchanged by definition), so a sync at 10k Services does
 * not pay for counting 100k+ rules.
 */
export class RuleCounter {
  private readonly perChain = new Map<string, Map<string, number>>();
  private readonly totals = new Map<string, number>();

  update(
    ruleSet: IptablesRuleSet,
    plan: {
      changedChains: readonly ChainRef[];
      deletedChains: readonly ChainRef[];
      flushedChains: readonly ChainRef[];
    },
    full: boolean,
  ): Array<{ table: string; total: number; written: number }> {
    const written = new Map<string, Set<string>>();
    for (const c of plan.changedChains) {
      const set = written.get(c.table) ?? new Set<string>();
      set.add(c.chain);
      written.set(c.table, set);
    }
    const out: Array<{ table: string; total: number; written: number }> = [];
    for (const t of ruleSet.tables) {
      let counts = this.perChain.get(t.name);
      const names = written.get(t.name);
      let writtenRules = 0;
      if (full || counts === undefined) {
        counts = new Map();
        let total = 0;
        for (const c of t.chains) {
          const n = rulesIn(c);
          counts.set(c.name, n);
          total += n;
          if (names?.has(c.name)) writtenRules += n;
        }
        this.perChain.set(t.name, counts);
        this.totals.set(t.name, total);
      } else {
        let total = this.totals.get(t.name) ?? 0;
        for (const d of plan.deletedChains) {
          if (d.table !== t.name) continue;
          total -= counts.get(d.chain) ?? 0;
          counts.delete(d.chain);
        }
        for (const f of plan.flushedChains) {
          if (f.table !== t.name) continue;
          total -= counts.get(f.chain) ?? 0;
          counts.set(f.chain, 0);
        }
        if (names !== undefined && names.size > 0) {
          for (const c of t.chains) {
            if (!names.has(c.name)) continue;
            const n = rulesIn(c);
            total += n - (counts.get(c.name) ?? 0);
            counts.set(c.name, n);
            writtenRules += n;
          }
        }
        this.totals.set(t.name, total);
      }
      out.push({ table: t.name, total: this.totals.get(t.name) ?? 0, written: writtenRules });
    }
    return out;
  }
}

export interface AgentTelemetryOptions {
  families: IPFamily[];
  nodeName: string;
  metrics: ProxyMetrics;
  health: ProxyHealth;
  /** Health-check node ports (kube-proxy's service health server). */
  serviceHealth?: { sync(state: ClusterState): Promise<void> };
  logger: Logger;
  /** Wall clock in ms since the epoch (trigger times are wall-clock timestamps). */
  now: () => number;
  /** When the agent started: older trigger times are not measured. */
  startedAtMs: number;
}

/** What a sync took from the pending changes; handed back to syncFinished(). */
export interface SyncTicket {
  triggerTimes: number[];
  restoreFailuresBefore: number;
}

export class AgentTelemetry {
  private readonly changes: ObjectChangeTracker;
  private nodeSummary = '';
  private readonly ruleCounter = new RuleCounter();

  constructor(private readonly opts: AgentTelemetryOptions) {
    this.changes = new ObjectChangeTracker(opts.startedAtMs);
  }

  /**
   * A new state arrived from the source and a sync was requested. The source's events since the last
   * call feed kube-proxy's change counters (one per event) and pending gauges (see agent-change-tracker).
   */
  changeQueued(source: AgentSource): void {
    const { metrics, health } = this.opts;
    metrics.changesSeen(this.changes.record(source.takeChangeEvents()));
    metrics.changesPending(this.changes.pendingChanges);
    if (source.kind === 'api') this.syncNode(source);
    for (const family of this.opts.families) health.queuedUpdate(family);
    metrics.syncQueued(this.opts.now() / 1000);
  }

  /** Read this node's Node object (deletion, autoscaler taint → /healthz; zone and readiness → log). */
  syncNode(source: AgentSource): void {
    const node = source
      .rawObjects('Node')
      .find((n) => (n.metadata as { name?: unknown } | undefined)?.name === this.opts.nodeName);
    const summary = node === undefined ? 'absent' : describeNode(node);
    if (node !== undefined) this.opts.health.syncNode(node as Parameters<ProxyHealth['syncNode']>[0]);
    if (summary !== this.nodeSummary) {
      this.nodeSummary = summary;
      if (node === undefined)
        this.opts.logger.warn(
          { nodeName: this.opts.nodeName },
          'this node has no Node object in the API (is nodeName right?)',
        );
      else this.opts.logger.info({ nodeName: this.opts.nodeName, node: summary }, 'this node’s Node object');
    }
  }

  /** A sync takes every pending change (kube-proxy's svcPortMap/endpointsMap Update): pending drops to 0. */
  syncStarted(syncerRestoreFailures: number): SyncTicket {
    const triggerTimes = this.changes.takeChanges();
    this.opts.metrics.changesPending({ services: 0, endpoints: 0 });
    return { triggerTimes, restoreFailuresBefore: syncerRestoreFailures };
  }

  /**
   * After a sync (successful or not): durations, timestamps, rule counts and, for the families
   * that made it, health and network programming latency.
   */
  async syncFinished(
    ticket: SyncTicket,
    outcome: {
      result: SyncResult;
      full: boolean;
      restoreFailures: number;
      lastApplied: (family: IPFamily) => IptablesRuleSet | null;
      state: ClusterState;
    },
  ): Promise<void> {
    const { metrics } = this.opts;
    const { result, full } = outcome;
    const end = this.opts.now();
    metrics.syncCompleted({
      durationSeconds: result.durationMs / 1000,
      full,
      succeeded: result.ok,
      endSeconds: end / 1000,
    });
    for (let i = ticket.restoreFailuresBefore; i < outcome.restoreFailures; i++) metrics.restoreFailed();
    // Per family, as kube-proxy's per-family proxiers: a partial sync that failed at any stage (the
    // next one is full). The sync-wide `full` would hide a partial family next to a full one.
    for (const fam of result.families) if (!fam.ok && !fam.full) metrics.partialSyncFailed();
    this.recordSyncHealth(result);
    for (const fam of result.families) {
      if (!fam.ok) continue;
      const applied = outcome.lastApplied(fam.family);
      // Rule gauges are per table as in kube-proxy; with two families the first family's figures are shown.
      if (applied && fam.plan && fam.family === this.opts.families[0]) {
        for (const t of this.ruleCounter.update(applied, fam.plan, fam.full))
          metrics.iptablesRules(t.table, t.total, t.written);
      }
    }
    if (result.ok) {
      const latencies = ticket.triggerTimes.map((t) => Math.max(0, end - t) / 1000);
      for (const seconds of latencies) metrics.networkProgrammed(seconds);
      // Exact values (the histogram's buckets are coarse): for benchmarks and latency investigations.
      if (latencies.length > 0)
        this.opts.logger.debug({ networkProgrammingSeconds: latencies }, 'network programmed');
      metrics.noLocalEndpoints(countNoLocalEndpoints(outcome.state, this.opts.nodeName, this.opts.families));
    } else {
      this.changes.returnTriggerTimes(ticket.triggerTimes);
    }
    // As kube-proxy (SyncServices/SyncEndpoints after a successful restore only): health-check ports
    // follow the rules in force, so a Service whose rules failed to apply is not announced yet.
    if (result.families.some((f) => f.ok)) await this.opts.serviceHealth?.sync(outcome.state);
  }
  /**
   * A family counts as synced when its rules were applied and the sysctls they need are in place;
   * otherwise it is failing (health turns 503 when that lasts 2 × syncPeriod, see ProxyHealth).
   * A sync that threw before reaching a family counts as failed for it.
   */
  private recordSyncHealth(result: SyncResult): void {
    for (const family of this.opts.families) {
      const synced =
        result.families.some((f) => f.family === family && f.ok) && result.sysctlError === undefined;
      if (synced) this.opts.health.updated(family);
      else this.opts.health.syncFailed(family);
    }
  }
}

function describeNode(node: Record<string, unknown>): string {
  const meta = (node.metadata ?? {}) as { labels?: Record<string, string>; deletionTimestamp?: unknown };
  const status = (node.status ?? {}) as { conditions?: Array<{ type?: string; status?: string }> };
  const ready = status.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
  const zone = meta.labels?.['topology.kubernetes.io/zone'] ?? '';
  const deleting = meta.deletionTimestamp !== undefined && meta.deletionTimestamp !== null;
  return `ready=${ready} zone=${zone || '(none)'}${deleting ? ' deleting' : ''}`;
}
