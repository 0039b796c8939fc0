// Narrow interfaces over the system tools (DESIGN §4.1). Each has a real executor (execa, argument
// arrays, optional network namespace) and a stateful, validating fake for unit tests.
import type { IPFamily } from '../model/cluster-state.js';
import type { TableName } from '../render/types.js';

export interface RestoreOptions {
  /** Keep chains/rules not mentioned in the payload (iptables-restore --noflush). */
  noflush: boolean;
  /** Prepend a no-op "-S" after the table header: makes iptables-nft-restore linear on big inputs. */
  listFirst?: boolean;
}

export type IptablesBackend = 'nft' | 'legacy';

/** A restore payload part: one string, or chunks of it (re-iterable, each ending at a line end). */
export type RestoreText = string | Iterable<string>;

/** The whole text of a RestoreText. */
export function restoreTextOf(text: RestoreText): string {
  return typeof text === 'string' ? text : [...text].join('');
}

export interface Iptables {
  readonly family: IPFamily;
  readonly backend: IptablesBackend;
  /** iptables-save -t TABLE (whole table text). */
  save(table: TableName): Promise<string>;
  /** iptables-restore -w [--noflush] with the given payload (may contain several tables). */
  restore(payload: string, opts: RestoreOptions): Promise<void>;
  /**
   * The same restore fed in two parts: `head` at once, `rest` when it resolves. The tool parses the
   * head while the rest is being worked out; the rest holds the COMMIT lines, so nothing is committed
   * before it arrives. If `rest` rejects, the tool is stopped without committing anything and this
   * rejects with the same error. A head given as chunks (each ending at a line end) is written chunk
   * by chunk as they are made, and iterated again only to report a failed restore's payload.
   */
  restoreStreamed(head: RestoreText, rest: Promise<string>, opts: RestoreOptions): Promise<void>;
  /** iptables -w -t TABLE -C CHAIN spec… ; true when the rule exists. */
  checkRule(table: TableName, chain: string, spec: string[]): Promise<boolean>;
  /** iptables -w -t TABLE -I|-A CHAIN spec… */
  insertRule(table: TableName, chain: string, spec: string[], position: 'prepend' | 'append'): Promise<void>;
  /** iptables -w -t TABLE -D CHAIN spec… ; false when there was no such rule. */
  deleteRule(table: TableName, chain: string, spec: string[]): Promise<boolean>;
}

export interface IpsetEntrySet {
  name: string;
  /** e.g. "hash:ip,port" */
  type: string;
  family: 'inet' | 'inet6';
  entries: string[];
  comment?: string;
}

export interface Ipset {
  list(): Promise<IpsetEntrySet[]>;
  /** ipset restore -exist with the given payload. */
  restore(payload: string): Promise<void>;
  destroy(name: string): Promise<void>;
}

export interface Sysctl {
  /** Read e.g. "net/ipv4/ip_forward"; null when the key does not exist on this kernel. */
  get(key: string): Promise<string | null>;
  set(key: string, value: string): Promise<void>;
}

export interface ConntrackFilter {
  family: IPFamily;
  protocol: 'udp' | 'tcp' | 'sctp';
  /** Original destination (the service address / node address). */
  origDst?: string;
  origDstPort?: number;
  /** Reply source = the endpoint the flow was DNATed to. */
  replySrc?: string;
  replySrcPort?: number;
}

/** One conntrack entry as `conntrack -L` shows it (the fields stale-entry cleanup looks at). */
export interface ConntrackEntry {
  family: IPFamily;
  protocol: 'udp' | 'tcp' | 'sctp';
  origDst: string;
  origDstPort: number;
  /** Reply source = the endpoint the flow was DNATed to (= origDst when it was not DNATed). */
  replySrc: string;
  replySrcPort: number;
}

export interface Conntrack {
  /** conntrack -D with the filter; returns the number of entries deleted. */
  deleteEntries(filter: ConntrackFilter): Promise<number>;
  /** conntrack -L of one family and protocol. Optional: without it only change-driven cleanup runs. */
  listEntries?(family: IPFamily, protocol: ConntrackEntry['protocol']): Promise<ConntrackEntry[]>;
}

// ── additions (dataplane executors, "Apply for real") ───────────────────────────────────────────

/** One address configured on a network interface (`ip -j addr`). */
export interface InterfaceAddress {
  ifname: string;
  family: IPFamily;
  address: string;
  prefixLength: number;
  /** "host", "link", "global" … */
  scope: string;
}

/** Interfaces and their addresses (iproute2): kube-ipvs0, node addresses for nodePortAddresses, VIPs. */
export interface IpLinks {
  /** Addresses of one interface, or of all interfaces when ifname is omitted. */
  listAddresses(ifname?: string): Promise<InterfaceAddress[]>;
  /** ip addr add ADDRESS/PREFIX dev IFNAME; a no-op when the address is already there. */
  addAddress(ifname: string, cidr: string): Promise<void>;
  /** ip addr del ADDRESS/PREFIX dev IFNAME; false when it was not there. */
  deleteAddress(ifname: string, cidr: string): Promise<boolean>;
  /** ip link add NAME type dummy (kept as is when it exists); brought up when `up`. */
  ensureDummyInterface(name: string, opts?: { up?: boolean }): Promise<void>;
  /** ip link del NAME; false when there was no such link. */
  deleteInterface(name: string): Promise<boolean>;
  /**
   * Bind and unbind many addresses of one interface in one `ip -batch` (a bare address is /32 or
   * /128): adding one already there or deleting one not there is not an error, anything else is.
   */
  applyAddressChanges(ifname: string, changes: { add: readonly string[]; del: readonly string[] }): Promise<void>;
  /** ip -j -d link show: every interface with its flags, master and kind. */
  listLinks(): Promise<NetworkLink[]>;
}

// ── additions (layer2 interface choice) ──────────────────────────────────────────────────────────

/** One network interface as `ip -j -d link show` reports it: what layer2 needs to judge it. */
export interface NetworkLink {
  ifname: string;
  ifindex: number;
  /** Interface flags as iproute2 prints them: "UP", "BROADCAST", "LOOPBACK", "NOARP", "LOWER_UP" … */
  flags: string[];
  /** The device this one is enslaved to (a bridge, bond, team or VRF), or null. */
  master: string | null;
  /** linkinfo.info_kind: "bridge", "bond", "veth", "vlan", "dummy" …; null for a plain device. */
  kind: string | null;
  /** linkinfo.info_slave_kind: the kind of its master ("bridge", "bond" …), or null. */
  slaveKind: string | null;
  /** link_type: "ether", "loopback", "none" … */
  linkType: string;
}

// ── additions (ipvs mode executor) ───────────────────────────────────────────────────────────────

/** Which virtual server: ipvsadm's -t/-u/--sctp-service ADDRESS:PORT. */
export interface IpvsServiceRef {
  protocol: 'TCP' | 'UDP' | 'SCTP';
  address: string;
  port: number;
}

/** One real server of a virtual server with its connection counts, as `ipvsadm -Ln` lists it. */
export interface IpvsRealServerConnections {
  address: string;
  port: number;
  weight: number;
  activeConnections: number;
  inactiveConnections: number;
}

/** The kernel's IPVS table through ipvsadm (see docs/adr/0006-ipvs-executor.md). */
export interface Ipvs {
  /** `ipvsadm-save -n`: the table as restore lines (read with parseIpvsadmRules). */
  save(): Promise<string>;
  /**
   * `ipvsadm -R` with these lines (-A/-E/-D/-a/-e/-d/--set), in order, keeping everything they do not
   * name — never the `ipvsadm-restore` wrapper, which clears the whole table first. Not atomic: the
   * lines before a failing one stay applied; any line the tool complains about rejects (RestoreError).
   */
  restore(payload: string): Promise<void>;
  /** `ipvsadm -Ln` of one virtual server: its real servers and their connections; null when it does not exist. */
  realServerConnections(service: IpvsServiceRef): Promise<IpvsRealServerConnections[] | null>;
}
