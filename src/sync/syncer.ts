// The one seam between the agent loop and a proxy mode: `run` asks proxyModeOf(config) once for the
// mode's sync periods and its syncer, and drives every mode through the same ProxySyncer interface.
// A mode that is not a proxy mode is refused here, before anything is touched.
import type { Config } from '../config/config.js';
import type { ClusterState, IPFamily } from '../model/cluster-state.js';
import type { Logger } from '../observe/logger.js';
import { renderIptables, renderOptionsFromConfig } from '../render/iptables/index.js';
import type { IptablesRuleSet } from '../render/types.js';
import type { Sysctl } from '../dataplane/interfaces.js';
import type { Clock } from './clock.js';
import { ipvsRenderOptionsFromConfig, renderIpvs } from '../render/ipvs/index.js';
import { IptablesSyncer, type FamilyDataplane, type SyncResult, type SyncStats } from './iptables-syncer.js';
import { IpvsSyncer, type IpvsExecutors } from './ipvs-syncer.js';
import type { SharedChainsJournal, SysctlJournal } from './sysctls.js';
import { otherModeLeftoversHook, type ProxyMode as ProxyModeName } from './mode-takeover.js';

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
  /** ipvs mode's node-wide executors (IPVS, ipsets, kube-ipvs0); required for mode: ipvs. */
  ipvs?: IpvsExecutors;
  /** The running kernel's release (uname -r): decides conn_reuse_mode in ipvs mode as kube-proxy does. */
  kernelVersion?: string;
}

export interface ProxyMode {
  name: Config['mode'];
  /** Minimum gap between syncs and period of full resyncs, in milliseconds (the mode's config block). */
  minSyncPeriodMs: number;
  syncPeriodMs: number;
  createSyncer(deps: SyncerDeps): ProxySyncer;
}

/** The proxy mode the configuration asks for. */
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
            ...(deps.ipvs ? { removeOtherModeLeftovers: leftoversHook('iptables', deps, deps.ipvs) } : {}),
          }),
      };
    case 'ipvs':
      return {
        name: 'ipvs',
        minSyncPeriodMs: config.ipvs.minSyncPeriod,
        syncPeriodMs: config.ipvs.syncPeriod,
        createSyncer: (deps) => {
          if (!deps.ipvs) throw new Error('ipvs mode: no IPVS, ipset and link executors given');
          const capabilities = deps.kernelVersion !== undefined ? { kernelVersion: deps.kernelVersion } : {};
          return new IpvsSyncer({
            families: deps.families,
            executors: deps.ipvs,
            render: (state, family) =>
              renderIpvs(state, ipvsRenderOptionsFromConfig(deps.config, family, deps.nodeIPs, capabilities)),
            clock: deps.clock,
            logger: deps.logger,
            excludeCIDRs: deps.config.ipvs.excludeCIDRs,
            gracefulTerminationTimeoutMs: deps.config.ipvs.gracefulTerminationTimeout,
            ...(deps.sysctl !== undefined ? { sysctl: deps.sysctl } : {}),
            ...(deps.sysctlJournal !== undefined ? { sysctlJournal: deps.sysctlJournal } : {}),
            ...(deps.sharedChainsJournal !== undefined
              ? { sharedChainsJournal: deps.sharedChainsJournal }
              : {}),
            removeOtherModeLeftovers: leftoversHook('ipvs', deps, deps.ipvs),
          });
        },
      };
    case 'nftables':
      // render/diff show the nftables ruleset (src/render/nftables); nothing applies it yet (issue 14).
      throw new Error(
        'config mode: "nftables" is dry-run only for now (render, diff); `portway run` needs mode: iptables or ipvs',
      );
    default:
      throw new Error(`config mode: "${String(config.mode)}" is not a proxy mode`);
  }
}

/** The other mode's leftovers, removed once after this mode's first successful sync (mode-takeover.ts). */
function leftoversHook(mode: ProxyModeName, deps: SyncerDeps, ipvs: IpvsExecutors): () => Promise<void> {
  return otherModeLeftoversHook(mode, {
    iptables: Object.fromEntries(deps.families.map((f) => [f.family, f.iptables])),
    ipset: ipvs.ipset,
    ip: ipvs.links,
    ipvs: ipvs.ipvs,
    logger: deps.logger,
  });
}
