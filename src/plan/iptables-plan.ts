// desired × last applied (or observed) → one iptables-restore --noflush payload. Pure.
// The shape is kube-proxy's MinimizeIPTablesRestore: a declaration line ":CHAIN - [0:0]" flushes the
// chain, so a chain is either written whole or not mentioned at all; chains that went away are declared
// (flushed, which drops their own jumps) and deleted with -X after every rule line, by which time no
// rewritten chain refers to them any more.
import { trustedRuleText } from '../render/iptables/chain-record.js';
import type { IptablesRuleSet, RenderedChain, TableName } from '../render/types.js';
import { appendAll } from '../model/arrays.js';

/** Fixed-name chains kube-proxy's iptables and ipvs modes create (and therefore portway owns). */
export const STATIC_CHAIN_NAMES: ReadonlySet<string> = new Set([
  'KUBE-SERVICES',
  'KUBE-EXTERNAL-SERVICES',
  'KUBE-NODEPORTS',
  'KUBE-POSTROUTING',
  'KUBE-MARK-MASQ',
  'KUBE-FORWARD',
  'KUBE-PROXY-FIREWALL',
  // kube-proxy's ipvs mode: its constant chains (src/render/ipvs). Owned in both modes, so that either
  // mode's full sync empties the other's fixed chains after a mode switch.
  'KUBE-NODE-PORT',
  'KUBE-LOAD-BALANCER',
  'KUBE-SOURCE-RANGES-FIREWALL',
  'KUBE-IPVS-FILTER',
  'KUBE-IPVS-OUT-FILTER',
]);

/**
 * Chains portway writes but shares with another owner: kubelet's KUBE-FIREWALL, which kube-proxy also
 * writes (identically) when localhost NodePorts are on. Written when desired, never flushed or deleted.
 */
export const SHARED_CHAIN_NAMES: ReadonlySet<string> = new Set(['KUBE-FIREWALL']);

/** Per-service chain prefixes: chains with these names are created and deleted as Services come and go. */
export const SERVICE_CHAIN_PREFIXES: readonly string[] = [
  'KUBE-SVC-',
  'KUBE-SVL-',
  'KUBE-EXT-',
  'KUBE-FW-',
  'KUBE-SEP-',
];

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
   * Chains seen in the kernel per table (iptables-save), known on full syncs and on a first sync that
   * adopts the kernel's rules: owned ones that are not desired (left by an earlier run or by
   * kube-proxy) are deleted. Chains of other owners are ignored.
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

/**
 * kube-proxy's LineBuffer: tokens joined by one space, one line per write, bytes counted as it goes.
 * Whole chain texts (lines ending in "\n") are taken as they are, not split and joined again: a full
 * plan at 10k Services is 430k lines.
 */
export class LineBuffer {
  /** Pieces of the payload, each ending in "\n". */
  private readonly pieces: string[] = [];
  private byteCount = 0;
  private lines = 0;

  write(...tokens: string[]): void {
    const line = tokens.join(' ') + '\n';
    this.pieces.push(line);
    this.byteCount += Buffer.byteLength(line);
    this.lines++;
  }

  writeLines(lines: readonly string[]): void {
    for (const line of lines) this.write(line);
  }

  /** Append lines already joined, every one ending in "\n" (a chain's rule text). */
  writeText(text: string): void {
    if (text === '') return;
    if (text.charCodeAt(text.length - 1) !== NEWLINE)
      throw new Error('internal: rule text must end with a newline');
    this.pieces.push(text);
    this.byteCount += Buffer.byteLength(text);
    this.lines += countNewlines(text);
  }

  get lineCount(): number {
    return this.lines;
  }

  get bytes(): number {
    return this.byteCount;
  }

  toString(): string {
    return this.pieces.join('');
  }

  /**
   * The payload as strings of about `chunkChars` characters (each a join of whole pieces, so every
   * chunk ends at a line end), made as they are read and read again from the start by every
   * iteration. Fed chunk by chunk to iptables-restore, a 10k-Service payload (~40 MB) never exists as
   * one string, nor as its copy with "-S" inserted, nor as one 40 MB buffer on the pipe: only the
   * chain texts the rule set holds anyway, and a chunk at a time.
   */
  chunks(chunkChars = RESTORE_CHUNK_CHARS): Iterable<string> {
    const pieces = this.pieces;
    return {
      *[Symbol.iterator]() {
        let group: string[] = [];
        let chars = 0;
        for (const piece of pieces) {
          group.push(piece);
          chars += piece.length;
          if (chars >= chunkChars) {
            yield group.join('');
            group = [];
            chars = 0;
          }
        }
        if (group.length > 0) yield group.join('');
      },
    };
  }
}

/** Size of the chunks a streamed payload is written in: big enough that the pipe, not the chunking, sets the pace. */
export const RESTORE_CHUNK_CHARS = 1 << 20;

const NEWLINE = 10;

function countNewlines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/**
 * A chain's rules as one text, each line ending in "\n": the renderer's own text when it is certain
 * to match `rules` (no split, no copy), else joined from `rules`.
 */
export function chainRuleText(chain: RenderedChain): string {
  const text = trustedRuleText(chain);
  if (text !== undefined) return text;
  return chain.rules.length === 0 ? '' : chain.rules.join('\n') + '\n';
}

/** Chains of one table of a rule set (empty when the table is absent). */
function tableChains(rs: IptablesRuleSet | null, table: TableName): readonly RenderedChain[] {
  return rs?.tables.find((x) => x.name === table)?.chains ?? [];
}

/** How far ahead the alignment looks for a chain object before treating it as changed. */
const ALIGN_WINDOW = 64;
const MAX_ALIGN_MISSES = 256;

/**
 * Split two chain lists into the chains that are the same objects in the same relative order (a
 * cached render hands out unchanged chains again: at 10k Services almost all of them) and the rest.
 * A two-pointer walk with a short look-ahead: linear in the lists, with no map of 110k names per sync.
 * Anything the walk does not pair lands in the rest, where chains are matched by name; so the walk
 * only decides how much work is skipped, never the result.
 */
function unpairedChains(
  want: readonly RenderedChain[],
  had: readonly RenderedChain[],
): { want: RenderedChain[]; had: RenderedChain[] } {
  const wantRest: RenderedChain[] = [];
  const hadRest: RenderedChain[] = [];
  let i = 0;
  let j = 0;
  // Rule sets that share no objects (rendered without a cache) would make every step look ahead in
  // vain: after a run of misses the walk stops and leaves the rest to the by-name comparison.
  let misses = 0;
  while (i < want.length && j < had.length && misses < MAX_ALIGN_MISSES) {
    const w = want[i]!;
    const h = had[j]!;
    if (w === h) {
      i++;
      j++;
      misses = 0;
      continue;
    }
    const inHad = indexWithin(had, w, j + 1);
    if (inHad !== -1) {
      for (; j < inHad; j++) hadRest.push(had[j]!);
      continue;
    }
    const inWant = indexWithin(want, h, i + 1);
    if (inWant !== -1) {
      for (; i < inWant; i++) wantRest.push(want[i]!);
      continue;
    }
    wantRest.push(w);
    hadRest.push(h);
    i++;
    j++;
    misses++;
  }
  for (; i < want.length; i++) wantRest.push(want[i]!);
  for (; j < had.length; j++) hadRest.push(had[j]!);
  return { want: wantRest, had: hadRest };
}

function indexWithin(list: readonly RenderedChain[], chain: RenderedChain, from: number): number {
  const end = Math.min(list.length, from + ALIGN_WINDOW);
  for (let k = from; k < end; k++) if (list[k] === chain) return k;
  return -1;
}

/**
 * Reject a chain whose rules do not belong to it: a bad renderer must not reach the kernel. Only
 * chains not already applied (as the very same objects) are checked.
 */
function checkChain(chain: RenderedChain, family: string, table: TableName): void {
  if (!isOwnedChainName(chain.name) && !SHARED_CHAIN_NAMES.has(chain.name)) {
    throw new Error(`desired ${family} table ${table}: chain "${chain.name}" is not a portway-owned chain`);
  }
  const prefix = `-A ${chain.name} `;
  const bad = firstLineWithout(chainRuleText(chain), prefix);
  if (bad !== null) {
    throw new Error(
      `desired ${family} table ${table} chain ${chain.name}: rule "${bad}" does not start with "${prefix.trim()}"`,
    );
  }
}

/** The first line of `text` (lines ending in "\n") that does not start with `prefix`; null if none. */
function firstLineWithout(text: string, prefix: string): string | null {
  for (let at = 0; at < text.length;) {
    const end = text.indexOf('\n', at);
    if (!text.startsWith(prefix, at)) return text.slice(at, end === -1 ? text.length : end);
    at = end + 1;
  }
  return null;
}

/** Chains a rule text jumps or goes to (`-j NAME` / `-g NAME`), kept per chain object. */
const jumpTargetsCache = new WeakMap<RenderedChain, readonly string[]>();
/** A quoted string (skipped: `--comment "… -j X"` is not a jump) or a jump with its target. */
const QUOTED_OR_JUMP = /"[^"]*"| -[jg] ([^\s"]+)/g;

function jumpTargets(chain: RenderedChain): readonly string[] {
  let targets = jumpTargetsCache.get(chain);
  if (targets === undefined) {
    const found = new Set<string>();
    for (const m of chainRuleText(chain).matchAll(QUOTED_OR_JUMP)) if (m[1] !== undefined) found.add(m[1]);
    targets = [...found];
    jumpTargetsCache.set(chain, targets);
  }
  return targets;
}

/**
 * The chains to write, each right before the first chain that jumps to it (depth first, otherwise in
 * the given order). iptables-nft-restore looks every chain up by name in a hash of all the chains it
 * knows so far, once per declaration, rule and jump: declaring each chain where it is first needed keeps
 * that hash small for most of the payload, where declaring all 110k chains of 10k Services first made
 * it ~25% slower (16 s → 13 s measured). A jump target must be declared before the jump, so targets
 * go first.
 */
export function declarationOrder(chains: readonly RenderedChain[]): RenderedChain[] {
  // Chains not placed yet, by name: a walk takes each out as it places it.
  const pending = new Map<string, RenderedChain>();
  for (const c of chains) pending.set(c.name, c);
  const ordered: RenderedChain[] = [];
  // Iterative depth-first walk: a chain on the stack, and the index of its next target to visit.
  const stack: RenderedChain[] = [];
  const nextTarget: number[] = [];
  for (const root of chains) {
    if (!pending.delete(root.name)) continue;
    stack.push(root);
    nextTarget.push(0);
    while (stack.length > 0) {
      const depth = stack.length - 1;
      const targets = jumpTargets(stack[depth]!);
      let i = nextTarget[depth]!;
      let next: RenderedChain | undefined;
      while (i < targets.length && next === undefined) next = pending.get(targets[i++]!);
      nextTarget[depth] = i;
      if (next !== undefined) {
        pending.delete(next.name);
        stack.push(next);
        nextTarget.push(0);
      } else {
        ordered.push(stack.pop()!);
        nextTarget.pop();
      }
    }
  }
  return ordered;
}

/** What one table's part of a restore does. */
interface TableDecision {
  table: TableName;
  /** Chains declared (flushed) and filled, in desired order. */
  writes: readonly RenderedChain[];
  /** Owned static chains no longer rendered: flushed, kept. */
  toFlush: string[];
  /** Owned per-service chains no longer rendered: flushed, then -X. */
  toDelete: string[];
}

/**
 * Per table, what to write and what to get rid of. Checks every chain to write first, for every
 * table: a bad desired rule set must not leave a half-written plan.
 */
function decideTables(
  desired: IptablesRuleSet,
  lastApplied: IptablesRuleSet | null,
  full: boolean,
  observedChains: Partial<Record<TableName, readonly string[]>>,
): TableDecision[] {
  if (lastApplied && lastApplied.family !== desired.family) {
    for (const table of desired.tables)
      for (const chain of table.chains) checkChain(chain, desired.family, table.name);
    throw new Error(`lastApplied is ${lastApplied.family} but desired is ${desired.family}`);
  }
  const tables = TABLE_ORDER.filter(
    (t) =>
      desired.tables.some((x) => x.name === t) ||
      lastApplied?.tables.some((x) => x.name === t) ||
      (observedChains[t]?.length ?? 0) > 0,
  );
  const unpaired = new Map<TableName, { want: RenderedChain[]; had: RenderedChain[] }>();
  for (const table of tables) {
    const split = unpairedChains(tableChains(desired, table), tableChains(lastApplied, table));
    for (const chain of split.want) checkChain(chain, desired.family, table);
    unpaired.set(table, split);
  }
  return tables.map((table) => {
    const { want: changedCandidates, had: goneCandidates } = unpaired.get(table)!;
    const hadByName = new Map<string, RenderedChain>();
    for (const c of goneCandidates) hadByName.set(c.name, c);
    const toWrite: RenderedChain[] = [];
    const kept = new Set<string>();
    for (const chain of changedCandidates) {
      const before = hadByName.get(chain.name);
      if (before !== undefined) kept.add(chain.name);
      if (
        full ||
        before === undefined ||
        (before !== chain && chainRuleText(before) !== chainRuleText(chain))
      ) {
        toWrite.push(chain);
      }
    }
    // A full plan writes every desired chain (repairs drift), in desired order.
    const writes = full ? tableChains(desired, table) : toWrite;
    // Chains to get rid of: what we applied before, plus (full) owned chains the kernel shows.
    const gone = new Set<string>();
    for (const c of goneCandidates) if (!kept.has(c.name) && isOwnedChainName(c.name)) gone.add(c.name);
    // Owned chains the kernel shows that are not desired (known on full syncs and when adopting).
    for (const name of staleObservedChains(desired, table, observedChains, gone)) gone.add(name);
    return {
      table,
      writes,
      toDelete: [...gone].filter(isServiceChainName),
      toFlush: [...gone].filter((n) => !isServiceChainName(n)),
    };
  });
}

/** Owned chains the kernel shows in `table` that are not desired and not already in `alreadyGone`. */
function staleObservedChains(
  desired: IptablesRuleSet,
  table: TableName,
  observedChains: Partial<Record<TableName, readonly string[]>>,
  alreadyGone: ReadonlySet<string>,
): string[] {
  const observed = observedChains[table] ?? [];
  if (observed.length === 0) return [];
  const wanted = new Set(tableChains(desired, table).map((c) => c.name));
  return observed.filter((name) => isOwnedChainName(name) && !wanted.has(name) && !alreadyGone.has(name));
}

/**
 * "*table", the flush declarations of chains going away, then the chains written. Onto a kernel with
 * nothing of ours yet (no lastApplied), each chain is declared right before its rules, targets first
 * (declarationOrder: iptables-nft-restore loads 10k Services ~25% faster). Otherwise every declaration
 * comes first, in desired order: the chains are in the tool's cache from the start anyway, and a jump
 * may target a chain that was deleted behind our back and is only re-declared further down.
 */
function writeTableBody(out: LineBuffer, d: TableDecision, ontoEmptyKernel: boolean): void {
  out.write(`*${d.table}`);
  for (const name of [...d.toFlush, ...d.toDelete]) out.write(`:${name}`, '-', '[0:0]');
  if (ontoEmptyKernel) {
    for (const chain of declarationOrder(d.writes)) {
      out.write(`:${chain.name}`, '-', '[0:0]');
      out.writeText(chainRuleText(chain));
    }
    return;
  }
  if (d.writes.length > 0)
    out.writeText(':' + d.writes.map((c) => c.name).join(' - [0:0]\n:') + ' - [0:0]\n');
  for (const chain of d.writes) out.writeText(chainRuleText(chain));
}

function writeTableEnd(out: LineBuffer, toDelete: readonly string[]): void {
  for (const name of toDelete) out.write('-X', name);
  out.write('COMMIT');
}

function chainRefs(table: TableName, names: readonly string[]): ChainRef[] {
  return names.map((chain) => ({ table, chain }));
}

/**
 * The smallest restore that turns the kernel (assumed to hold `lastApplied`, or anything when `full`)
 * into `desired`. Chains being deleted are declared (flushed) first, then the chains written (see
 * writeTableBody for their order); -X lines come last.
 *
 * Chains that are the same objects in `desired` and `lastApplied` (what a cached render reuses) are
 * unchanged without looking at their rules; the others are compared by rule text.
 */
export function planIptablesRestore(
  desired: IptablesRuleSet,
  lastApplied: IptablesRuleSet | null,
  opts: IptablesPlanOptions,
): IptablesPlan {
  // Without a record of what is in the kernel, only a full plan is safe.
  const full = opts.full || lastApplied === null;
  const out = new LineBuffer();
  const changedChains: ChainRef[] = [];
  const deletedChains: ChainRef[] = [];
  const flushedChains: ChainRef[] = [];
  for (const d of decideTables(desired, lastApplied, full, opts.observedChains ?? {})) {
    if (d.writes.length === 0 && d.toFlush.length === 0 && d.toDelete.length === 0) continue;
    writeTableBody(out, d, lastApplied === null);
    writeTableEnd(out, d.toDelete);
    appendAll(
      changedChains,
      chainRefs(
        d.table,
        d.writes.map((c) => c.name),
      ),
    );
    appendAll(deletedChains, chainRefs(d.table, d.toDelete));
    appendAll(flushedChains, chainRefs(d.table, d.toFlush));
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

/** A full plan written in two parts: see planFullRestoreStreamed. */
export interface StreamedFullPlan {
  /** The nat table whole except its -X lines and COMMIT: all that needs no kernel observation. */
  readonly head: string;
  /** `head` in chunks of about RESTORE_CHUNK_CHARS, made as they are read (what a sync writes: see LineBuffer.chunks). */
  readonly headChunks: Iterable<string>;
  changedChains: ChainRef[];
  listFirst: boolean;
  /** The rest, once the kernel's chains are known: the same plan planIptablesRestore makes, in two parts. */
  finish(observedChains: Partial<Record<TableName, readonly string[]>>): {
    tail: string;
    deletedChains: ChainRef[];
    flushedChains: ChainRef[];
    /** Of head and tail together. */
    bytes: number;
    lines: number;
  };
}

/**
 * A full plan for a restore that starts before the kernel has been read. A full sync reads the tables
 * (iptables-save: drift, stale chains) and rewrites them; at 10k Services each takes seconds. Streamed,
 * iptables-restore parses the nat table (`head`) while iptables-save runs, and commits only after
 * `finish` adds what the dump showed (stale chains to remove) and the COMMIT — so the dump always shows
 * the kernel before this restore, and the two costs overlap instead of adding up. nat comes first here
 * because it is the big table; filter follows whole in the tail.
 */
export function planFullRestoreStreamed(
  desired: IptablesRuleSet,
  lastApplied: IptablesRuleSet | null,
  opts: Pick<IptablesPlanOptions, 'listFirstMinLines'> = {},
): StreamedFullPlan {
  const decisions = decideTables(desired, lastApplied, true, {});
  const nat: TableDecision = decisions.find((d) => d.table === 'nat') ?? {
    table: 'nat',
    writes: [],
    toFlush: [],
    toDelete: [],
  };
  const rest = decisions.filter((d) => d.table !== 'nat');
  const headOut = new LineBuffer();
  writeTableBody(headOut, nat, lastApplied === null);
  const changedChains = [nat, ...rest].flatMap((d) =>
    chainRefs(
      d.table,
      d.writes.map((c) => c.name),
    ),
  );
  return {
    // Joined only when read (tests, tools): a sync writes headChunks.
    get head() {
      return headOut.toString();
    },
    headChunks: headOut.chunks(),
    changedChains,
    // nat is where a big payload is: its size decides (counting filter's would read every rule).
    listFirst: headOut.lineCount >= (opts.listFirstMinLines ?? DEFAULT_LIST_FIRST_MIN_LINES),
    finish(observedChains) {
      const tailOut = new LineBuffer();
      const deletedChains: ChainRef[] = [];
      const flushedChains: ChainRef[] = [];
      const goneFrom = (d: TableDecision): Set<string> => new Set([...d.toFlush, ...d.toDelete]);
      // nat: stale chains the dump shows are flushed after the writes, deleted with the others.
      const natStale = staleObservedChains(desired, 'nat', observedChains, goneFrom(nat));
      const natDelete = [...nat.toDelete, ...natStale.filter(isServiceChainName)];
      const natFlush = [...nat.toFlush, ...natStale.filter((n) => !isServiceChainName(n))];
      for (const name of natStale) tailOut.write(`:${name}`, '-', '[0:0]');
      writeTableEnd(tailOut, natDelete);
      appendAll(deletedChains, chainRefs('nat', natDelete));
      appendAll(flushedChains, chainRefs('nat', natFlush));
      const observedElsewhere = TABLE_ORDER.filter(
        (t) => t !== 'nat' && !rest.some((d) => d.table === t) && (observedChains[t]?.length ?? 0) > 0,
      ).map((table): TableDecision => ({ table, writes: [], toFlush: [], toDelete: [] }));
      for (const d0 of [...rest, ...observedElsewhere]) {
        const stale = staleObservedChains(desired, d0.table, observedChains, goneFrom(d0));
        const d: TableDecision = {
          ...d0,
          toDelete: [...d0.toDelete, ...stale.filter(isServiceChainName)],
          toFlush: [...d0.toFlush, ...stale.filter((n) => !isServiceChainName(n))],
        };
        if (d.writes.length === 0 && d.toFlush.length === 0 && d.toDelete.length === 0) continue;
        writeTableBody(tailOut, d, lastApplied === null);
        writeTableEnd(tailOut, d.toDelete);
        appendAll(deletedChains, chainRefs(d.table, d.toDelete));
        appendAll(flushedChains, chainRefs(d.table, d.toFlush));
      }
      return {
        tail: tailOut.toString(),
        deletedChains,
        flushedChains,
        bytes: headOut.bytes + tailOut.bytes,
        lines: headOut.lineCount + tailOut.lineCount,
      };
    },
  };
}
