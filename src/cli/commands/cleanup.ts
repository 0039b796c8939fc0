// `portway cleanup`: remove what portway (or kube-proxy, whose chain names it shares) put into the
// network namespace it runs in — built-in jumps into portway's chains, the chains themselves (of both
// modes), ipvs mode's virtual servers (those bound on kube-ipvs0 or listed in a KUBE-* set), its ipsets
// and kube-ipvs0, and the sysctls portway changed (restored to their journalled values, strictARP's
// included) — and nothing else: kubelet's KUBE-MARK-DROP / canaries, Docker's chains, other rules in the
// built-in chains and other tools' virtual servers are left alone, and kubelet's KUBE-FIREWALL gets back
// the rules it had before portway.
import type { Dataplane } from '../../dataplane/index.js';
import { createDataplane } from '../../dataplane/index.js';
import type { Iptables } from '../../dataplane/interfaces.js';
import type { IPFamily } from '../../model/cluster-state.js';
import type { Logger } from '../../observe/logger.js';
import { AgentLock } from '../../sync/agent-lock.js';
import { isProxyChainName, removeChains, removeIpvsModeState } from '../../sync/mode-takeover.js';
import { NetnsState } from '../../sync/netns-state.js';
import {
  revertSysctls,
  type SharedChainRecord,
  type SharedChainsJournal,
  type SysctlChange,
  type SysctlJournal,
} from '../../sync/sysctls.js';
import { DEFAULT_STATE_DIR } from './run.js';

export interface FamilyCleanup {
  family: IPFamily;
  jumpsRemoved: string[];
  chainsDeleted: string[];
  /** Shared chains that existed before portway (kubelet's KUBE-FIREWALL), given back their rules. */
  chainsRestored: string[];
}

export interface CleanupReport {
  families: FamilyCleanup[];
  /** ipvs mode's virtual servers removed ("TCP 10.96.0.10:80"): bound on kube-ipvs0 or in a KUBE-* set. */
  virtualServersDeleted: string[];
  /** Virtual servers left alone: another tool's. */
  virtualServersKept: string[];
  kubeIpvs0Deleted: boolean;
  ipsetsDestroyed: string[];
  sysctlsReverted: SysctlChange[];
  errors: string[];
}

export interface CleanupOptions {
  logger: Logger;
  families?: IPFamily[];
  stateDir?: string;
  // Injection points for tests.
  dataplane?: Dataplane;
  sysctlJournal?: SysctlJournal;
  sharedChainsJournal?: SharedChainsJournal;
}

/**
 * Remove portway's rules from one family: the chains of both modes (the names are kube-proxy's) and the
 * built-in jumps into them. `shared` says how the shared chains (kubelet's KUBE-FIREWALL) were before
 * portway wrote them (see removeChains).
 */
export async function cleanupIptables(
  iptables: Iptables,
  shared: readonly SharedChainRecord[] = [],
): Promise<FamilyCleanup> {
  const r = await removeChains(iptables, (_table, name) => isProxyChainName(name), shared);
  return { family: iptables.family, ...r };
}

function emptyReport(): CleanupReport {
  return {
    families: [],
    virtualServersDeleted: [],
    virtualServersKept: [],
    kubeIpvs0Deleted: false,
    ipsetsDestroyed: [],
    sysctlsReverted: [],
    errors: [],
  };
}

/** Clean the current network namespace; every step runs even when an earlier one failed. */
export async function cleanup(opts: CleanupOptions): Promise<CleanupReport> {
  const families = opts.families ?? ['IPv4', 'IPv6'];
  const dataplane = opts.dataplane ?? (await createDataplane({ families }));
  // Not while an agent runs here: it would put everything back, and its record would outlive the marker.
  let lock: AgentLock;
  try {
    lock = await AgentLock.acquire(await dataplane.netns.inode());
  } catch (err) {
    const report = emptyReport();
    report.errors.push((err as Error).message);
    opts.logger.error({ err: (err as Error).message }, 'cleanup refused; nothing changed');
    return report;
  }
  try {
    return await cleanupUnlocked({ ...opts, families, dataplane });
  } finally {
    await lock.release();
  }
}

async function cleanupUnlocked(
  opts: CleanupOptions & { families: IPFamily[]; dataplane: Dataplane },
): Promise<CleanupReport> {
  const log = opts.logger;
  const { families, dataplane } = opts;
  const report = emptyReport();
  // Only this namespace's own record (src/sync/netns-state.ts): without one, no sysctl is restored and
  // no shared chain removed — a namespace portway never recorded anything in keeps them as they are.
  let state: NetnsState | null = null;
  try {
    state = await NetnsState.find({
      stateDir: opts.stateDir ?? DEFAULT_STATE_DIR,
      identity: dataplane.netns,
      logger: log,
    });
    if (state === null)
      log.info(
        {},
        'portway recorded nothing in this network namespace: sysctls and shared chains stay as they are',
      );
  } catch (err) {
    report.errors.push(`state: ${(err as Error).message}`);
  }
  const sharedJournal: SharedChainsJournal | null =
    opts.sharedChainsJournal ?? state?.sharedChainsJournal ?? null;
  let shared: SharedChainRecord[] = [];
  try {
    shared = (await sharedJournal?.load()) ?? [];
  } catch (err) {
    report.errors.push(`shared-chains journal: ${(err as Error).message}`);
  }
  let iptablesOk = true;
  for (const family of families) {
    const iptables = dataplane.iptables[family];
    if (!iptables) continue;
    try {
      const r = await cleanupIptables(
        iptables,
        shared.filter((c) => c.family === family),
      );
      report.families.push(r);
      log.info(
        {
          family,
          jumpsRemoved: r.jumpsRemoved.length,
          chainsDeleted: r.chainsDeleted.length,
          chainsRestored: r.chainsRestored,
        },
        'removed iptables rules',
      );
    } catch (err) {
      iptablesOk = false;
      report.errors.push(`${family} iptables: ${(err as Error).message}`);
    }
  }
  if (iptablesOk) await sharedJournal?.clear();
  // ipvs mode: virtual servers, then the sets (no rule refers to them once the chains are gone: after a
  // failed iptables step a set may still be in use, and its destroy fails and is reported), then kube-ipvs0.
  const ipvs = await removeIpvsModeState({
    ipset: dataplane.ipset,
    ip: dataplane.ip,
    ipvs: dataplane.ipvs,
  });
  report.virtualServersDeleted = ipvs.virtualServersDeleted;
  report.virtualServersKept = ipvs.virtualServersKept;
  report.ipsetsDestroyed = ipvs.ipsetsDestroyed;
  report.kubeIpvs0Deleted = ipvs.linkDeleted;
  report.errors.push(...ipvs.errors);
  if (ipvs.virtualServersDeleted.length > 0 || ipvs.ipsetsDestroyed.length > 0 || ipvs.linkDeleted)
    log.info(
      {
        virtualServers: ipvs.virtualServersDeleted.length,
        ipsets: ipvs.ipsetsDestroyed,
        kubeIpvs0: ipvs.linkDeleted,
      },
      'removed ipvs-mode state',
    );
  if (ipvs.virtualServersKept.length > 0)
    log.info(
      { virtualServers: ipvs.virtualServersKept },
      'left alone: virtual servers neither on kube-ipvs0 nor in a KUBE-* set',
    );
  try {
    const journal = opts.sysctlJournal ?? state?.sysctlJournal;
    if (journal) report.sysctlsReverted = await revertSysctls(dataplane.sysctl, journal);
    for (const c of report.sysctlsReverted)
      log.info({ sysctl: c.key, from: c.from, to: c.to }, 'restored sysctl');
  } catch (err) {
    report.errors.push(`sysctl: ${(err as Error).message}`);
  }
  // Complete: nothing recorded is needed any more. After a failed step the record stays for a retry.
  if (report.errors.length === 0 && state) {
    try {
      await state.remove();
    } catch (err) {
      report.errors.push(`state: ${(err as Error).message}`);
    }
  }
  for (const e of report.errors) log.error({ err: e }, 'cleanup step failed');
  return report;
}
