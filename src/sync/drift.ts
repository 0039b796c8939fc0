// What someone else changed in portway's chains since the last restore. Pure.
// Rules are compared in iptables-save's canonical form (the same normalisation -C uses), so a rule
// portway wrote and the kernel prints back differently is not reported as drift.
//
// Two entry points with the same findings: detectDrift over a fully parsed dump (doctor), and
// detectDriftInScan over a dump that was only scanned into per-chain blocks of text (the agent's
// full sync: at 10k Services the dump has 430k lines, and tokenising and canonicalising all of
// them on both sides cost seconds). The scan compares each chain's block, as printed, with the text
// the chain is expected to print as (computed once per rendered chain object and kept as a digest);
// only chains whose text differs are tokenised and compared rule by rule.
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

/** A finding for each built-in jump of `lastApplied` that `present` says the kernel lacks. */
function missingJumps(lastApplied: IptablesRuleSet, present: (jump: BuiltinJump) => boolean): DriftFinding[] {
  const family = lastApplied.family;
  return lastApplied.builtinJumps
    .filter((jump) => !present(jump))
    .map((jump) => ({
      table: jump.table,
      chain: jump.chain,
      kind: 'missingJump' as const,
      missingRules: [canonicalLine(jump.chain, splitRuleSpec(jump.spec), family)],
      extraRules: [],
    }));
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
  findings.push(...missingJumps(lastApplied, (jump) => savedHasJump(saved, jump, family)));
  return findings;
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

/** Whether a scanned built-in chain already holds this jump (compared canonically). */
export function scannedHasJump(scanned: ReadonlyMap<string, ScannedTable>, jump: BuiltinJump, family: IPFamily): boolean {
  const want = canonicalLine(jump.chain, splitRuleSpec(jump.spec), family);
  return scannedChainRules(scanned.get(jump.table), jump.chain).some((r) => canonicalLine(r.chain, r.spec, family) === want);
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
  const family = lastApplied.family;
  const findings: DriftFinding[] = [];
  for (const table of lastApplied.tables) {
    const savedTable = scanned.get(table.name);
    const savedChains = new Set<string>();
    let savedOwned = 0;
    for (const c of savedTable?.chains ?? []) {
      savedChains.add(c.name);
      if (isOwnedChainName(c.name)) savedOwned++;
    }
    let appliedOwnedSeen = 0;
    for (const chain of table.chains) {
      if (!savedChains.has(chain.name)) {
        const expected = chain.rules.map((r) => canonicalRuleLine(r, family));
        findings.push({ table: table.name, chain: chain.name, kind: 'missingChain', missingRules: expected, extraRules: [] });
        continue;
      }
      if (isOwnedChainName(chain.name)) appliedOwnedSeen++;
      const printed = savedTable?.ruleText.get(chain.name) ?? '';
      if (printsAsExpected(printed, chain, family)) continue;
      // The prediction missed or the chain really differs: compare rule by rule, canonically.
      const expected = chain.rules.map((r) => canonicalRuleLine(r, family));
      const found = scannedChainRules(savedTable, chain.name).map((r) => canonicalLine(r.chain, r.spec, family));
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
    // Every owned chain of the dump is one portway applied (names are unique on both sides): no
    // chain is unexpected, and the 110k names need not be looked up again.
    if (savedOwned === appliedOwnedSeen) continue;
    const applied = new Set(table.chains.map((c) => c.name));
    for (const name of savedChains) {
      if (!applied.has(name) && isOwnedChainName(name)) {
        const extraRules = scannedChainRules(savedTable, name).map((r) => canonicalLine(r.chain, r.spec, family));
        findings.push({ table: table.name, chain: name, kind: 'unexpectedChain', missingRules: [], extraRules });
      }
    }
  }
  findings.push(...missingJumps(lastApplied, (jump) => scannedHasJump(scanned, jump, family)));
  return findings;
}
