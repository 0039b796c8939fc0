// What `portway trace` calls: take rules (restore text, a parsed dump, or a rendered rule set),
// walk a packet through them and explain the result, naming the Service behind each chain from
// kube-proxy-style rule comments ("ns/name:port …"). Pure. In ipvs mode (an IpvsRuleSet, or a
// LiveIpvsRules read from a kernel) the walk also goes through IPVS: the sets the rules match and the
// virtual servers come from the rule set or the kernel.
import { joinHostPort } from '../model/ip.js';
import { serializeRuleSet } from '../render/iptables/index.js';
import { serializeIpvsIptables, type IpvsRuleSet } from '../render/ipvs/index.js';
import type { IptablesRuleSet } from '../render/types.js';
import { parseIptablesDump, type IptablesDump } from './iptables-dump.js';
import {
  walkPacket,
  type IpvsDecision,
  type PacketOutcome,
  type PathStep,
  type TracedPacket,
  type WalkOptions,
  type WalkVirtualServer,
} from './packet-walker.js';

/** ipvs mode's state besides iptables, as read back from a node's kernel. */
export interface LiveIpvsState {
  /** Every set of the namespace: name → entries as `ipset save` prints them. */
  ipsets: Record<string, string[]>;
  /** IPVS's virtual servers with the kernel's real servers and weights. */
  virtualServers: WalkVirtualServer[];
  /** The addresses bound on kube-ipvs0 (the node accepts packets for them). */
  boundAddresses: string[];
}

/** ipvs mode live: the kernel's iptables rules (iptables-save text or parsed) and its IPVS side. */
export interface LiveIpvsRules extends LiveIpvsState {
  kind: 'live-ipvs';
  iptables: string | IptablesDump;
}

export type TraceRules = string | IptablesDump | IptablesRuleSet | IpvsRuleSet | LiveIpvsRules;

export interface TraceResult {
  packet: TracedPacket;
  locallyGenerated: boolean;
  outcome: PacketOutcome;
  /** The printable explanation (formatTrace). */
  explanation: string;
}

/** Walk `packet` through `rules` as this node would; see walkPacket for the options. */
export function traceServicePacket(rules: TraceRules, packet: TracedPacket, node: WalkOptions): TraceResult {
  let dump: IptablesDump;
  let opts = node;
  if (isLiveIpvsRules(rules)) {
    dump = toDump(rules.iptables);
    opts = ipvsWalkOptions(rules, node);
  } else if (isIpvsRuleSet(rules)) {
    dump = parseIptablesDump(serializeIpvsIptables(rules, { includeBuiltinJumps: true }));
    opts = ipvsWalkOptions(
      {
        boundAddresses: rules.boundAddresses,
        ipsets: Object.fromEntries(rules.ipsets.map((set) => [set.name, set.entries.map((e) => e.value)])),
        virtualServers: rules.virtualServers,
      },
      node,
    );
  } else {
    dump = toDump(rules);
  }
  const outcome = walkPacket(dump, packet, opts);
  const services = chainServices(dump);
  return {
    packet,
    locallyGenerated: node.locallyGenerated,
    outcome,
    explanation: formatTrace(outcome, {
      packet,
      locallyGenerated: node.locallyGenerated,
      chainServices: services,
    }),
  };
}

function isLiveIpvsRules(rules: TraceRules): rules is LiveIpvsRules {
  return typeof rules !== 'string' && 'kind' in rules && rules.kind === 'live-ipvs';
}

function isIpvsRuleSet(rules: TraceRules): rules is IpvsRuleSet {
  return typeof rules !== 'string' && 'virtualServers' in rules;
}

/**
 * ipvs mode's walk: the node also owns the addresses bound on kube-ipvs0 (so they are LOCAL and
 * delivered to IPVS), the sets hold their entries, and IPVS has its virtual servers — rendered or the
 * kernel's.
 */
function ipvsWalkOptions(ipvs: LiveIpvsState, node: WalkOptions): WalkOptions {
  return {
    ...node,
    localAddresses: [...node.localAddresses, ...ipvs.boundAddresses],
    ipsets: ipvs.ipsets,
    ipvs: { virtualServers: ipvs.virtualServers },
  };
}

function toDump(rules: string | IptablesDump | IptablesRuleSet): IptablesDump {
  if (typeof rules === 'string') return parseIptablesDump(rules);
  if ('tables' in rules && rules.tables instanceof Map) return rules as IptablesDump;
  // The renderer's own serialiser, built-in jumps included: trace walks exactly what would be applied.
  return parseIptablesDump(serializeRuleSet(rules as IptablesRuleSet, { includeBuiltinJumps: true }));
}

const SERVICE_REF = /(?:^|\s)([a-z0-9][-a-z0-9]*\/[a-z0-9][-a-z0-9.]*(?::[-a-z0-9]+)?)(?=\s|$)/;

/** The Service ("ns/name:port") a comment talks about, if any. */
export function serviceOfComment(comment: string | undefined): string | undefined {
  if (comment === undefined) return undefined;
  return SERVICE_REF.exec(comment)?.[1];
}

/**
 * For every chain whose commented rules all name the same Service, that Service, keyed by
 * "table chain". Shared chains (KUBE-SERVICES, KUBE-NODEPORTS…) name several and get none.
 * Chains without comments (kube-proxy drops per-endpoint comments above 1000 endpoints) take the
 * Service of the rules that jump to them, when those all agree.
 */
export function chainServices(dump: IptablesDump): Map<string, string> {
  const result = new Map<string, string>();
  for (const table of dump.tables.values()) {
    for (const chain of table.chains.values()) {
      const names = new Set<string>();
      for (const rule of chain.rules) {
        const svc = serviceOfComment(rule.comment);
        if (svc !== undefined) names.add(svc);
      }
      if (names.size === 1) result.set(`${table.name} ${chain.name}`, [...names][0] as string);
    }
  }
  // Propagate along jumps: KUBE-SVC-X (named) → KUBE-SEP-Y (uncommented) names KUBE-SEP-Y.
  for (let changed = true; changed;) {
    changed = false;
    for (const table of dump.tables.values()) {
      const callers = new Map<string, Set<string | undefined>>();
      for (const chain of table.chains.values()) {
        for (const rule of chain.rules) {
          const t = rule.target;
          if (t === null || (t.kind !== 'jump' && t.kind !== 'goto')) continue;
          if (result.has(`${table.name} ${t.chain}`)) continue;
          const svc = serviceOfComment(rule.comment) ?? result.get(`${table.name} ${chain.name}`);
          const set = callers.get(t.chain) ?? new Set<string | undefined>();
          set.add(svc);
          callers.set(t.chain, set);
        }
      }
      for (const [target, names] of callers) {
        const [only] = [...names];
        if (names.size === 1 && only !== undefined) {
          result.set(`${table.name} ${target}`, only);
          changed = true;
        }
      }
    }
  }
  return result;
}

export interface FormatTraceContext {
  packet?: TracedPacket;
  locallyGenerated?: boolean;
  chainServices?: Map<string, string>;
}

const pct = (p: number): string => `${(p * 100).toFixed(p === 1 || p === 0 ? 0 : 1)}%`;

/** A human-readable explanation: verdict, endpoints, then the rules that decided it, per branch. */
export function formatTrace(outcome: PacketOutcome, context: FormatTraceContext = {}): string {
  const lines: string[] = [];
  const { packet } = context;
  if (packet !== undefined) {
    const where = context.locallyGenerated ? 'sent from this node' : 'arriving at this node';
    lines.push(
      `packet: ${packet.protocol.toLowerCase()} ${joinHostPort(packet.sourceIP, packet.sourcePort ?? 40000)} -> ` +
        `${joinHostPort(packet.destIP, packet.destPort)} (${where})`,
    );
  }
  const ipvs = outcome.ipvs;
  let verdictLine = `verdict: ${outcome.verdict}`;
  if (outcome.mixedVerdicts) {
    verdictLine += ` (most likely; branches disagree: ${[...new Set(outcome.branches.map((b) => b.verdict))].join(', ')})`;
  }
  lines.push(verdictLine);
  if (ipvs !== undefined) lines.push(...formatIpvsDecision(ipvs, packet));
  if (outcome.endpoints.length > 0 && ipvs !== undefined && !ipvs.sharesKnown) {
    lines.push(
      `endpoints: ${outcome.endpoints.join(', ')} (no fixed shares: ${ipvs.scheduler} picks by load or hash)`,
    );
  } else if (outcome.endpoints.length > 0) {
    lines.push(
      `endpoints: ${outcome.endpointProbabilities.map((e) => `${e.endpoint} (${pct(e.probability)})`).join(', ')}`,
    );
  } else {
    lines.push('endpoints: none (destination not translated)');
  }
  lines.push(
    `masquerade: ${outcome.masquerade ? 'yes' : 'no'}${!outcome.masquerade && outcome.markedForMasquerade ? ' (marked, but not masqueraded)' : ''}`,
  );

  const describe = (step: PathStep): string => {
    const prob =
      step.probability !== undefined ? ` (taken with probability ${step.probability.toFixed(4)})` : '';
    if (step.table === 'ipvs') return `ipvs ${step.chain}${prob}: ${step.rule}`;
    const sets = (step.setMatches ?? []).map((m) => ` [set ${m.set} matched ${m.entry}]`).join('');
    const svc = context.chainServices?.get(`${step.table} ${step.chain}`) ?? serviceOfComment(step.comment);
    const owner = svc !== undefined ? ` [Service ${svc}]` : '';
    const where = step.ruleIndex < 0 ? 'policy' : `rule ${step.ruleIndex + 1}`;
    return `${step.table} ${step.chain} ${where}${owner}${prob}: ${step.rule}${sets}`;
  };

  const branches = outcome.branches;
  const keyOf = (s: PathStep): string => `${s.table} ${s.chain} ${s.ruleIndex}`;
  let common = 0;
  if (branches.length > 1) {
    const first = branches[0]?.path ?? [];
    while (
      common < first.length &&
      branches.every(
        (b) =>
          b.path[common] !== undefined &&
          keyOf(b.path[common] as PathStep) === keyOf(first[common] as PathStep),
      )
    ) {
      common++;
    }
  }
  if (branches.length <= 1) {
    lines.push('path:');
    for (const step of branches[0]?.path ?? []) lines.push(`  ${describe(step)}`);
    if ((branches[0]?.path.length ?? 0) === 0)
      lines.push('  (no rule matched; every chain passed the packet on)');
    return lines.join('\n') + '\n';
  }
  lines.push('path (common to all branches):');
  for (const step of (branches[0] as (typeof branches)[number]).path.slice(0, common))
    lines.push(`  ${describe(step)}`);
  branches.forEach((b, i) => {
    const result = `${b.verdict}${b.endpoint !== null ? ` -> ${b.endpoint}` : ''}${b.masquerade ? ', masqueraded' : ''}`;
    // A load- or hash-based scheduler has no fixed shares: the walker's equal split is not printed.
    const chance =
      b.ipvs !== undefined && !b.ipvs.decision.sharesKnown
        ? `a candidate of ${b.ipvs.decision.scheduler}`
        : `probability ${pct(b.probability)}`;
    lines.push(`branch ${i + 1} (${chance}): ${result}`);
    for (const step of b.path.slice(common)) lines.push(`  ${describe(step)}`);
  });
  return lines.join('\n') + '\n';
}

/** The IPVS part of a trace: the virtual server, its scheduler, persistence and every real server's share. */
function formatIpvsDecision(d: IpvsDecision, packet: TracedPacket | undefined): string[] {
  const flags = d.flags.length > 0 ? ` (flags ${d.flags.join(',')})` : '';
  const lines = [
    `ipvs virtual server: ${d.virtualServer}${d.owner !== undefined ? ` [Service ${d.owner}]` : ''}, scheduler ${d.scheduler}${flags}: ${d.schedulerNote}`,
  ];
  if (d.persistenceTimeoutSeconds !== null) {
    const client = packet !== undefined ? packet.sourceIP : 'the client';
    lines.push(
      `persistence: ${d.persistenceTimeoutSeconds} s (sessionAffinity ClientIP): once ${client} has a connection, ` +
        'its new connections go to the same real server until the template expires',
    );
  }
  if (d.realServers.length === 0) lines.push('real servers: none');
  else lines.push('real servers:');
  for (const r of d.realServers) {
    const share =
      r.weight === 0
        ? 'no new connections (weight 0: terminating, draining its connections)'
        : r.share === null
          ? 'a candidate'
          : `${pct(r.share)} of new connections`;
    lines.push(`  ${r.realServer} weight ${r.weight}: ${share}`);
  }
  if (d.noRealServer !== undefined)
    lines.push(`no real server: ${d.noRealServer}; IPVS answers ICMP port unreachable`);
  return lines;
}
