// Walk one packet through parsed iptables rules the way netfilter does, and say what happens to
// it: which endpoints it can be DNATed to (every `-m statistic` branch is explored, so the answer
// is the whole set, with probabilities), whether it is masqueraded, dropped or rejected, and which
// rules decided that. Modelled on kube-proxy's packet-flow tests (iptablesTracer in
// pkg/proxy/iptables/proxier_test.go) but faithful to the kernel where that tracer shortcuts: marks
// are real bits that later `-m mark` rules read, built-in chains are entered through their hooks in
// kernel order, and masquerading is what nat POSTROUTING actually does. Pure: no I/O, no clock.
//
// ipvs mode: given the virtual servers (WalkOptions.ipvs), IPVS is a step of the local-delivery path
// as in the kernel — after filter INPUT, before nat INPUT (its LOCAL_IN hook) — that forwards a
// packet for a virtual server to a real server (one branch per real server that takes new
// connections, with its share under the scheduler) and sends it out through filter OUTPUT and
// nat POSTROUTING, where KUBE-POSTROUTING decides masquerade. `-m set` matches are evaluated against
// the given set contents and the entry that matched is recorded on the path.
import type { IpvsScheduler, IpvsVirtualServer } from '../render/ipvs/types.js';
import { cidrContains, compareIPs, ipFamilyOf, joinHostPort, parseCIDR } from '../model/ip.js';
import {
  ruleText,
  type DumpRule,
  type IptablesDump,
  type RuleMatch,
  type RuleTarget,
} from './iptables-dump.js';

export interface TracedPacket {
  /** TCP, UDP or SCTP (any case). */
  protocol: string;
  sourceIP: string;
  destIP: string;
  destPort: number;
  /** Defaults to 40000 (an ephemeral port): only `--sport` rules care. */
  sourcePort?: number;
  /**
   * Interface the packet arrives on (PREROUTING path). Unknown: a rule whose outcome depends on a
   * `-i` match (positive or negated) stops the walk with a PacketWalkError asking for it — never a
   * guess. Packets sent from the node have no input interface in OUTPUT/POSTROUTING and come back in
   * on `lo` when addressed to the node itself; POSTROUTING never has one (as in the kernel).
   */
  inInterface?: string;
  /** Interface the packet leaves by. Unknown: a positive `-o` does not match. */
  outInterface?: string;
  /**
   * The packet reached iptables through a bridge port (br_netfilter: `-m physdev --physdev-is-in`).
   * Default false: a routed packet. Only ipvs mode's external-IP rules ask, and both answers accept there.
   */
  bridged?: boolean;
}

export interface WalkOptions {
  /** The node's own addresses: with 127.0.0.0/8 and ::1 they are what `--dst-type LOCAL` means. */
  localAddresses: string[];
  /** true: generated on this node (nat OUTPUT path); false: arriving from outside or from a pod (PREROUTING). */
  locallyGenerated: boolean;
  /**
   * Names of `-m recent` lists that already hold this packet's source (an earlier connection of the
   * same client): `--rcheck`/`--update` on those lists match; on all others they do not.
   */
  recentEntries?: string[];
  /** ipset contents for `-m set` (set name → entries as `ipset list` prints them). */
  ipsets?: Record<string, string[]>;
  /** Initial packet mark (default 0). */
  mark?: number;
  /** ipvs mode: the IPVS virtual servers of the node (their addresses must be local addresses too). */
  ipvs?: { virtualServers: readonly WalkVirtualServer[] };
}

/**
 * A virtual server as the walk needs it: a rendered one, or one read back from the kernel (which knows
 * no Service: owner is absent there).
 */
export type WalkVirtualServer = Pick<
  IpvsVirtualServer,
  'address' | 'port' | 'protocol' | 'scheduler' | 'flags' | 'persistenceTimeoutSeconds'
> & {
  owner?: string;
  realServers: ReadonlyArray<{ address: string; port: number; weight: number }>;
};

export type Verdict = 'ACCEPT' | 'DROP' | 'REJECT';

export interface PathStep {
  table: string;
  chain: string;
  /** 0-based index of the rule in its chain; -1 for a built-in chain's policy. */
  ruleIndex: number;
  /** "-A CHAIN spec", or ":CHAIN POLICY" for a policy decision. */
  rule: string;
  comment?: string;
  /** Probability that this branch took the rule's statistic match (only for `-m statistic` rules). */
  probability?: number;
  /** The `-m set` matches of the rule that held, each with the set entry that matched. */
  setMatches?: Array<{ set: string; entry: string }>;
}

/** The real server IPVS sent one branch to. */
export interface IpvsRealServerChoice {
  /** "ip:port" / "[ip]:port". */
  realServer: string;
  weight: number;
  /**
   * The share of new connections it gets: rr (equal among weights > 0) and wrr (by weight) fix it;
   * null for a scheduler that picks by load or a hash (see IpvsDecision.sharesKnown).
   */
  share: number | null;
}

/** What IPVS does with the packet: the virtual server it hit and every real server it may reach. */
export interface IpvsDecision {
  /** "TCP 10.96.0.10:80" as ipvsadm -L -n names it. */
  virtualServer: string;
  /** The service port it belongs to ("ns/name:port/tcp"); absent for a virtual server read from the kernel. */
  owner?: string;
  scheduler: IpvsScheduler;
  flags: string[];
  /** sessionAffinity ClientIP: later connections of the client stick to its real server this long. */
  persistenceTimeoutSeconds: number | null;
  /** rr/wrr: shares follow the weights; others: the choice depends on load or a hash (no fixed shares). */
  sharesKnown: boolean;
  /** How the scheduler picks, in words. */
  schedulerNote: string;
  /** Every real server, weight 0 (terminating: no new connections) included with share 0. */
  realServers: IpvsRealServerChoice[];
  /** Why no real server was reached, when none was (the packet is answered ICMP port unreachable). */
  noRealServer?: string;
}

/** One possible fate of the packet (there is one per `-m statistic` branch taken). */
export interface WalkBranch {
  probability: number;
  verdict: Verdict;
  /** "ip:port" the packet was DNATed to ("[ip]:port" for IPv6), or null when not DNATed. */
  endpoint: string | null;
  masquerade: boolean;
  /** SNAT --to-source address, when an SNAT rule rewrote the source. */
  snatTo?: string;
  /** KUBE-MARK-MASQ (or any chain of that name) was entered. */
  markedForMasquerade: boolean;
  /** Final packet mark. */
  mark: number;
  /** Which filter hook the packet went through after routing. */
  delivery: 'local' | 'forward';
  path: PathStep[];
  /** ipvs mode: the virtual server and the real server of this branch. */
  ipvs?: { decision: IpvsDecision; realServer: IpvsRealServerChoice | null };
}

export interface PacketOutcome {
  /** The verdict of every branch when they agree; otherwise the most probable one (mixedVerdicts set). */
  verdict: Verdict;
  mixedVerdicts: boolean;
  /** Distinct DNAT destinations over all branches, sorted by address then port. */
  endpoints: string[];
  /** Probability of each endpoint (sums to ~1 when every branch DNATs). */
  endpointProbabilities: Array<{ endpoint: string; probability: number }>;
  /** Some branch is masqueraded in nat POSTROUTING (as kube-proxy's tracer: any endpoint). */
  masquerade: boolean;
  /** Some branch entered KUBE-MARK-MASQ (kube-proxy's tracer reports exactly this as "masq"). */
  markedForMasquerade: boolean;
  /** Matched rules of all branches, shared prefixes once, in walk order. */
  path: PathStep[];
  branches: WalkBranch[];
  /** ipvs mode: the virtual server the packet hit, if any. */
  ipvs?: IpvsDecision;
}

export class PacketWalkError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PacketWalkError';
  }
}

interface Frame {
  chain: string;
  next: number;
}

interface HookRef {
  table: string;
  chain: string;
}

/** A hook of the walk: a built-in chain, the routing decision, or IPVS (LOCAL_IN, after filter INPUT). */
type Hook = HookRef | 'route' | 'ipvs';

interface BranchState {
  srcIP: string;
  srcPort: number;
  dstIP: string;
  dstPort: number;
  mark: number;
  ctStates: Set<string>;
  recent: Map<string, Set<string>>;
  probability: number;
  path: PathStep[];
  endpoint: string | null;
  masquerade: boolean;
  snatTo?: string;
  markedForMasquerade: boolean;
  /** Hooks still to run; 'route' is the routing decision after PREROUTING / OUTPUT. */
  hooks: Hook[];
  delivery: 'local' | 'forward';
  /** The hook being run and its call stack. */
  hook: HookRef | null;
  stack: Frame[];
  /** When set, statistic matches of the rule at the top frame's `next` are decided (fork result). */
  forcedStatistic?: { chain: string; index: number; matched: boolean };
  verdict?: Verdict;
  /** Set entries matched while evaluating the current rule. */
  setEntries: Array<{ set: string; entry: string }>;
  /** IPVS processed the packet (what `-m ipvs` matches), and for which virtual server. */
  ipvs?: { decision: IpvsDecision; realServer: IpvsRealServerChoice | null; vs: WalkVirtualServer };
}

const MAX_CALL_DEPTH = 64;
const MAX_BRANCHES = 100_000;

/** Walk a packet through the dump; see the file comment. Throws PacketWalkError on rules it cannot evaluate. */
export function walkPacket(dump: IptablesDump, packet: TracedPacket, opts: WalkOptions): PacketOutcome {
  const family = ipFamilyOf(packet.sourceIP);
  if (family === null) throw new PacketWalkError(`packet sourceIP "${packet.sourceIP}" is not an IP address`);
  if (ipFamilyOf(packet.destIP) !== family) {
    throw new PacketWalkError(`packet destIP "${packet.destIP}" is not an ${family} address like sourceIP`);
  }
  if (!Number.isInteger(packet.destPort) || packet.destPort < 0 || packet.destPort > 65535) {
    throw new PacketWalkError(`packet destPort ${packet.destPort} is not a port number`);
  }
  const protocol = packet.protocol.toLowerCase();
  const localSet = new Set(opts.localAddresses);
  const isLocal = (ip: string): boolean =>
    localSet.has(ip) || ip === '::1' || (ipFamilyOf(ip) === 'IPv4' && cidrContains('127.0.0.0/8', ip));

  const initialHooks: Hook[] = opts.locallyGenerated
    ? [
        { table: 'raw', chain: 'OUTPUT' },
        { table: 'mangle', chain: 'OUTPUT' },
        { table: 'nat', chain: 'OUTPUT' },
        { table: 'filter', chain: 'OUTPUT' },
        { table: 'mangle', chain: 'POSTROUTING' },
        { table: 'nat', chain: 'POSTROUTING' },
        'route',
      ]
    : [
        { table: 'raw', chain: 'PREROUTING' },
        { table: 'mangle', chain: 'PREROUTING' },
        { table: 'nat', chain: 'PREROUTING' },
        'route',
      ];

  const recent = new Map<string, Set<string>>();
  for (const name of opts.recentEntries ?? []) recent.set(name, new Set([packet.sourceIP]));

  const start: BranchState = {
    srcIP: packet.sourceIP,
    srcPort: packet.sourcePort ?? 40000,
    dstIP: packet.destIP,
    dstPort: packet.destPort,
    mark: opts.mark ?? 0,
    ctStates: new Set(['NEW']),
    recent,
    probability: 1,
    path: [],
    endpoint: null,
    masquerade: false,
    markedForMasquerade: false,
    hooks: initialHooks,
    delivery: 'forward',
    hook: null,
    stack: [],
    setEntries: [],
  };

  const ctx: WalkContext = { dump, protocol, packet, opts, isLocal };
  const finished: BranchState[] = [];
  const work: BranchState[] = [start];
  while (work.length > 0) {
    const state = work.pop() as BranchState;
    const forks = runBranch(ctx, state);
    if (forks === null) {
      finished.push(state);
    } else {
      // Depth first, the "statistic matched" branch (or the first real server) first: branches come
      // out in rule order.
      work.push(...[...forks].reverse());
      if (finished.length + work.length > MAX_BRANCHES) throw new PacketWalkError('too many branches');
    }
  }
  return summarise(finished);
}

interface WalkContext {
  dump: IptablesDump;
  protocol: string;
  packet: TracedPacket;
  opts: WalkOptions;
  isLocal: (ip: string) => boolean;
}

/**
 * Run a branch until it finishes (returns null) or forks: on a statistic match ([matched, not
 * matched]) or in IPVS (one branch per real server).
 */
function runBranch(ctx: WalkContext, s: BranchState): BranchState[] | null {
  for (;;) {
    if (s.verdict !== undefined) return null;
    if (s.hook === null) {
      const next = s.hooks.shift();
      if (next === undefined) {
        s.verdict = 'ACCEPT';
        return null;
      }
      if (next === 'route') {
        routeAfterNat(ctx, s);
        continue;
      }
      if (next === 'ipvs') {
        const forks = runIpvs(ctx, s);
        if (forks !== null) return forks;
        continue;
      }
      const chain = ctx.dump.tables.get(next.table)?.chains.get(next.chain);
      if (chain === undefined) continue; // absent built-in chain: ACCEPT policy, nothing to run
      s.hook = next;
      s.stack = [{ chain: next.chain, next: 0 }];
      continue;
    }
    const hook = s.hook;
    const table = ctx.dump.tables.get(hook.table);
    const frame = s.stack[s.stack.length - 1];
    if (table === undefined || frame === undefined) {
      s.hook = null;
      continue;
    }
    const chain = table.chains.get(frame.chain);
    if (chain === undefined)
      throw new PacketWalkError(`chain ${frame.chain} is not declared in table ${hook.table}`);
    if (frame.next >= chain.rules.length) {
      s.stack.pop();
      if (s.stack.length === 0) applyPolicy(ctx, s, hook);
      continue;
    }
    const rule = chain.rules[frame.next] as DumpRule;
    const forced =
      s.forcedStatistic !== undefined &&
      s.forcedStatistic.chain === chain.name &&
      s.forcedStatistic.index === frame.next
        ? s.forcedStatistic.matched
        : undefined;
    s.forcedStatistic = undefined;
    const result = ruleMatches(ctx, s, rule, forced);
    if (result === 'fork') {
      const p = statisticProbability(rule);
      const matched = cloneState(s);
      matched.probability *= p;
      matched.forcedStatistic = { chain: chain.name, index: frame.next, matched: true };
      s.probability *= 1 - p;
      s.forcedStatistic = { chain: chain.name, index: frame.next, matched: false };
      return [matched, s];
    }
    frame.next++;
    if (!result) continue;
    applyRecentSideEffects(s, rule);
    const step: PathStep = {
      table: hook.table,
      chain: chain.name,
      ruleIndex: rule.index,
      rule: ruleText(rule),
    };
    if (rule.comment !== undefined) step.comment = rule.comment;
    if (forced === true) step.probability = statisticProbability(rule);
    if (s.setEntries.length > 0) step.setMatches = s.setEntries;
    s.path.push(step);
    applyTarget(ctx, s, hook, rule.target);
  }
}

function routeAfterNat(ctx: WalkContext, s: BranchState): void {
  const local = ctx.isLocal(s.dstIP);
  s.delivery = local ? 'local' : 'forward';
  // IPVS takes packets for its virtual servers in LOCAL_IN after filter INPUT, before nat INPUT.
  const ipvs: Hook[] = ctx.opts.ipvs !== undefined ? ['ipvs'] : [];
  if (ctx.opts.locallyGenerated) {
    // Sent over loopback to ourselves: the packet comes back in and is delivered through INPUT
    // (the nat table is not consulted again for an existing connection).
    if (local)
      s.hooks.push({ table: 'mangle', chain: 'INPUT' }, { table: 'filter', chain: 'INPUT' }, ...ipvs);
    return;
  }
  s.hooks.push(
    ...(local
      ? [
          { table: 'mangle', chain: 'INPUT' },
          { table: 'filter', chain: 'INPUT' },
          ...ipvs,
          { table: 'nat', chain: 'INPUT' },
        ]
      : [
          { table: 'mangle', chain: 'FORWARD' },
          { table: 'filter', chain: 'FORWARD' },
          { table: 'mangle', chain: 'POSTROUTING' },
          { table: 'nat', chain: 'POSTROUTING' },
        ]),
  );
}

function applyPolicy(ctx: WalkContext, s: BranchState, hook: HookRef): void {
  const chain = ctx.dump.tables.get(hook.table)?.chains.get(hook.chain);
  s.hook = null;
  if (chain?.policy === 'DROP') {
    s.path.push({ table: hook.table, chain: hook.chain, ruleIndex: -1, rule: `:${hook.chain} DROP` });
    s.verdict = 'DROP';
  }
}

function applyTarget(ctx: WalkContext, s: BranchState, hook: HookRef, target: RuleTarget | null): void {
  if (target === null) return;
  switch (target.kind) {
    case 'jump':
    case 'goto': {
      const table = ctx.dump.tables.get(hook.table);
      if (!table?.chains.has(target.chain)) {
        throw new PacketWalkError(`jump to undeclared chain ${target.chain} in table ${hook.table}`);
      }
      if (target.chain === 'KUBE-MARK-MASQ') s.markedForMasquerade = true;
      // -g: when the target chain returns, processing resumes in this chain's caller.
      if (target.kind === 'goto') s.stack.pop();
      s.stack.push({ chain: target.chain, next: 0 });
      if (s.stack.length > MAX_CALL_DEPTH) {
        throw new PacketWalkError(
          `chain calls nest deeper than ${MAX_CALL_DEPTH} (a loop?) at ${target.chain}`,
        );
      }
      return;
    }
    case 'ACCEPT':
      s.hook = null;
      s.stack = [];
      return;
    case 'DROP':
    case 'REJECT':
      s.verdict = target.kind;
      return;
    case 'RETURN':
      s.stack.pop();
      if (s.stack.length === 0) applyPolicy(ctx, s, hook);
      return;
    case 'DNAT': {
      requireNatHook(hook, ['PREROUTING', 'OUTPUT'], 'DNAT');
      const dest = parseNatAddress(target.toDestination, 'DNAT --to-destination');
      s.dstIP = dest.ip;
      if (dest.port !== undefined) s.dstPort = dest.port;
      s.endpoint = joinHostPort(s.dstIP, s.dstPort);
      s.ctStates.add('DNAT');
      s.hook = null;
      s.stack = [];
      return;
    }
    case 'SNAT': {
      requireNatHook(hook, ['POSTROUTING', 'INPUT'], 'SNAT');
      const src = parseNatAddress(target.toSource, 'SNAT --to-source');
      s.snatTo = src.ip;
      s.srcIP = src.ip;
      s.ctStates.add('SNAT');
      s.hook = null;
      s.stack = [];
      return;
    }
    case 'MASQUERADE':
      requireNatHook(hook, ['POSTROUTING'], 'MASQUERADE');
      s.masquerade = true;
      s.ctStates.add('SNAT');
      s.hook = null;
      s.stack = [];
      return;
    case 'MARK':
      s.mark = applyMark(s.mark, target.operation, target.value, target.mask);
      return;
    case 'LOG':
      return;
  }
}

function requireNatHook(hook: HookRef, chains: string[], target: string): void {
  if (hook.table !== 'nat' || !chains.includes(hook.chain)) {
    throw new PacketWalkError(
      `${target} reached from ${hook.table} ${hook.chain}: it is only valid in nat ${chains.join('/')}`,
    );
  }
}

export function applyMark(mark: number, operation: string, value: number, mask: number): number {
  switch (operation) {
    case 'or':
      return (mark | value) >>> 0;
    case 'xor':
      return (mark ^ value) >>> 0;
    case 'and':
      return (mark & value) >>> 0;
    case 'set-xmark':
      return ((mark & ~mask) ^ value) >>> 0;
    default: // set-mark
      return ((mark & ~mask) | value) >>> 0;
  }
}

/** "10.0.0.1:80", "[fd00::1]:80", "10.0.0.1", "fd00::1", "10.0.0.1-10.0.0.1:80" (first address of a range). */
function parseNatAddress(text: string, what: string): { ip: string; port?: number } {
  let host = text;
  let port: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(.+))?$/.exec(text);
  if (bracketed) {
    host = bracketed[1] as string;
    port = bracketed[2];
  } else if ((text.match(/:/g) ?? []).length === 1) {
    [host, port] = text.split(':') as [string, string];
  }
  host = host.split('-')[0] as string;
  if (ipFamilyOf(host) === null) throw new PacketWalkError(`${what} "${text}" has no valid address`);
  if (port === undefined) return { ip: host };
  const first = port.split('-')[0] as string;
  if (!/^\d+$/.test(first)) throw new PacketWalkError(`${what} "${text}" has an invalid port`);
  return { ip: host, port: Number(first) };
}

function statisticProbability(rule: DumpRule): number {
  let p = 1;
  for (const m of rule.matches) {
    if (m.kind === 'statistic') p *= m.negated ? 1 - m.probability : m.probability;
  }
  return p;
}

/** true / false, or 'fork' when everything but a random statistic match matches. */
function ruleMatches(
  ctx: WalkContext,
  s: BranchState,
  rule: DumpRule,
  forcedStatistic: boolean | undefined,
): boolean | 'fork' {
  let hasStatistic = false;
  let unknownInterface: RuleMatch | undefined;
  s.setEntries = [];
  const inInterface = inInterfaceAt(ctx, s);
  for (const m of rule.matches) {
    if (m.kind === 'statistic') {
      hasStatistic = true;
      continue;
    }
    if (m.kind === 'inInterface') {
      if (inInterface === undefined) {
        // Decided last: a rule that fails on another match does not need the interface.
        unknownInterface = m;
        continue;
      }
      if (interfaceMatches(m.name, inInterface) === m.negated) return false;
      continue;
    }
    if (!matchOne(ctx, s, m)) return false;
  }
  if (unknownInterface !== undefined && unknownInterface.kind === 'inInterface') {
    throw new PacketWalkError(
      `rule "${ruleText(rule)}" matches the input interface (${unknownInterface.negated ? '! ' : ''}-i ` +
        `${unknownInterface.name}), but the interface the packet arrives on is not known: give it ` +
        `(trace --in-interface, e.g. the pod's bridge or veth)`,
    );
  }
  if (!hasStatistic) return true;
  if (forcedStatistic !== undefined) return forcedStatistic;
  const p = statisticProbability(rule);
  if (p >= 1) return true;
  if (p <= 0) return false;
  return 'fork';
}

function matchOne(ctx: WalkContext, s: BranchState, m: RuleMatch): boolean {
  const result = ((): boolean => {
    switch (m.kind) {
      case 'source':
        return cidrContains(m.cidr, s.srcIP);
      case 'destination':
        return cidrContains(m.cidr, s.dstIP);
      case 'protocol':
        return m.protocol === 'all' || m.protocol === '0' || protocolName(m.protocol) === ctx.protocol;
      case 'inInterface': {
        const name = inInterfaceAt(ctx, s);
        if (name === undefined) throw new PacketWalkError('internal: input interface unknown in matchOne');
        return interfaceMatches(m.name, name);
      }
      case 'outInterface':
        // Routing is not modelled: an unknown output interface fails a positive `-o` (as before).
        return ctx.packet.outInterface !== undefined && interfaceMatches(m.name, ctx.packet.outInterface);
      case 'comment':
        return true;
      case 'port': {
        const ports =
          m.which === 'dport' ? [s.dstPort] : m.which === 'sport' ? [s.srcPort] : [s.srcPort, s.dstPort];
        return ports.some((p) => m.ranges.some((r) => p >= r.from && p <= r.to));
      }
      case 'addrtype': {
        const ip = m.which === 'src' ? s.srcIP : s.dstIP;
        const types = addressTypes(ctx, ip);
        return m.types.some((t) => types.has(t.toUpperCase()));
      }
      case 'mark':
        return (s.mark & m.mask) >>> 0 === (m.value & m.mask) >>> 0;
      case 'ctstate':
        return m.states.some((st) => s.ctStates.has(st));
      case 'recent': {
        const key = m.side === 'rsource' ? s.srcIP : s.dstIP;
        const present = s.recent.get(m.name)?.has(key) ?? false;
        // --set always matches; --rcheck/--update match when the address is in the list.
        return m.mode === 'set' ? true : present;
      }
      case 'set': {
        const entry = matchingSetEntry(ctx, s, m.name, m.flags);
        if (entry !== undefined && !m.negated) s.setEntries.push({ set: m.name, entry });
        return entry !== undefined;
      }
      case 'physdev':
        // Bridged frames come in through a bridge port; a locally generated packet never does.
        return m.which !== 'isOut' && !ctx.opts.locallyGenerated && ctx.packet.bridged === true;
      case 'ipvs':
        return ipvsPropertyMatches(s, m);
      case 'statistic':
        return true;
    }
  })();
  return 'negated' in m && m.negated ? !result : result;
}

function applyRecentSideEffects(s: BranchState, rule: DumpRule): void {
  for (const m of rule.matches) {
    if (m.kind !== 'recent') continue;
    const key = m.side === 'rsource' ? s.srcIP : s.dstIP;
    const list = s.recent.get(m.name) ?? new Set<string>();
    if (m.mode === 'set' || m.mode === 'update') list.add(key);
    if (m.mode === 'remove') list.delete(key);
    s.recent.set(m.name, list);
  }
}

function protocolName(p: string): string {
  return p === '6' ? 'tcp' : p === '17' ? 'udp' : p === '132' ? 'sctp' : p === '1' ? 'icmp' : p;
}

/**
 * The packet's input interface at the hook being run: '' for none (the kernel compares `-i` with an
 * empty name there, so `-i X` fails and `! -i X` holds), undefined when it is not known.
 */
function inInterfaceAt(ctx: WalkContext, s: BranchState): string | undefined {
  const chain = s.hook?.chain;
  if (chain === 'OUTPUT' || chain === 'POSTROUTING') return '';
  if (ctx.opts.locallyGenerated) return chain === 'INPUT' ? 'lo' : '';
  return ctx.packet.inInterface;
}

function interfaceMatches(pattern: string, name: string): boolean {
  return pattern.endsWith('+') ? name.startsWith(pattern.slice(0, -1)) : name === pattern;
}

function addressTypes(ctx: WalkContext, ip: string): Set<string> {
  if (ctx.isLocal(ip)) return new Set(['LOCAL']);
  if (cidrContains('224.0.0.0/4', ip) || cidrContains('ff00::/8', ip)) return new Set(['MULTICAST']);
  if (ip === '255.255.255.255') return new Set(['BROADCAST']);
  return new Set(['UNICAST']);
}

/**
 * The entry of the set the packet matches (hash:ip / hash:net / hash:ip,port / hash:ip,port,ip /
 * hash:ip,port,net / bitmap:port), or undefined.
 */
function matchingSetEntry(
  ctx: WalkContext,
  s: BranchState,
  name: string,
  flags: Array<'src' | 'dst'>,
): string | undefined {
  const entries = ctx.opts.ipsets?.[name];
  if (entries === undefined)
    throw new PacketWalkError(
      `rule matches ipset ${name}, but its contents were not given (rules of ipvs mode: ` +
        'give trace --config with mode: ipvs, so the sets are read too)',
    );
  return entries.find((entry) => {
    const parts = entry.trim().split(/\s+/)[0]?.split(',') ?? [];
    if (parts.length === 0 || parts.length > flags.length) return false;
    return parts.every((part, i) => {
      const side = flags[i] as 'src' | 'dst';
      const portMatch = /^(?:(tcp|udp|sctp):)?(\d+)$/.exec(part);
      if (portMatch && (i > 0 || ipFamilyOf(part) === null)) {
        if (portMatch[1] !== undefined && portMatch[1] !== ctx.protocol) return false;
        return Number(portMatch[2]) === (side === 'src' ? s.srcPort : s.dstPort);
      }
      const ip = side === 'src' ? s.srcIP : s.dstIP;
      const cidr = parseCIDR(part);
      return cidr !== null && cidrContains(cidr, ip);
    });
  });
}

function cloneState(s: BranchState): BranchState {
  const recent = new Map<string, Set<string>>();
  for (const [k, v] of s.recent) recent.set(k, new Set(v));
  return {
    ...s,
    ctStates: new Set(s.ctStates),
    recent,
    path: [...s.path],
    hooks: [...s.hooks],
    stack: s.stack.map((f) => ({ ...f })),
    setEntries: [],
  };
}

function summarise(states: BranchState[]): PacketOutcome {
  const branches: WalkBranch[] = states.map((s) => {
    const b: WalkBranch = {
      probability: s.probability,
      verdict: s.verdict ?? 'ACCEPT',
      endpoint: s.endpoint,
      masquerade: s.masquerade,
      markedForMasquerade: s.markedForMasquerade,
      mark: s.mark,
      delivery: s.delivery,
      path: s.path,
    };
    if (s.snatTo !== undefined) b.snatTo = s.snatTo;
    if (s.ipvs !== undefined) b.ipvs = { decision: s.ipvs.decision, realServer: s.ipvs.realServer };
    return b;
  });
  const byVerdict = new Map<Verdict, number>();
  for (const b of branches) byVerdict.set(b.verdict, (byVerdict.get(b.verdict) ?? 0) + b.probability);
  const ranked = [...byVerdict.entries()].sort((a, b) => b[1] - a[1]);
  const verdict = ranked[0]?.[0] ?? 'ACCEPT';

  // Endpoints the packet is actually delivered to: a branch that is DNATed and then dropped
  // does not reach its endpoint.
  const probabilities = new Map<string, number>();
  for (const b of branches) {
    if (b.endpoint === null || b.verdict !== 'ACCEPT') continue;
    probabilities.set(b.endpoint, (probabilities.get(b.endpoint) ?? 0) + b.probability);
  }
  const endpoints = [...probabilities.keys()].sort(compareEndpoints);

  const path: PathStep[] = [];
  const seen = new Set<string>();
  for (const b of branches) {
    for (const step of b.path) {
      const key = `${step.table} ${step.chain} ${step.ruleIndex}`;
      if (seen.has(key)) continue;
      seen.add(key);
      path.push(step);
    }
  }
  const ipvs = branches.find((b) => b.ipvs !== undefined)?.ipvs?.decision;
  return {
    ...(ipvs !== undefined ? { ipvs } : {}),
    verdict,
    mixedVerdicts: ranked.length > 1,
    endpoints,
    endpointProbabilities: endpoints.map((endpoint) => ({
      endpoint,
      probability: probabilities.get(endpoint) as number,
    })),
    masquerade: branches.some((b) => b.masquerade),
    markedForMasquerade: branches.some((b) => b.markedForMasquerade),
    path,
    branches,
  };
}

/** Order "ip:port" / "[ip]:port" by address (numerically, IPv4 first), then port. */
export function compareEndpoints(a: string, b: string): number {
  const split = (e: string): [string, number] => {
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(e);
    return m ? [m[1] as string, Number(m[2])] : [e, 0];
  };
  const [ia, pa] = split(a);
  const [ib, pb] = split(b);
  const byIP = ipFamilyOf(ia) !== null && ipFamilyOf(ib) !== null ? compareIPs(ia, ib) : ia.localeCompare(ib);
  return byIP !== 0 ? byIP : pa - pb;
}

/** `-m ipvs`: the packet was processed by IPVS (and for this virtual address, protocol, port). */
function ipvsPropertyMatches(s: BranchState, m: Extract<RuleMatch, { kind: 'ipvs' }>): boolean {
  const vs = s.ipvs?.vs;
  if (vs === undefined) return false;
  switch (m.option) {
    case 'ipvs':
      return true;
    case 'vaddr':
      return cidrContains(m.cidr, vs.address);
    case 'vproto':
      return protocolName(m.protocol) === vs.protocol.toLowerCase();
    case 'vport':
      return m.port === vs.port;
  }
}

/** How each scheduler picks a real server. */
const SCHEDULER_NOTES: Record<IpvsScheduler, string> = {
  rr: 'round robin: new connections in turn to every real server of weight > 0',
  wrr: 'weighted round robin: new connections in proportion to the weights',
  lc: 'least connection: the choice depends on load (active connections)',
  wlc: 'weighted least connection: the choice depends on load (active connections / weight)',
  sed: 'shortest expected delay: the choice depends on load (active connections / weight)',
  nq: 'never queue: an idle real server first, else the choice depends on load',
  lblc: 'locality-based least connection: the choice depends on the destination and load',
  lblcr: 'locality-based least connection with replication: the choice depends on the destination and load',
  sh: 'source hashing: the choice depends on a hash of the source address',
  dh: 'destination hashing: the choice depends on a hash of the destination address',
  mh: 'Maglev hashing: the choice depends on a hash of the source address',
};

/** The virtual server a packet is for, and the share of each real server under its scheduler. */
export function ipvsDecision(vs: WalkVirtualServer): IpvsDecision {
  const sharesKnown = vs.scheduler === 'rr' || vs.scheduler === 'wrr';
  const live = vs.realServers.filter((r) => r.weight > 0);
  // rr ignores weights but skips weight 0; wrr shares by weight.
  const total = vs.scheduler === 'wrr' ? live.reduce((sum, r) => sum + r.weight, 0) : live.length;
  const realServers = vs.realServers.map((r) => ({
    realServer: joinHostPort(r.address, r.port),
    weight: r.weight,
    share: r.weight === 0 ? 0 : !sharesKnown ? null : vs.scheduler === 'wrr' ? r.weight / total : 1 / total,
  }));
  const decision: IpvsDecision = {
    virtualServer: `${vs.protocol} ${joinHostPort(vs.address, vs.port)}`,
    ...(vs.owner !== undefined ? { owner: vs.owner } : {}),
    scheduler: vs.scheduler,
    flags: [...vs.flags],
    persistenceTimeoutSeconds: vs.persistenceTimeoutSeconds,
    sharesKnown,
    schedulerNote: SCHEDULER_NOTES[vs.scheduler],
    realServers,
  };
  if (live.length === 0) {
    decision.noRealServer =
      vs.realServers.length === 0
        ? 'the virtual server has no real servers (no endpoints)'
        : 'every real server has weight 0 (terminating): none takes new connections';
  }
  return decision;
}

/**
 * IPVS in LOCAL_IN: a packet for a virtual server is forwarded (masquerading forwarding: the
 * destination rewritten) to one of its real servers — one branch each, with its share (an equal split
 * when the scheduler's choice depends on load or a hash, flagged by sharesKnown) — and leaves through
 * filter OUTPUT and nat POSTROUTING. A packet from the node itself went through nat POSTROUTING on its
 * way to the VIP already: nat is consulted once per connection, so only filter OUTPUT remains. No real
 * server: IPVS answers ICMP port unreachable (REJECT). No virtual server: the walk goes on (nat INPUT).
 */
function runIpvs(ctx: WalkContext, s: BranchState): BranchState[] | null {
  const protocol = ctx.protocol.toUpperCase();
  const vs = ctx.opts.ipvs?.virtualServers.find(
    (v) => v.protocol === protocol && v.address === s.dstIP && v.port === s.dstPort,
  );
  if (vs === undefined) return null;
  const decision = ipvsDecision(vs);
  const flags = vs.flags.length > 0 ? ` -b ${vs.flags.join(',')}` : '';
  const persistent = vs.persistenceTimeoutSeconds !== null ? ` -p ${vs.persistenceTimeoutSeconds}` : '';
  s.path.push({
    table: 'ipvs',
    chain: 'virtual server',
    ruleIndex: 0,
    rule: `${decision.virtualServer} -s ${vs.scheduler}${flags}${persistent}`,
  });
  const live = vs.realServers.filter((r) => r.weight > 0);
  if (live.length === 0) {
    s.ipvs = { decision, realServer: null, vs };
    s.verdict = 'REJECT';
    return null;
  }
  const after: Hook[] = [{ table: 'filter', chain: 'OUTPUT' }];
  if (!ctx.opts.locallyGenerated)
    after.push({ table: 'mangle', chain: 'POSTROUTING' }, { table: 'nat', chain: 'POSTROUTING' });
  return live.map((rs, i) => {
    const choice = decision.realServers.find(
      (c) => c.realServer === joinHostPort(rs.address, rs.port),
    ) as IpvsRealServerChoice;
    const b = cloneState(s);
    b.probability *= choice.share ?? 1 / live.length;
    const step: PathStep = {
      table: 'ipvs',
      chain: 'real server',
      ruleIndex: i,
      rule: `-> ${choice.realServer} weight ${choice.weight} (masquerading forwarding)`,
    };
    if (choice.share !== null && choice.share < 1) step.probability = choice.share;
    b.path.push(step);
    b.dstIP = rs.address;
    b.dstPort = rs.port;
    b.endpoint = choice.realServer;
    b.ctStates.add('DNAT');
    b.delivery = 'forward';
    b.hooks = [...after];
    b.ipvs = { decision, realServer: choice, vs };
    return b;
  });
}
