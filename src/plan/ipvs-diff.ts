// What would change on a node in ipvs mode, between two renderings: per Service port, the IPVS virtual
// servers, their real servers (weight changes included), ipset entries and kube-ipvs0 addresses added
// or removed; the mode's constant iptables rules (which change only when a set fills or empties) are
// diffed as iptables mode's rules are, node-wide. Pure. Escaping and the markdown frame are shared
// with the iptables diff (src/plan/diff.ts), so a name cannot rewrite either comment.
import { printableLine } from '../model/names.js';
import { ipvsHostPort, type IpvsRuleSet, type IpvsVirtualServer } from '../render/ipvs/index.js';
import {
  chainChangeDiffLines,
  describeChange,
  diffRuleSets,
  markdownDetails,
  markdownSkipped,
  NODE_WIDE,
  skippedLine,
  type ChainChange,
  type SkippedObject,
} from './diff.js';
import { htmlText, markdownCode } from './markdown.js';

/** A virtual server as `ipvsadm -L -n` names it: "TCP 10.96.0.10:80". */
export type VirtualServerName = string;

export interface VirtualServerDescription {
  family: string;
  virtualServer: VirtualServerName;
  /** "rr", "sh (sh-port)", "rr, persistent 10800 s". */
  scheduling: string;
}

export interface RealServerChange {
  family: string;
  virtualServer: VirtualServerName;
  /** "10.244.1.2:8080" / "[fd00::2]:8080". */
  realServer: string;
  weight: number;
}

export interface WeightChange {
  family: string;
  virtualServer: VirtualServerName;
  realServer: string;
  from: number;
  to: number;
}

export interface SchedulingChange {
  family: string;
  virtualServer: VirtualServerName;
  from: string;
  to: string;
}

export interface SetEntryChange {
  family: string;
  set: string;
  entry: string;
}

export interface AddressChange {
  family: string;
  address: string;
}

/** Everything that changes for one Service port ("ns/name:port/tcp"), or NODE_WIDE. */
export interface IpvsServicePortChanges {
  owner: string;
  virtualServersAdded: VirtualServerDescription[];
  virtualServersRemoved: VirtualServerDescription[];
  schedulingChanged: SchedulingChange[];
  /** Real servers of virtual servers that exist on both sides (a new virtual server brings its own). */
  realServersAdded: RealServerChange[];
  realServersRemoved: RealServerChange[];
  weightsChanged: WeightChange[];
  setEntriesAdded: SetEntryChange[];
  setEntriesRemoved: SetEntryChange[];
  /** Addresses bound on / removed from kube-ipvs0. */
  addressesBound: AddressChange[];
  addressesUnbound: AddressChange[];
  /** NODE_WIDE only: the constant iptables rules of the mode. */
  iptablesChanges: ChainChange[];
}

export interface IpvsDiff {
  groups: IpvsServicePortChanges[];
  summary: {
    servicePortsAffected: number;
    virtualServersAdded: number;
    virtualServersRemoved: number;
    virtualServersChanged: number;
    realServersAdded: number;
    realServersRemoved: number;
    weightsChanged: number;
    setEntriesAdded: number;
    setEntriesRemoved: number;
    addressesBound: number;
    addressesUnbound: number;
    iptablesRulesAdded: number;
    iptablesRulesRemoved: number;
  };
}

function emptyGroup(owner: string): IpvsServicePortChanges {
  return {
    owner,
    virtualServersAdded: [],
    virtualServersRemoved: [],
    schedulingChanged: [],
    realServersAdded: [],
    realServersRemoved: [],
    weightsChanged: [],
    setEntriesAdded: [],
    setEntriesRemoved: [],
    addressesBound: [],
    addressesUnbound: [],
    iptablesChanges: [],
  };
}

export function virtualServerName(vs: Pick<IpvsVirtualServer, 'protocol' | 'address' | 'port'>): string {
  return `${vs.protocol} ${ipvsHostPort(vs.address, vs.port)}`;
}

function scheduling(vs: IpvsVirtualServer): string {
  let text = vs.scheduler;
  if (vs.flags.length > 0) text += ` (${vs.flags.join(',')})`;
  if (vs.persistenceTimeoutSeconds !== null) text += `, persistent ${vs.persistenceTimeoutSeconds} s`;
  return text;
}

/**
 * Owners of an address: the service ports with a virtual server on it that binds it (not NodePorts,
 * whose addresses are the node's own). The set member of KUBE-IPVS-IPS is owned the same way.
 */
function addressOwners(sets: readonly IpvsRuleSet[]): Map<string, Set<string>> {
  const owners = new Map<string, Set<string>>();
  for (const rs of sets) {
    for (const vs of rs.virtualServers) {
      if (vs.kind === 'nodePort') continue;
      let o = owners.get(vs.address);
      if (o === undefined) owners.set(vs.address, (o = new Set()));
      o.add(vs.owner);
    }
  }
  return owners;
}

/** Compare two ipvs renderings (any number of families on each side, matched by family). */
export function diffIpvsRuleSets(before: readonly IpvsRuleSet[], after: readonly IpvsRuleSet[]): IpvsDiff {
  const groups = new Map<string, IpvsServicePortChanges>();
  const group = (owner: string): IpvsServicePortChanges => {
    let g = groups.get(owner);
    if (g === undefined) groups.set(owner, (g = emptyGroup(owner)));
    return g;
  };
  const ownersOfAddress = addressOwners([...before, ...after]);
  const forAddress = (address: string, each: (g: IpvsServicePortChanges) => void): void => {
    const owners = ownersOfAddress.get(address);
    if (owners === undefined || owners.size === 0) each(group(NODE_WIDE));
    else for (const owner of [...owners].sort()) each(group(owner));
  };

  const families = [...new Set([...before, ...after].map((rs) => rs.family))];
  for (const family of families) {
    const o = before.find((rs) => rs.family === family);
    const n = after.find((rs) => rs.family === family);

    // Virtual servers, keyed by protocol, address and port (as IPVS keys them).
    const oldVS = new Map((o?.virtualServers ?? []).map((vs) => [virtualServerName(vs), vs]));
    const newVS = new Map((n?.virtualServers ?? []).map((vs) => [virtualServerName(vs), vs]));
    for (const [name, vs] of oldVS) {
      if (!newVS.has(name))
        group(vs.owner).virtualServersRemoved.push({
          family,
          virtualServer: name,
          scheduling: scheduling(vs),
        });
    }
    for (const [name, vs] of newVS) {
      const was = oldVS.get(name);
      const g = group(vs.owner);
      if (was === undefined) {
        g.virtualServersAdded.push({ family, virtualServer: name, scheduling: scheduling(vs) });
        for (const r of vs.realServers)
          g.realServersAdded.push({
            family,
            virtualServer: name,
            realServer: ipvsHostPort(r.address, r.port),
            weight: r.weight,
          });
        continue;
      }
      if (scheduling(was) !== scheduling(vs))
        g.schedulingChanged.push({ family, virtualServer: name, from: scheduling(was), to: scheduling(vs) });
      const oldRS = new Map(was.realServers.map((r) => [ipvsHostPort(r.address, r.port), r.weight]));
      const newRS = new Map(vs.realServers.map((r) => [ipvsHostPort(r.address, r.port), r.weight]));
      for (const [rs, weight] of oldRS)
        if (!newRS.has(rs))
          g.realServersRemoved.push({ family, virtualServer: name, realServer: rs, weight });
      for (const [rs, weight] of newRS) {
        const from = oldRS.get(rs);
        if (from === undefined)
          g.realServersAdded.push({ family, virtualServer: name, realServer: rs, weight });
        else if (from !== weight)
          g.weightsChanged.push({ family, virtualServer: name, realServer: rs, from, to: weight });
      }
    }
    // A removed virtual server takes its real servers with it: listed for the reviewer, under the same owner.
    for (const [name, vs] of oldVS) {
      if (newVS.has(name)) continue;
      for (const r of vs.realServers)
        group(vs.owner).realServersRemoved.push({
          family,
          virtualServer: name,
          realServer: ipvsHostPort(r.address, r.port),
          weight: r.weight,
        });
    }

    // Set entries: a member counts as changed only when it enters or leaves the set (what the kernel sees).
    const setNames = [...new Set([...(o?.ipsets ?? []), ...(n?.ipsets ?? [])].map((s) => s.name))];
    for (const set of setNames) {
      const oldEntries = new Map(
        (o?.ipsets.find((s) => s.name === set)?.entries ?? []).map((e) => [e.value, e.owners]),
      );
      const newEntries = new Map(
        (n?.ipsets.find((s) => s.name === set)?.entries ?? []).map((e) => [e.value, e.owners]),
      );
      const record = (
        entry: string,
        owners: readonly string[],
        list: 'setEntriesAdded' | 'setEntriesRemoved',
      ): void => {
        const change = { family, set, entry };
        // KUBE-IPVS-IPS members are the bound addresses: owned by the service ports that bind them.
        if (owners.length === 1 && owners[0] === (n ?? o)?.dummyDevice)
          forAddress(entry, (g) => g[list].push(change));
        else if (owners.length === 0) group(NODE_WIDE)[list].push(change);
        else for (const owner of owners) group(owner)[list].push(change);
      };
      for (const [entry, owners] of oldEntries)
        if (!newEntries.has(entry)) record(entry, owners, 'setEntriesRemoved');
      for (const [entry, owners] of newEntries)
        if (!oldEntries.has(entry)) record(entry, owners, 'setEntriesAdded');
    }

    const oldAddresses = new Set(o?.boundAddresses ?? []);
    const newAddresses = new Set(n?.boundAddresses ?? []);
    for (const address of oldAddresses)
      if (!newAddresses.has(address))
        forAddress(address, (g) => g.addressesUnbound.push({ family, address }));
    for (const address of newAddresses)
      if (!oldAddresses.has(address)) forAddress(address, (g) => g.addressesBound.push({ family, address }));
  }

  // The constant rules name no Service: every change of theirs is node-wide.
  const rules = diffRuleSets(
    before.map((rs) => rs.iptables),
    after.map((rs) => rs.iptables),
  );
  for (const g of rules.groups) group(NODE_WIDE).iptablesChanges.push(...g.changes);

  const sorted = [...groups.values()]
    .filter((g) => changeCount(g) > 0)
    .sort((a, b) =>
      a.owner === NODE_WIDE
        ? 1
        : b.owner === NODE_WIDE
          ? -1
          : a.owner < b.owner
            ? -1
            : a.owner > b.owner
              ? 1
              : 0,
    );
  const sum = (f: (g: IpvsServicePortChanges) => number): number => sorted.reduce((s, g) => s + f(g), 0);
  return {
    groups: sorted,
    summary: {
      servicePortsAffected: sorted.filter((g) => g.owner !== NODE_WIDE).length,
      virtualServersAdded: sum((g) => g.virtualServersAdded.length),
      virtualServersRemoved: sum((g) => g.virtualServersRemoved.length),
      virtualServersChanged: sum((g) => g.schedulingChanged.length),
      realServersAdded: sum((g) => g.realServersAdded.length),
      realServersRemoved: sum((g) => g.realServersRemoved.length),
      weightsChanged: sum((g) => g.weightsChanged.length),
      setEntriesAdded: sum((g) => g.setEntriesAdded.length),
      setEntriesRemoved: sum((g) => g.setEntriesRemoved.length),
      addressesBound: sum((g) => g.addressesBound.length),
      addressesUnbound: sum((g) => g.addressesUnbound.length),
      iptablesRulesAdded: sum((g) => g.iptablesChanges.reduce((s, c) => s + c.rulesAdded.length, 0)),
      iptablesRulesRemoved: sum((g) => g.iptablesChanges.reduce((s, c) => s + c.rulesRemoved.length, 0)),
    },
  };
}

function changeCount(g: IpvsServicePortChanges): number {
  return (
    g.virtualServersAdded.length +
    g.virtualServersRemoved.length +
    g.schedulingChanged.length +
    g.realServersAdded.length +
    g.realServersRemoved.length +
    g.weightsChanged.length +
    g.setEntriesAdded.length +
    g.setEntriesRemoved.length +
    g.addressesBound.length +
    g.addressesUnbound.length +
    g.iptablesChanges.length
  );
}

export function ipvsDiffIsEmpty(d: IpvsDiff): boolean {
  return d.groups.length === 0;
}

export function formatIpvsSummaryLine(d: IpvsDiff): string {
  const s = d.summary;
  if (ipvsDiffIsEmpty(d)) return 'No changes: the nodes keep the same virtual servers, sets and rules.';
  // Only what changes, so the line stays readable: "2 real server(s) added, 1 weight change(s)".
  const counts: Array<[number, string]> = [
    [s.virtualServersAdded, 'virtual server(s) added'],
    [s.virtualServersRemoved, 'virtual server(s) removed'],
    [s.virtualServersChanged, 'virtual server(s) rescheduled'],
    [s.realServersAdded, 'real server(s) added'],
    [s.realServersRemoved, 'real server(s) removed'],
    [s.weightsChanged, 'weight change(s)'],
    [s.setEntriesAdded, 'set entr(ies) added'],
    [s.setEntriesRemoved, 'set entr(ies) removed'],
    [s.addressesBound, 'address(es) bound'],
    [s.addressesUnbound, 'address(es) unbound'],
    [s.iptablesRulesAdded, 'iptables rule(s) added'],
    [s.iptablesRulesRemoved, 'iptables rule(s) removed'],
  ];
  const changed = counts.filter(([n]) => n > 0).map(([n, what]) => `${n} ${what}`);
  return `${s.servicePortsAffected} service port(s) affected: ${changed.join(', ')}.`;
}

/** One group's IPVS, set and address changes as diff lines ("- " removed, "+ " added, "~ " changed). */
function ipvsLines(g: IpvsServicePortChanges): string[] {
  const lines: string[] = [];
  for (const v of g.virtualServersRemoved)
    lines.push(`- virtual server ${v.virtualServer} ${v.scheduling} (${v.family})`);
  for (const v of g.virtualServersAdded)
    lines.push(`+ virtual server ${v.virtualServer} ${v.scheduling} (${v.family})`);
  for (const c of g.schedulingChanged)
    lines.push(`~ virtual server ${c.virtualServer}: ${c.from} -> ${c.to} (${c.family})`);
  for (const r of g.realServersRemoved)
    lines.push(`- real server ${r.realServer} weight ${r.weight} of ${r.virtualServer}`);
  for (const r of g.realServersAdded)
    lines.push(`+ real server ${r.realServer} weight ${r.weight} of ${r.virtualServer}`);
  for (const w of g.weightsChanged)
    lines.push(
      `~ real server ${w.realServer} of ${w.virtualServer}: weight ${w.from} -> ${w.to}${w.to === 0 ? ' (terminating: no new connections)' : ''}`,
    );
  for (const e of g.setEntriesRemoved) lines.push(`- set ${e.set} entry ${e.entry}`);
  for (const e of g.setEntriesAdded) lines.push(`+ set ${e.set} entry ${e.entry}`);
  for (const a of g.addressesUnbound) lines.push(`- address ${a.address} on kube-ipvs0`);
  for (const a of g.addressesBound) lines.push(`+ address ${a.address} on kube-ipvs0`);
  return lines;
}

export function formatIpvsDiffText(d: IpvsDiff, skipped: readonly SkippedObject[] = []): string {
  const lines: string[] = [];
  for (const g of d.groups) {
    lines.push(g.owner === NODE_WIDE ? NODE_WIDE : `Service ${printableLine(g.owner)}`);
    for (const line of ipvsLines(g)) lines.push(`  ${printableLine(line)}`);
    // The constant rules read as in the iptables diff.
    for (const c of g.iptablesChanges) {
      lines.push(`  ${describeChange(c)}`);
      for (const r of c.rulesRemoved) lines.push(`    - ${printableLine(r)}`);
      for (const r of c.rulesAdded) lines.push(`    + ${printableLine(r)}`);
    }
  }
  lines.push(formatIpvsSummaryLine(d));
  if (skipped.length > 0) lines.push(`${skippedLine(skipped)} (listed on stderr)`);
  return lines.join('\n') + '\n';
}

/** The pull-request comment for ipvs mode: a table per Service port, then each port's changes collapsed. */
export function formatIpvsDiffMarkdown(d: IpvsDiff, skipped: readonly SkippedObject[] = []): string {
  const out: string[] = [
    '### portway (ipvs mode): what would change on the nodes',
    '',
    `**${formatIpvsSummaryLine(d)}**`,
    '',
    ...markdownSkipped(skipped),
  ];
  if (ipvsDiffIsEmpty(d)) return out.join('\n') + '\n';
  out.push(
    '| Service port | virtual servers +/− | real servers +/− | weights changed | set entries +/− | addresses +/− | iptables rules +/− |',
    '|---|---|---|---|---|---|---|',
  );
  for (const g of d.groups) {
    const owner = g.owner === NODE_WIDE ? htmlText(NODE_WIDE) : markdownCode(g.owner);
    const pm = (plus: number, minus: number): string => `+${plus} / −${minus}`;
    const rulesPlus = g.iptablesChanges.reduce((s, c) => s + c.rulesAdded.length, 0);
    const rulesMinus = g.iptablesChanges.reduce((s, c) => s + c.rulesRemoved.length, 0);
    out.push(
      `| ${owner} | ${pm(g.virtualServersAdded.length, g.virtualServersRemoved.length)} | ` +
        `${pm(g.realServersAdded.length, g.realServersRemoved.length)} | ${g.weightsChanged.length} | ` +
        `${pm(g.setEntriesAdded.length, g.setEntriesRemoved.length)} | ` +
        `${pm(g.addressesBound.length, g.addressesUnbound.length)} | ${pm(rulesPlus, rulesMinus)} |`,
    );
  }
  out.push('');
  for (const g of d.groups)
    out.push(
      ...markdownDetails(g.owner, [...ipvsLines(g), ...g.iptablesChanges.flatMap(chainChangeDiffLines)]),
    );
  return out.join('\n');
}
