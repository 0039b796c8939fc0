// Switching a node between iptables and ipvs mode (or taking it over from kube-proxy in the other mode):
// once this mode's own state is in place — the first successful sync — the other mode's leftovers go.
// Never before: until this mode's rules are written, the other mode's are what carries the traffic, so
// there is no window in which a Service answers nothing.
//
// - ipvs mode removes iptables mode's chains: the per-service KUBE-SVC/SEP/EXT/FW/SVL-* chains and the
//   fixed ones ipvs mode does not write (nat KUBE-NODEPORTS, filter KUBE-SERVICES/KUBE-EXTERNAL-SERVICES/
//   KUBE-NODEPORTS), with the built-in jumps into them. The chains both modes write (KUBE-SERVICES in nat,
//   KUBE-POSTROUTING, KUBE-MARK-MASQ, KUBE-FORWARD, KUBE-PROXY-FIREWALL) were already rewritten by the sync.
// - iptables mode removes ipvs mode's chains (KUBE-IPVS-FILTER, KUBE-IPVS-OUT-FILTER, KUBE-NODE-PORT,
//   KUBE-LOAD-BALANCER, KUBE-SOURCE-RANGES-FIREWALL), then ipvs mode's virtual servers (those whose address
//   is bound on kube-ipvs0 or listed in a KUBE-* set: another tool's virtual servers stay), then the sets
//   (no rule refers to them any more), then kube-ipvs0.
// `portway cleanup` removes the same ipvs-mode state through removeIpvsModeState.
import {
  isIpvsUnavailable,
  parseLiveIpvsadmSave,
  readDummyLink,
  virtualServerKey,
} from '../dataplane/ipvs-live.js';
import { isCommandMissing } from '../dataplane/exec.js';
import type {
  InterfaceAddress,
  Iptables,
  IpLinks,
  Ipset,
  IpsetEntrySet,
  Ipvs,
  IpvsServiceRef,
} from '../dataplane/interfaces.js';
import type { IPFamily } from '../model/cluster-state.js';
import { canonicalIP } from '../model/ip.js';
import type { Logger } from '../observe/logger.js';
import { isServiceChainName, LineBuffer, STATIC_CHAIN_NAMES } from '../plan/iptables-plan.js';
import {
  allIpsetNames,
  ipvsServiceArgs,
  KUBE_IPVS_DUMMY_DEVICE,
  KUBE_IPVS_FILTER,
  KUBE_IPVS_OUT_FILTER,
  KUBE_LOAD_BALANCER_CHAIN,
  KUBE_NODE_PORT,
  KUBE_SOURCE_RANGES_FIREWALL,
} from '../render/ipvs/index.js';
import type { TableName } from '../render/types.js';
import { parseIptablesSave } from '../dataplane/iptables-text.js';
import type { SharedChainRecord } from './sysctls.js';

export type ProxyMode = 'iptables' | 'ipvs';

/** The fixed-name chains each mode writes, per table (the golden files of both renderers are checked against these). */
export const MODE_CHAINS: Readonly<
  Record<ProxyMode, Readonly<Record<'nat' | 'filter', ReadonlySet<string>>>>
> = {
  iptables: {
    nat: new Set(['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-MARK-MASQ']),
    filter: new Set([
      'KUBE-SERVICES',
      'KUBE-EXTERNAL-SERVICES',
      'KUBE-NODEPORTS',
      'KUBE-FORWARD',
      'KUBE-PROXY-FIREWALL',
    ]),
  },
  ipvs: {
    nat: new Set([
      'KUBE-SERVICES',
      'KUBE-POSTROUTING',
      'KUBE-MARK-MASQ',
      KUBE_NODE_PORT,
      KUBE_LOAD_BALANCER_CHAIN,
    ]),
    filter: new Set([
      'KUBE-FORWARD',
      'KUBE-PROXY-FIREWALL',
      KUBE_NODE_PORT,
      KUBE_IPVS_FILTER,
      KUBE_IPVS_OUT_FILTER,
      KUBE_SOURCE_RANGES_FIREWALL,
    ]),
  },
};

/** ipvs mode's chains whose names iptables mode never uses: not in STATIC_CHAIN_NAMES, still portway's. */
export const IPVS_MODE_ONLY_CHAIN_NAMES: ReadonlySet<string> = new Set([
  KUBE_NODE_PORT,
  KUBE_LOAD_BALANCER_CHAIN,
  KUBE_IPVS_FILTER,
  KUBE_IPVS_OUT_FILTER,
  KUBE_SOURCE_RANGES_FIREWALL,
]);

/** A chain of either mode (portway's or kube-proxy's: the names are shared). KUBE-FIREWALL is kubelet's. */
export function isProxyChainName(name: string): boolean {
  return STATIC_CHAIN_NAMES.has(name) || isServiceChainName(name) || IPVS_MODE_ONLY_CHAIN_NAMES.has(name);
}

/** A chain of the other mode that `mode` does not write in `table`: a leftover once `mode` has synced. */
export function isOtherModeChain(mode: ProxyMode, table: TableName, name: string): boolean {
  if (!isProxyChainName(name)) return false;
  if (table !== 'nat' && table !== 'filter') return false;
  if (mode === 'iptables' && isServiceChainName(name)) return false;
  return !MODE_CHAINS[mode][table].has(name);
}

// ── ipvs mode's state: which virtual servers are portway's / kube-proxy's ───────────────────────────

const IPVS_SET_NAMES: ReadonlySet<string> = new Set(allIpsetNames());

/** "10.96.0.10,tcp:80" → protocol, address, port; null for other shapes (ports only, with a third part …). */
function ipPortEntry(entry: string): { protocol: string; address: string; port: number } | null {
  const m = /^([^,]+),(tcp|udp|sctp):(\d+)(?:,.*)?$/.exec(entry);
  if (!m) return null;
  return { address: canonicalIP(m[1]!) ?? m[1]!, protocol: m[2]!.toUpperCase(), port: Number(m[3]) };
}

/**
 * Which virtual servers ipvs mode (portway's or kube-proxy's) made: those whose address is bound on
 * kube-ipvs0 (cluster, external and LoadBalancer IPs) or that a KUBE-* set lists — by address, protocol
 * and port (KUBE-CLUSTER-IP, KUBE-EXTERNAL-IP, KUBE-LOAD-BALANCER …), or by protocol and port for the
 * NodePort bitmap sets (NodePort virtual servers are on node addresses). Anything else is another
 * tool's and is left alone. Pure.
 */
export function ownedVirtualServers<T extends IpvsServiceRef>(
  virtualServers: readonly T[],
  ipsets: readonly IpsetEntrySet[],
  dummyAddresses: readonly InterfaceAddress[],
): { owned: T[]; foreign: T[] } {
  const bound = new Set(dummyAddresses.map((a) => canonicalIP(a.address) ?? a.address));
  const listed = new Set<string>();
  const nodePorts = new Set<string>();
  for (const set of ipsets) {
    if (!IPVS_SET_NAMES.has(set.name)) continue;
    for (const entry of set.entries) {
      const e = ipPortEntry(entry);
      if (e)
        listed.add(
          virtualServerKey({
            protocol: e.protocol as IpvsServiceRef['protocol'],
            address: e.address,
            port: e.port,
          }),
        );
      else if (/^\d+$/.test(entry)) {
        if (set.name.includes('NODE-PORT') && set.name.endsWith('TCP')) nodePorts.add(`TCP ${entry}`);
        if (set.name.includes('NODE-PORT') && set.name.endsWith('UDP')) nodePorts.add(`UDP ${entry}`);
      }
    }
  }
  const owned: T[] = [];
  const foreign: T[] = [];
  for (const vs of virtualServers) {
    const ours =
      bound.has(canonicalIP(vs.address) ?? vs.address) ||
      listed.has(virtualServerKey(vs)) ||
      nodePorts.has(`${vs.protocol} ${vs.port}`);
    (ours ? owned : foreign).push(vs);
  }
  return { owned, foreign };
}

// ── executors ──────────────────────────────────────────────────────────────────────────────────────

export interface ModeTakeoverExecutors {
  iptables: Partial<Record<IPFamily, Iptables>>;
  ipset: Ipset;
  ip: IpLinks;
  /** The IPVS executor: its table (ipvsadm -S -n) and `ipvsadm -R` for the -D lines. */
  ipvs: Pick<Ipvs, 'save' | 'restore'>;
  logger?: Logger;
}

/** The services of `-A` lines kept apart as foreign (an unknown scheduler): still deletable by address. */
function foreignServices(lines: readonly string[]): IpvsServiceRef[] {
  return lines.flatMap((line) => {
    const m = /^-A\s+(-t|--tcp-service|-u|--udp-service|--sctp-service)\s+(\S+)/.exec(line);
    const hp = m ? /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(m[2]!) : null;
    if (!m || !hp) return []; // firewall-mark services have no address
    const protocol: IpvsServiceRef['protocol'] =
      m[1] === '-u' || m[1] === '--udp-service' ? 'UDP' : m[1] === '--sctp-service' ? 'SCTP' : 'TCP';
    return [{ protocol, address: hp[1] ?? hp[2]!, port: Number(hp[3]) }];
  });
}

export interface IpvsStateRemoval {
  /** "TCP 10.96.0.10:80" … */
  virtualServersDeleted: string[];
  /** Virtual servers left alone: neither bound on kube-ipvs0 nor in a KUBE-* set. */
  virtualServersKept: string[];
  ipsetsDestroyed: string[];
  linkDeleted: boolean;
  errors: string[];
}

/**
 * Remove ipvs mode's virtual servers, sets and kube-ipvs0 — in that order (the virtual servers are told
 * apart by the sets and the link). The sets must no longer be referenced by iptables rules: remove those
 * first. Every step runs even when an earlier one failed; failures are collected, never thrown.
 */
export async function removeIpvsModeState(
  ex: Omit<ModeTakeoverExecutors, 'iptables'>,
): Promise<IpvsStateRemoval> {
  const out: IpvsStateRemoval = {
    virtualServersDeleted: [],
    virtualServersKept: [],
    ipsetsDestroyed: [],
    linkDeleted: false,
    errors: [],
  };
  let ipsets: IpsetEntrySet[] = [];
  try {
    ipsets = await ex.ipset.list();
  } catch (err) {
    out.errors.push(`ipset: ${(err as Error).message}`);
  }
  let dummy: InterfaceAddress[] = [];
  let linkExists = false;
  try {
    const link = await readDummyLink(ex.ip, KUBE_IPVS_DUMMY_DEVICE);
    dummy = link.addresses;
    linkExists = link.exists;
  } catch (err) {
    out.errors.push(`${KUBE_IPVS_DUMMY_DEVICE}: ${(err as Error).message}`);
  }
  try {
    const table = parseLiveIpvsadmSave(await ex.ipvs.save());
    const services: IpvsServiceRef[] = [...table.virtualServers, ...foreignServices(table.foreign)];
    const { owned, foreign } = ownedVirtualServers(services, ipsets, dummy);
    if (owned.length > 0) {
      await ex.ipvs.restore(owned.map((vs) => `-D ${ipvsServiceArgs(vs)}\n`).join(''));
      out.virtualServersDeleted = owned.map(virtualServerKey);
    }
    out.virtualServersKept = foreign.map(virtualServerKey);
  } catch (err) {
    // No IPVS here (or no ipvsadm): there are no virtual servers to remove.
    if (!isIpvsUnavailable(err) && !isCommandMissing(err)) out.errors.push(`ipvs: ${(err as Error).message}`);
  }
  for (const set of ipsets) {
    if (!IPVS_SET_NAMES.has(set.name)) continue;
    try {
      await ex.ipset.destroy(set.name);
      out.ipsetsDestroyed.push(set.name);
    } catch (err) {
      out.errors.push(`ipset ${set.name}: ${(err as Error).message}`);
    }
  }
  if (linkExists) {
    try {
      out.linkDeleted = await ex.ip.deleteInterface(KUBE_IPVS_DUMMY_DEVICE);
    } catch (err) {
      out.errors.push(`${KUBE_IPVS_DUMMY_DEVICE}: ${(err as Error).message}`);
    }
  }
  return out;
}

// ── chains ─────────────────────────────────────────────────────────────────────────────────────────

const BUILTIN = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']);

export interface ChainRemoval {
  /** "nat KUBE-SVC-…" */
  chainsDeleted: string[];
  /** "nat PREROUTING -m comment … -j KUBE-SERVICES" */
  jumpsRemoved: string[];
  /** Shared chains that existed before portway (kubelet's KUBE-FIREWALL), given back their rules. */
  chainsRestored: string[];
}

function targetOf(spec: readonly string[]): string | null {
  for (let i = 0; i < spec.length - 1; i++)
    if (spec[i] === '-j' || spec[i] === '-g') return spec[i + 1] ?? null;
  return null;
}

/**
 * Delete the chains `remove` picks in the nat and filter tables of one family: the built-in chains'
 * jumps into them first (a referenced chain cannot be deleted), then one restore that declares them
 * (which flushes them, dropping their jumps to each other) and deletes them with -X. `shared` says how
 * the shared chains (kubelet's KUBE-FIREWALL) were before portway wrote them: one portway created goes
 * like its own chains; one that existed gets back its rules, and loses only the built-in jumps to it that
 * portway added.
 */
export async function removeChains(
  iptables: Iptables,
  remove: (table: TableName, name: string) => boolean,
  shared: readonly SharedChainRecord[] = [],
): Promise<ChainRemoval> {
  const res: ChainRemoval = { jumpsRemoved: [], chainsDeleted: [], chainsRestored: [] };
  const tables: TableName[] = ['filter', 'nat'];
  const payload = new LineBuffer();
  for (const table of tables) {
    const saved = parseIptablesSave(await iptables.save(table)).get(table);
    if (!saved) continue;
    const records = shared.filter((c) => c.table === table);
    const ours = (name: string): boolean =>
      remove(table, name) || records.some((c) => c.chain === name && !c.existedBefore);
    for (const rule of saved.rules) {
      if (!BUILTIN.has(rule.chain)) continue;
      const target = targetOf(rule.spec);
      if (target === null) continue;
      const before = records.find((c) => c.chain === target && c.existedBefore);
      const added = before !== undefined && !before.jumps.includes(`-A ${rule.chain} ${rule.text}`);
      if (!ours(target) && !added) continue;
      if (await iptables.deleteRule(table, rule.chain, rule.spec))
        res.jumpsRemoved.push(`${table} ${rule.chain} ${rule.text}`);
    }
    const owned = saved.chains.map((c) => c.name).filter(ours);
    // A shared chain someone removed since is not brought back.
    const restored = records.filter((c) => c.existedBefore && saved.chains.some((s) => s.name === c.chain));
    if (owned.length === 0 && restored.length === 0) continue;
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

export interface LeftoverReport {
  mode: ProxyMode;
  /** "IPv4 nat KUBE-SVC-…" */
  chainsDeleted: string[];
  jumpsRemoved: string[];
  /** Only when mode is iptables: ipvs mode's virtual servers, sets and link. */
  ipvs: IpvsStateRemoval | null;
  errors: string[];
}

/**
 * Remove the other mode's leftovers; call it after this mode's first successful sync (its state is in
 * place). Never throws: what could not be removed is in `errors` (and logged) — the node works either
 * way, the leftovers only cost memory and confuse readers — so a later call may try again.
 */
export async function removeOtherModeLeftovers(
  mode: ProxyMode,
  ex: ModeTakeoverExecutors,
): Promise<LeftoverReport> {
  const report: LeftoverReport = { mode, chainsDeleted: [], jumpsRemoved: [], ipvs: null, errors: [] };
  if (mode === 'iptables' && !(await ipvsModeWasHere(ex))) {
    // Every iptables-mode start runs this: without the cheap check it read filter and nat of every family
    // (~3.4 s of a 5k-Service `run --once`, most of its time beyond the restore) to find nothing.
    report.ipvs = {
      virtualServersDeleted: [],
      virtualServersKept: [],
      ipsetsDestroyed: [],
      linkDeleted: false,
      errors: [],
    };
    return report;
  }
  for (const [family, iptables] of Object.entries(ex.iptables) as Array<[IPFamily, Iptables | undefined]>) {
    if (!iptables) continue;
    try {
      const r = await removeChains(iptables, (table, name) => isOtherModeChain(mode, table, name));
      report.chainsDeleted.push(...r.chainsDeleted.map((c) => `${family} ${c}`));
      report.jumpsRemoved.push(...r.jumpsRemoved.map((j) => `${family} ${j}`));
    } catch (err) {
      report.errors.push(`${family} iptables: ${(err as Error).message}`);
    }
  }
  if (mode === 'iptables') {
    report.ipvs = await removeIpvsModeState(ex);
    report.errors.push(...report.ipvs.errors);
  }
  const removed =
    report.chainsDeleted.length +
    (report.ipvs
      ? report.ipvs.virtualServersDeleted.length +
        report.ipvs.ipsetsDestroyed.length +
        (report.ipvs.linkDeleted ? 1 : 0)
      : 0);
  if (removed > 0)
    ex.logger?.info(
      {
        chains: report.chainsDeleted.length,
        virtualServers: report.ipvs?.virtualServersDeleted.length ?? 0,
        ipsets: report.ipvs?.ipsetsDestroyed ?? [],
        kubeIpvs0: report.ipvs?.linkDeleted ?? false,
      },
      `removed the ${mode === 'ipvs' ? 'iptables' : 'ipvs'}-mode leftovers`,
    );
  for (const e of report.errors)
    ex.logger?.warn({ err: e }, `could not remove a ${mode === 'ipvs' ? 'iptables' : 'ipvs'}-mode leftover`);
  return report;
}

/**
 * Whether ipvs mode left anything behind: one of its sets or kube-ipvs0. Its chains match those sets (a set
 * cannot be destroyed while a rule uses it) and its virtual servers are told apart by them, so without
 * either there is nothing of ipvs mode to remove. A failed read counts as "maybe": the full removal runs.
 */
async function ipvsModeWasHere(ex: Omit<ModeTakeoverExecutors, 'iptables'>): Promise<boolean> {
  try {
    if ((await ex.ipset.list()).some((set) => IPVS_SET_NAMES.has(set.name))) return true;
    return (await readDummyLink(ex.ip, KUBE_IPVS_DUMMY_DEVICE)).exists;
  } catch {
    return true;
  }
}

/**
 * The syncers' hook: removeOtherModeLeftovers as a function that rejects when something was left (the
 * syncer logs it and calls again after its next sync).
 */
export function otherModeLeftoversHook(mode: ProxyMode, ex: ModeTakeoverExecutors): () => Promise<void> {
  return async () => {
    const report = await removeOtherModeLeftovers(mode, ex);
    if (report.errors.length > 0) throw new Error(report.errors.join('; '));
  };
}

/**
 * A syncer's side of the hook: after each successful sync, until the removal has succeeded once (the other
 * mode's state is only removed once this mode's is in place). A failure is logged and tried again after the
 * next sync; it never fails the sync, whose rules are in place either way.
 */
export class LeftoversAfterFirstSync {
  private done = false;

  constructor(
    private readonly remove: (() => Promise<void>) | undefined,
    private readonly logger: Logger,
  ) {}

  async afterSuccessfulSync(): Promise<void> {
    if (this.done || !this.remove) return;
    try {
      await this.remove();
      this.done = true;
    } catch (err) {
      this.logger.error(
        { err: err instanceof Error ? err.message : String(err) },
        'removing the other proxy mode’s leftovers failed; tried again after the next sync',
      );
    }
  }
}
