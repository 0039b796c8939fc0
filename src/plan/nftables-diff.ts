// What would change on a node in nftables mode, between two renderings: per Service port, the
// elements of its maps and sets (endpoints, dispatch, no-endpoint verdicts, source ranges), its chains
// added, removed or with changed rules; objects no single Service owns (the hooks, shared elements)
// under NODE_WIDE. Pure. Escaping and the markdown frame are shared with the iptables diff.
import { printableLine } from '../model/names.js';
import { elementText } from '../render/nftables/serialize.js';
import type { NftRole, NftRuleSet } from '../render/nftables/types.js';
import {
  linesOnlyIn,
  markdownDetails,
  markdownSkipped,
  NODE_WIDE,
  skippedLine,
  type SkippedObject,
} from './diff.js';
import { htmlText, markdownCode } from './markdown.js';

export interface NftObjectChange {
  family: string;
  kind: 'chain' | 'set' | 'map';
  name: string;
  role: NftRole;
  /** 'elements' = elements of a set or map that exists on both sides. */
  change: 'added' | 'removed' | 'changed' | 'elements';
  /** Rules (chains) or elements as nft writes them ("0-524287 : 10.244.1.2 . 8080"). */
  added: string[];
  removed: string[];
}

export interface NftChangeGroup {
  /** "ns/name:port/proto", or NODE_WIDE. */
  owner: string;
  changes: NftObjectChange[];
}

export interface NftablesDiff {
  groups: NftChangeGroup[];
  summary: {
    servicePortsAffected: number;
    chainsAdded: number;
    chainsRemoved: number;
    chainsChanged: number;
    elementsAdded: number;
    elementsRemoved: number;
  };
}

interface Side {
  family: string;
  kind: NftObjectChange['kind'];
  role: NftRole;
  owner: string | undefined;
  /** Rules of a chain, elements of a set, each with the owner of the line (static sets: the element's). */
  lines: Array<{ text: string; owner: string | undefined }>;
}

function index(rulesets: readonly NftRuleSet[]): Map<string, Side> {
  const out = new Map<string, Side>();
  for (const rs of rulesets) {
    for (const c of rs.chains) {
      out.set(`${rs.family} chain ${c.name}`, {
        family: rs.family,
        kind: 'chain',
        role: c.role,
        owner: c.owner,
        lines: c.rules.map((text) => ({ text, owner: c.owner })),
      });
    }
    for (const s of rs.sets) {
      out.set(`${rs.family} ${s.kind} ${s.name}`, {
        family: rs.family,
        kind: s.kind,
        role: s.role,
        owner: s.owner,
        lines: s.elements.map((e) => ({ text: elementText(e), owner: s.owner ?? e.owner })),
      });
    }
  }
  return out;
}

/** Compare two renderings (both families on each side, matched by family). */
export function diffNftRuleSets(before: readonly NftRuleSet[], after: readonly NftRuleSet[]): NftablesDiff {
  const old = index(before);
  const now = index(after);
  const groups = new Map<string, NftObjectChange[]>();
  const push = (owner: string | undefined, c: NftObjectChange): void => {
    const key = owner ?? NODE_WIDE;
    const list = groups.get(key) ?? [];
    list.push(c);
    groups.set(key, list);
  };
  const nameOf = (key: string): string => key.slice(key.indexOf(' ', key.indexOf(' ') + 1) + 1);

  for (const [key, side] of now) {
    const prev = old.get(key);
    const base = { family: side.family, kind: side.kind, name: nameOf(key), role: side.role };
    if (prev === undefined) {
      push(side.owner, { ...base, change: 'added', added: side.lines.map((l) => l.text), removed: [] });
      continue;
    }
    if (side.owner !== undefined || side.kind === 'chain') {
      const added = linesOnlyIn(
        side.lines.map((l) => l.text),
        prev.lines.map((l) => l.text),
      );
      const removed = linesOnlyIn(
        prev.lines.map((l) => l.text),
        side.lines.map((l) => l.text),
      );
      if (added.length + removed.length > 0) {
        push(side.owner, { ...base, change: side.kind === 'chain' ? 'changed' : 'elements', added, removed });
      }
      continue;
    }
    // A static set: each element's change goes to the Service port that owns the element.
    const perOwner = new Map<string | undefined, { added: string[]; removed: string[] }>();
    const bucket = (o: string | undefined) => {
      let b = perOwner.get(o);
      if (b === undefined) perOwner.set(o, (b = { added: [], removed: [] }));
      return b;
    };
    const prevTexts = new Set(prev.lines.map((l) => l.text));
    const nowTexts = new Set(side.lines.map((l) => l.text));
    for (const l of side.lines) if (!prevTexts.has(l.text)) bucket(l.owner).added.push(l.text);
    for (const l of prev.lines) if (!nowTexts.has(l.text)) bucket(l.owner).removed.push(l.text);
    for (const [o, b] of perOwner) push(o, { ...base, change: 'elements', ...b });
  }
  for (const [key, side] of old) {
    if (now.has(key)) continue;
    const base = { family: side.family, kind: side.kind, name: nameOf(key), role: side.role };
    push(side.owner, { ...base, change: 'removed', added: [], removed: side.lines.map((l) => l.text) });
  }

  // Service ports in name order, the node-wide group last.
  const owners = [...groups.keys()].sort((a, b) =>
    a === NODE_WIDE ? 1 : b === NODE_WIDE ? -1 : a < b ? -1 : a > b ? 1 : 0,
  );
  const out = owners.map((owner) => ({ owner, changes: groups.get(owner)! }));
  const all = out.flatMap((g) => g.changes);
  const chains = all.filter((c) => c.kind === 'chain');
  const sets = all.filter((c) => c.kind !== 'chain');
  return {
    groups: out,
    summary: {
      servicePortsAffected: out.filter((g) => g.owner !== NODE_WIDE).length,
      chainsAdded: chains.filter((c) => c.change === 'added').length,
      chainsRemoved: chains.filter((c) => c.change === 'removed').length,
      chainsChanged: chains.filter((c) => c.change === 'changed').length,
      elementsAdded: sets.reduce((n, c) => n + c.added.length, 0),
      elementsRemoved: sets.reduce((n, c) => n + c.removed.length, 0),
    },
  };
}

export function nftDiffIsEmpty(d: NftablesDiff): boolean {
  return d.groups.length === 0;
}

export function formatNftSummaryLine(d: NftablesDiff): string {
  const s = d.summary;
  if (nftDiffIsEmpty(d)) return 'No changes: the nodes keep the same nftables table.';
  return (
    `${s.servicePortsAffected} service port(s) affected: ` +
    `${s.chainsAdded} chain(s) added, ${s.chainsRemoved} removed, ${s.chainsChanged} changed; ` +
    `${s.elementsAdded} element(s) added, ${s.elementsRemoved} removed.`
  );
}

export function describeNftChange(c: NftObjectChange): string {
  const what = `${c.kind} ${c.name} (${c.family})`;
  return c.change === 'elements'
    ? `elements changed in ${what}`
    : c.change === 'changed'
      ? `rules changed in ${what}`
      : `${c.change} ${what}`;
}

function changeLines(c: NftObjectChange): string[] {
  return [`# ${describeNftChange(c)}`, ...c.removed.map((r) => `- ${r}`), ...c.added.map((r) => `+ ${r}`)];
}

export function formatNftDiffText(d: NftablesDiff, skipped: readonly SkippedObject[] = []): string {
  const lines: string[] = [];
  for (const g of d.groups) {
    lines.push(g.owner === NODE_WIDE ? NODE_WIDE : `Service ${printableLine(g.owner)}`);
    for (const c of g.changes) {
      lines.push(`  ${describeNftChange(c)}`);
      for (const r of c.removed) lines.push(`    - ${printableLine(r)}`);
      for (const r of c.added) lines.push(`    + ${printableLine(r)}`);
    }
  }
  lines.push(formatNftSummaryLine(d));
  if (skipped.length > 0) lines.push(`${skippedLine(skipped)} (listed on stderr)`);
  return lines.join('\n') + '\n';
}

/** The pull-request comment: a table per Service port, then each port's changes collapsed. */
export function formatNftDiffMarkdown(d: NftablesDiff, skipped: readonly SkippedObject[] = []): string {
  const out = [
    '### portway: what would change on the nodes (nftables)',
    '',
    `**${formatNftSummaryLine(d)}**`,
    '',
  ];
  out.push(...markdownSkipped(skipped));
  if (nftDiffIsEmpty(d)) return out.join('\n') + '\n';
  out.push('| Service port | chains added | removed | changed | elements +/− |', '|---|---|---|---|---|');
  for (const g of d.groups) {
    const chains = g.changes.filter((c) => c.kind === 'chain');
    const count = (k: NftObjectChange['change']) => chains.filter((c) => c.change === k).length;
    const sets = g.changes.filter((c) => c.kind !== 'chain');
    const plus = sets.reduce((n, c) => n + c.added.length, 0);
    const minus = sets.reduce((n, c) => n + c.removed.length, 0);
    const owner = g.owner === NODE_WIDE ? htmlText(NODE_WIDE) : markdownCode(g.owner);
    out.push(
      `| ${owner} | ${count('added')} | ${count('removed')} | ${count('changed')} | +${plus} / −${minus} |`,
    );
  }
  out.push('');
  for (const g of d.groups) out.push(...markdownDetails(g.owner, g.changes.flatMap(changeLines)));
  return out.join('\n');
}
