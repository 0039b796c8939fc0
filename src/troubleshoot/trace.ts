// What `portway trace` calls: take rules (restore text, a parsed dump, or a rendered rule set),
// walk a packet through them and explain the result, naming the Service behind each chain from
// kube-proxy-style rule comments ("ns/name:port …"). Pure.
import { joinHostPort } from '../model/ip.js';
import { serializeRuleSet } from '../render/iptables/index.js';
import type { IptablesRuleSet } from '../render/types.js';
import { parseIptablesDump, type IptablesDump } from './iptables-dump.js';
import {
  walkPacket,
  type PacketOutcome,
  type PathStep,
  type TracedPacket,
  type WalkOptions,
} from './packet-walker.js';

export type TraceRules = string | IptablesDump | IptablesRuleSet;

export interface TraceResult {
  packet: TracedPacket;
  locallyGenerated: boolean;
  outcome: PacketOutcome;
  /** The printable explanation (formatTrace). */
  explanation: string;
}

/** Walk `packet` through `rules` as this node would; see walkPacket for the options. */
export function traceServicePacket(rules: TraceRules, packet: TracedPacket, node: WalkOptions): TraceResult {
  const dump = toDump(rules);
  const outcome = walkPacket(dump, packet, node);
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

function toDump(rules: TraceRules): IptablesDump {
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
  let verdictLine = `verdict: ${outcome.verdict}`;
  if (outcome.mixedVerdicts) {
    verdictLine += ` (most likely; branches disagree: ${[...new Set(outcome.branches.map((b) => b.verdict))].join(', ')})`;
  }
  lines.push(verdictLine);
  if (outcome.endpoints.length > 0) {
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
    const svc = context.chainServices?.get(`${step.table} ${step.chain}`) ?? serviceOfComment(step.comment);
    const owner = svc !== undefined ? ` [Service ${svc}]` : '';
    const where = step.ruleIndex < 0 ? 'policy' : `rule ${step.ruleIndex + 1}`;
    const prob =
      step.probability !== undefined ? ` (taken with probability ${step.probability.toFixed(4)})` : '';
    return `${step.table} ${step.chain} ${where}${owner}${prob}: ${step.rule}`;
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
    lines.push(`branch ${i + 1} (probability ${pct(b.probability)}): ${result}`);
    for (const step of b.path.slice(common)) lines.push(`  ${describe(step)}`);
  });
  return lines.join('\n') + '\n';
}
