// kube-proxy's iptables mode as a pure function: ClusterState + node options → the rule set of one
// IP family. Follows pkg/proxy/iptables/proxier.go syncProxyRules (and proxy.CategorizeEndpoints)
// chain for chain and rule for rule, so that a packet kube-proxy sends to endpoint set S goes to S.
// No clock, environment or kernel reads; the same input gives byte-identical output.
import type { ClusterState, ServicePort } from '../../model/cluster-state.js';
import { cidrContains } from '../../model/ip.js';
import {
  checkedMasqueradeBit,
  familyEndpointCount,
  IPV4_LOOPBACK_CIDR,
  IPV6_LOOPBACK_CIDR,
  planNode,
  planServicePort,
  type PlannedEndpoint,
  type ServicePlanContext,
} from '../../proxy/index.js';
import type { BuiltinJump, ChainRole, IptablesRuleSet, RenderedChain, TableName } from '../types.js';
import { joinTokens, type LineToken } from '../line-buffer.js';
import { chainOwner, endpointChainName, perServiceChainNames } from '../naming.js';
import { ServiceChainRecord, StaticChainRecord } from './chain-record.js';
import type { IptablesRenderOptions } from './options.js';
import { commentArgs, commentMatch } from './tokens.js';

export const KUBE_SERVICES = 'KUBE-SERVICES';
export const KUBE_EXTERNAL_SERVICES = 'KUBE-EXTERNAL-SERVICES';
export const KUBE_NODEPORTS = 'KUBE-NODEPORTS';
export const KUBE_POSTROUTING = 'KUBE-POSTROUTING';
export const KUBE_MARK_MASQ = 'KUBE-MARK-MASQ';
export const KUBE_FORWARD = 'KUBE-FORWARD';
export const KUBE_PROXY_FIREWALL = 'KUBE-PROXY-FIREWALL';
/** kubelet's anti-martian chain, duplicated by kube-proxy when localhost NodePorts are on. */
export const KUBE_FIREWALL = 'KUBE-FIREWALL';

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
  return '0x' + (2 ** checkedMasqueradeBit(bit)).toString(16);
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
  /** What the proxy layer needs to plan a service port (family, node name, zone). */
  plan: ServicePlanContext;
  ifLocal: string[] | null;
  ifNotLocal: string[] | null;
  primaryNodeIP: string | undefined;
  largeClusterMode: boolean;
  probabilities: ProbabilityCache;
}

/**
 * One service port's chains and its lines in the shared chains (kube-proxy's loop body of
 * syncProxyRules); null when the Service has no cluster IP of the family. Every decision (endpoints,
 * policies, what traffic without endpoints meets) is the proxy layer's plan; this writes it as rules.
 */
function renderServiceFragment(servicePort: ServicePort, ctx: ServiceRenderContext): ServiceFragment | null {
  const { opts, ifLocal, ifNotLocal, primaryNodeIP, probabilities } = ctx;
  // Dropping per-endpoint comments in big clusters saves a third of the payload (kube-proxy does too).
  const serviceComment = (text: string): string => (ctx.largeClusterMode ? '' : commentMatch(text));
  const svc = planServicePort(servicePort, ctx.plan);
  if (svc === null) return null;
  const fragment = new FragmentWriter();
  const nat = fragment.table('nat');
  const filter = fragment.table('filter');
  const { sp, protocol, clusterEndpoints, localEndpoints, allReachable, hasEndpoints } = svc;
  const { usesClusterEndpoints, usesLocalEndpoints, hasInternalEndpoints, hasExternalEndpoints } = svc;
  const owner = chainOwner(sp);
  const port = String(svc.port);
  const name = sp.id;
  const protoMatch = `-m ${protocol} -p ${protocol}`;

  // One hash for the four per-service names (SVC/SVL/EXT/FW share portProtoHash).
  const chainNames = perServiceChainNames(name, sp.protocol);
  const clusterPolicyChain = chainNames.service;
  const usesClusterPolicyChain = clusterEndpoints.length > 0 && usesClusterEndpoints;
  const localPolicyChain = chainNames.localService;
  const usesLocalPolicyChain = localEndpoints.length > 0 && usesLocalEndpoints;
  const internalTrafficChain = svc.internalPolicyLocal ? localPolicyChain : clusterPolicyChain;
  const externalPolicyChain = svc.externalPolicyLocal ? localPolicyChain : clusterPolicyChain;
  const externalTrafficChain = chainNames.external;
  // Based on hasEndpoints (not hasExternalEndpoints): the short-circuit rules for traffic from
  // inside the cluster are needed even when no endpoint takes external traffic.
  const usesExternalTrafficChain = hasEndpoints && svc.externallyAccessible;

  const fwChain = chainNames.firewall;
  const usesFWChain = svc.usesSourceRanges;
  const loadBalancerTrafficChain = usesFWChain ? fwChain : externalTrafficChain;

  // No endpoints anywhere: no nat chains, only REJECTs in filter; none local for a Local policy: DROP.
  const filterComment = (action: string): string =>
    action === '' ? '' : action === 'REJECT' ? `${name} has no endpoints` : `${name} has no local endpoints`;
  const internalFilterTarget = svc.internalNoEndpoints;
  const internalFilterComment = filterComment(internalFilterTarget);
  const externalFilterTarget = svc.externalNoEndpoints;
  const externalFilterComment = filterComment(externalFilterTarget);

  // The KUBE-SEP chain of each endpoint used, named once per render of this service port. Usually the
  // cluster-policy list is allReachable itself (no topology, no Local policy): then no lookup at all.
  const reachableChains = allReachable.map((e) => endpointChainName(name, sp.protocol, e.hostPort));
  let chainByEndpoint: Map<PlannedEndpoint, string> | undefined;
  const chainsOf = (endpoints: readonly PlannedEndpoint[]): string[] => {
    if (endpoints === allReachable) return reachableChains;
    chainByEndpoint ??= new Map(allReachable.map((e, i) => [e, reachableChains[i]!]));
    return endpoints.map((e) => chainByEndpoint!.get(e)!);
  };

  // Declare this service's nat chains up front, in kube-proxy's order (EXT, FW, SVC, SVL, SEPs).
  if (usesExternalTrafficChain) nat.declare(externalTrafficChain, 'external', owner);
  if (usesFWChain) nat.declare(fwChain, 'firewall', owner);
  if (usesClusterPolicyChain) nat.declare(clusterPolicyChain, 'service', owner);
  if (usesLocalPolicyChain) nat.declare(localPolicyChain, 'service', owner);
  for (const chain of reachableChains) nat.declare(chain, 'endpoint', owner);

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

  const affinity = svc.affinityTimeoutSeconds;
  const writeServiceToEndpoints = (chain: string, endpoints: PlannedEndpoint[]): void => {
    const chains = chainsOf(endpoints);
    if (affinity !== null) {
      endpoints.forEach((e, i) => {
        nat.write(
          chain,
          serviceComment(`${name} -> ${e.hostPort}`),
          '-m',
          'recent',
          '--name',
          chains[i]!,
          '--rcheck',
          '--seconds',
          String(affinity),
          '--reap',
          '-j',
          chains[i]!,
        );
      });
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
          chains[i]!,
        );
      } else {
        nat.write(chain, comment, '-j', chains[i]!);
      }
    });
  };
  if (usesClusterPolicyChain) writeServiceToEndpoints(clusterPolicyChain, clusterEndpoints);
  if (usesLocalPolicyChain) writeServiceToEndpoints(localPolicyChain, localEndpoints);

  allReachable.forEach((e, i) => {
    const sep = reachableChains[i]!;
    const comment = serviceComment(name);
    // Hairpin: a pod reaching itself through the service must be masqueraded to get the reply.
    nat.write(sep, comment, '-s', e.ep.ip, '-j', KUBE_MARK_MASQ);
    nat.write(
      sep,
      comment,
      affinity !== null ? ['-m', 'recent', '--name', sep, '--set'] : [],
      protoMatch,
      '-j',
      'DNAT',
      '--to-destination',
      e.hostPort,
    );
  });
  return fragment.finish();
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
  // The node-level decisions (NodePort addresses, local-traffic detector, primary address, zone).
  const node = planNode(state, opts);
  const { nodePorts, primaryNodeIP, nodeZone } = node;
  const ifLocal = node.detector.ifLocal;
  const ifNotLocal = node.detector.ifNotLocal;

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
  const ctx: ServiceRenderContext = {
    opts,
    plan: { family, nodeName: opts.nodeName, nodeZone },
    ifLocal,
    ifNotLocal,
    primaryNodeIP,
    largeClusterMode,
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
// The mode-neutral decisions live in src/proxy; re-exported for the callers that found them here.
export { acceptsLocalhostNodePorts, localTrafficDetectorOf, nodeZoneOf, type LocalTrafficDetector } from '../../proxy/index.js';
