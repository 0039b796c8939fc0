// `portway cleanup`: remove what portway (or kube-proxy, whose chain names it shares) put into the
// network namespace it runs in — built-in jumps into portway's chains, the chains themselves, the
// ipsets of ipvs mode, and the sysctls portway changed (restored to their journalled values) — and
// nothing else: kubelet's KUBE-MARK-DROP / canaries, Docker's chains, other rules in the built-in
// chains are left alone, and kubelet's KUBE-FIREWALL gets back the rules it had before portway.
import type { Dataplane } from '../../dataplane/index.js';
import { createDataplane } from '../../dataplane/index.js';
import type { Iptables, Ipset } from '../../dataplane/interfaces.js';
import { parseIptablesSave } from '../../dataplane/iptables-text.js';
import type { IPFamily } from '../../model/cluster-state.js';
import type { Logger } from '../../observe/logger.js';
import { isOwnedChainName, LineBuffer } from '../../plan/iptables-plan.js';
import type { TableName } from '../../render/types.js';
import { AgentLock } from '../../sync/agent-lock.js';
import { NetnsState } from '../../sync/netns-state.js';
import {
  revertSysctls,
  type SharedChainRecord,
  type SharedChainsJournal,
  type SysctlChange,
  type SysctlJournal,
} from '../../sync/sysctls.js';
import { DEFAULT_STATE_DIR } from './run.js';

/** The ipsets kube-proxy's ipvs mode creates (DESIGN §3); only these names are destroyed. */
export const PORTWAY_IPSET_NAMES: ReadonlySet<string> = new Set([
  'KUBE-CLUSTER-IP',
  'KUBE-LOOP-BACK',
  'KUBE-EXTERNAL-IP',
  'KUBE-EXTERNAL-IP-LOCAL',
  'KUBE-LOAD-BALANCER',
  'KUBE-LOAD-BALANCER-LOCAL',
  'KUBE-LOAD-BALANCER-FW',
  'KUBE-LOAD-BALANCER-SOURCE-IP',
  'KUBE-LOAD-BALANCER-SOURCE-CIDR',
  'KUBE-NODE-PORT-TCP',
  'KUBE-NODE-PORT-UDP',
  'KUBE-NODE-PORT-SCTP-HASH',
  'KUBE-NODE-PORT-LOCAL-TCP',
  'KUBE-NODE-PORT-LOCAL-UDP',
  'KUBE-NODE-PORT-LOCAL-SCTP-HASH',
  'KUBE-HEALTH-CHECK-NODE-PORT',
  'KUBE-IPVS-IPS',
]);

const BUILTIN = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']);

export interface FamilyCleanup {
  family: IPFamily;
  jumpsRemoved: string[];
  chainsDeleted: string[];
  /** Shared chains that existed before portway (kubelet's KUBE-FIREWALL), given back their rules. */
  chainsRestored: string[];
}

export interface CleanupReport {
  families: FamilyCleanup[];
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
 * Remove portway's rules from one family. Jumps first (a referenced chain cannot be deleted).
 * `shared` says how the shared chains (kubelet's KUBE-FIREWALL) were before portway wrote them: one
 * portway created goes like its own chains; one that existed gets back its rules, and loses only the
 * built-in jumps to it that portway added.
 */
export async function cleanupIptables(iptables: Iptables, shared: readonly SharedChainRecord[] = []): Promise<FamilyCleanup> {
  const res: FamilyCleanup = { family: iptables.family, jumpsRemoved: [], chainsDeleted: [], chainsRestored: [] };
  const tables: TableName[] = ['filter', 'nat'];
  const payload = new LineBuffer();
  for (const table of tables) {
    const saved = parseIptablesSave(await iptables.save(table)).get(table);
    if (!saved) continue;
    const records = shared.filter((c) => c.table === table);
    const ours = (name: string): boolean => isOwnedChainName(name) || records.some((c) => c.chain === name && !c.existedBefore);
    for (const rule of saved.rules) {
      if (!BUILTIN.has(rule.chain)) continue;
      const target = targetOf(rule.spec);
      if (target === null) continue;
      const before = records.find((c) => c.chain === target && c.existedBefore);
      const added = before !== undefined && !before.jumps.includes(`-A ${rule.chain} ${rule.text}`);
      if (!ours(target) && !added) continue;
      if (await iptables.deleteRule(table, rule.chain, rule.spec)) res.jumpsRemoved.push(`${table} ${rule.chain} ${rule.text}`);
    }
    const owned = saved.chains.map((c) => c.name).filter(ours);
    // A shared chain someone removed since is not brought back.
    const restored = records.filter((c) => c.existedBefore && saved.chains.some((s) => s.name === c.chain));
    if (owned.length === 0 && restored.length === 0) continue;
    // Declaring flushes every owned chain (dropping jumps between them); then they can all go.
    payload.write(`*${table}`);
    for (const name of owned) payload.write(`:${name}`, '-', '[0:0]');
    for (const c of restored) {
      payload.write(`:${c.chain}`, '-', '[0:0]');
      for (const line of c.rules) payload.write(line);
    }
    for (const name of owned) payload.write('-X', name);
    payload.write('COMMIT');
    for (const name of owned) res.chainsDeleted.push(`${table} ${name}`);
    for (const c of restored) res.chainsRestored.push(`${table} ${c.chain}`);
  }
  if (payload.lineCount > 0) await iptables.restore(payload.toString(), { noflush: true });
  return res;
}

function targetOf(spec: readonly string[]): string | null {
  for (let i = 0; i < spec.length - 1; i++) if (spec[i] === '-j' || spec[i] === '-g') return spec[i + 1] ?? null;
  return null;
}

export async function cleanupIpsets(ipset: Ipset): Promise<string[]> {
  const destroyed: string[] = [];
  for (const set of await ipset.list()) {
    if (!PORTWAY_IPSET_NAMES.has(set.name)) continue;
    await ipset.destroy(set.name);
    destroyed.push(set.name);
  }
  return destroyed;
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
    const report: CleanupReport = { families: [], ipsetsDestroyed: [], sysctlsReverted: [], errors: [(err as Error).message] };
    opts.logger.error({ err: (err as Error).message }, 'cleanup refused; nothing changed');
    return report;
  }
  try {
    return await cleanupUnlocked({ ...opts, families, dataplane });
  } finally {
    await lock.release();
  }
}

async function cleanupUnlocked(opts: CleanupOptions & { families: IPFamily[]; dataplane: Dataplane }): Promise<CleanupReport> {
  const log = opts.logger;
  const { families, dataplane } = opts;
  const report: CleanupReport = { families: [], ipsetsDestroyed: [], sysctlsReverted: [], errors: [] };
  // Only this namespace's own record (src/sync/netns-state.ts): without one, no sysctl is restored and
  // no shared chain removed — a namespace portway never recorded anything in keeps them as they are.
  let state: NetnsState | null = null;
  try {
    state = await NetnsState.find({ stateDir: opts.stateDir ?? DEFAULT_STATE_DIR, identity: dataplane.netns, logger: log });
    if (state === null) log.info({}, 'portway recorded nothing in this network namespace: sysctls and shared chains stay as they are');
  } catch (err) {
    report.errors.push(`state: ${(err as Error).message}`);
  }
  const sharedJournal: SharedChainsJournal | null = opts.sharedChainsJournal ?? state?.sharedChainsJournal ?? null;
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
      const r = await cleanupIptables(iptables, shared.filter((c) => c.family === family));
      report.families.push(r);
      log.info(
        { family, jumpsRemoved: r.jumpsRemoved.length, chainsDeleted: r.chainsDeleted.length, chainsRestored: r.chainsRestored },
        'removed iptables rules',
      );
    } catch (err) {
      iptablesOk = false;
      report.errors.push(`${family} iptables: ${(err as Error).message}`);
    }
  }
  if (iptablesOk) await sharedJournal?.clear();
  try {
    report.ipsetsDestroyed = await cleanupIpsets(dataplane.ipset);
    if (report.ipsetsDestroyed.length > 0) log.info({ ipsets: report.ipsetsDestroyed }, 'destroyed ipsets');
  } catch (err) {
    report.errors.push(`ipset: ${(err as Error).message}`);
  }
  try {
    const journal = opts.sysctlJournal ?? state?.sysctlJournal;
    if (journal) report.sysctlsReverted = await revertSysctls(dataplane.sysctl, journal);
    for (const c of report.sysctlsReverted) log.info({ sysctl: c.key, from: c.from, to: c.to }, 'restored sysctl');
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
