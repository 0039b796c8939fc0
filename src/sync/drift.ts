// What someone else changed in portway's chains since the last restore. Pure.
// Rules are compared in iptables-save's canonical form (the same normalisation -C uses), so a rule
// portway wrote and the kernel prints back differently is not reported as drift.
import { canonicalRuleSpec, splitRuleSpec, type SavedTable } from '../dataplane/iptables-text.js';
import type { IPFamily } from '../model/cluster-state.js';
import { isOwnedChainName } from '../plan/iptables-plan.js';
import type { BuiltinJump, IptablesRuleSet, TableName } from '../render/types.js';

export interface DriftFinding {
  table: TableName;
  chain: string;
  kind: 'missingChain' | 'unexpectedChain' | 'rulesDiffer' | 'missingJump';
  /** Rules (canonical, "-A CHAIN …") portway wrote that the kernel no longer has. */
  missingRules: string[];
  /** Rules in the kernel that portway did not write. */
  extraRules: string[];
}

const canonicalLine = (chain: string, spec: readonly string[], family: IPFamily): string =>
  ['-A', chain, ...canonicalRuleSpec(spec, family)].join(' ');

/** Canonical form of a rule line "-A CHAIN spec…". */
export function canonicalRuleLine(rule: string, family: IPFamily): string {
  const tokens = splitRuleSpec(rule);
  return canonicalLine(tokens[1] ?? '', tokens.slice(2), family);
}

/** Multiset difference a − b, keeping a's order. */
function minus(a: readonly string[], b: readonly string[]): string[] {
  const counts = new Map<string, number>();
  for (const x of b) counts.set(x, (counts.get(x) ?? 0) + 1);
  const out: string[] = [];
  for (const x of a) {
    const n = counts.get(x) ?? 0;
    if (n > 0) counts.set(x, n - 1);
    else out.push(x);
  }
  return out;
}

/** Whether a saved built-in chain already holds this jump (compared canonically). */
export function savedHasJump(saved: ReadonlyMap<string, SavedTable>, jump: BuiltinJump, family: IPFamily): boolean {
  const want = canonicalLine(jump.chain, splitRuleSpec(jump.spec), family);
  const table = saved.get(jump.table);
  return table?.rules.some((r) => r.chain === jump.chain && canonicalLine(r.chain, r.spec, family) === want) ?? false;
}

/**
 * Differences between what portway last applied and what iptables-save shows, for portway's chains
 * and built-in jumps only. Chain order within a table is not compared (iptables-save sorts); rule
 * order within a chain is.
 */
export function detectDrift(
  lastApplied: IptablesRuleSet,
  saved: ReadonlyMap<string, SavedTable>,
): DriftFinding[] {
  const family = lastApplied.family;
  const findings: DriftFinding[] = [];
  for (const table of lastApplied.tables) {
    const savedTable = saved.get(table.name);
    const savedChains = new Set(savedTable?.chains.map((c) => c.name) ?? []);
    const rulesByChain = new Map<string, string[]>();
    for (const r of savedTable?.rules ?? []) {
      const list = rulesByChain.get(r.chain) ?? [];
      list.push(canonicalLine(r.chain, r.spec, family));
      rulesByChain.set(r.chain, list);
    }
    const applied = new Set<string>();
    for (const chain of table.chains) {
      applied.add(chain.name);
      const expected = chain.rules.map((r) => canonicalRuleLine(r, family));
      if (!savedChains.has(chain.name)) {
        findings.push({ table: table.name, chain: chain.name, kind: 'missingChain', missingRules: expected, extraRules: [] });
        continue;
      }
      const found = rulesByChain.get(chain.name) ?? [];
      if (expected.length !== found.length || expected.some((r, i) => r !== found[i])) {
        findings.push({
          table: table.name,
          chain: chain.name,
          kind: 'rulesDiffer',
          missingRules: minus(expected, found),
          extraRules: minus(found, expected),
        });
      }
    }
    for (const name of savedChains) {
      if (!applied.has(name) && isOwnedChainName(name)) {
        findings.push({ table: table.name, chain: name, kind: 'unexpectedChain', missingRules: [], extraRules: rulesByChain.get(name) ?? [] });
      }
    }
  }
  for (const jump of lastApplied.builtinJumps) {
    if (!savedHasJump(saved, jump, family)) {
      findings.push({
        table: jump.table,
        chain: jump.chain,
        kind: 'missingJump',
        missingRules: [canonicalLine(jump.chain, splitRuleSpec(jump.spec), family)],
        extraRules: [],
      });
    }
  }
  return findings;
}
