// kube-proxy's iptables mode as a pure function: ClusterState + node options → the rule set of one
// IP family. Follows pkg/proxy/iptables/proxier.go syncProxyRules (and proxy.CategorizeEndpoints)
// chain for chain and rule for rule, so that a packet kube-proxy sends to endpoint set S goes to S.
// No clock, environment or kernel reads; the same input gives byte-identical output.
import { interfaceNameProblem, type DetectLocalMode } from '../../config/config.js';
import type { ClusterState, Endpoint, ServicePort } from '../../model/cluster-state.js';
import { cidrContains, compareIPs, joinHostPort, parseCIDR, type ParsedCIDR } from '../../model/ip.js';
import type { BuiltinJump, ChainRole, IptablesRuleSet, RenderedChain, TableName } from '../types.js';
import { joinTokens, type LineToken } from '../line-buffer.js';
import { chainOwner, endpointChainName, perServiceChainNames, protocolToken } from '../naming.js';
import { ServiceChainRecord, StaticChainRecord } from './chain-record.js';
import type { IptablesRenderOptions } from './options.js';
import {
  checkedCIDR,
  checkedIP,
  checkedPort,
  commentArgs,
  commentMatch,
  RenderInputError,
} from './tokens.js';

export const KUBE_SERVICES = 'KUBE-SERVICES';
export const KUBE_EXTERNAL_SERVICES = 'KUBE-EXTERNAL-SERVICES';
export const KUBE_NODEPORTS = 'KUBE-NODEPORTS';
export const KUBE_POSTROUTING = 'KUBE-POSTROUTING';
export const KUBE_MARK_MASQ = 'KUBE-MARK-MASQ';
export const KUBE_FORWARD = 'KUBE-FORWARD';
export const KUBE_PROXY_FIREWALL = 'KUBE-PROXY-FIREWALL';
/** kubelet's anti-martian chain, duplicated by kube-proxy when localhost NodePorts are on. */
export const KUBE_FIREWALL = 'KUBE-FIREWALL';

const IPV4_LOOPBACK_CIDR = '127.0.0.0/8';
const IPV6_LOOPBACK_CIDR = '::1/128';

/** A chain whose rule lines are still being written. */
interface OpenChain {
  chain: RenderedChain;
  lines: string[];
}

/**
 * The static chains of one table (KUBE-SERVICES, KUBE-NODEPORTS, …), under construction. Their text
 * is assembled from pieces, each ending in "\n": lines written by the renderer itself and whole
 * pieces contributed by service ports (see ServiceFragment), so a cached service port's rules in
 * the shared chains are appended without being written again.
 */
class StaticTable {
  private readonly pieces = new Map<string, string[]>();

  constructor(readonly name: TableName) {}

  declare(name: string): void {
    this.pieces.set(name, []);
  }

  /** Append "-A <chain> tokens…" to a declared static chain; empty tokens are skipped, lists flattened. */
  write(chain: string, ...tokens: LineToken[]): void {
    this.target(chain).push(ruleLine(chain, tokens) + '\n');
  }

  /** Append a service port's lines for this chain (already checked, ending in "\n"). */
  append(chain: string, text: string): void {
    this.target(chain).push(text);
  }

  private target(chain: string): string[] {
    const target = this.pieces.get(chain);
    if (target === undefined) throw new Error(`internal: rule for undeclared ${this.name} chain ${chain}`);
    return target;
  }

  /**
   * The table: static chains first (in declaration order), then `serviceChains` (already closed) in
   * order. With a cache, a static chain made of the same pieces as in the last render is that
   * render's chain object (no join; a plan skips it by identity).
   */
  build(
    serviceChains: readonly RenderedChain[] = [],
    cache?: IptablesRenderCache,
  ): { name: TableName; chains: RenderedChain[] } {
    const chains: RenderedChain[] = [];
    for (const [name, parts] of this.pieces) {
      const kept = cache?.staticChain(this.name, name, parts);
      if (kept !== undefined) {
        chains.push(kept);
        continue;
      }
      const chain = new StaticChainRecord(name, 'static');
      if (parts.length > 0) chain.text = parts.length === 1 ? parts[0]! : parts.join('');
      cache?.keepStaticChain(this.name, chain, parts);
      chains.push(chain);
    }
    return { name: this.name, chains: serviceChains.length === 0 ? chains : chains.concat(serviceChains) };
  }
}

/** One rule line: tokens collected and joined once (a flat string, not a chain of concatenations). */
function ruleLine(chain: string, tokens: readonly LineToken[]): string {
  const parts = ['-A', chain];
  for (const t of tokens) collectToken(parts, t);
  const line = parts.join(' ');
  // Tokens are checked to hold no newline; a mismatch here would mean a rule split in two.
  if (line.includes('\n')) throw new Error(`internal: a rule of chain ${chain} contains a newline`);
  return line;
}

/**
 * What one service port contributes to a table set: its own nat chains (SVC, SVL, EXT, FW, SEP) and
 * its lines in the shared static chains of both tables. Depends only on the ServicePort and the
 * render context, so an IptablesRenderCache can keep it for as long as the ServicePort object lives.
 */
interface ServiceFragment {
  /** The per-service nat chains, closed, in kube-proxy's declaration order. */
  natChains: RenderedChain[];
  /** Lines for shared chains, per (table, chain), each piece ending in "\n". */
  shared: Array<{ table: TableName; chain: string; text: string }>;
}

/** Writes one service port's fragment; `table('nat')` / `table('filter')` give the write targets. */
class FragmentWriter {
  private readonly own = new Map<string, OpenChain>();
  private readonly natChains: RenderedChain[] = [];
  private readonly shared = new Map<string, { table: TableName; chain: string; lines: string[] }>();
  private readonly views: Record<TableName, FragmentTable>;

  constructor() {
    this.views = { nat: new FragmentTable(this, 'nat'), filter: new FragmentTable(this, 'filter') };
  }

  table(name: TableName): FragmentTable {
    return this.views[name];
  }

  declare(name: string, role: ChainRole, owner: string): void {
    const chain = new ServiceChainRecord(name, role, owner);
    this.natChains.push(chain);
    this.own.set(name, { chain, lines: [] });
  }

  write(table: TableName, chain: string, tokens: readonly LineToken[]): void {
    const line = ruleLine(chain, tokens);
    const own = table === 'nat' ? this.own.get(chain) : undefined;
    if (own !== undefined) {
      own.lines.push(line);
      return;
    }
    const key = `${table} ${chain}`;
    let target = this.shared.get(key);
    if (target === undefined) this.shared.set(key, (target = { table, chain, lines: [] }));
    target.lines.push(line);
  }

  finish(): ServiceFragment {
    for (const open of this.own.values()) closeChain(open);
    const shared: ServiceFragment['shared'] = [];
    for (const { table, chain, lines } of this.shared.values()) {
      lines.push('');
      shared.push({ table, chain, text: lines.join('\n') });
    }
    return { natChains: this.natChains, shared };
  }
}

/** The `nat` / `filter` a service port's rendering writes to. */
class FragmentTable {
  constructor(
    private readonly writer: FragmentWriter,
    readonly name: TableName,
  ) {}

  declare(name: string, role: ChainRole, owner: string): void {
    if (this.name !== 'nat') throw new Error(`internal: per-service chain ${name} in table ${this.name}`);
    this.writer.declare(name, role, owner);
  }

  write(chain: string, ...tokens: LineToken[]): void {
    this.writer.write(this.name, chain, tokens);
  }
}

/** Store a chain's lines once, as one flat text (`rules` is made from it when first read). */
function closeChain(open: OpenChain): void {
  const { chain, lines } = open;
  if (lines.length > 0) {
    lines.push(''); // so that join ends the last line with "\n" too
    chain.text = lines.join('\n');
  }
  open.lines = [];
}

function collectToken(parts: string[], token: LineToken): void {
  if (typeof token === 'string') {
    if (token !== '') parts.push(token);
    return;
  }
  for (const t of token) collectToken(parts, t);
}

/** The facts about one service port that rendering needs, already filtered to the family. */
interface FamilyServicePort {
  sp: ServicePort;
  object: string;
  owner: string;
  protocol: 'tcp' | 'udp' | 'sctp';
  clusterIP: string;
  port: string;
  nodePort: number;
  healthCheckNodePort: number;
  externalIPs: string[];
  loadBalancerVIPs: string[];
  loadBalancerSourceRanges: ParsedCIDR[];
  externalPolicyLocal: boolean;
  internalPolicyLocal: boolean;
  /** Endpoints of the family in kube-proxy's order (by "ip:port" string), each with its chain name. */
  endpoints: Array<{ ep: Endpoint; hostPort: string; chain: string; local: boolean }>;
}

/** Go's fmt "%0.10f" (round half to even on the exact binary value), which kube-proxy uses. */
export function formatProbability(n: number): string {
  const x = 1 / n;
  const rounded = x.toFixed(10);
  const exact = x.toFixed(100);
  const dot = exact.indexOf('.');
  const tail = exact.slice(dot + 11);
  if (/^50*$/.test(tail)) {
    // An exact tie: JavaScript rounds up, Go rounds to even.
    const truncated = exact.slice(0, dot + 11);
    const lastDigit = Number(truncated[truncated.length - 1]);
    return lastDigit % 2 === 0 ? truncated : rounded;
  }
  return rounded;
}

class ProbabilityCache {
  private readonly cache: string[] = [];
  get(n: number): string {
    let p = this.cache[n];
    if (p === undefined) {
      p = formatProbability(n);
      this.cache[n] = p;
    }
    return p;
  }
}

function markValue(bit: number): string {
  if (!Number.isInteger(bit) || bit < 0 || bit > 31) {
    throw new RenderInputError('options', 'masqueradeBit', `${String(bit)} is not a bit number 0..31`);
  }
  return '0x' + (2 ** bit).toString(16);
}

/** Which node addresses take NodePorts, as kube-proxy's NodePortAddresses decides for one family. */
interface NodePortAddressing {
  matchAll: boolean;
  /** For !matchAll: the addresses that get a "-d ip -j KUBE-NODEPORTS" rule. */
  ips: string[];
  /** The effective localhost-NodePorts setting (IPv4, enabled, and the CIDRs include loopback). */
  localhostNodePorts: boolean;
}

/**
 * Whether the rules accept NodePorts on 127.0.0.1 (kube-proxy: localhostNodePorts and nodePortAddresses
 * overlapping 127.0.0.0/8, an empty list meaning every address): exactly then the kernel must route
 * DNATed loopback traffic off the host, i.e. route_localnet=1. IPv4 options only; IPv6 never does.
 */
export function acceptsLocalhostNodePorts(opts: IptablesRenderOptions): boolean {
  return resolveNodePortAddresses(opts).localhostNodePorts;
}

function resolveNodePortAddresses(opts: IptablesRenderOptions): NodePortAddressing {
  const { family } = opts;
  let cidrs: ParsedCIDR[];
  if (opts.nodePortAddresses.length === 1 && opts.nodePortAddresses[0] === 'primary') {
    // kube-proxy turns "primary" into the node's primary IP of each family as a host CIDR, skipping
    // a family whose primary IP is unknown or loopback; that family then gets the default below
    // (every local address), exactly as if no CIDR of it had been given.
    const primary = opts.nodeIPs[0];
    cidrs = primary === undefined || isLoopback(primary) ? [] : [parseCIDR(primary) as ParsedCIDR];
  } else {
    cidrs = opts.nodePortAddresses.map((text, i) => {
      const parsed = parseCIDR(text);
      if (parsed === null)
        throw new RenderInputError('options', `nodePortAddresses[${i}]`, `"${text}" is not a CIDR`);
      return parsed;
    });
    cidrs = cidrs.filter((c) => c.family === family);
  }
  if (cidrs.length === 0) {
    cidrs = [parseCIDR(family === 'IPv4' ? '0.0.0.0/0' : '::/0') as ParsedCIDR];
  }
  // kube-proxy's ContainsIPv4Loopback: the CIDR's address is a loopback one or the CIDR contains
  // 127.0.0.0, i.e. the CIDR overlaps 127.0.0.0/8 (127.0.0.2/32 counts, though it lacks 127.0.0.1).
  const overlapsIPv4Loopback = (c: ParsedCIDR): boolean =>
    cidrContains(c, '127.0.0.0') || cidrContains(IPV4_LOOPBACK_CIDR, c.text.slice(0, c.text.indexOf('/')));
  const containsIPv4Loopback = family === 'IPv4' && cidrs.some(overlapsIPv4Loopback);
  const localhostNodePorts = family === 'IPv4' && opts.localhostNodePorts && containsIPv4Loopback;
  const matchAll = cidrs.some((c) => c.prefix === 0);
  if (matchAll) return { matchAll, ips: [], localhostNodePorts };
  // The loopback interface always holds 127.0.0.1; kube-proxy finds it when listing interfaces.
  const candidates = family === 'IPv4' ? [...opts.nodeIPs, '127.0.0.1'] : [...opts.nodeIPs];
  const ips = [...new Set(candidates)]
    .filter((ip) => cidrs.some((c) => cidrContains(c, ip)))
    .filter((ip) => !isLoopback(ip) || localhostNodePorts)
    .sort(compareIPs);
  return { matchAll, ips, localhostNodePorts };
}

function isLoopback(ip: string): boolean {
  return ip === '::1' || cidrContains(IPV4_LOOPBACK_CIDR, ip);
}

/** ExternallyAccessible(service) in k8s.io/kubernetes/pkg/api/v1/service: by type, any family. */
function typeIsExternallyAccessible(sp: ServicePort): boolean {
  return (
    sp.type === 'LoadBalancer' ||
    sp.type === 'NodePort' ||
    (sp.type === 'ClusterIP' && sp.externalIPs.length > 0)
  );
}

/** The Service's cluster IP of the family (kube-proxy's per-family proxier ignores Services without one). */
function familyClusterIP(sp: ServicePort, family: IptablesRenderOptions['family']): string | undefined {
  return sp.clusterIPs.find((ip) => (family === 'IPv4') === !ip.includes(':'));
}

/** Endpoints of the family of a service port that has a cluster IP of the family (else 0). */
function familyEndpointCount(sp: ServicePort, family: IptablesRenderOptions['family']): number {
  if (familyClusterIP(sp, family) === undefined) return 0;
  let n = 0;
  for (const ep of sp.endpoints) if (ep.family === family) n++;
  return n;
}

function familyView(sp: ServicePort, opts: IptablesRenderOptions): FamilyServicePort | null {
  const { family } = opts;
  const object = `servicePort ${sp.id}/${protocolToken(sp.protocol)}`;
  const clusterIP = familyClusterIP(sp, family);
  // kube-proxy's per-family proxier ignores a Service without a cluster IP of its family.
  if (clusterIP === undefined) return null;
  checkedIP(clusterIP, family, object, 'clusterIPs');
  checkedPort(sp.port, object, 'port');
  const nodePort = checkedPort(sp.nodePort, object, 'nodePort', true);
  checkedPort(sp.healthCheckNodePort, object, 'healthCheckNodePort', true);

  const inFamily = (ip: string): boolean => (family === 'IPv4') === !ip.includes(':');
  const externalIPs = sp.externalIPs
    .filter(inFamily)
    .map((ip) => checkedIP(ip, family, object, 'externalIPs'));
  const loadBalancerVIPs = sp.loadBalancerIngress
    .filter((ing) => ing.ipMode === 'VIP' && inFamily(ing.ip))
    .map((ing) => checkedIP(ing.ip, family, object, 'loadBalancerIngress'));
  let loadBalancerSourceRanges = sp.loadBalancerSourceRanges
    .map((c, i) => {
      const parsed = parseCIDR(c);
      if (parsed === null) throw new RenderInputError(object, `loadBalancerSourceRanges[${i}]`, 'not a CIDR');
      return parsed;
    })
    .filter((c) => c.family === family);
  // A zero-length prefix means "allow any", the same as no ranges at all.
  if (loadBalancerSourceRanges.some((c) => c.prefix === 0)) loadBalancerSourceRanges = [];

  const externalPolicyLocal = sp.externalTrafficPolicy === 'Local' && typeIsExternallyAccessible(sp);
  const internalPolicyLocal = sp.internalTrafficPolicy === 'Local';
  // NeedsHealthCheck: only LoadBalancer Services with externalTrafficPolicy Local.
  const healthCheckNodePort = sp.type === 'LoadBalancer' && externalPolicyLocal ? sp.healthCheckNodePort : 0;

  const protocol = protocolToken(sp.protocol);
  const local = (ep: Endpoint): boolean => opts.nodeName !== '' && ep.nodeName === opts.nodeName;
  const endpoints = sp.endpoints
    .filter((ep) => ep.family === family)
    .map((ep) => {
      checkedIP(ep.ip, family, object, `endpoints[${ep.ip}].ip`);
      checkedPort(ep.port, object, `endpoints[${ep.ip}].port`);
      const hostPort = joinHostPort(ep.ip, ep.port);
      return { ep, hostPort, chain: endpointChainName(sp.id, sp.protocol, hostPort), local: local(ep) };
    })
    // kube-proxy sorts endpoints by their "ip:port" string (byEndpoint), not numerically.
    .sort((a, b) => (a.hostPort < b.hostPort ? -1 : a.hostPort > b.hostPort ? 1 : 0));

  return {
    sp,
    object,
    owner: chainOwner(sp),
    protocol,
    clusterIP,
    port: String(sp.port),
    nodePort,
    healthCheckNodePort,
    externalIPs,
    loadBalancerVIPs,
    loadBalancerSourceRanges,
    externalPolicyLocal,
    internalPolicyLocal,
    endpoints,
  };
}

type EndpointEntry = FamilyServicePort['endpoints'][number];

/** kube-proxy's topology modes: '' = no topology (every endpoint is a candidate). */
type TopologyMode = '' | 'PreferSameZone' | 'PreferSameNode';

/**
 * kube-proxy's topologyModeFromHints, over the ready endpoints only: PreferSameNode when every one
 * has node hints and one is hinted for this node (kube-proxy's PreferSameTrafficDistribution gate:
 * on by default since 1.34, GA and locked on in 1.35); else PreferSameZone when every one has zone
 * hints and one is hinted for this node's zone; else ''. A partial set of hints (the controller is
 * mid-update, or some endpoints have no zone) means no topology at all, never a partial filter.
 */
function topologyModeFromHints(
  endpoints: readonly EndpointEntry[],
  nodeName: string,
  zone: string,
): TopologyMode {
  let hasReadyEndpoints = false;
  let allHaveNodeHints = true;
  let hasEndpointForNode = false;
  let allHaveZoneHints = true;
  let hasEndpointForZone = false;
  for (const { ep } of endpoints) {
    if (!ep.ready) continue;
    hasReadyEndpoints = true;
    if (ep.nodeHints === undefined || ep.nodeHints.length === 0) allHaveNodeHints = false;
    else if (ep.nodeHints.includes(nodeName)) hasEndpointForNode = true;
    if (ep.zoneHints === undefined || ep.zoneHints.length === 0) allHaveZoneHints = false;
    else if (ep.zoneHints.includes(zone)) hasEndpointForZone = true;
  }
  if (!hasReadyEndpoints) return '';
  if (allHaveNodeHints && hasEndpointForNode) return 'PreferSameNode';
  if (allHaveZoneHints && hasEndpointForZone) return 'PreferSameZone';
  return '';
}

/** kube-proxy's availableForTopology (no fallback here: it is in the choice of the mode). */
function availableForTopology(ep: Endpoint, mode: TopologyMode, nodeName: string, zone: string): boolean {
  switch (mode) {
    case '':
      return true;
    case 'PreferSameNode':
      return ep.nodeHints?.includes(nodeName) ?? false;
    case 'PreferSameZone':
      return ep.zoneHints?.includes(zone) ?? false;
  }
}

/**
 * proxy.CategorizeEndpoints: the cluster-policy endpoints (ready ones, narrowed by topology hints),
 * the local-policy endpoints (never narrowed by topology), each falling back to serving-and-
 * terminating endpoints when it has no ready one. `zone` is this node's zone ('' when unknown).
 */
function categorizeEndpoints(
  svc: FamilyServicePort,
  usesClusterEndpoints: boolean,
  usesLocalEndpoints: boolean,
  nodeName: string,
  zone: string,
): {
  clusterEndpoints: EndpointEntry[];
  localEndpoints: EndpointEntry[];
  allReachable: EndpointEntry[];
  hasAnyEndpoints: boolean;
} {
  let clusterEndpoints: EndpointEntry[] = [];
  let localEndpoints: EndpointEntry[] = [];
  let hasAnyEndpoints = false;
  let useServingTerminating = false;
  let topologyMode: TopologyMode = '';
  const servingTerminating = (e: EndpointEntry): boolean => e.ep.serving && e.ep.terminating;

  if (usesClusterEndpoints) {
    topologyMode = topologyModeFromHints(svc.endpoints, nodeName, zone);
    clusterEndpoints = svc.endpoints.filter(
      (e) => e.ep.ready && availableForTopology(e.ep, topologyMode, nodeName, zone),
    );
    // No ready endpoint anywhere (a mode is only chosen when one is ready for this node or zone):
    // fall back to serving-and-terminating ones, regardless of topology, as kube-proxy does.
    if (clusterEndpoints.length === 0) clusterEndpoints = svc.endpoints.filter(servingTerminating);
    if (clusterEndpoints.length > 0) hasAnyEndpoints = true;
  }
  if (!usesLocalEndpoints)
    return { clusterEndpoints, localEndpoints, allReachable: clusterEndpoints, hasAnyEndpoints };

  let hasLocalReady = false;
  let hasLocalServingTerminating = false;
  for (const e of svc.endpoints) {
    if (e.ep.ready) {
      hasAnyEndpoints = true;
      if (e.local) hasLocalReady = true;
    } else if (servingTerminating(e)) {
      hasAnyEndpoints = true;
      if (e.local) hasLocalServingTerminating = true;
    }
  }
  if (hasLocalReady) {
    localEndpoints = svc.endpoints.filter((e) => e.local && e.ep.ready);
  } else if (hasLocalServingTerminating) {
    useServingTerminating = true;
    localEndpoints = svc.endpoints.filter((e) => e.local && servingTerminating(e));
  }
  if (!usesClusterEndpoints)
    return { clusterEndpoints, localEndpoints, allReachable: localEndpoints, hasAnyEndpoints };
  if (topologyMode === '' && !useServingTerminating) {
    // Without topology, clusterEndpoints holds every ready endpoint: a superset of localEndpoints.
    return { clusterEndpoints, localEndpoints, allReachable: clusterEndpoints, hasAnyEndpoints };
  }
  // Topology may have left out a local ready endpoint, or the local policy fell back to terminating
  // ones: take the union, in the service's endpoint order (kube-proxy uses map order; ours is stable).
  const chosen = new Set<EndpointEntry>([...clusterEndpoints, ...localEndpoints]);
  const allReachable = svc.endpoints.filter((e) => chosen.has(e));
  return { clusterEndpoints, localEndpoints, allReachable, hasAnyEndpoints };
}

/** kube-proxy's iptablesJumpChains (+ the kubelet firewall jumps), each prepended to a built-in chain. */
function builtinJumps(withKubeletFirewall: boolean): BuiltinJump[] {
  const ctNew = ['-m', 'conntrack', '--ctstate', 'NEW'];
  const jump = (
    table: BuiltinJump['table'],
    chain: BuiltinJump['chain'],
    target: string,
    comment: string,
    extra: string[] = [],
  ): BuiltinJump => ({
    table,
    chain,
    spec: joinTokens([...extra, ...(comment === '' ? [] : commentArgs(comment)), '-j', target]),
    position: 'prepend',
  });
  const jumps: BuiltinJump[] = [
    jump('filter', 'INPUT', KUBE_EXTERNAL_SERVICES, 'kubernetes externally-visible service portals', ctNew),
    jump('filter', 'FORWARD', KUBE_EXTERNAL_SERVICES, 'kubernetes externally-visible service portals', ctNew),
    jump('filter', 'INPUT', KUBE_NODEPORTS, 'kubernetes health check service ports'),
    jump('filter', 'FORWARD', KUBE_SERVICES, 'kubernetes service portals', ctNew),
    jump('filter', 'OUTPUT', KUBE_SERVICES, 'kubernetes service portals', ctNew),
    jump('filter', 'FORWARD', KUBE_FORWARD, 'kubernetes forwarding rules'),
    jump('filter', 'INPUT', KUBE_PROXY_FIREWALL, 'kubernetes load balancer firewall', ctNew),
    jump('filter', 'OUTPUT', KUBE_PROXY_FIREWALL, 'kubernetes load balancer firewall', ctNew),
    jump('filter', 'FORWARD', KUBE_PROXY_FIREWALL, 'kubernetes load balancer firewall', ctNew),
    jump('nat', 'OUTPUT', KUBE_SERVICES, 'kubernetes service portals'),
    jump('nat', 'PREROUTING', KUBE_SERVICES, 'kubernetes service portals'),
    jump('nat', 'POSTROUTING', KUBE_POSTROUTING, 'kubernetes postrouting rules'),
  ];
  if (withKubeletFirewall) {
    jumps.push(jump('filter', 'INPUT', KUBE_FIREWALL, ''), jump('filter', 'OUTPUT', KUBE_FIREWALL, ''));
  }
  return jumps;
}

/**
 * What each service port rendered last time (its own chains and its lines in the shared chains),
 * kept by ServicePort object identity. The ClusterStateBuilder hands out the same ServicePort object
 * while a service port is unchanged, so a render with a cache redoes only the service ports that
 * changed and re-assembles the shared chains from kept pieces: at 10k Services one endpoint change
 * costs milliseconds instead of a full render. The output is byte-identical to a render without the
 * cache (a property test holds it to that).
 *
 * One cache serves one render context (the options of one family): a render with other options, or
 * a flip of large-cluster mode (which changes every service's comments), empties it. Entries die
 * with their ServicePort objects (WeakMap). Rule sets rendered with a cache share chain objects with
 * earlier ones, which is what lets a plan skip unchanged chains by identity: treat them as immutable
 * (a chain whose rules were replaced is noticed and its service port rendered again).
 */
export class IptablesRenderCache {
  private contextKey: string | null = null;
  private fragments = new WeakMap<ServicePort, ServiceFragment | null>();
  private readonly ipv4Counts = new WeakMap<ServicePort, number>();
  private readonly ipv6Counts = new WeakMap<ServicePort, number>();
  /** Static chains of the last render, with the pieces their text was joined from. */
  private statics = new Map<string, { chain: RenderedChain; parts: string[] }>();
  /** Service ports taken from the cache / rendered, in the last render. */
  hits = 0;
  misses = 0;

  /**
   * Start a render: keep the entries only if they were made in the same context. `localDetector` is
   * the resolved local-traffic match (its ifLocal args, null for none): in NodeCIDR mode it comes
   * from the Node's podCIDRs, which are not in `opts`.
   */
  begin(
    opts: IptablesRenderOptions,
    largeClusterMode: boolean,
    nodeZone = '',
    localDetector: readonly string[] | null = null,
  ): void {
    // The zone decides which hinted endpoints every service uses: a new zone re-renders them all.
    const key = JSON.stringify([opts, largeClusterMode, nodeZone, localDetector]);
    if (key !== this.contextKey) {
      this.contextKey = key;
      this.fragments = new WeakMap();
      this.statics = new Map();
    }
    this.hits = 0;
    this.misses = 0;
  }

  /** Forget everything (the next render renders every service port). */
  clear(): void {
    this.contextKey = null;
    this.fragments = new WeakMap();
    this.statics = new Map();
  }

  /** @internal the last render's static chain when it was made of the same pieces (and is intact). */
  staticChain(table: TableName, name: string, parts: readonly string[]): RenderedChain | undefined {
    const kept = this.statics.get(`${table} ${name}`);
    if (kept === undefined || kept.chain.text === undefined || kept.parts.length !== parts.length) return undefined;
    for (let i = 0; i < parts.length; i++) if (kept.parts[i] !== parts[i]) return undefined;
    return kept.chain;
  }

  /** @internal remember a static chain built in this render. */
  keepStaticChain(table: TableName, chain: RenderedChain, parts: string[]): void {
    this.statics.set(`${table} ${chain.name}`, { chain, parts });
  }

  /** @internal endpoints of the family a service port contributes (kept: a pure function of the object). */
  endpointCount(sp: ServicePort, family: IptablesRenderOptions['family']): number {
    const counts = family === 'IPv4' ? this.ipv4Counts : this.ipv6Counts;
    let n = counts.get(sp);
    if (n === undefined) counts.set(sp, (n = familyEndpointCount(sp, family)));
    return n;
  }

  /** @internal the fragment of one service port, from the cache or rendered and kept. */
  fragment(sp: ServicePort, ctx: ServiceRenderContext): ServiceFragment | null {
    const kept = this.fragments.get(sp);
    if (kept === null || (kept !== undefined && intact(kept.natChains))) {
      this.hits++;
      return kept;
    }
    this.misses++;
    const fresh = renderServiceFragment(sp, ctx);
    this.fragments.set(sp, fresh);
    return fresh;
  }
}

/** No chain's rules were replaced since it was rendered (the setter drops `text`). */
function intact(chains: readonly RenderedChain[]): boolean {
  for (let i = 0; i < chains.length; i++) if (chains[i]!.text === undefined) return false;
  return true;
}

/** What the rendering of one service port needs besides the ServicePort (equal contexts, equal output). */
interface ServiceRenderContext {
  opts: IptablesRenderOptions;
  ifLocal: string[] | null;
  ifNotLocal: string[] | null;
  primaryNodeIP: string | undefined;
  largeClusterMode: boolean;
  /** This node's topology.kubernetes.io/zone ('' when unknown: zone hints are then ignored). */
  nodeZone: string;
  probabilities: ProbabilityCache;
}

/**
 * One service port's chains and its lines in the shared chains (kube-proxy's loop body of
 * syncProxyRules); null when the Service has no cluster IP of the family.
 */
function renderServiceFragment(servicePort: ServicePort, ctx: ServiceRenderContext): ServiceFragment | null {
  const { opts, ifLocal, ifNotLocal, primaryNodeIP, probabilities } = ctx;
  // Dropping per-endpoint comments in big clusters saves a third of the payload (kube-proxy does too).
  const serviceComment = (text: string): string => (ctx.largeClusterMode ? '' : commentMatch(text));
  const svc = familyView(servicePort, opts);
  if (svc === null) return null;
  const fragment = new FragmentWriter();
  const nat = fragment.table('nat');
  const filter = fragment.table('filter');
  const { sp, protocol, owner, port } = svc;
  const name = sp.id;
  const protoMatch = `-m ${protocol} -p ${protocol}`;

  const externallyAccessible =
    svc.nodePort !== 0 || svc.loadBalancerVIPs.length > 0 || svc.externalIPs.length > 0;
  const usesClusterEndpoints = !svc.internalPolicyLocal || externallyAccessible;
  const usesLocalEndpoints = svc.internalPolicyLocal || (svc.externalPolicyLocal && externallyAccessible);
  const {
    clusterEndpoints,
    localEndpoints,
    allReachable,
    hasAnyEndpoints: hasEndpoints,
  } = categorizeEndpoints(svc, usesClusterEndpoints, usesLocalEndpoints, opts.nodeName, ctx.nodeZone);

  // One hash for the four per-service names (SVC/SVL/EXT/FW share portProtoHash).
  const chainNames = perServiceChainNames(name, sp.protocol);
  const clusterPolicyChain = chainNames.service;
  const usesClusterPolicyChain = clusterEndpoints.length > 0 && usesClusterEndpoints;
  const localPolicyChain = chainNames.localService;
  const usesLocalPolicyChain = localEndpoints.length > 0 && usesLocalEndpoints;

  let internalTrafficChain = clusterPolicyChain;
  let hasInternalEndpoints = hasEndpoints;
  if (svc.internalPolicyLocal) {
    internalTrafficChain = localPolicyChain;
    if (localEndpoints.length === 0) hasInternalEndpoints = false;
  }
  let externalPolicyChain = clusterPolicyChain;
  let hasExternalEndpoints = hasEndpoints;
  if (svc.externalPolicyLocal) {
    externalPolicyChain = localPolicyChain;
    if (localEndpoints.length === 0) hasExternalEndpoints = false;
  }
  const externalTrafficChain = chainNames.external;
  // Based on hasEndpoints (not hasExternalEndpoints): the short-circuit rules for traffic from
  // inside the cluster are needed even when no endpoint takes external traffic.
  const usesExternalTrafficChain = hasEndpoints && externallyAccessible;

  const fwChain = chainNames.firewall;
  const usesFWChain =
    hasEndpoints && svc.loadBalancerVIPs.length > 0 && svc.loadBalancerSourceRanges.length > 0;
  const loadBalancerTrafficChain = usesFWChain ? fwChain : externalTrafficChain;

  let internalFilterTarget = '';
  let internalFilterComment = '';
  let externalFilterTarget = '';
  let externalFilterComment = '';
  if (!hasEndpoints) {
    // No endpoints anywhere: no nat chains, only REJECTs in filter.
    internalFilterTarget = 'REJECT';
    internalFilterComment = `${name} has no endpoints`;
    externalFilterTarget = 'REJECT';
    externalFilterComment = internalFilterComment;
  } else {
    if (!hasInternalEndpoints) {
      internalFilterTarget = 'DROP';
      internalFilterComment = `${name} has no local endpoints`;
    }
    if (!hasExternalEndpoints) {
      externalFilterTarget = 'DROP';
      externalFilterComment = `${name} has no local endpoints`;
    }
  }

  // Declare this service's nat chains up front, in kube-proxy's order (EXT, FW, SVC, SVL, SEPs).
  if (usesExternalTrafficChain) nat.declare(externalTrafficChain, 'external', owner);
  if (usesFWChain) nat.declare(fwChain, 'firewall', owner);
  if (usesClusterPolicyChain) nat.declare(clusterPolicyChain, 'service', owner);
  if (usesLocalPolicyChain) nat.declare(localPolicyChain, 'service', owner);
  for (const e of allReachable) nat.declare(e.chain, 'endpoint', owner);

  // Cluster IP.
  const clusterIPMatch = `${protoMatch} -d ${svc.clusterIP} --dport ${port}`;
  if (hasInternalEndpoints) {
    nat.write(
      KUBE_SERVICES,
      commentMatch(`${name} cluster IP`),
      clusterIPMatch,
      '-j',
      internalTrafficChain,
    );
  } else {
    filter.write(
      KUBE_SERVICES,
      commentMatch(internalFilterComment),
      clusterIPMatch,
      '-j',
      internalFilterTarget,
    );
  }

  // External IPs.
  for (const externalIP of svc.externalIPs) {
    const match = `${protoMatch} -d ${externalIP} --dport ${port}`;
    if (hasEndpoints) {
      nat.write(KUBE_SERVICES, commentMatch(`${name} external IP`), match, '-j', externalTrafficChain);
    }
    if (!hasExternalEndpoints) {
      filter.write(
        KUBE_EXTERNAL_SERVICES,
        commentMatch(externalFilterComment),
        match,
        '-j',
        externalFilterTarget,
      );
    }
  }

  // Load-balancer ingress IPs (VIP mode only).
  for (const lbIP of svc.loadBalancerVIPs) {
    const match = `${protoMatch} -d ${lbIP} --dport ${port}`;
    if (hasEndpoints) {
      nat.write(
        KUBE_SERVICES,
        commentMatch(`${name} loadbalancer IP`),
        match,
        '-j',
        loadBalancerTrafficChain,
      );
    }
    if (usesFWChain) {
      filter.write(
        KUBE_PROXY_FIREWALL,
        commentMatch(`${name} traffic not accepted by ${fwChain}`),
        match,
        '-j',
        'DROP',
      );
    }
  }
  if (!hasExternalEndpoints) {
    for (const lbIP of svc.loadBalancerVIPs) {
      filter.write(
        KUBE_EXTERNAL_SERVICES,
        commentMatch(externalFilterComment),
        protoMatch,
        '-d',
        lbIP,
        '--dport',
        port,
        '-j',
        externalFilterTarget,
      );
    }
  }

  // Node ports. (kube-proxy's extra "-d 127.0.0.0/8 … -m nfacct" rule only counts packets and needs
  // nfacct, which portway does not use; the rule below accepts localhost traffic as well.)
  if (svc.nodePort !== 0) {
    const nodePort = String(svc.nodePort);
    if (hasEndpoints) {
      nat.write(
        KUBE_NODEPORTS,
        commentMatch(name),
        protoMatch,
        '--dport',
        nodePort,
        '-j',
        externalTrafficChain,
      );
    }
    if (!hasExternalEndpoints) {
      filter.write(
        KUBE_EXTERNAL_SERVICES,
        commentMatch(externalFilterComment),
        '-m',
        'addrtype',
        '--dst-type',
        'LOCAL',
        protoMatch,
        '--dport',
        nodePort,
        '-j',
        externalFilterTarget,
      );
    }
  }

  // Health-check node port: accepted whether or not this node has local endpoints.
  if (svc.healthCheckNodePort !== 0) {
    filter.write(
      KUBE_NODEPORTS,
      commentMatch(`${name} health check node port`),
      '-m',
      'tcp',
      '-p',
      'tcp',
      '--dport',
      String(svc.healthCheckNodePort),
      '-j',
      'ACCEPT',
    );
  }

  // Internal traffic: masquerade what does not come from a pod (or everything with masqueradeAll).
  if (hasInternalEndpoints) {
    const args = [commentMatch(`${name} cluster IP`), clusterIPMatch];
    if (opts.masqueradeAll) {
      nat.write(internalTrafficChain, args, '-j', KUBE_MARK_MASQ);
    } else if (ifNotLocal !== null) {
      // Off-cluster traffic to a service VIP (e.g. via a static route to any node) may bounce
      // to another node, so it is masqueraded.
      nat.write(internalTrafficChain, args, ifNotLocal, '-j', KUBE_MARK_MASQ);
    }
  }

  // External traffic: everything captured for external destinations enters the EXT chain.
  if (usesExternalTrafficChain) {
    if (!svc.externalPolicyLocal) {
      nat.write(
        externalTrafficChain,
        commentMatch(`masquerade traffic for ${name} external destinations`),
        '-j',
        KUBE_MARK_MASQ,
      );
    } else {
      if (ifLocal !== null) {
        // Pod → external address of the service: like going out to the LB and back in, so it
        // is subject to neither traffic policy.
        nat.write(
          externalTrafficChain,
          commentMatch(`pod traffic for ${name} external destinations`),
          ifLocal,
          '-j',
          clusterPolicyChain,
        );
      }
      // From the node itself the source would be a local address: masquerade and use Cluster policy.
      nat.write(
        externalTrafficChain,
        commentMatch(`masquerade LOCAL traffic for ${name} external destinations`),
        '-m',
        'addrtype',
        '--src-type',
        'LOCAL',
        '-j',
        KUBE_MARK_MASQ,
      );
      nat.write(
        externalTrafficChain,
        commentMatch(`route LOCAL traffic for ${name} external destinations`),
        '-m',
        'addrtype',
        '--src-type',
        'LOCAL',
        '-j',
        clusterPolicyChain,
      );
    }
    if (hasExternalEndpoints) nat.write(externalTrafficChain, '-j', externalPolicyChain);
  }

  // loadBalancerSourceRanges (only meaningful for VIP-style balancers that keep the client source).
  if (usesFWChain) {
    const fwComment = commentMatch(`${name} loadbalancer IP`);
    let allowFromNode = false;
    for (const cidr of svc.loadBalancerSourceRanges) {
      nat.write(fwChain, fwComment, '-s', cidr.text, '-j', externalTrafficChain);
      if (primaryNodeIP !== undefined && cidrContains(cidr, primaryNodeIP)) allowFromNode = true;
    }
    // A VIP routed locally makes node → VIP traffic loop back with the VIP as source: allow it.
    if (allowFromNode) {
      for (const lbIP of svc.loadBalancerVIPs)
        nat.write(fwChain, fwComment, '-s', lbIP, '-j', externalTrafficChain);
    }
    // Whatever reaches the end is not DNATed and meets the DROP in filter KUBE-PROXY-FIREWALL.
    nat.write(fwChain, commentMatch(`other traffic to ${name} will be dropped by KUBE-PROXY-FIREWALL`));
  }

  const affinity = sp.sessionAffinity.type === 'ClientIP' ? sp.sessionAffinity.timeoutSeconds : null;
  if (affinity !== null && (!Number.isInteger(affinity) || affinity < 0 || affinity > 86400)) {
    throw new RenderInputError(
      svc.object,
      'sessionAffinity.timeoutSeconds',
      `${String(affinity)} is not 0..86400`,
    );
  }
  const writeServiceToEndpoints = (chain: string, endpoints: EndpointEntry[]): void => {
    if (affinity !== null) {
      for (const e of endpoints) {
        nat.write(
          chain,
          serviceComment(`${name} -> ${e.hostPort}`),
          '-m',
          'recent',
          '--name',
          e.chain,
          '--rcheck',
          '--seconds',
          String(affinity),
          '--reap',
          '-j',
          e.chain,
        );
      }
    }
    const n = endpoints.length;
    endpoints.forEach((e, i) => {
      const comment = serviceComment(`${name} -> ${e.hostPort}`);
      if (i < n - 1) {
        nat.write(
          chain,
          comment,
          '-m',
          'statistic',
          '--mode',
          'random',
          '--probability',
          probabilities.get(n - i),
          '-j',
          e.chain,
        );
      } else {
        nat.write(chain, comment, '-j', e.chain);
      }
    });
  };
  if (usesClusterPolicyChain) writeServiceToEndpoints(clusterPolicyChain, clusterEndpoints);
  if (usesLocalPolicyChain) writeServiceToEndpoints(localPolicyChain, localEndpoints);

  for (const e of allReachable) {
    const comment = serviceComment(name);
    // Hairpin: a pod reaching itself through the service must be masqueraded to get the reply.
    nat.write(e.chain, comment, '-s', e.ep.ip, '-j', KUBE_MARK_MASQ);
    nat.write(
      e.chain,
      comment,
      affinity !== null ? ['-m', 'recent', '--name', e.chain, '--set'] : [],
      protoMatch,
      '-j',
      'DNAT',
      '--to-destination',
      e.hostPort,
    );
  }
  return fragment.finish();
}

/**
 * This node's zone, from its Node object's topology.kubernetes.io/zone label as kube-proxy reads it;
 * '' when the node is unnamed, not in the state, or unlabelled.
 */
export function nodeZoneOf(state: ClusterState, nodeName: string): string {
  if (nodeName === '') return '';
  return state.nodes.find((n) => n.name === nodeName)?.zone ?? '';
}

/**
 * kube-proxy's LocalTrafficDetector for one family: the match for traffic from this node's pods and
 * its negation (null when there is no detector), with why there is none. Decisions that depend on
 * it: masquerading of off-cluster traffic to cluster IPs, and pods reaching a Local-policy service's
 * external address.
 */
export interface LocalTrafficDetector {
  mode: DetectLocalMode;
  ifLocal: string[] | null;
  ifNotLocal: string[] | null;
  /** '' when a detector applies; otherwise why none does (for logs and doctor). */
  reason: '' | 'noClusterCIDR' | 'nodeNotFound' | 'noNodePodCIDR';
}

/**
 * The local-traffic detector of `opts.family` (kube-proxy's getLocalDetectors): ClusterCIDR and
 * NodeCIDR match the source (`-s CIDR`), the first CIDR of the family only; BridgeInterface and
 * InterfaceNamePrefix match the input interface (`-i br0`, `-i veth+`) and serve both families.
 * NodeCIDR reads this node's spec.podCIDRs from the ClusterState, as kube-proxy reads its Node. Pure.
 */
export function localTrafficDetectorOf(state: ClusterState, opts: IptablesRenderOptions): LocalTrafficDetector {
  const { family } = opts;
  const mode = opts.detectLocalMode ?? 'ClusterCIDR';
  const bySource = (cidr: string): LocalTrafficDetector => ({
    mode,
    ifLocal: ['-s', cidr],
    ifNotLocal: ['!', '-s', cidr],
    reason: '',
  });
  const byInterface = (pattern: string): LocalTrafficDetector => ({
    mode,
    ifLocal: ['-i', pattern],
    ifNotLocal: ['!', '-i', pattern],
    reason: '',
  });
  const none = (reason: LocalTrafficDetector['reason']): LocalTrafficDetector => ({
    mode,
    ifLocal: null,
    ifNotLocal: null,
    reason,
  });
  switch (mode) {
    case 'ClusterCIDR': {
      if (opts.clusterCIDRs.length > 1) {
        throw new RenderInputError('options', 'clusterCIDRs', `at most one ${family} CIDR is supported`);
      }
      const cidr = opts.clusterCIDRs[0];
      return cidr === undefined ? none('noClusterCIDR') : bySource(checkedCIDR(cidr, family, 'options', 'clusterCIDRs[0]'));
    }
    case 'NodeCIDR': {
      const node = opts.nodeName === '' ? undefined : state.nodes.find((n) => n.name === opts.nodeName);
      if (node === undefined) return none('nodeNotFound');
      const podCIDRs = node.podCIDRs ?? [];
      const index = podCIDRs.findIndex((c) => parseCIDR(c)?.family === family);
      const cidr = podCIDRs[index];
      if (cidr === undefined) return none('noNodePodCIDR');
      return bySource(checkedCIDR(cidr, family, `node ${node.name}`, `podCIDRs[${index}]`));
    }
    case 'BridgeInterface':
      return byInterface(checkedInterface(opts.bridgeInterface ?? '', 'name', 'bridgeInterface'));
    case 'InterfaceNamePrefix':
      return byInterface(checkedInterface(opts.interfaceNamePrefix ?? '', 'prefix', 'interfaceNamePrefix') + '+');
    default:
      throw new RenderInputError('options', 'detectLocalMode', `"${String(mode)}" is not a detectLocalMode`);
  }
}

function checkedInterface(name: string, kind: 'name' | 'prefix', field: string): string {
  const problem = interfaceNameProblem(name, kind);
  if (problem !== null) throw new RenderInputError('options', field, problem);
  return name;
}

/** Render the iptables rules of one IP family (kube-proxy's syncProxyRules, full sync). Pure. */
export function renderIptables(
  state: ClusterState,
  opts: IptablesRenderOptions,
  cache?: IptablesRenderCache,
): IptablesRuleSet {
  const { family } = opts;
  const isIPv6 = family === 'IPv6';
  const mark = markValue(opts.masqueradeBit);
  const nodePorts = resolveNodePortAddresses(opts);
  const primaryNodeIP = opts.nodeIPs[0];
  if (primaryNodeIP !== undefined) checkedIP(primaryNodeIP, family, 'options', 'nodeIPs[0]');
  const detector = localTrafficDetectorOf(state, opts);
  const ifLocal = detector.ifLocal;
  const ifNotLocal = detector.ifNotLocal;

  const filter = new StaticTable('filter');
  const nat = new StaticTable('nat');
  for (const c of [
    KUBE_SERVICES,
    KUBE_EXTERNAL_SERVICES,
    KUBE_FORWARD,
    KUBE_NODEPORTS,
    KUBE_PROXY_FIREWALL,
  ]) {
    filter.declare(c);
  }
  for (const c of [KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ]) nat.declare(c);

  nat.write(KUBE_POSTROUTING, '-m', 'mark', '!', '--mark', `${mark}/${mark}`, '-j', 'RETURN');
  // Clear the mark so a packet that re-traverses the stack is not masqueraded twice.
  nat.write(KUBE_POSTROUTING, '-j', 'MARK', '--xor-mark', mark);
  nat.write(
    KUBE_POSTROUTING,
    commentMatch('kubernetes service traffic requiring SNAT'),
    '-j',
    'MASQUERADE',
    opts.randomFully ? ['--random-fully'] : [],
  );
  nat.write(KUBE_MARK_MASQ, '-j', 'MARK', '--or-mark', mark);

  if (nodePorts.localhostNodePorts) {
    // route_localnet (needed for localhost NodePorts) opens a hole (kubernetes#90259); kubelet and
    // kube-proxy both install this rule to close it.
    filter.declare(KUBE_FIREWALL);
    filter.write(
      KUBE_FIREWALL,
      commentMatch('block incoming localnet connections'),
      '-d',
      IPV4_LOOPBACK_CIDR,
      '!',
      '-s',
      IPV4_LOOPBACK_CIDR,
      '-m',
      'conntrack',
      '!',
      '--ctstate',
      'RELATED,ESTABLISHED,DNAT',
      '-j',
      'DROP',
    );
  }

  // Counted first (large-cluster mode depends on the total); each service's view is then built just
  // before its rules and dropped after, instead of holding views of every service at once.
  let totalEndpoints = 0;
  for (const sp of state.servicePorts) {
    totalEndpoints += cache ? cache.endpointCount(sp, family) : familyEndpointCount(sp, family);
  }
  const largeClusterMode = totalEndpoints > opts.largeClusterEndpointThreshold;
  const nodeZone = nodeZoneOf(state, opts.nodeName);
  const ctx: ServiceRenderContext = {
    opts,
    ifLocal,
    ifNotLocal,
    primaryNodeIP,
    largeClusterMode,
    nodeZone,
    probabilities: new ProbabilityCache(),
  };
  cache?.begin(opts, largeClusterMode, nodeZone, ifLocal);
  const fragments: ServiceFragment[] = [];
  let serviceChainCount = 0;
  for (const servicePort of state.servicePorts) {
    const fragment = cache ? cache.fragment(servicePort, ctx) : renderServiceFragment(servicePort, ctx);
    if (fragment === null) continue;
    fragments.push(fragment);
    serviceChainCount += fragment.natChains.length;
    for (const piece of fragment.shared) (piece.table === 'nat' ? nat : filter).append(piece.chain, piece.text);
  }
  // One array of the final size (110k chains at 10k Services), filled in place.
  const natServiceChains = new Array<RenderedChain>(serviceChainCount);
  let at = 0;
  for (const fragment of fragments) for (const c of fragment.natChains) natServiceChains[at++] = c;

  // Finally the tail call to KUBE-NODEPORTS: it must be the last rule of KUBE-SERVICES.
  const nodePortsComment = commentMatch(
    'kubernetes service nodeports; NOTE: this must be the last rule in this chain',
  );
  if (nodePorts.matchAll) {
    const destinations = ['-m', 'addrtype', '--dst-type', 'LOCAL'];
    // Localhost NodePorts never work on IPv6 and on IPv4 only with route_localnet: exclude them.
    if (isIPv6) destinations.push('!', '-d', IPV6_LOOPBACK_CIDR);
    else if (!nodePorts.localhostNodePorts) destinations.push('!', '-d', IPV4_LOOPBACK_CIDR);
    nat.write(KUBE_SERVICES, nodePortsComment, destinations, '-j', KUBE_NODEPORTS);
  } else {
    for (const ip of nodePorts.ips)
      nat.write(KUBE_SERVICES, nodePortsComment, '-d', ip, '-j', KUBE_NODEPORTS);
  }

  // INVALID packets can reset connections unless the kernel is liberal about TCP windows (#74839).
  if (!opts.conntrackTCPBeLiberal)
    filter.write(KUBE_FORWARD, '-m', 'conntrack', '--ctstate', 'INVALID', '-j', 'DROP');
  // Forward what was marked for masquerade even when the FORWARD policy is DROP (NodePorts).
  filter.write(
    KUBE_FORWARD,
    commentMatch('kubernetes forwarding rules'),
    '-m',
    'mark',
    '--mark',
    `${mark}/${mark}`,
    '-j',
    'ACCEPT',
  );
  filter.write(
    KUBE_FORWARD,
    commentMatch('kubernetes forwarding conntrack rule'),
    '-m',
    'conntrack',
    '--ctstate',
    'RELATED,ESTABLISHED',
    '-j',
    'ACCEPT',
  );

  return {
    family,
    tables: [filter.build([], cache), nat.build(natServiceChains, cache)],
    builtinJumps: builtinJumps(nodePorts.localhostNodePorts),
  };
}

export type { IptablesRenderOptions };
