// The human-readable "what would change on a node" between two rendered rule sets. Pure.
// Every change is grouped under the Service port it belongs to, so a reader never needs the chain hashes.
import { printableLine } from '../model/names.js';
import type { IptablesRuleSet, RenderedChain, TableName } from '../render/types.js';
import { codeFence, htmlText, markdownCode, markdownText } from './markdown.js';

/** Changes of one chain. `rulesAdded`/`rulesRemoved` are whole rule lines. */
export interface ChainChange {
  family: string;
  table: TableName;
  chain: string;
  role: RenderedChain['role'] | 'builtin';
  change: 'added' | 'removed' | 'changed';
  rulesAdded: string[];
  rulesRemoved: string[];
}

/** All changes attributed to one Service port ("ns/name:port/tcp"), or to the node-wide chains. */
export interface ServiceChangeGroup {
  /** "ns/name:port/proto", or NODE_WIDE for rules that belong to no single Service. */
  owner: string;
  changes: ChainChange[];
}

export interface RuleSetDiff {
  groups: ServiceChangeGroup[];
  summary: {
    servicePortsAffected: number;
    chainsAdded: number;
    chainsRemoved: number;
    chainsChanged: number;
    rulesAdded: number;
    rulesRemoved: number;
  };
}

export const NODE_WIDE = '(node-wide chains)';

const JUMP_TARGET = /\s-[jg]\s+(\S+)/;

interface IndexedChain {
  family: string;
  table: TableName;
  chain: RenderedChain;
}

function indexChains(sets: IptablesRuleSet[]): Map<string, IndexedChain> {
  const byKey = new Map<string, IndexedChain>();
  for (const rs of sets) {
    for (const table of rs.tables) {
      for (const chain of table.chains) {
        byKey.set(`${rs.family} ${table.name} ${chain.name}`, { family: rs.family, table: table.name, chain });
      }
    }
  }
  return byKey;
}

/** Owner of every chain name on either side: a rule in a shared chain belongs to the Service it jumps to. */
function ownersByChainName(...maps: Array<Map<string, IndexedChain>>): Map<string, string> {
  const owners = new Map<string, string>();
  for (const m of maps) for (const { chain } of m.values()) if (chain.owner) owners.set(chain.name, chain.owner);
  return owners;
}

function ownerOfRule(rule: string, owners: Map<string, string>): string {
  const target = JUMP_TARGET.exec(rule)?.[1];
  return (target !== undefined && owners.get(target)) || NODE_WIDE;
}

/** Lines only in `a` (multiset difference, order kept). */
export function linesOnlyIn(a: readonly string[], b: readonly string[]): string[] {
  const counts = new Map<string, number>();
  for (const line of b) counts.set(line, (counts.get(line) ?? 0) + 1);
  const out: string[] = [];
  for (const line of a) {
    const n = counts.get(line) ?? 0;
    if (n > 0) counts.set(line, n - 1);
    else out.push(line);
  }
  return out;
}

function builtinJumpsAsChains(sets: IptablesRuleSet[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const rs of sets) {
    for (const j of rs.builtinJumps) {
      const key = `${rs.family} ${j.table} ${j.chain}`;
      const rules = out.get(key) ?? [];
      rules.push(`-A ${j.chain} ${j.spec}`);
      out.set(key, rules);
    }
  }
  return out;
}

/** Compare two renderings (any number of families on each side, matched by family). */
export function diffRuleSets(before: IptablesRuleSet[], after: IptablesRuleSet[]): RuleSetDiff {
  const oldChains = indexChains(before);
  const newChains = indexChains(after);
  const owners = ownersByChainName(oldChains, newChains);
  const groups = new Map<string, ChainChange[]>();
  const add = (owner: string, change: ChainChange): void => {
    const list = groups.get(owner) ?? [];
    list.push(change);
    groups.set(owner, list);
  };

  const keys = [...new Set([...oldChains.keys(), ...newChains.keys()])];
  for (const key of keys) {
    const o = oldChains.get(key);
    const n = newChains.get(key);
    const ref = (n ?? o)!;
    const oldRules = o?.chain.rules ?? [];
    const newRules = n?.chain.rules ?? [];
    const rulesAdded = linesOnlyIn(newRules, oldRules);
    const rulesRemoved = linesOnlyIn(oldRules, newRules);
    const change: ChainChange['change'] = !o ? 'added' : !n ? 'removed' : 'changed';
    if (change === 'changed' && rulesAdded.length === 0 && rulesRemoved.length === 0) continue;
    const base = { family: ref.family, table: ref.table, chain: ref.chain.name, role: ref.chain.role, change };
    if (ref.chain.owner) {
      add(ref.chain.owner, { ...base, rulesAdded, rulesRemoved });
      continue;
    }
    // A shared chain (KUBE-SERVICES, KUBE-NODEPORTS…): split its rule changes by the Service they lead to.
    splitByOwner(base, rulesAdded, rulesRemoved, owners, add);
  }

  const oldJumps = builtinJumpsAsChains(before);
  const newJumps = builtinJumpsAsChains(after);
  for (const key of [...new Set([...oldJumps.keys(), ...newJumps.keys()])]) {
    const [family = '', table = 'nat', chain = ''] = key.split(' ');
    const oldRules = oldJumps.get(key) ?? [];
    const newRules = newJumps.get(key) ?? [];
    const rulesAdded = linesOnlyIn(newRules, oldRules);
    const rulesRemoved = linesOnlyIn(oldRules, newRules);
    if (rulesAdded.length + rulesRemoved.length === 0) continue;
    add(NODE_WIDE, {
      family,
      table: table as TableName,
      chain,
      role: 'builtin',
      change: 'changed',
      rulesAdded,
      rulesRemoved,
    });
  }

  const sortedOwners = [...groups.keys()].sort((a, b) =>
    a === NODE_WIDE ? 1 : b === NODE_WIDE ? -1 : a < b ? -1 : a > b ? 1 : 0,
  );
  const result: ServiceChangeGroup[] = sortedOwners.map((owner) => ({ owner, changes: groups.get(owner)! }));
  const all = result.flatMap((g) => g.changes);
  return {
    groups: result,
    summary: {
      servicePortsAffected: result.filter((g) => g.owner !== NODE_WIDE).length,
      chainsAdded: all.filter((c) => c.change === 'added').length,
      chainsRemoved: all.filter((c) => c.change === 'removed').length,
      chainsChanged: all.filter((c) => c.change === 'changed').length,
      rulesAdded: all.reduce((s, c) => s + c.rulesAdded.length, 0),
      rulesRemoved: all.reduce((s, c) => s + c.rulesRemoved.length, 0),
    },
  };
}

function splitByOwner(
  base: Omit<ChainChange, 'rulesAdded' | 'rulesRemoved'>,
  rulesAdded: string[],
  rulesRemoved: string[],
  owners: Map<string, string>,
  add: (owner: string, change: ChainChange) => void,
): void {
  const perOwner = new Map<string, { added: string[]; removed: string[] }>();
  const bucket = (owner: string) => {
    let b = perOwner.get(owner);
    if (!b) perOwner.set(owner, (b = { added: [], removed: [] }));
    return b;
  };
  for (const r of rulesAdded) bucket(ownerOfRule(r, owners)).added.push(r);
  for (const r of rulesRemoved) bucket(ownerOfRule(r, owners)).removed.push(r);
  if (base.change !== 'changed' && perOwner.size === 0) perOwner.set(NODE_WIDE, { added: [], removed: [] });
  for (const [owner, { added, removed }] of perOwner) {
    add(owner, { ...base, rulesAdded: added, rulesRemoved: removed });
  }
}

export function diffIsEmpty(d: RuleSetDiff): boolean {
  return d.groups.length === 0;
}

export function formatSummaryLine(d: RuleSetDiff): string {
  const s = d.summary;
  if (diffIsEmpty(d)) return 'No changes: the nodes keep the same rules.';
  return (
    `${s.servicePortsAffected} service port(s) affected: ` +
    `${s.chainsAdded} chain(s) added, ${s.chainsRemoved} removed, ${s.chainsChanged} changed; ` +
    `${s.rulesAdded} rule(s) added, ${s.rulesRemoved} removed.`
  );
}

function describeChange(c: ChainChange): string {
  const what =
    c.role === 'builtin'
      ? 'built-in chain'
      : c.role === 'service'
        ? 'service chain'
        : c.role === 'endpoint'
          ? 'endpoint chain'
          : c.role === 'external'
            ? 'external-traffic chain'
            : c.role === 'firewall'
              ? 'source-range firewall chain'
              : 'shared chain';
  return `${c.change === 'changed' ? 'rules changed in' : c.change} ${what} ${c.chain} (${c.family} ${c.table})`;
}

/**
 * An object left out of one side of the diff because it is invalid (reported on stderr too): the
 * diff says so, so a reviewer is not told "no changes" about an object that was never rendered.
 */
export interface SkippedObject {
  side: 'before' | 'after';
  /** The problem as formatProblem prints it: one line, control characters escaped. */
  problem: string;
}

function skippedLine(skipped: readonly SkippedObject[]): string {
  return `${skipped.length} invalid object(s) skipped: they get no rules on either side of this diff.`;
}

export function formatDiffText(d: RuleSetDiff, skipped: readonly SkippedObject[] = []): string {
  const lines: string[] = [];
  for (const g of d.groups) {
    lines.push(g.owner === NODE_WIDE ? NODE_WIDE : `Service ${printableLine(g.owner)}`);
    for (const c of g.changes) {
      lines.push(`  ${describeChange(c)}`);
      for (const r of c.rulesRemoved) lines.push(`    - ${printableLine(r)}`);
      for (const r of c.rulesAdded) lines.push(`    + ${printableLine(r)}`);
    }
  }
  lines.push(formatSummaryLine(d));
  if (skipped.length > 0) lines.push(`${skippedLine(skipped)} (listed on stderr)`);
  return lines.join('\n') + '\n';
}

/**
 * The pull-request comment. Everything that comes from the input is escaped for where it lands
 * (table cell, HTML summary, code block), so no name or message can end the table, hide the rest
 * of the comment in an HTML comment, or fake the summary line.
 */
export function formatDiffMarkdown(d: RuleSetDiff, skipped: readonly SkippedObject[] = []): string {
  const out: string[] = ['### portway: what would change on the nodes', '', `**${formatSummaryLine(d)}**`, ''];
  if (skipped.length > 0) {
    out.push(`**⚠ ${skippedLine(skipped)}**`, '');
    for (const s of skipped) out.push(`- ${s.side}: ${markdownText(s.problem)}`);
    out.push('');
  }
  if (diffIsEmpty(d)) return out.join('\n') + '\n';
  out.push('| Service port | chains added | removed | changed | rules +/− |', '|---|---|---|---|---|');
  for (const g of d.groups) {
    const count = (k: ChainChange['change']) => g.changes.filter((c) => c.change === k).length;
    const plus = g.changes.reduce((s, c) => s + c.rulesAdded.length, 0);
    const minus = g.changes.reduce((s, c) => s + c.rulesRemoved.length, 0);
    const owner = g.owner === NODE_WIDE ? htmlText(NODE_WIDE) : markdownCode(g.owner);
    out.push(`| ${owner} | ${count('added')} | ${count('removed')} | ${count('changed')} | +${plus} / −${minus} |`);
  }
  out.push('');
  for (const g of d.groups) {
    const title = g.owner === NODE_WIDE ? htmlText(NODE_WIDE) : `Service <code>${htmlText(g.owner)}</code>`;
    const body: string[] = [];
    for (const c of g.changes) {
      body.push(`# ${describeChange(c)}`);
      for (const r of c.rulesRemoved) body.push(`- ${r}`);
      for (const r of c.rulesAdded) body.push(`+ ${r}`);
    }
    const lines = body.map(printableLine);
    const fence = codeFence(lines);
    out.push('<details>', `<summary>${title}</summary>`, '', fence + 'diff', ...lines, fence, '', '</details>', '');
  }
  return out.join('\n');
}
