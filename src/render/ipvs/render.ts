// kube-proxy's ipvs mode as a pure function: ClusterState + node options → the IPVS virtual servers,
// ipsets, constant iptables rules, bound addresses and sysctls of one IP family. Follows
// pkg/proxy/ipvs/proxier.go (syncProxyRules, syncEndpoint, writeIptablesRules) on the same proxy
// records the iptables renderer writes (src/proxy), so both modes pick the same endpoints. No clock,
// environment or kernel reads; the same input gives the same output.
import { IPVS_SCHEDULER_FLAGS, IPVS_SCHEDULERS } from '../../config/config.js';
import type { ClusterState, IPFamily, Protocol } from '../../model/cluster-state.js';
import { cidrContains, compareIPs, ipToBigInt } from '../../model/ip.js';
import {
  checkedIP,
  checkedMasqueradeBit,
  IPV4_LOOPBACK_CIDR,
  IPV6_LOOPBACK_CIDR,
  isLoopback,
  planServicePorts,
  RenderInputError,
  type NodePlan,
  type PlannedEndpoint,
  type ServicePortPlan,
} from '../../proxy/index.js';
import {
  KUBE_FORWARD,
  KUBE_MARK_MASQ,
  KUBE_POSTROUTING,
  KUBE_PROXY_FIREWALL,
  KUBE_SERVICES,
} from '../iptables/render.js';
import { commentArgs } from '../iptables/tokens.js';
import type { BuiltinJump, IptablesRuleSet, RenderedChain, TableName } from '../types.js';
import {
  IPSET_DEFINITIONS,
  ipsetName,
  KUBE_CLUSTER_IP,
  KUBE_EXTERNAL_IP,
  KUBE_EXTERNAL_IP_LOCAL,
  KUBE_HEALTH_CHECK_NODE_PORT,
  KUBE_IPVS_IPS,
  KUBE_LOAD_BALANCER,
  KUBE_LOAD_BALANCER_FW,
  KUBE_LOAD_BALANCER_LOCAL,
  KUBE_LOAD_BALANCER_SOURCE_CIDR,
  KUBE_LOAD_BALANCER_SOURCE_IP,
  KUBE_LOOP_BACK,
  KUBE_NODE_PORT_LOCAL_SCTP,
  KUBE_NODE_PORT_LOCAL_TCP,
  KUBE_NODE_PORT_LOCAL_UDP,
  KUBE_NODE_PORT_SCTP,
  KUBE_NODE_PORT_TCP,
  KUBE_NODE_PORT_UDP,
  type IpsetKey,
} from './ipsets.js';
import type { IpvsRenderOptions } from './options.js';
import {
  KUBE_IPVS_DUMMY_DEVICE,
  type Ipset,
  type IpvsRealServer,
  type IpvsRuleSet,
  type IpvsSchedulerFlag,
  type IpvsSysctl,
  type IpvsVirtualServer,
  type VirtualServerKind,
} from './types.js';

/** nat and filter chain of ipvs mode for NodePorts (not iptables mode's KUBE-NODEPORTS). */
export const KUBE_NODE_PORT = 'KUBE-NODE-PORT';
/** nat chain LoadBalancer traffic is masqueraded in (the set name is the same word, a different thing). */
export const KUBE_LOAD_BALANCER_CHAIN = 'KUBE-LOAD-BALANCER';
export const KUBE_SOURCE_RANGES_FIREWALL = 'KUBE-SOURCE-RANGES-FIREWALL';
/** Rejects new connections to ports on bound service addresses that no virtual server serves (#72236). */
export const KUBE_IPVS_FILTER = 'KUBE-IPVS-FILTER';
/** Drops node → LB IP traffic that the source ranges do not allow (#119656). */
export const KUBE_IPVS_OUT_FILTER = 'KUBE-IPVS-OUT-FILTER';

/** kube-proxy's iptablesChains for ipvs mode, in its declaration order. */
const NAT_CHAINS = [
  KUBE_SERVICES,
  KUBE_POSTROUTING,
  KUBE_NODE_PORT,
  KUBE_LOAD_BALANCER_CHAIN,
  KUBE_MARK_MASQ,
];
const FILTER_CHAINS = [
  KUBE_FORWARD,
  KUBE_NODE_PORT,
  KUBE_PROXY_FIREWALL,
  KUBE_SOURCE_RANGES_FIREWALL,
  KUBE_IPVS_FILTER,
  KUBE_IPVS_OUT_FILTER,
];

/** ipset defaults kube-proxy creates its sets with. */
const HASH_SIZE = 1024;
const MAX_ELEM = 65536;
const PORT_RANGE = '0-65535';

/** The entries of every set, each with the service ports that asked for it. */
class SetEntries {
  /** value → its owner, or its owners once a second one asks (most entries have one: no array for them). */
  private readonly sets = new Map<IpsetKey, Map<string, string | string[]>>();

  add(key: IpsetKey, value: string, owner: string): void {
    let set = this.sets.get(key);
    if (set === undefined) this.sets.set(key, (set = new Map()));
    const owners = set.get(value);
    if (owners === undefined) set.set(value, owner);
    else if (typeof owners === 'string') {
      if (owners !== owner) set.set(value, [owners, owner]);
    } else if (!owners.includes(owner)) owners.push(owner);
  }

  isEmpty(key: IpsetKey): boolean {
    return (this.sets.get(key)?.size ?? 0) === 0;
  }

  build(family: IPFamily): Ipset[] {
    // A service port's members in every set share one owners array (tens of thousands at 10k Services).
    const single = new Map<string, string[]>();
    const alone = (owner: string): string[] => {
      let owners = single.get(owner);
      if (owners === undefined) single.set(owner, (owners = [owner]));
      return owners;
    };
    return IPSET_DEFINITIONS.map((def) => {
      const values = [...(this.sets.get(def.key)?.keys() ?? [])].sort();
      const set = this.sets.get(def.key);
      const entries = values.map((value) => {
        const owners = set?.get(value) ?? [];
        return { value, owners: typeof owners === 'string' ? alone(owners) : [...owners].sort() };
      });
      const bitmap = def.type === 'bitmap:port';
      return {
        name: ipsetName(def.key, family),
        type: def.type,
        family: bitmap ? null : family === 'IPv4' ? 'inet' : 'inet6',
        hashSize: HASH_SIZE,
        maxElem: MAX_ELEM,
        range: bitmap ? PORT_RANGE : null,
        comment: def.comment,
        entries,
      };
    });
  }
}

/** Go's "%#08x" of the masquerade bit, as kube-proxy's ipvs proxier writes the mark ("0x004000"). */
function ipvsMarkValue(bit: number): string {
  return '0x' + (2 ** checkedMasqueradeBit(bit)).toString(16).padStart(6, '0');
}

/** The scheduler flags of every virtual server: the configured ones, plus mh-port for mh (kube-proxy). */
function schedulerFlags(opts: IpvsRenderOptions): IpvsSchedulerFlag[] {
  // Options built by hand (not from a parsed config) get the same checks as the configuration.
  if (!(IPVS_SCHEDULERS as readonly string[]).includes(opts.scheduler)) {
    throw new RenderInputError(
      'options',
      'scheduler',
      `"${String(opts.scheduler)}" is not an IPVS scheduler`,
    );
  }
  const flags = new Set<IpvsSchedulerFlag>(opts.schedulerFlags);
  for (const flag of flags) {
    if (!(IPVS_SCHEDULER_FLAGS as readonly string[]).includes(flag)) {
      throw new RenderInputError(
        'options',
        'schedulerFlags',
        `"${String(flag)}" is not an ipvsadm scheduler flag`,
      );
    }
    const scheduler = flag.startsWith('sh-') ? 'sh' : flag.startsWith('mh-') ? 'mh' : null;
    if (scheduler !== null && scheduler !== opts.scheduler) {
      throw new RenderInputError(
        'options',
        'schedulerFlags',
        `"${flag}" is a flag of ${scheduler}, not of ${opts.scheduler}`,
      );
    }
  }
  // kube-proxy sets FlagSourceHash (IP_VS_SVC_F_SCHED2, ipvsadm's "mh-port") for mh.
  if (opts.scheduler === 'mh') flags.add('mh-port');
  return [...flags].sort();
}

/**
 * The node addresses NodePort virtual servers are made on: every node address of the family when
 * nodePortAddresses matches all, else the matching ones; never loopback (kube-proxy skips them) nor
 * IPv6 link-local ones.
 */
function nodePortAddresses(node: NodePlan, opts: IpvsRenderOptions): string[] {
  const candidates = node.nodePorts.matchAll ? opts.nodeIPs : node.nodePorts.ips;
  const addresses = new Set<string>();
  candidates.forEach((ip, i) => {
    if (node.nodePorts.matchAll) checkedIP(ip, opts.family, 'options', `nodeIPs[${i}]`);
    if (isLoopback(ip) || (opts.family === 'IPv6' && cidrContains('fe80::/10', ip))) return;
    addresses.add(ip);
  });
  return [...addresses].sort(compareIPs);
}

/**
 * The real servers of a virtual server (kube-proxy's syncEndpoint): a Local-policy address takes the
 * local endpoints, or — when this node has none — the cluster ones (kubernetes#97081: pods on this
 * node keep reaching the Service); otherwise the cluster endpoints. Weight 1 each. Terminating
 * endpoints the choice left out stay with weight 0 so their connections drain (graceful termination).
 */
function realServersOf(svc: ServicePortPlan, onlyNodeLocal: boolean): IpvsRealServer[] {
  const useLocal = onlyNodeLocal && svc.localEndpoints.length > 0;
  // Both lists are in endpoint order (filters of svc.endpoints): walk them together, no lookup set.
  const chosen: readonly PlannedEndpoint[] = useLocal ? svc.localEndpoints : svc.clusterEndpoints;
  const servers: IpvsRealServer[] = [];
  let next = 0;
  for (const e of svc.endpoints) {
    let weight: number;
    if (chosen[next] === e) {
      weight = 1;
      next++;
    } else if (e.ep.terminating && (!useLocal || e.local)) weight = 0;
    else continue;
    servers.push({ address: e.ep.ip, port: e.ep.port, weight, forwarding: 'masquerade' });
  }
  return servers;
}

const PROTOCOLS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP'];

/**
 * Items sorted by address (IPv4 first, numerically), each address parsed once: compareIPs parses both
 * sides on every comparison, which at 10k Services was most of the render.
 */
function sortedByAddress<T>(
  items: readonly T[],
  addressOf: (item: T) => string,
  tieBreak: (a: T, b: T) => number,
): T[] {
  const keyed = items.map((item) => {
    const address = addressOf(item);
    return { item, v6: address.includes(':'), n: ipToBigInt(address) };
  });
  keyed.sort((a, b) =>
    a.v6 !== b.v6 ? (a.v6 ? 1 : -1) : a.n < b.n ? -1 : a.n > b.n ? 1 : tieBreak(a.item, b.item),
  );
  return keyed.map((k) => k.item);
}

/** A set member "ip,proto:port" (hash:ip,port), optionally with a third part (ip or net). */
function ipPortEntry(ip: string, protocol: string, port: number, third?: string): string {
  return third === undefined ? `${ip},${protocol}:${port}` : `${ip},${protocol}:${port},${third}`;
}

/** Render the ipvs mode of one IP family (kube-proxy's ipvs syncProxyRules, as a full sync). Pure. */
export function renderIpvs(state: ClusterState, opts: IpvsRenderOptions): IpvsRuleSet {
  const { family } = opts;
  const mark = ipvsMarkValue(opts.masqueradeBit);
  const flags = schedulerFlags(opts);
  const { node, servicePorts } = planServicePorts(state, opts);
  const nodeAddresses = nodePortAddresses(node, opts);
  // An external or LB IP that is also a node address is not bound to the dummy link (it is already local).
  const ownAddresses = new Set(opts.nodeIPs);

  const sets = new SetEntries();
  const virtualServers = new Map<string, IpvsVirtualServer>();
  const bound = new Set<string>();
  /** LB IP:port whose source ranges leave out the node itself: node → LB IP traffic is dropped. */
  const noNodeAccess: Array<{ ip: string; protocol: string; port: number }> = [];

  for (const svc of servicePorts) {
    const { sp, protocol, port } = svc;
    const owner = `${sp.id}/${protocol}`;
    // Every address of a policy has the same real servers: made once per policy, shared (treat as immutable).
    const servers: Partial<Record<'cluster' | 'local', IpvsRealServer[]>> = {};
    const realServers = (onlyNodeLocal: boolean): IpvsRealServer[] =>
      onlyNodeLocal
        ? (servers.local ??= realServersOf(svc, true))
        : (servers.cluster ??= realServersOf(svc, false));
    const addVirtualServer = (
      address: string,
      vsPort: number,
      kind: VirtualServerKind,
      onlyNodeLocal: boolean,
    ): void => {
      const key = `${sp.protocol} ${address} ${vsPort}`;
      // Two service ports on one address:port cannot both own it: the first (in state order) does.
      if (virtualServers.has(key)) return;
      virtualServers.set(key, {
        address,
        port: vsPort,
        protocol: sp.protocol,
        scheduler: opts.scheduler,
        flags,
        persistenceTimeoutSeconds: svc.affinityTimeoutSeconds,
        kind,
        owner,
        realServers: realServers(onlyNodeLocal),
      });
    };

    // Hairpin: a local endpoint reaching itself through the Service is masqueraded.
    for (const e of svc.endpoints) {
      if (e.local) sets.add(KUBE_LOOP_BACK, ipPortEntry(e.ep.ip, protocol, e.ep.port, e.ep.ip), owner);
    }

    sets.add(KUBE_CLUSTER_IP, ipPortEntry(svc.clusterIP, protocol, port), owner);
    addVirtualServer(svc.clusterIP, port, 'clusterIP', svc.internalPolicyLocal);
    bound.add(svc.clusterIP);

    for (const externalIP of svc.externalIPs) {
      const entry = ipPortEntry(externalIP, protocol, port);
      // Local policy keeps the client source: no masquerade, so a set of its own.
      sets.add(svc.externalPolicyLocal ? KUBE_EXTERNAL_IP_LOCAL : KUBE_EXTERNAL_IP, entry, owner);
      addVirtualServer(externalIP, port, 'externalIP', svc.externalPolicyLocal);
      if (!ownAddresses.has(externalIP)) bound.add(externalIP);
    }

    for (const lbIP of svc.loadBalancerVIPs) {
      const entry = ipPortEntry(lbIP, protocol, port);
      sets.add(KUBE_LOAD_BALANCER, entry, owner);
      if (svc.externalPolicyLocal) sets.add(KUBE_LOAD_BALANCER_LOCAL, entry, owner);
      if (svc.loadBalancerSourceRanges.length > 0) {
        sets.add(KUBE_LOAD_BALANCER_FW, entry, owner);
        let allowFromNode = false;
        for (const cidr of svc.loadBalancerSourceRanges) {
          sets.add(KUBE_LOAD_BALANCER_SOURCE_CIDR, ipPortEntry(lbIP, protocol, port, cidr.text), owner);
          if (node.primaryNodeIP !== undefined && cidrContains(cidr, node.primaryNodeIP))
            allowFromNode = true;
        }
        // A VIP routed locally makes node → VIP traffic come back with the VIP as source: allow it
        // when the ranges allow the node; otherwise the node must not reach the VIP at all.
        if (allowFromNode)
          sets.add(KUBE_LOAD_BALANCER_SOURCE_IP, ipPortEntry(lbIP, protocol, port, lbIP), owner);
        else noNodeAccess.push({ ip: lbIP, protocol, port });
      }
      addVirtualServer(lbIP, port, 'loadBalancerIP', svc.externalPolicyLocal);
      if (!ownAddresses.has(lbIP)) bound.add(lbIP);
    }

    if (svc.nodePort !== 0) {
      // kube-proxy skips the rest of the service port (its health check too) without node addresses.
      if (nodeAddresses.length === 0) continue;
      const [all, local]: [IpsetKey, IpsetKey] =
        protocol === 'tcp'
          ? [KUBE_NODE_PORT_TCP, KUBE_NODE_PORT_LOCAL_TCP]
          : protocol === 'udp'
            ? [KUBE_NODE_PORT_UDP, KUBE_NODE_PORT_LOCAL_UDP]
            : [KUBE_NODE_PORT_SCTP, KUBE_NODE_PORT_LOCAL_SCTP];
      // bitmap:port for TCP/UDP; SCTP has no bitmap set, so one ip,port entry per node address.
      const entries =
        protocol === 'sctp'
          ? nodeAddresses.map((ip) => ipPortEntry(ip, protocol, svc.nodePort))
          : [String(svc.nodePort)];
      for (const entry of entries) {
        sets.add(all, entry, owner);
        if (svc.externalPolicyLocal) sets.add(local, entry, owner);
      }
      for (const ip of nodeAddresses) addVirtualServer(ip, svc.nodePort, 'nodePort', svc.externalPolicyLocal);
    }

    if (svc.healthCheckNodePort !== 0)
      sets.add(KUBE_HEALTH_CHECK_NODE_PORT, String(svc.healthCheckNodePort), owner);
  }

  const boundAddresses = sortedByAddress(
    [...bound],
    (ip) => ip,
    () => 0,
  );
  for (const ip of boundAddresses) sets.add(KUBE_IPVS_IPS, ip, 'kube-ipvs0');

  return {
    family,
    // By protocol, then address, then port.
    virtualServers: PROTOCOLS.flatMap((protocol) =>
      sortedByAddress(
        [...virtualServers.values()].filter((vs) => vs.protocol === protocol),
        (vs) => vs.address,
        (a, b) => a.port - b.port,
      ),
    ),
    ipsets: sets.build(family),
    iptables: renderIpvsIptables(sets, opts, node, mark, noNodeAccess),
    boundAddresses,
    dummyDevice: KUBE_IPVS_DUMMY_DEVICE,
    sysctls: ipvsSysctls(opts),
    timeouts:
      opts.timeouts.tcpSeconds > 0 || opts.timeouts.tcpFinSeconds > 0 || opts.timeouts.udpSeconds > 0
        ? { ...opts.timeouts }
        : null,
  };
}

/** kube-proxy's conn_reuse_mode decision: set to 0 only on 4.1 ≤ kernel < 5.9 (kubernetes#93297). */
function connReuseModeWanted(kernelVersion: string | undefined): boolean {
  if (kernelVersion === undefined) return false;
  const m = /^(\d+)\.(\d+)/.exec(kernelVersion);
  if (m === null)
    throw new RenderInputError('options', 'kernelVersion', `"${kernelVersion}" is not a kernel version`);
  const v = Number(m[1]) * 1000 + Number(m[2]);
  return v >= 4001 && v < 5009;
}

function ipvsSysctls(opts: IpvsRenderOptions): IpvsSysctl[] {
  const sysctls: IpvsSysctl[] = [
    {
      key: 'net/ipv4/vs/conntrack',
      value: '1',
      reason: 'IPVS keeps conntrack entries, so iptables masquerade applies',
    },
  ];
  if (connReuseModeWanted(opts.kernelVersion)) {
    sysctls.push({
      key: 'net/ipv4/vs/conn_reuse_mode',
      value: '0',
      reason: 'kernels before 5.9 stall reused connections to removed real servers',
    });
  }
  sysctls.push(
    {
      key: 'net/ipv4/vs/expire_nodest_conn',
      value: '1',
      reason: 'connections to a removed real server are expired',
    },
    {
      key: 'net/ipv4/vs/expire_quiescent_template',
      value: '1',
      reason: 'persistence templates of a weight-0 real server are expired',
    },
    { key: 'net/ipv4/ip_forward', value: '1', reason: 'IPVS forwards to endpoints on other nodes' },
  );
  if (opts.strictARP) {
    sysctls.push(
      {
        key: 'net/ipv4/conf/all/arp_ignore',
        value: '1',
        reason: 'ipvs.strictARP: answer ARP only for addresses of the interface asked',
      },
      {
        key: 'net/ipv4/conf/all/arp_announce',
        value: '2',
        reason: 'ipvs.strictARP: never announce kube-ipvs0 addresses',
      },
    );
  }
  return sysctls;
}

/** Chains of one table under construction, in declaration order. */
class ChainLines {
  private readonly chains = new Map<string, string[]>();

  constructor(names: readonly string[]) {
    for (const name of names) this.chains.set(name, []);
  }

  write(chain: string, ...tokens: Array<string | readonly string[]>): void {
    const lines = this.chains.get(chain);
    if (lines === undefined) throw new Error(`internal: rule for undeclared chain ${chain}`);
    const parts = ['-A', chain];
    for (const t of tokens) {
      if (typeof t === 'string') {
        if (t !== '') parts.push(t);
      } else parts.push(...t);
    }
    lines.push(parts.join(' '));
  }

  build(name: TableName): { name: TableName; chains: RenderedChain[] } {
    return {
      name,
      chains: [...this.chains].map(([chain, rules]) => ({ name: chain, role: 'static', rules })),
    };
  }
}

/** kube-proxy's ipsetWithIptablesChain: a jump per non-empty set, in this order. */
const SET_JUMPS: ReadonlyArray<{
  key: IpsetKey;
  table: TableName;
  from: string;
  to: string;
  match: string;
  protocol: string;
}> = [
  {
    key: KUBE_LOOP_BACK,
    table: 'nat',
    from: KUBE_POSTROUTING,
    to: 'MASQUERADE',
    match: 'dst,dst,src',
    protocol: '',
  },
  {
    key: KUBE_LOAD_BALANCER,
    table: 'nat',
    from: KUBE_SERVICES,
    to: KUBE_LOAD_BALANCER_CHAIN,
    match: 'dst,dst',
    protocol: '',
  },
  {
    key: KUBE_LOAD_BALANCER_LOCAL,
    table: 'nat',
    from: KUBE_LOAD_BALANCER_CHAIN,
    to: 'RETURN',
    match: 'dst,dst',
    protocol: '',
  },
  {
    key: KUBE_NODE_PORT_LOCAL_TCP,
    table: 'nat',
    from: KUBE_NODE_PORT,
    to: 'RETURN',
    match: 'dst',
    protocol: 'tcp',
  },
  {
    key: KUBE_NODE_PORT_TCP,
    table: 'nat',
    from: KUBE_NODE_PORT,
    to: KUBE_MARK_MASQ,
    match: 'dst',
    protocol: 'tcp',
  },
  {
    key: KUBE_NODE_PORT_LOCAL_UDP,
    table: 'nat',
    from: KUBE_NODE_PORT,
    to: 'RETURN',
    match: 'dst',
    protocol: 'udp',
  },
  {
    key: KUBE_NODE_PORT_UDP,
    table: 'nat',
    from: KUBE_NODE_PORT,
    to: KUBE_MARK_MASQ,
    match: 'dst',
    protocol: 'udp',
  },
  {
    key: KUBE_NODE_PORT_LOCAL_SCTP,
    table: 'nat',
    from: KUBE_NODE_PORT,
    to: 'RETURN',
    match: 'dst,dst',
    protocol: 'sctp',
  },
  {
    key: KUBE_NODE_PORT_SCTP,
    table: 'nat',
    from: KUBE_NODE_PORT,
    to: KUBE_MARK_MASQ,
    match: 'dst,dst',
    protocol: 'sctp',
  },
  {
    key: KUBE_LOAD_BALANCER_FW,
    table: 'filter',
    from: KUBE_PROXY_FIREWALL,
    to: KUBE_SOURCE_RANGES_FIREWALL,
    match: 'dst,dst',
    protocol: '',
  },
  {
    key: KUBE_LOAD_BALANCER_SOURCE_CIDR,
    table: 'filter',
    from: KUBE_SOURCE_RANGES_FIREWALL,
    to: 'RETURN',
    match: 'dst,dst,src',
    protocol: '',
  },
  {
    key: KUBE_LOAD_BALANCER_SOURCE_IP,
    table: 'filter',
    from: KUBE_SOURCE_RANGES_FIREWALL,
    to: 'RETURN',
    match: 'dst,dst,src',
    protocol: '',
  },
];

const DESCRIPTION = new Map(IPSET_DEFINITIONS.map((d) => [d.key, d.comment]));

/**
 * The iptables rules of ipvs mode (kube-proxy's writeIptablesRules): matches on the sets instead of
 * per-service rules, so their number depends only on which sets are empty — and on the LB IPs whose
 * source ranges exclude the node (one KUBE-IPVS-OUT-FILTER rule each, as upstream writes them).
 */
function renderIpvsIptables(
  sets: SetEntries,
  opts: IpvsRenderOptions,
  node: NodePlan,
  mark: string,
  noNodeAccess: ReadonlyArray<{ ip: string; protocol: string; port: number }>,
): IptablesRuleSet {
  const { family } = opts;
  const nat = new ChainLines(NAT_CHAINS);
  const filter = new ChainLines(FILTER_CHAINS);
  const name = (key: IpsetKey): string => ipsetName(key, family);
  const setComment = (key: IpsetKey): string[] => commentArgs(DESCRIPTION.get(key) ?? '');
  const matchSet = (key: IpsetKey, match: string): string[] => ['-m', 'set', '--match-set', name(key), match];

  // Connections from the node to itself (localhost) never go through services.
  nat.write(KUBE_SERVICES, '-s', family === 'IPv4' ? IPV4_LOOPBACK_CIDR : IPV6_LOOPBACK_CIDR, '-j', 'RETURN');

  for (const jump of SET_JUMPS) {
    if (sets.isEmpty(jump.key)) continue;
    const target = jump.table === 'nat' ? nat : filter;
    target.write(
      jump.from,
      jump.protocol === '' ? [] : ['-p', jump.protocol],
      setComment(jump.key),
      matchSet(jump.key, jump.match),
      '-j',
      jump.to,
    );
  }

  if (!sets.isEmpty(KUBE_CLUSTER_IP)) {
    const clusterIP = [setComment(KUBE_CLUSTER_IP), '-m', 'set', '--match-set', name(KUBE_CLUSTER_IP)].flat();
    if (opts.masqueradeAll) {
      nat.write(KUBE_SERVICES, clusterIP, 'dst,dst', '-j', KUBE_MARK_MASQ);
    } else if (node.detector.ifNotLocal !== null) {
      // Off-cluster traffic to a service VIP (a static route to any node) may bounce off-node: masquerade.
      nat.write(KUBE_SERVICES, clusterIP, 'dst,dst', node.detector.ifNotLocal, '-j', KUBE_MARK_MASQ);
    } else {
      // No detector: masquerade what the node itself sends from a VIP (the dummy link makes a VIP the
      // source address the kernel picks to reach another VIP).
      nat.write(KUBE_SERVICES, clusterIP, 'src,dst', '-j', KUBE_MARK_MASQ);
    }
  }

  // External IPs: accept what comes from off the node (not bridged from a pod, not local) and what is
  // addressed to a local address; the plain set is masqueraded first.
  const externalIPRules = (key: IpsetKey): void => {
    const match = [setComment(key), matchSet(key, 'dst,dst')].flat();
    nat.write(
      KUBE_SERVICES,
      match,
      '-m',
      'physdev',
      '!',
      '--physdev-is-in',
      '-m',
      'addrtype',
      '!',
      '--src-type',
      'LOCAL',
      '-j',
      'ACCEPT',
    );
    nat.write(KUBE_SERVICES, match, '-m', 'addrtype', '--dst-type', 'LOCAL', '-j', 'ACCEPT');
  };
  if (!sets.isEmpty(KUBE_EXTERNAL_IP)) {
    nat.write(
      KUBE_SERVICES,
      setComment(KUBE_EXTERNAL_IP),
      matchSet(KUBE_EXTERNAL_IP, 'dst,dst'),
      '-j',
      KUBE_MARK_MASQ,
    );
    externalIPRules(KUBE_EXTERNAL_IP);
  }
  if (!sets.isEmpty(KUBE_EXTERNAL_IP_LOCAL)) externalIPRules(KUBE_EXTERNAL_IP_LOCAL);

  nat.write(KUBE_SERVICES, '-m', 'addrtype', '--dst-type', 'LOCAL', '-j', KUBE_NODE_PORT);
  nat.write(KUBE_LOAD_BALANCER_CHAIN, '-j', KUBE_MARK_MASQ);
  filter.write(KUBE_SOURCE_RANGES_FIREWALL, '-j', 'DROP');

  for (const entry of noNodeAccess) {
    filter.write(
      KUBE_IPVS_OUT_FILTER,
      '-s',
      entry.ip,
      '-m',
      'ipvs',
      '--vaddr',
      entry.ip,
      '--vproto',
      entry.protocol,
      '--vport',
      String(entry.port),
      '-j',
      'DROP',
    );
  }

  // Accept what goes to a virtual server, in case later rules would drop it; last in KUBE-SERVICES.
  for (const key of [KUBE_CLUSTER_IP, KUBE_LOAD_BALANCER] as const) {
    if (!sets.isEmpty(key)) nat.write(KUBE_SERVICES, matchSet(key, 'dst,dst'), '-j', 'ACCEPT');
  }

  // Forward what was marked for masquerade even when the FORWARD policy is DROP (NodePorts).
  filter.write(
    KUBE_FORWARD,
    commentArgs('kubernetes forwarding rules'),
    '-m',
    'mark',
    '--mark',
    `${mark}/${mark}`,
    '-j',
    'ACCEPT',
  );
  filter.write(
    KUBE_FORWARD,
    commentArgs('kubernetes forwarding conntrack rule'),
    '-m',
    'conntrack',
    '--ctstate',
    'RELATED,ESTABLISHED',
    '-j',
    'ACCEPT',
  );
  filter.write(
    KUBE_NODE_PORT,
    setComment(KUBE_HEALTH_CHECK_NODE_PORT),
    matchSet(KUBE_HEALTH_CHECK_NODE_PORT, 'dst'),
    '-j',
    'ACCEPT',
  );

  // Bound service addresses accept only their service ports (kubernetes#72236).
  for (const key of [
    KUBE_LOAD_BALANCER,
    KUBE_CLUSTER_IP,
    KUBE_EXTERNAL_IP,
    KUBE_EXTERNAL_IP_LOCAL,
  ] as const) {
    filter.write(KUBE_IPVS_FILTER, matchSet(key, 'dst,dst'), '-j', 'RETURN');
  }
  filter.write(KUBE_IPVS_FILTER, matchSet(KUBE_HEALTH_CHECK_NODE_PORT, 'dst'), '-j', 'RETURN');
  filter.write(
    KUBE_IPVS_FILTER,
    '-m',
    'conntrack',
    '--ctstate',
    'NEW',
    matchSet(KUBE_IPVS_IPS, 'dst'),
    '-j',
    'REJECT',
  );

  nat.write(KUBE_POSTROUTING, '-m', 'mark', '!', '--mark', `${mark}/${mark}`, '-j', 'RETURN');
  // Clear the mark so a packet that re-traverses the stack is not masqueraded twice.
  nat.write(KUBE_POSTROUTING, '-j', 'MARK', '--xor-mark', mark);
  nat.write(
    KUBE_POSTROUTING,
    commentArgs('kubernetes service traffic requiring SNAT'),
    '-j',
    'MASQUERADE',
    opts.randomFully ? ['--random-fully'] : [],
  );
  nat.write(KUBE_MARK_MASQ, '-j', 'MARK', '--or-mark', mark);

  return { family, tables: [filter.build('filter'), nat.build('nat')], builtinJumps: ipvsBuiltinJumps() };
}

/** kube-proxy's iptablesJumpChain for ipvs mode, each prepended to its built-in chain. */
function ipvsBuiltinJumps(): BuiltinJump[] {
  const jump = (
    table: TableName,
    chain: BuiltinJump['chain'],
    target: string,
    comment: string,
  ): BuiltinJump => ({
    table,
    chain,
    spec: [...commentArgs(comment), '-j', target].join(' '),
    position: 'prepend',
  });
  return [
    jump('nat', 'OUTPUT', KUBE_SERVICES, 'kubernetes service portals'),
    jump('nat', 'PREROUTING', KUBE_SERVICES, 'kubernetes service portals'),
    jump('nat', 'POSTROUTING', KUBE_POSTROUTING, 'kubernetes postrouting rules'),
    jump('filter', 'FORWARD', KUBE_FORWARD, 'kubernetes forwarding rules'),
    jump('filter', 'INPUT', KUBE_NODE_PORT, 'kubernetes health check rules'),
    jump('filter', 'INPUT', KUBE_PROXY_FIREWALL, 'kube-proxy firewall rules'),
    jump('filter', 'FORWARD', KUBE_PROXY_FIREWALL, 'kube-proxy firewall rules'),
    jump('filter', 'INPUT', KUBE_IPVS_FILTER, 'kubernetes ipvs access filter'),
    jump('filter', 'OUTPUT', KUBE_IPVS_OUT_FILTER, 'kubernetes ipvs access filter'),
  ];
}
