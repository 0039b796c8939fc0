// ipvs mode: desired IpvsRuleSet × observed node state → the few operations that get there. Pure.
//
// "Observed" is either what the syncer last applied (partial syncs) or what the kernel shows
// (ipvsadm-save -n, ipset save, the addresses of kube-ipvs0: full syncs), in one shape, IpvsNodeState.
// The plan is three batches, one command each: `ipset restore -exist` lines, `ipvsadm -R` lines and
// `ip -batch` address changes. Order inside them keeps traffic flowing: a set gains its new entries
// before it loses the old ones (and a set that changes almost whole is filled as a temporary set and
// swapped in), a virtual server exists before its real servers and they before its address is bound.
//
// Real servers that the kernel has but the desired state no longer lists are the syncer's to judge
// (graceful termination): leftoverRealServers() names them, and the plan keeps, zero-weights or
// deletes each as told.
import { createHash } from 'node:crypto';
import { canonicalIpsetEntry } from '../dataplane/ipset.js';
import type { InterfaceAddress, IpsetEntrySet } from '../dataplane/interfaces.js';
import { canonicalIP, cidrContains } from '../model/ip.js';
import {
  ipsetCreateLine,
  ipvsHostPort,
  ipvsServiceArgs,
  type Ipset,
  type IpvsProtocol,
  type IpvsRuleSet,
  type ParsedIpvsTable,
} from '../render/ipvs/index.js';

export interface NodeRealServer {
  address: string;
  port: number;
  weight: number;
}

export interface NodeVirtualServer {
  protocol: IpvsProtocol;
  address: string;
  port: number;
  scheduler: string;
  flags: readonly string[];
  persistenceTimeoutSeconds: number | null;
  /** By "address:port" ("[v6]:port"). */
  realServers: Map<string, NodeRealServer>;
}

/** IPVS table, portway's sets and the dummy link's addresses of one family, comparable. */
export interface IpvsNodeState {
  /** By "TCP 10.96.0.10:80" (virtualServerKey). */
  virtualServers: Map<string, NodeVirtualServer>;
  /** Set name → its entries in ipset's printed form; only the sets of the mode. */
  sets: Map<string, Set<string>>;
  /** Bare addresses bound to the dummy link. */
  addresses: Set<string>;
}

export function virtualServerKey(vs: { protocol: string; address: string; port: number }): string {
  return `${vs.protocol} ${ipvsHostPort(vs.address, vs.port)}`;
}

function setFamily(set: Ipset): 'inet' | 'inet6' {
  return set.family ?? 'inet';
}

function realServersByKey(servers: readonly NodeRealServer[]): Map<string, NodeRealServer> {
  const out = new Map<string, NodeRealServer>();
  for (const r of servers)
    out.set(ipvsHostPort(r.address, r.port), { address: r.address, port: r.port, weight: r.weight });
  return out;
}

/** The desired rule set as node state (set entries in ipset's printed form). */
export function nodeStateOfRuleSet(rs: IpvsRuleSet): IpvsNodeState {
  const virtualServers = new Map<string, NodeVirtualServer>();
  for (const vs of rs.virtualServers) {
    const realServers = realServersByKey(vs.realServers);
    virtualServers.set(virtualServerKey(vs), {
      protocol: vs.protocol,
      address: vs.address,
      port: vs.port,
      scheduler: vs.scheduler,
      flags: vs.flags,
      persistenceTimeoutSeconds: vs.persistenceTimeoutSeconds,
      realServers,
    });
  }
  const sets = new Map<string, Set<string>>();
  for (const set of rs.ipsets)
    sets.set(
      set.name,
      new Set(set.entries.map((e) => canonicalIpsetEntry(set.type, setFamily(set), e.value))),
    );
  return { virtualServers, sets, addresses: new Set(rs.boundAddresses.map((a) => canonicalIP(a) ?? a)) };
}

/**
 * What the kernel holds of one family: its virtual servers (of that family), the listed sets that
 * are the mode's (by the desired rule set's names) and the addresses on the dummy link.
 */
export function nodeStateOfKernel(
  desired: IpvsRuleSet,
  table: ParsedIpvsTable,
  sets: readonly IpsetEntrySet[],
  addresses: readonly InterfaceAddress[],
): IpvsNodeState {
  const v6 = desired.family === 'IPv6';
  const virtualServers = new Map<string, NodeVirtualServer>();
  for (const vs of table.virtualServers) {
    if (vs.address.includes(':') !== v6) continue;
    const realServers = realServersByKey(vs.realServers);
    virtualServers.set(virtualServerKey(vs), { ...vs, realServers });
  }
  const wanted = new Map(desired.ipsets.map((s) => [s.name, s]));
  const kernelSets = new Map<string, Set<string>>();
  for (const s of sets) {
    const def = wanted.get(s.name);
    if (!def) continue;
    if (s.type !== def.type)
      throw new Error(
        `ipset ${s.name} exists with type ${s.type}; ipvs mode needs ${def.type} (remove the set, or run portway cleanup)`,
      );
    kernelSets.set(s.name, new Set(s.entries.map((e) => canonicalIpsetEntry(def.type, setFamily(def), e))));
  }
  const bound = new Set<string>();
  for (const a of addresses) if ((a.family === 'IPv6') === v6) bound.add(canonicalIP(a.address) ?? a.address);
  return { virtualServers, sets: kernelSets, addresses: bound };
}

/** A real server the kernel has that the desired state does not (its virtual server stays). */
export interface LeftoverRealServer {
  virtualServer: string;
  protocol: IpvsProtocol;
  address: string;
  port: number;
  /** "address:port" of the real server. */
  server: string;
  weight: number;
}

export function leftoverRealServers(desired: IpvsNodeState, observed: IpvsNodeState): LeftoverRealServer[] {
  const out: LeftoverRealServer[] = [];
  for (const [key, want] of desired.virtualServers) {
    const have = observed.virtualServers.get(key);
    if (!have) continue;
    for (const [server, rs] of have.realServers) {
      if (want.realServers.has(server)) continue;
      out.push({
        virtualServer: key,
        protocol: want.protocol,
        address: want.address,
        port: want.port,
        server,
        weight: rs.weight,
      });
    }
  }
  return out;
}

export interface IpvsPlanOptions {
  /**
   * Leftover real servers (virtualServer + ' ' + server) to keep, at weight 0, while their connections
   * drain. Every other leftover is deleted.
   */
  draining?: ReadonlySet<string>;
  /** Virtual servers in these CIDRs are not portway's: never deleted (ipvs.excludeCIDRs). */
  excludeCIDRs?: readonly string[];
}

export interface IpvsPlanCounts {
  virtualServersAdded: number;
  virtualServersEdited: number;
  virtualServersDeleted: number;
  realServersAdded: number;
  /** Weight changes, zero-weighting of draining real servers included. */
  realServersEdited: number;
  realServersDeleted: number;
  setEntriesAdded: number;
  setEntriesDeleted: number;
  setsCreated: number;
  /** Sets rewritten whole as a temporary set and swapped in. */
  setsSwapped: number;
  addressesBound: number;
  addressesUnbound: number;
}

export const emptyIpvsPlanCounts = (): IpvsPlanCounts => ({
  virtualServersAdded: 0,
  virtualServersEdited: 0,
  virtualServersDeleted: 0,
  realServersAdded: 0,
  realServersEdited: 0,
  realServersDeleted: 0,
  setEntriesAdded: 0,
  setEntriesDeleted: 0,
  setsCreated: 0,
  setsSwapped: 0,
  addressesBound: 0,
  addressesUnbound: 0,
});

export interface IpvsPlan {
  /** `ipset restore -exist` input; '' when no set changes. */
  ipsetPayload: string;
  /** `ipvsadm -R` input; '' when IPVS does not change. */
  ipvsPayload: string;
  bind: string[];
  unbind: string[];
  counts: IpvsPlanCounts;
}

export const drainKey = (virtualServer: string, server: string): string => `${virtualServer} ${server}`;

/** The temporary set a rebuilt set is filled as (≤ 31 characters, one per set name). */
export function temporarySetName(name: string): string {
  return `PORTWAY-TMP-${createHash('sha256').update(name).digest('hex').slice(0, 12).toUpperCase()}`;
}

function inAnyCIDR(address: string, cidrs: readonly string[]): boolean {
  return cidrs.some((c) => cidrContains(c, address));
}

/** The smallest batches from `observed` to `desired` (see the file comment). */
export function planIpvsSync(
  rs: IpvsRuleSet,
  desired: IpvsNodeState,
  observed: IpvsNodeState,
  opts: IpvsPlanOptions = {},
): IpvsPlan {
  const counts = emptyIpvsPlanCounts();
  const draining = opts.draining ?? new Set<string>();

  // ── ipsets: creates, then per set either its additions (and later its deletions) or a swap ──
  const setHead: string[] = [];
  const setAdds: string[] = [];
  const setDels: string[] = [];
  for (const set of rs.ipsets) {
    const want = desired.sets.get(set.name) ?? new Set<string>();
    const have = observed.sets.get(set.name);
    if (!have) {
      setHead.push(ipsetCreateLine(set));
      counts.setsCreated++;
      for (const e of want) setAdds.push(`add ${set.name} ${e}`);
      counts.setEntriesAdded += want.size;
      continue;
    }
    const adds = [...want].filter((e) => !have.has(e));
    const dels = [...have].filter((e) => !want.has(e));
    if (dels.length > 0 && adds.length + dels.length > want.size) {
      // Most of the set changes: writing it whole is the shorter payload, and filling a temporary set
      // then swapping it in means no moment shows a set with some old entries gone and new ones missing.
      const tmp = temporarySetName(set.name);
      setAdds.push(ipsetCreateLine(set, tmp), `flush ${tmp}`);
      for (const e of want) setAdds.push(`add ${tmp} ${e}`);
      setAdds.push(`swap ${tmp} ${set.name}`, `destroy ${tmp}`);
      counts.setsSwapped++;
      counts.setEntriesAdded += adds.length;
      counts.setEntriesDeleted += dels.length;
      continue;
    }
    for (const e of adds) setAdds.push(`add ${set.name} ${e}`);
    for (const e of dels) setDels.push(`del ${set.name} ${e}`);
    counts.setEntriesAdded += adds.length;
    counts.setEntriesDeleted += dels.length;
  }
  const ipsetLines = [...setHead, ...setAdds, ...setDels];

  // ── IPVS: add/edit virtual servers, add/edit real servers, then delete ──
  const vsLines: string[] = [];
  const rsLines: string[] = [];
  const delLines: string[] = [];
  const vsDelLines: string[] = [];
  for (const [key, want] of desired.virtualServers) {
    const service = ipvsServiceArgs(want);
    const have = observed.virtualServers.get(key);
    const schedule = (): string => {
      let s = ` -s ${want.scheduler}`;
      if (want.persistenceTimeoutSeconds !== null) s += ` -p ${want.persistenceTimeoutSeconds}`;
      if (want.flags.length > 0) s += ` -b ${want.flags.join(',')}`;
      return s;
    };
    if (!have) {
      vsLines.push(`-A ${service}${schedule()}`);
      counts.virtualServersAdded++;
    } else if (
      have.scheduler !== want.scheduler ||
      have.persistenceTimeoutSeconds !== want.persistenceTimeoutSeconds ||
      [...have.flags].sort().join(',') !== [...want.flags].sort().join(',')
    ) {
      vsLines.push(`-E ${service}${schedule()}`);
      counts.virtualServersEdited++;
    }
    for (const [server, r] of want.realServers) {
      const current = have?.realServers.get(server);
      if (!current) {
        rsLines.push(`-a ${service} -r ${server} -m -w ${r.weight}`);
        counts.realServersAdded++;
      } else if (current.weight !== r.weight) {
        rsLines.push(`-e ${service} -r ${server} -m -w ${r.weight}`);
        counts.realServersEdited++;
      }
    }
    for (const [server, r] of have?.realServers ?? []) {
      if (want.realServers.has(server)) continue;
      if (draining.has(drainKey(key, server))) {
        if (r.weight !== 0) {
          rsLines.push(`-e ${service} -r ${server} -m -w 0`);
          counts.realServersEdited++;
        }
      } else {
        delLines.push(`-d ${service} -r ${server}`);
        counts.realServersDeleted++;
      }
    }
  }
  for (const [key, have] of observed.virtualServers) {
    if (desired.virtualServers.has(key)) continue;
    if (opts.excludeCIDRs && inAnyCIDR(have.address, opts.excludeCIDRs)) continue;
    vsDelLines.push(`-D ${ipvsServiceArgs(have)}`);
    counts.virtualServersDeleted++;
  }
  const ipvsLines = [...vsLines, ...rsLines, ...delLines, ...vsDelLines];

  const bind = [...desired.addresses].filter((a) => !observed.addresses.has(a));
  const unbind = [...observed.addresses].filter((a) => !desired.addresses.has(a));
  counts.addressesBound = bind.length;
  counts.addressesUnbound = unbind.length;
  const text = (lines: string[]): string => (lines.length === 0 ? '' : lines.join('\n') + '\n');
  return { ipsetPayload: text(ipsetLines), ipvsPayload: text(ipvsLines), bind, unbind, counts };
}

/**
 * The state after a plan was applied in full: `desired`, plus the draining leftovers at weight 0
 * and the excluded virtual servers left alone. What the next partial sync diffs against.
 */
export function nodeStateAfterPlan(
  desired: IpvsNodeState,
  observed: IpvsNodeState,
  opts: IpvsPlanOptions = {},
): IpvsNodeState {
  const draining = opts.draining ?? new Set<string>();
  const virtualServers = new Map<string, NodeVirtualServer>();
  for (const [key, want] of desired.virtualServers) {
    const have = observed.virtualServers.get(key);
    let realServers = want.realServers;
    for (const [server, r] of have?.realServers ?? []) {
      if (want.realServers.has(server) || !draining.has(drainKey(key, server))) continue;
      if (realServers === want.realServers) realServers = new Map(want.realServers);
      realServers.set(server, { ...r, weight: 0 });
    }
    virtualServers.set(key, realServers === want.realServers ? want : { ...want, realServers });
  }
  for (const [key, have] of observed.virtualServers)
    if (!desired.virtualServers.has(key) && opts.excludeCIDRs && inAnyCIDR(have.address, opts.excludeCIDRs))
      virtualServers.set(key, have);
  return { virtualServers, sets: desired.sets, addresses: desired.addresses };
}

/**
 * How `actual` (the kernel) differs from `expected` (what was applied last), one line per difference,
 * for the drift report of a full sync. Virtual servers in excludeCIDRs are not portway's.
 */
export function nodeStateDifferences(
  expected: IpvsNodeState,
  actual: IpvsNodeState,
  excludeCIDRs: readonly string[] = [],
): string[] {
  const out: string[] = [];
  for (const [key, want] of expected.virtualServers) {
    const have = actual.virtualServers.get(key);
    if (!have) {
      out.push(`virtual server ${key} missing`);
      continue;
    }
    if (
      have.scheduler !== want.scheduler ||
      have.persistenceTimeoutSeconds !== want.persistenceTimeoutSeconds ||
      [...have.flags].sort().join(',') !== [...want.flags].sort().join(',')
    )
      out.push(`virtual server ${key} scheduling changed`);
    for (const [server, r] of want.realServers) {
      const got = have.realServers.get(server);
      if (!got) out.push(`real server ${server} of ${key} missing`);
      else if (got.weight !== r.weight)
        out.push(`real server ${server} of ${key} has weight ${got.weight}, not ${r.weight}`);
    }
    for (const server of have.realServers.keys())
      if (!want.realServers.has(server)) out.push(`real server ${server} of ${key} not portway's`);
  }
  for (const [key, have] of actual.virtualServers)
    if (!expected.virtualServers.has(key) && !inAnyCIDR(have.address, excludeCIDRs))
      out.push(`virtual server ${key} not portway's`);
  for (const [name, want] of expected.sets) {
    const have = actual.sets.get(name);
    if (!have) {
      out.push(`ipset ${name} missing`);
      continue;
    }
    const missing = [...want].filter((e) => !have.has(e)).length;
    const extra = [...have].filter((e) => !want.has(e)).length;
    if (missing + extra > 0) out.push(`ipset ${name}: ${missing} entries missing, ${extra} not portway's`);
  }
  for (const a of expected.addresses)
    if (!actual.addresses.has(a)) out.push(`address ${a} not bound to the dummy link`);
  for (const a of actual.addresses)
    if (!expected.addresses.has(a)) out.push(`address ${a} on the dummy link not portway's`);
  return out;
}
