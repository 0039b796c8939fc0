// `portway doctor` in ipvs mode: is IPVS in the kernel, and where do the live virtual servers, real
// servers, set entries and kube-ipvs0 addresses differ from what the cluster asks for. diagnoseIpvs is
// pure (it judges what readIpvsForDoctor read); each difference is named — a missing or extra virtual
// server, real server, set entry or address — so that the operator knows what exactly is wrong.
// ipvs mode's constant iptables rules and sysctls go through doctor's usual rule and sysctl checks.
import type { Config } from '../config/config.js';
import type { IpsetEntrySet } from '../dataplane/interfaces.js';
import {
  isIpvsUnavailable,
  virtualServerKey,
  type IpvsAvailability,
  type IpvsLiveReader,
  type IpvsLiveState,
} from '../dataplane/ipvs-live.js';
import { readIpvsLiveState } from '../dataplane/ipvs-live.js';
import { ARP_ANNOUNCE, ARP_IGNORE, strictArpWanted } from '../l2/strict-arp.js';
import type { ClusterState, IPFamily } from '../model/cluster-state.js';
import { canonicalIP, ipFamilyOf } from '../model/ip.js';
import {
  ipvsRenderOptionsFromConfig,
  renderIpvs,
  type IpvsRuleSet,
  type ParsedVirtualServer,
} from '../render/ipvs/index.js';
import { ownedVirtualServers } from '../sync/mode-takeover.js';
import type { WantedSysctl } from '../sync/sysctls.js';
import type { DoctorFinding } from './doctor.js';

export interface IpvsDoctorInputs {
  /** One rule set per family the node has addresses of. */
  desired: IpvsRuleSet[];
  availability: IpvsAvailability;
  /** null when IPVS is unavailable (nothing to compare). */
  live: IpvsLiveState | null;
}

/** Render ipvs mode for each family of the node. Pure. */
export function renderIpvsFamilies(
  state: ClusterState,
  config: Config,
  families: readonly IPFamily[],
  nodeIPs: readonly string[],
): IpvsRuleSet[] {
  return families.map((family) =>
    renderIpvs(
      state,
      ipvsRenderOptionsFromConfig(
        config,
        family,
        nodeIPs.filter((ip) => ipFamilyOf(ip) === family),
      ),
    ),
  );
}

/** The sysctls ipvs mode needs (each key once), strictARP's included whenever the node sets them. Pure. */
export function ipvsWantedSysctls(
  ruleSets: readonly IpvsRuleSet[],
  config: Pick<Config, 'mode' | 'ipvs'>,
): WantedSysctl[] {
  const out = new Map<string, WantedSysctl>();
  for (const rs of ruleSets)
    for (const s of rs.sysctls)
      if (!out.has(s.key)) out.set(s.key, { key: s.key, value: s.value, why: s.reason });
  if (strictArpWanted(config)) {
    if (!out.has(ARP_IGNORE))
      out.set(ARP_IGNORE, {
        key: ARP_IGNORE,
        value: '1',
        why: 'strictARP: only the owner of a kube-ipvs0 address answers ARP for it',
      });
    if (!out.has(ARP_ANNOUNCE))
      out.set(ARP_ANNOUNCE, {
        key: ARP_ANNOUNCE,
        value: '2',
        why: 'strictARP: never announce kube-ipvs0 addresses',
      });
  }
  return [...out.values()];
}

/** Read what doctor compares; IPVS missing from the kernel is an answer, not an error. */
export async function readIpvsForDoctor(reader: IpvsLiveReader): Promise<Omit<IpvsDoctorInputs, 'desired'>> {
  const availability = await reader.checkIpvsAvailable();
  if (!availability.available) return { availability, live: null };
  try {
    return { availability, live: await readIpvsLiveState(reader) };
  } catch (err) {
    if (isIpvsUnavailable(err))
      return { availability: { available: false, reason: (err as Error).message }, live: null };
    throw err;
  }
}

function rsKey(address: string, port: number): string {
  const a = canonicalIP(address) ?? address;
  return a.includes(':') ? `[${a}]:${port}` : `${a}:${port}`;
}

function serviceShape(
  vs: Pick<ParsedVirtualServer, 'scheduler' | 'flags' | 'persistenceTimeoutSeconds'>,
): string {
  return [
    `scheduler ${vs.scheduler}`,
    ...(vs.flags.length > 0 ? [`flags ${[...vs.flags].sort().join(',')}`] : []),
    vs.persistenceTimeoutSeconds === null ? 'not persistent' : `persistent ${vs.persistenceTimeoutSeconds}s`,
  ].join(', ');
}

function finding(check: string, okMessage: string, problems: string[], what: string): DoctorFinding {
  return problems.length === 0
    ? { severity: 'ok', check, message: okMessage, details: [] }
    : {
        severity: 'error',
        check,
        message: `${what} differ from what the cluster asks for in ${problems.length} place(s) (the agent's next full sync repairs this if it is running)`,
        details: problems,
      };
}

/** Virtual and real servers: missing, extra (ours only: bound or in a KUBE-* set), changed. */
function compareVirtualServers(desired: readonly IpvsRuleSet[], live: IpvsLiveState): string[] {
  const problems: string[] = [];
  const kernel = new Map(live.ipvs.virtualServers.map((vs) => [virtualServerKey(vs), vs]));
  const wanted = new Set<string>();
  for (const rs of desired) {
    for (const vs of rs.virtualServers) {
      const key = virtualServerKey(vs);
      wanted.add(key);
      const got = kernel.get(key);
      if (!got) {
        problems.push(`missing virtual server ${key} (${vs.owner})`);
        continue;
      }
      if (serviceShape(got) !== serviceShape(vs))
        problems.push(
          `virtual server ${key} (${vs.owner}): kernel has ${serviceShape(got)}, wanted ${serviceShape(vs)}`,
        );
      const gotReal = new Map(got.realServers.map((r) => [rsKey(r.address, r.port), r]));
      for (const r of vs.realServers) {
        const k = rsKey(r.address, r.port);
        const g = gotReal.get(k);
        gotReal.delete(k);
        if (!g) problems.push(`missing real server ${key} -> ${k} (${vs.owner})`);
        else if (g.weight !== r.weight)
          problems.push(`real server ${key} -> ${k} (${vs.owner}): weight ${g.weight}, wanted ${r.weight}`);
        else if (g.forwarding !== r.forwarding)
          problems.push(
            `real server ${key} -> ${k} (${vs.owner}): forwarding ${g.forwarding}, wanted ${r.forwarding}`,
          );
      }
      for (const k of gotReal.keys()) problems.push(`extra real server ${key} -> ${k} (${vs.owner})`);
    }
  }
  const { owned } = ownedVirtualServers(live.ipvs.virtualServers, live.ipsets, live.dummy.addresses);
  for (const vs of owned) {
    const key = virtualServerKey(vs);
    if (!wanted.has(key))
      problems.push(
        `extra virtual server ${key} (its address is on kube-ipvs0 or in a KUBE-* set, no Service asks for it)`,
      );
  }
  return problems;
}

function compareIpsets(desired: readonly IpvsRuleSet[], live: readonly IpsetEntrySet[]): string[] {
  const problems: string[] = [];
  const kernel = new Map(live.map((s) => [s.name, s]));
  for (const rs of desired) {
    for (const set of rs.ipsets) {
      const got = kernel.get(set.name);
      if (!got) {
        problems.push(`missing set ${set.name} (${set.type})`);
        continue;
      }
      if (got.type !== set.type) problems.push(`set ${set.name} is ${got.type}, wanted ${set.type}`);
      const gotEntries = new Set(got.entries);
      const wantedEntries = new Set(set.entries.map((e) => e.value));
      for (const e of set.entries)
        if (!gotEntries.has(e.value))
          problems.push(`missing set entry ${set.name} ${e.value} (${e.owners.join(', ')})`);
      for (const e of got.entries)
        if (!wantedEntries.has(e)) problems.push(`extra set entry ${set.name} ${e}`);
    }
  }
  return problems;
}

function compareAddresses(desired: readonly IpvsRuleSet[], live: IpvsLiveState): string[] {
  const device = desired[0]?.dummyDevice ?? 'kube-ipvs0';
  const wanted = new Set(desired.flatMap((rs) => rs.boundAddresses.map((a) => canonicalIP(a) ?? a)));
  if (!live.dummy.exists) return wanted.size > 0 || desired.length > 0 ? [`${device} does not exist`] : [];
  const problems: string[] = [];
  const got = new Set(live.dummy.addresses.map((a) => canonicalIP(a.address) ?? a.address));
  for (const a of wanted) if (!got.has(a)) problems.push(`missing address ${a} on ${device}`);
  for (const a of got) if (!wanted.has(a)) problems.push(`extra address ${a} on ${device}`);
  return problems;
}

/** The ipvs-mode findings. Pure. */
export function diagnoseIpvs(inputs: IpvsDoctorInputs): DoctorFinding[] {
  if (!inputs.availability.available || inputs.live === null) {
    return [
      {
        severity: 'error',
        check: 'ipvs/kernel',
        message: `mode: ipvs, but IPVS is not available: ${inputs.availability.available ? 'nothing could be read' : inputs.availability.reason}`,
        details: ['load the ip_vs module (and the schedulers in use, e.g. ip_vs_rr) or use mode: iptables'],
      },
    ];
  }
  const live = inputs.live;
  const findings: DoctorFinding[] = [
    { severity: 'ok', check: 'ipvs/kernel', message: 'IPVS is available', details: [] },
  ];
  findings.push(
    finding(
      'ipvs/virtual-servers',
      'IPVS virtual and real servers match what the cluster asks for',
      compareVirtualServers(inputs.desired, live),
      'IPVS virtual/real servers',
    ),
    finding(
      'ipvs/ipsets',
      'ipsets match what the cluster asks for',
      compareIpsets(inputs.desired, live.ipsets),
      'ipsets',
    ),
    finding(
      'ipvs/addresses',
      `${inputs.desired[0]?.dummyDevice ?? 'kube-ipvs0'} holds exactly the service addresses`,
      compareAddresses(inputs.desired, live),
      `${inputs.desired[0]?.dummyDevice ?? 'kube-ipvs0'} addresses`,
    ),
  );
  if (live.ipvs.foreign.length > 0) {
    findings.push({
      severity: 'ok',
      check: 'ipvs/foreign',
      message: `${live.ipvs.foreign.length} virtual server(s) of another tool (firewall mark or a scheduler portway does not use), left alone`,
      details: live.ipvs.foreign,
    });
  }
  return findings;
}
