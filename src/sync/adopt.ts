// The first sync of a process on a node that already carries portway's (or kube-proxy's) rules: an
// agent restart, an upgrade, a takeover from kube-proxy. Rewriting all of them costs as much as
// loading them onto an empty node (~14 s at 10k Services on the nft backend, holding the xtables lock
// and a core), though usually almost every chain is already exactly what the cluster asks for.
// Instead the dump read at start is compared chain by chain with the desired rules: chains that print
// the same are adopted as if this process had applied them, and only the others are written (plus the
// owned chains the dump shows that are no longer wanted, deleted) — the same comparison the drift
// check trusts, so the kernel ends up exactly as after a full rewrite. Pure: no I/O.
import { isOwnedChainName } from '../plan/iptables-plan.js';
import type { IptablesRuleSet, TableName } from '../render/types.js';
import { detectDriftInScan, type ScannedTable } from './drift.js';

export interface Adoption {
  /**
   * The desired rule set without the chains the kernel lacks or holds differently: what the kernel
   * already holds of it, as a lastApplied to plan a partial restore against.
   */
  kernelHolds: IptablesRuleSet;
  /** Desired chains the kernel already holds exactly ("table/chain"). */
  kept: number;
  /** Desired chains missing from the kernel or printing differently, to be written. */
  rewritten: string[];
  /** Owned chains the kernel shows that are not desired, to be deleted. */
  stale: string[];
}

/** Owned chains per table in the dump (the ones a plan may delete when they are not desired). */
function ownedChainsIn(saved: ReadonlyMap<string, ScannedTable>): Partial<Record<TableName, string[]>> {
  const owned: Partial<Record<TableName, string[]>> = {};
  for (const [name, table] of saved) {
    if (name !== 'filter' && name !== 'nat') continue;
    owned[name] = table.chains.map((c) => c.name).filter(isOwnedChainName);
  }
  return owned;
}

/**
 * What adopting the kernel's rules means for `desired`, or null when there is nothing worth adopting:
 * the dump shows no owned chain (an empty node: the full load is the cheapest way), or more than
 * `maxRewriteShare` of the desired chains would be rewritten anyway: a full, streamed load writes them
 * faster than a partial restore with every declaration first (measured on nft at 4k Services × 10:
 * rewriting 45% of the chains partially took 7.6–8.2 s, loading all of them 3.5 s).
 */
export function planAdoption(
  desired: IptablesRuleSet,
  saved: ReadonlyMap<string, ScannedTable>,
  maxRewriteShare = 0.2,
): Adoption | null {
  const owned = ownedChainsIn(saved);
  if (!Object.values(owned).some((names) => names.length > 0)) return null;
  const wanted = new Map<string, Set<string>>();
  let total = 0;
  for (const t of desired.tables) {
    wanted.set(t.name, new Set(t.chains.map((c) => c.name)));
    total += t.chains.length;
  }
  const differing = new Set<string>();
  for (const f of detectDriftInScan({ ...desired, builtinJumps: [] }, saved)) {
    if (f.kind === 'missingChain' || f.kind === 'rulesDiffer') differing.add(`${f.table}/${f.chain}`);
  }
  if (differing.size > total * maxRewriteShare) return null;
  const stale: string[] = [];
  for (const [table, names] of Object.entries(owned)) {
    for (const name of names) if (!wanted.get(table)?.has(name)) stale.push(`${table}/${name}`);
  }
  return {
    kernelHolds: {
      ...desired,
      tables: desired.tables.map((t) => ({
        ...t,
        chains: t.chains.filter((c) => !differing.has(`${t.name}/${c.name}`)),
      })),
      // The built-in jumps are checked against the dump separately (ensureJumps).
      builtinJumps: [],
    },
    kept: total - differing.size,
    rewritten: [...differing],
    stale,
  };
}
