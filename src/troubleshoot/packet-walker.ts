// Walk one packet through parsed iptables rules the way netfilter does, and say what happens to
// it: which endpoints it can be DNATed to (every `-m statistic` branch is explored, so the answer
// is the whole set, with probabilities), whether it is masqueraded, dropped or rejected, and which
// rules decided that. Modelled on kube-proxy's packet-flow tests (iptablesTracer in
// pkg/proxy/iptables/proxier_test.go) but faithful to the kernel where that tracer shortcuts: marks
// are real bits that later `-m mark` rules read, built-in chains are entered through their hooks in
// kernel order, and masquerading is what nat POSTROUTING actually does. Pure: no I/O, no clock.
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
}

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
  hooks: Array<HookRef | 'route'>;
  delivery: 'local' | 'forward';
  /** The hook being run and its call stack. */
  hook: HookRef | null;
  stack: Frame[];
  /** When set, statistic matches of the rule at the top frame's `next` are decided (fork result). */
  forcedStatistic?: { chain: string; index: number; matched: boolean };
  verdict?: Verdict;
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

  const initialHooks: Array<HookRef | 'route'> = opts.locallyGenerated
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
      // Depth first, the "statistic matched" branch first: branches come out in rule order.
      work.push(forks[1], forks[0]);
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

/** Run a branch until it finishes (returns null) or forks on a statistic match (returns [matched, not matched]). */
function runBranch(ctx: WalkContext, s: BranchState): [BranchState, BranchState] | null {
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
    s.path.push(step);
    applyTarget(ctx, s, hook, rule.target);
  }
}

function routeAfterNat(ctx: WalkContext, s: BranchState): void {
  const local = ctx.isLocal(s.dstIP);
  s.delivery = local ? 'local' : 'forward';
  if (ctx.opts.locallyGenerated) {
    // Sent over loopback to ourselves: the packet comes back in and is delivered through INPUT
    // (the nat table is not consulted again for an existing connection).
    if (local) s.hooks.push({ table: 'mangle', chain: 'INPUT' }, { table: 'filter', chain: 'INPUT' });
    return;
  }
  s.hooks.push(
    ...(local
      ? [
          { table: 'mangle', chain: 'INPUT' },
          { table: 'filter', chain: 'INPUT' },
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
      case 'set':
        return setMatches(ctx, s, m.name, m.flags);
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

/** ipset membership for hash:ip / hash:net / hash:ip,port / hash:ip,port,ip / hash:ip,port,net / bitmap:port. */
function setMatches(ctx: WalkContext, s: BranchState, name: string, flags: Array<'src' | 'dst'>): boolean {
  const entries = ctx.opts.ipsets?.[name];
  if (entries === undefined)
    throw new PacketWalkError(`rule matches ipset ${name}, but its contents were not given`);
  return entries.some((entry) => {
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
  return {
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
