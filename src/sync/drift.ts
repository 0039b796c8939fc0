// What someone else changed in portway's chains since the last restore. Pure.
// Rules are compared in iptables-save's canonical form (the same normalisation -C uses), so a rule
// portway wrote and the kernel prints back differently is not reported as drift.
//
// Two entry points over one comparison (compareWithDump), so they report the same findings:
// detectDrift over a fully parsed dump (doctor), and detectDriftInScan over a dump that was only
// scanned into per-chain blocks of text (the agent's full sync: at 10k Services the dump has 430k
// lines, and tokenising and canonicalising all of them on both sides cost seconds). The scan first
// compares each chain's block, as printed, with the text the chain is expected to print as
// (computed once per rendered chain object and kept as a digest); only chains whose text differs
// are tokenised and compared rule by rule.
import {
  canonicalRuleSpec,
  formatSavedRule,
  IptablesParseError,
  splitRuleSpec,
  type SavedChain,
  type SavedRule,
  type SavedTable,
} from '../dataplane/iptables-text.js';
import type { IPFamily } from '../model/cluster-state.js';
import { linesOnlyIn } from '../plan/diff.js';
import { isOwnedChainName } from '../plan/iptables-plan.js';
import { splitRuleText, trustedRuleText } from '../render/iptables/chain-record.js';
import type { BuiltinJump, IptablesRuleSet, RenderedChain, TableName } from '../render/types.js';

export interface DriftFinding {
  table: TableName;
  chain: string;
  kind: 'missingChain' | 'unexpectedChain' | 'rulesDiffer' | 'missingJump';
  /** Rules (canonical, "-A CHAIN …") portway wrote that the kernel no longer has. */
  missingRules: string[];
  /** Rules in the kernel that portway did not write. */
  extraRules: string[];
}

/**
 * canonicalRuleSpec plus what the kernel adds on its own: a REJECT without --reject-with is printed
 * with the default (icmp-port-unreachable, or icmp6-port-unreachable for IPv6), which would
 * otherwise be reported as drift on every full sync for each Service without endpoints.
 */
function canonicalSpec(spec: readonly string[], family: IPFamily): string[] {
  const out = canonicalRuleSpec(spec, family);
  const jump = out.lastIndexOf('-j');
  if (jump !== -1 && out[jump + 1] === 'REJECT' && !out.includes('--reject-with', jump)) {
    out.push('--reject-with', family === 'IPv4' ? 'icmp-port-unreachable' : 'icmp6-port-unreachable');
  }
  return out;
}

const canonicalLine = (chain: string, spec: readonly string[], family: IPFamily): string =>
  ['-A', chain, ...canonicalSpec(spec, family)].join(' ');

/** Canonical form of a rule line "-A CHAIN spec…". */
export function canonicalRuleLine(rule: string, family: IPFamily): string {
  const tokens = splitRuleSpec(rule);
  return canonicalLine(tokens[1] ?? '', tokens.slice(2), family);
}

/**
 * One table of a dump as the per-chain comparison reads it, whether the dump was fully parsed or
 * only scanned: both entry points feed the same comparison (compareWithDump).
 */
interface DumpTableReader {
  /** Chains in dump order. */
  readonly chains: readonly SavedChain[];
  /** A chain's rules, canonical ("-A CHAIN …"), in dump order; [] for a chain without rules. */
  canonicalRules(chain: string): string[];
  /** Cheap check that a chain prints exactly as `rendered` is expected to; false = compare rule by rule. */
  printsAsExpected(rendered: RenderedChain): boolean;
}

const emptyDumpTable: DumpTableReader = { chains: [], canonicalRules: () => [], printsAsExpected: () => false };

function parsedTableReader(table: SavedTable | undefined, family: IPFamily): DumpTableReader {
  if (table === undefined) return emptyDumpTable;
  const rulesByChain = new Map<string, SavedRule[]>();
  for (const r of table.rules) {
    const list = rulesByChain.get(r.chain);
    if (list === undefined) rulesByChain.set(r.chain, [r]);
    else list.push(r);
  }
  return {
    chains: table.chains,
    canonicalRules: (chain) => (rulesByChain.get(chain) ?? []).map((r) => canonicalLine(r.chain, r.spec, family)),
    // A parsed dump no longer has the text as printed: always compare rule by rule.
    printsAsExpected: () => false,
  };
}

/** Whether a built-in chain of the dump already holds this jump (compared canonically). */
function hasJump(reader: DumpTableReader, jump: BuiltinJump, family: IPFamily): boolean {
  return reader.canonicalRules(jump.chain).includes(canonicalLine(jump.chain, splitRuleSpec(jump.spec), family));
}

/** Whether a saved built-in chain already holds this jump (compared canonically). */
export function savedHasJump(saved: ReadonlyMap<string, SavedTable>, jump: BuiltinJump, family: IPFamily): boolean {
  return hasJump(parsedTableReader(saved.get(jump.table), family), jump, family);
}

/**
 * The one comparison behind detectDrift and detectDriftInScan: for each table portway applied,
 * its chains against the dump's, then the dump's owned chains portway did not apply, then the
 * built-in jumps.
 */
function compareWithDump(
  lastApplied: IptablesRuleSet,
  readTable: (name: TableName) => DumpTableReader,
): DriftFinding[] {
  const family = lastApplied.family;
  const findings: DriftFinding[] = [];
  const readers = new Map<TableName, DumpTableReader>();
  const reader = (name: TableName): DumpTableReader => {
    let r = readers.get(name);
    if (r === undefined) readers.set(name, (r = readTable(name)));
    return r;
  };
  for (const table of lastApplied.tables) {
    const dumpTable = reader(table.name);
    const dumpChains = new Set<string>();
    let dumpOwned = 0;
    for (const c of dumpTable.chains) {
      dumpChains.add(c.name);
      if (isOwnedChainName(c.name)) dumpOwned++;
    }
    let appliedOwnedSeen = 0;
    for (const chain of table.chains) {
      if (!dumpChains.has(chain.name)) {
        const expected = chain.rules.map((r) => canonicalRuleLine(r, family));
        findings.push({ table: table.name, chain: chain.name, kind: 'missingChain', missingRules: expected, extraRules: [] });
        continue;
      }
      if (isOwnedChainName(chain.name)) appliedOwnedSeen++;
      if (dumpTable.printsAsExpected(chain)) continue;
      // The prediction missed, or there is none, or the chain really differs: compare rule by rule, canonically.
      const expected = chain.rules.map((r) => canonicalRuleLine(r, family));
      const found = dumpTable.canonicalRules(chain.name);
      if (expected.length !== found.length || expected.some((r, i) => r !== found[i])) {
        findings.push({
          table: table.name,
          chain: chain.name,
          kind: 'rulesDiffer',
          missingRules: linesOnlyIn(expected, found),
          extraRules: linesOnlyIn(found, expected),
        });
      }
    }
    // Every owned chain of the dump is one portway applied (names are unique on both sides): no
    // chain is unexpected, and the 110k names need not be looked up again.
    if (dumpOwned === appliedOwnedSeen) continue;
    const applied = new Set(table.chains.map((c) => c.name));
    for (const name of dumpChains) {
      if (!applied.has(name) && isOwnedChainName(name)) {
        findings.push({ table: table.name, chain: name, kind: 'unexpectedChain', missingRules: [], extraRules: dumpTable.canonicalRules(name) });
      }
    }
  }
  for (const jump of lastApplied.builtinJumps) {
    if (hasJump(reader(jump.table), jump, family)) continue;
    findings.push({
      table: jump.table,
      chain: jump.chain,
      kind: 'missingJump',
      missingRules: [canonicalLine(jump.chain, splitRuleSpec(jump.spec), family)],
      extraRules: [],
    });
  }
  return findings;
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
  return compareWithDump(lastApplied, (name) => parsedTableReader(saved.get(name), lastApplied.family));
}

// ── scanned dumps ───────────────────────────────────────────────────────────────────────────────

/** One table of an iptables-save dump, scanned but not parsed. */
export interface ScannedTable {
  name: string;
  /** Chains in dump order, with their policies. */
  chains: SavedChain[];
  /** Each chain's rule lines exactly as printed, each ending in "\n" (chains without rules: absent). */
  ruleText: Map<string, string>;
}

/**
 * Split iptables-save output into tables, chain declarations and per-chain blocks of rule lines,
 * without tokenising rules. iptables-save prints a chain's rules together; should a chain's rules be
 * split up anyway, its lines are joined in dump order. Lines are trimmed as parseIptablesSave trims
 * them; the same malformed lines are rejected.
 */
export function scanIptablesSave(text: string): Map<string, ScannedTable> {
  const tables = new Map<string, ScannedTable>();
  let current: ScannedTable | null = null;
  // The block being collected: a run of lines of one chain, kept as offsets into `text` while the
  // lines are already trimmed (what iptables-save prints), copied line by line otherwise.
  let blockChain: string | null = null;
  let blockStart = 0;
  let blockEnd = 0;
  let blockLines: string[] | null = null;
  const flush = (): void => {
    if (current === null || blockChain === null) return;
    const piece = blockLines === null ? text.slice(blockStart, blockEnd) : blockLines.join('');
    const before = current.ruleText.get(blockChain);
    current.ruleText.set(blockChain, before === undefined ? piece : before + piece);
    blockChain = null;
    blockLines = null;
  };
  let lineNo = 0;
  for (let at = 0; at < text.length; ) {
    lineNo++;
    let end = text.indexOf('\n', at);
    if (end === -1) end = text.length;
    const raw = text.slice(at, end);
    const lineStart = at;
    at = end + 1;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) {
      // Not part of any block: a block that goes on after it is collected line by line.
      if (blockChain !== null && blockLines === null) blockLines = [text.slice(blockStart, blockEnd)];
      continue;
    }
    if (line.startsWith('-A ')) {
      if (current === null) throw new IptablesParseError(lineNo, `"${line}" outside a table`);
      const nameEnd = line.indexOf(' ', 3);
      const chain = nameEnd === -1 ? line.slice(3) : line.slice(3, nameEnd);
      if (chain === '') throw new IptablesParseError(lineNo, `bad rule line "${line}"`);
      const exact = line.length === raw.length && end < text.length;
      if (blockChain !== chain) {
        flush();
        blockChain = chain;
        blockStart = lineStart;
        blockEnd = lineStart;
        blockLines = null;
      }
      if (blockLines === null && exact) blockEnd = end + 1;
      else {
        if (blockLines === null) blockLines = [text.slice(blockStart, blockEnd)];
        blockLines.push(line + '\n');
      }
      continue;
    }
    flush();
    if (line.startsWith('*')) {
      current = { name: line.slice(1), chains: [], ruleText: new Map() };
      tables.set(current.name, current);
    } else if (line === 'COMMIT') {
      current = null;
    } else if (current === null) {
      throw new IptablesParseError(lineNo, `"${line}" outside a table`);
    } else if (line.startsWith(':')) {
      const m = /^:(\S+)\s+(\S+)/.exec(line);
      if (!m?.[1] || !m[2]) throw new IptablesParseError(lineNo, `bad chain line "${line}"`);
      current.chains.push({ name: m[1], policy: m[2] === '-' ? null : m[2] });
    } else {
      throw new IptablesParseError(lineNo, `unexpected line "${line}"`);
    }
  }
  flush();
  return tables;
}

/** The rules of one chain of a scanned table, parsed (as parseIptablesSave would give them). */
export function scannedChainRules(table: ScannedTable | undefined, chain: string): SavedRule[] {
  const text = table?.ruleText.get(chain);
  if (text === undefined) return [];
  const rules: SavedRule[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const tokens = splitRuleSpec(line);
    rules.push({ chain, spec: tokens.slice(2), text: line.slice(3 + chain.length).trim() });
  }
  return rules;
}

function scannedTableReader(table: ScannedTable | undefined, family: IPFamily): DumpTableReader {
  if (table === undefined) return emptyDumpTable;
  return {
    chains: table.chains,
    canonicalRules: (chain) => scannedChainRules(table, chain).map((r) => canonicalLine(r.chain, r.spec, family)),
    printsAsExpected: (rendered) => printsAsExpected(table.ruleText.get(rendered.name) ?? '', rendered, family),
  };
}

/** Whether a scanned built-in chain already holds this jump (compared canonically). */
export function scannedHasJump(scanned: ReadonlyMap<string, ScannedTable>, jump: BuiltinJump, family: IPFamily): boolean {
  return hasJump(scannedTableReader(scanned.get(jump.table), family), jump, family);
}

/**
 * How iptables-save is expected to print a chain's rules: each rule in canonical form with save's
 * quoting, one per line. A prediction: when it misses (a rule printed some other way) the chain is
 * compared rule by rule instead, so a miss costs time, never a false finding.
 */
export function expectedSaveText(chain: RenderedChain, family: IPFamily): string {
  const lines: string[] = [];
  // The renderer's text split here, not `chain.rules`: reading those would keep a split copy of every
  // rule in every chain for as long as the chain lives.
  const text = trustedRuleText(chain);
  const rules = text === undefined ? chain.rules : splitRuleText(text);
  for (const rule of rules) {
    const tokens = splitRuleSpec(rule);
    lines.push(formatSavedRule(tokens[1] ?? '', canonicalSpec(tokens.slice(2), family)));
  }
  return lines.length > 0 ? lines.join('\n') + '\n' : '';
}

/**
 * A 53-bit digest of a text (two 32-bit multiplicative hashes, "cyrb53"-style). Kept per chain
 * instead of the expected text itself: the texts of 110k chains are 33 MB, their digests a few.
 */
export function textDigest(text: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** Digest and length of the expected printed text, per rendered chain object (immutable once rendered). */
const expectedDigests = new WeakMap<RenderedChain, { family: IPFamily; length: number; digest: number }>();

function expectedDigest(chain: RenderedChain, family: IPFamily): { length: number; digest: number } {
  const kept = expectedDigests.get(chain);
  if (kept !== undefined && kept.family === family) return kept;
  const text = expectedSaveText(chain, family);
  const made = { family, length: text.length, digest: textDigest(text) };
  expectedDigests.set(chain, made);
  return made;
}

/** The chain prints as expected (same length and digest: a false match needs a 53-bit collision). */
function printsAsExpected(printed: string, chain: RenderedChain, family: IPFamily): boolean {
  const expected = expectedDigest(chain, family);
  return printed.length === expected.length && textDigest(printed) === expected.digest;
}

/**
 * Compute (and keep) the expected printed text of every chain of a rule set, in slices of about
 * `sliceMs` with the event loop served in between: the agent runs this while iptables-save is
 * writing its dump through a pipe that must keep being read. Chains seen before cost nothing, so
 * after the first full sync only changed chains are computed.
 */
export async function prepareExpectedSaveTexts(
  rs: IptablesRuleSet,
  opts: { sliceMs?: number; now?: () => number } = {},
): Promise<void> {
  const sliceMs = opts.sliceMs ?? 2;
  const now = opts.now ?? (() => performance.now());
  let sliceStart = now();
  let sinceCheck = 0;
  for (const table of rs.tables) {
    for (const chain of table.chains) {
      const kept = expectedDigests.get(chain);
      if (kept !== undefined && kept.family === rs.family) continue;
      expectedDigest(chain, rs.family);
      if (++sinceCheck < 16) continue;
      sinceCheck = 0;
      if (now() - sliceStart >= sliceMs) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        sliceStart = now();
      }
    }
  }
}

/** detectDrift over a scanned dump: the same findings, in the same order, at a fraction of the cost. */
export function detectDriftInScan(
  lastApplied: IptablesRuleSet,
  scanned: ReadonlyMap<string, ScannedTable>,
): DriftFinding[] {
  return compareWithDump(lastApplied, (name) => scannedTableReader(scanned.get(name), lastApplied.family));
}
