// desired × last applied (or observed) → one iptables-restore --noflush payload. Pure.
// The shape is kube-proxy's MinimizeIPTablesRestore: a declaration line ":CHAIN - [0:0]" flushes the
// chain, so a chain is either written whole or not mentioned at all; chains that went away are declared
// (flushed, which drops their own jumps) and deleted with -X after every rule line, by which time no
// rewritten chain refers to them any more.
import type { IptablesRuleSet, RenderedChain, TableName } from '../render/types.js';

/** Fixed-name chains kube-proxy's iptables mode creates (and therefore portway owns). */
export const STATIC_CHAIN_NAMES: ReadonlySet<string> = new Set([
  'KUBE-SERVICES',
  'KUBE-EXTERNAL-SERVICES',
  'KUBE-NODEPORTS',
  'KUBE-POSTROUTING',
  'KUBE-MARK-MASQ',
  'KUBE-FORWARD',
  'KUBE-PROXY-FIREWALL',
]);

/**
 * Chains portway writes but shares with another owner: kubelet's KUBE-FIREWALL, which kube-proxy also
 * writes (identically) when localhost NodePorts are on. Written when desired, never flushed or deleted.
 */
export const SHARED_CHAIN_NAMES: ReadonlySet<string> = new Set(['KUBE-FIREWALL']);

/** Per-service chain prefixes: chains with these names are created and deleted as Services come and go. */
export const SERVICE_CHAIN_PREFIXES: readonly string[] = ['KUBE-SVC-', 'KUBE-SVL-', 'KUBE-EXT-', 'KUBE-FW-', 'KUBE-SEP-'];

/** A per-service chain (kube-proxy's isServiceChainName): the only kind ever deleted with -X. */
export function isServiceChainName(name: string): boolean {
  return SERVICE_CHAIN_PREFIXES.some((p) => name.startsWith(p));
}

/**
 * A chain portway may declare, flush or delete. KUBE-MARK-DROP, KUBE-FIREWALL, KUBE-KUBELET-CANARY
 * and built-in chains belong to others (kubelet, the system) and are never touched.
 */
export function isOwnedChainName(name: string): boolean {
  return STATIC_CHAIN_NAMES.has(name) || isServiceChainName(name);
}

export interface ChainRef {
  table: TableName;
  chain: string;
}

export interface IptablesPlanOptions {
  /** Write every desired chain (repairs drift) instead of only those that changed since lastApplied. */
  full: boolean;
  /**
   * Chains seen in the kernel per table (iptables-save), known on full syncs: owned ones that are not
   * desired (left by an earlier run or by kube-proxy) are deleted. Chains of other owners are ignored.
   */
  observedChains?: Partial<Record<TableName, readonly string[]>>;
  /** Full plans with at least this many lines ask for the "-S first" trick (DESIGN §5). Default 2000. */
  listFirstMinLines?: number;
}

export interface IptablesPlan {
  /** iptables-restore --noflush input; '' when there is nothing to change. */
  payload: string;
  /** Chains written (declared and filled), in payload order. */
  changedChains: ChainRef[];
  /** Owned chains that are flushed and removed with -X. */
  deletedChains: ChainRef[];
  /** Owned static chains no longer rendered: flushed but kept (a built-in jump may still name them). */
  flushedChains: ChainRef[];
  full: boolean;
  /** Whether the restore should run with a leading no-op "-S" per table (large full restores only). */
  listFirst: boolean;
  bytes: number;
  lines: number;
}

const TABLE_ORDER: readonly TableName[] = ['filter', 'nat'];
export const DEFAULT_LIST_FIRST_MIN_LINES = 2000;

/** kube-proxy's LineBuffer: tokens joined by one space, one line per write, bytes counted as it goes. */
export class LineBuffer {
  private readonly lines: string[] = [];
  private byteCount = 0;

  write(...tokens: string[]): void {
    const line = tokens.join(' ');
    this.lines.push(line);
    this.byteCount += Buffer.byteLength(line) + 1;
  }

  writeLines(lines: readonly string[]): void {
    for (const line of lines) this.write(line);
  }

  get lineCount(): number {
    return this.lines.length;
  }

  get bytes(): number {
    return this.byteCount;
  }

  toString(): string {
    return this.lines.length === 0 ? '' : this.lines.join('\n') + '\n';
  }
}

function sameRules(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function chainsOf(rs: IptablesRuleSet | null, table: TableName): Map<string, RenderedChain> {
  const out = new Map<string, RenderedChain>();
  const t = rs?.tables.find((x) => x.name === table);
  for (const c of t?.chains ?? []) out.set(c.name, c);
  return out;
}

/** Reject a rule set whose rules do not belong to their chain: a bad renderer must not reach the kernel. */
function checkRuleSet(rs: IptablesRuleSet, what: string): void {
  for (const table of rs.tables) {
    for (const chain of table.chains) {
      if (!isOwnedChainName(chain.name) && !SHARED_CHAIN_NAMES.has(chain.name)) {
        throw new Error(`${what} ${rs.family} table ${table.name}: chain "${chain.name}" is not a portway-owned chain`);
      }
      const prefix = `-A ${chain.name} `;
      for (const rule of chain.rules) {
        if (!rule.startsWith(prefix) || rule.includes('\n')) {
          throw new Error(`${what} ${rs.family} table ${table.name} chain ${chain.name}: rule "${rule}" does not start with "${prefix.trim()}"`);
        }
      }
    }
  }
}

/**
 * The smallest restore that turns the kernel (assumed to hold `lastApplied`, or anything when `full`)
 * into `desired`. Declaration order is the desired order (kube-proxy's: static chains first), then the
 * chains being deleted; rule lines follow; -X lines come last.
 */
export function planIptablesRestore(
  desired: IptablesRuleSet,
  lastApplied: IptablesRuleSet | null,
  opts: IptablesPlanOptions,
): IptablesPlan {
  checkRuleSet(desired, 'desired');
  if (lastApplied && lastApplied.family !== desired.family) {
    throw new Error(`lastApplied is ${lastApplied.family} but desired is ${desired.family}`);
  }
  // Without a record of what is in the kernel, only a full plan is safe.
  const full = opts.full || lastApplied === null;
  const out = new LineBuffer();
  const changedChains: ChainRef[] = [];
  const deletedChains: ChainRef[] = [];
  const flushedChains: ChainRef[] = [];

  const tables = TABLE_ORDER.filter(
    (t) =>
      desired.tables.some((x) => x.name === t) ||
      lastApplied?.tables.some((x) => x.name === t) ||
      (opts.observedChains?.[t]?.length ?? 0) > 0,
  );

  for (const table of tables) {
    const want = chainsOf(desired, table);
    const had = chainsOf(lastApplied, table);
    const toWrite: RenderedChain[] = [];
    for (const chain of want.values()) {
      const before = had.get(chain.name);
      if (full || !before || !sameRules(before.rules, chain.rules)) toWrite.push(chain);
    }
    // Chains to get rid of: what we applied before, plus (full) owned chains the kernel shows.
    const gone = new Set<string>();
    for (const name of had.keys()) if (!want.has(name) && isOwnedChainName(name)) gone.add(name);
    if (full) for (const name of opts.observedChains?.[table] ?? []) if (isOwnedChainName(name) && !want.has(name)) gone.add(name);
    const toDelete = [...gone].filter(isServiceChainName);
    const toFlush = [...gone].filter((n) => !isServiceChainName(n));

    if (toWrite.length === 0 && gone.size === 0) continue;

    out.write(`*${table}`);
    for (const chain of toWrite) out.write(`:${chain.name}`, '-', '[0:0]');
    for (const name of [...toFlush, ...toDelete]) out.write(`:${name}`, '-', '[0:0]');
    for (const chain of toWrite) out.writeLines(chain.rules);
    for (const name of toDelete) out.write('-X', name);
    out.write('COMMIT');

    for (const chain of toWrite) changedChains.push({ table, chain: chain.name });
    for (const chain of toDelete) deletedChains.push({ table, chain });
    for (const chain of toFlush) flushedChains.push({ table, chain });
  }

  const listFirst = full && out.lineCount >= (opts.listFirstMinLines ?? DEFAULT_LIST_FIRST_MIN_LINES);
  return {
    payload: out.toString(),
    changedChains,
    deletedChains,
    flushedChains,
    full,
    listFirst,
    bytes: out.bytes,
    lines: out.lineCount,
  };
}
