// The one seam between the agent loop and a proxy mode: `run` asks proxyModeOf(config) once for the
// mode's sync periods and its syncer, and drives every mode through the same ProxySyncer interface.
// A mode that cannot run yet is refused here, before anything is touched.
import type { Config } from '../config/config.js';
import type { ClusterState, IPFamily } from '../model/cluster-state.js';
import type { Logger } from '../observe/logger.js';
import { renderIptables, renderOptionsFromConfig } from '../render/iptables/index.js';
import type { IptablesRuleSet } from '../render/types.js';
import type { Sysctl } from '../dataplane/interfaces.js';
import type { Clock } from './clock.js';
import { IptablesSyncer, type FamilyDataplane, type SyncResult, type SyncStats } from './iptables-syncer.js';
import type { SharedChainsJournal, SysctlJournal } from './sysctls.js';

/** What the agent loop needs from a mode's syncer. */
export interface ProxySyncer {
  readonly stats: SyncStats;
  /** The state the next sync renders (level-triggered: the latest wins). */
  setState(state: ClusterState): void;
  /** One sync (full: rewrite everything and repair drift); throws SyncFailedError on failure. */
  sync(opts?: { full?: boolean }): Promise<SyncResult>;
  /** The iptables rules last applied for a family (every mode programs some), null before the first sync. */
  lastApplied(family: IPFamily): IptablesRuleSet | null;
}

/** What every mode's syncer is built from (the node's facts and the dataplane executors). */
export interface SyncerDeps {
  /** The configuration with the effective node name. */
  config: Config;
  nodeIPs: string[];
  families: FamilyDataplane[];
  clock: Clock;
  logger: Logger;
  sysctl?: Sysctl;
  sysctlJournal?: SysctlJournal;
  localhostNodePorts?: boolean;
  sharedChainsJournal?: SharedChainsJournal;
}

export interface ProxyMode {
  name: Config['mode'];
  /** Minimum gap between syncs and period of full resyncs, in milliseconds (the mode's config block). */
  minSyncPeriodMs: number;
  syncPeriodMs: number;
  createSyncer(deps: SyncerDeps): ProxySyncer;
}

/** The proxy mode the configuration asks for; throws a clear error for a mode `run` cannot program yet. */
export function proxyModeOf(config: Config): ProxyMode {
  switch (config.mode) {
    case 'iptables':
      return {
        name: 'iptables',
        minSyncPeriodMs: config.iptables.minSyncPeriod,
        syncPeriodMs: config.iptables.syncPeriod,
        createSyncer: (deps) =>
          new IptablesSyncer({
            families: deps.families,
            render: (state, family, cache) =>
              renderIptables(state, renderOptionsFromConfig(deps.config, family, deps.nodeIPs), cache),
            clock: deps.clock,
            logger: deps.logger,
            ...(deps.sysctl !== undefined ? { sysctl: deps.sysctl } : {}),
            ...(deps.sysctlJournal !== undefined ? { sysctlJournal: deps.sysctlJournal } : {}),
            ...(deps.localhostNodePorts !== undefined ? { localhostNodePorts: deps.localhostNodePorts } : {}),
            ...(deps.sharedChainsJournal !== undefined
              ? { sharedChainsJournal: deps.sharedChainsJournal }
              : {}),
          }),
      };
    case 'ipvs':
      // The ipvs rules render (src/render/ipvs) but nothing applies them yet: refuse before touching the node.
      throw new Error(
        `config mode: "${config.mode}" is not supported by \`portway run\` yet (use mode: iptables)`,
      );
    case 'nftables':
      // render/diff show the nftables ruleset (src/render/nftables); nothing applies it yet (issue 14).
      throw new Error(
        'config mode: "nftables" is dry-run only for now (render, diff); `portway run` needs mode: iptables',
      );
    default:
      throw new Error(`config mode: "${String(config.mode)}" is not a proxy mode`);
  }
}
