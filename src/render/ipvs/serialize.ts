// The three parts of an IpvsRuleSet in their tools' input formats, deterministic: `ipset restore`,
// `ipvsadm-restore` (the lines `ipvsadm-save -n` prints) and `iptables-restore` (the iptables mode's
// serializer: the same format, the same built-in jump lines).
import { serializeRuleSet, type SerializeOptions } from '../iptables/serialize.js';
import type { Ipset, IpvsProtocol, IpvsRealServer, IpvsRuleSet, IpvsVirtualServer } from './types.js';

/** `ipset restore` input: every set created (-exist: an existing set is kept), then its members. */
export function serializeIpsets(rs: IpvsRuleSet): string {
  const lines: string[] = [];
  for (const set of rs.ipsets) lines.push(ipsetCreateLine(set));
  for (const set of rs.ipsets) for (const entry of set.entries) lines.push(`add ${set.name} ${entry.value}`);
  return lines.join('\n') + '\n';
}

/** The `create … -exist` line of a set, under its own name or another one (a temporary set of its kind). */
export function ipsetCreateLine(set: Ipset, name: string = set.name): string {
  const create = ['create', name, set.type];
  if (set.family !== null)
    create.push('family', set.family, 'hashsize', String(set.hashSize), 'maxelem', String(set.maxElem));
  if (set.range !== null) create.push('range', set.range);
  // kube-proxy creates every set with the comment extension.
  create.push('comment', '-exist');
  return create.join(' ');
}

const SERVICE_FLAG: Record<IpvsProtocol, string> = { TCP: '-t', UDP: '-u', SCTP: '--sctp-service' };

/** "10.96.0.10:80", "[fd00::10]:80": ipvsadm's service and server address form. */
export function ipvsHostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** The service part of a line: "-t 10.96.0.10:80". */
export function ipvsServiceArgs(vs: Pick<IpvsVirtualServer, 'protocol' | 'address' | 'port'>): string {
  return `${SERVICE_FLAG[vs.protocol]} ${ipvsHostPort(vs.address, vs.port)}`;
}

/**
 * `ipvsadm-restore` input as `ipvsadm-save -n` prints it: "-A" per virtual server (scheduler, -p
 * persistence, -b flags), then "-a" per real server (-m masquerading, -w weight). Timeouts, when set,
 * come first as "--set tcp tcpfin udp".
 */
export function serializeIpvs(rs: IpvsRuleSet): string {
  const lines: string[] = [];
  if (rs.timeouts !== null) {
    lines.push(`--set ${rs.timeouts.tcpSeconds} ${rs.timeouts.tcpFinSeconds} ${rs.timeouts.udpSeconds}`);
  }
  // A service port's addresses of one policy share their real-server list: its "-r … -m -w N" tails
  // are written once and reused for every one of those virtual servers.
  const tails = new Map<readonly IpvsRealServer[], string[]>();
  for (const vs of rs.virtualServers) {
    const service = ipvsServiceArgs(vs);
    let add = `-A ${service} -s ${vs.scheduler}`;
    // ipvsadm-save's order (checked against the real tool in the IPVS test VM): -p before -b.
    if (vs.persistenceTimeoutSeconds !== null) add += ` -p ${vs.persistenceTimeoutSeconds}`;
    if (vs.flags.length > 0) add += ` -b ${vs.flags.join(',')}`;
    lines.push(add);
    let tail = tails.get(vs.realServers);
    if (tail === undefined) {
      tail = vs.realServers.map((r) => ` -r ${ipvsHostPort(r.address, r.port)} -m -w ${r.weight}`);
      tails.set(vs.realServers, tail);
    }
    const head = `-a ${service}`;
    for (const t of tail) lines.push(head + t);
  }
  return lines.length === 0 ? '' : lines.join('\n') + '\n';
}

/** `iptables-restore` input of the mode's constant rules (with the built-in jumps unless told not to). */
export function serializeIpvsIptables(rs: IpvsRuleSet, opts: SerializeOptions = {}): string {
  return serializeRuleSet(rs.iptables, opts);
}
