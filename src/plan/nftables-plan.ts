// nftables mode: desired × observed → the smallest `nft -f` batch that gets there (one transaction).
// An endpoint change of a service port whose chains stay — a change of the endpoint count included —
// is element commands only (delete/add on its interval map, the hairpin set): no rule, chain or
// set declaration, so the kernel has no chain graph to validate (docs/adr/0007-nftables-mode.md).
// A new or removed service port adds or deletes its own chains and sets. A set whose declaration
// changed (a new affinity timeout) cannot be altered in place: the table is then replaced whole.
// Pure.
import {
  chainDeclaration,
  elementText,
  holdsVerdicts,
  serializeNftables,
  setDeclaration,
} from '../render/nftables/serialize.js';
import type { ElementCommand, NftChain, NftElement, NftRuleSet, NftSet } from '../render/nftables/types.js';

export interface NftablesUpdate {
  /** `nft -f` input; '' when nothing changes. */
  text: string;
  /** Only element commands (add/delete element): no chain graph for the kernel to validate. */
  elementOnly: boolean;
  /** The whole table is replaced (no observed table, another family, or a set declaration changed). */
  fullReplace: boolean;
  /** Sets whose elements change, and chains/sets added, changed or removed (for logs and diff). */
  changedSets: string[];
  changedChains: string[];
  /**
   * The element commands of an element-only update, structured (deletes first, then adds, as in
   * `text`): what the netlink client sends (elementCommandOps in src/dataplane/nft-netlink/elements.ts). Empty otherwise.
   */
  elementCommands: ElementCommand[];
}

const sameRules = (a: NftChain, b: NftChain): boolean =>
  a.rules.length === b.rules.length &&
  a.rules.every((r, i) => r === b.rules[i]) &&
  chainDeclaration(a) === chainDeclaration(b);

const keyed = (elements: readonly NftElement[]): Map<string, string | undefined> =>
  new Map(elements.map((e) => [e.key, e.value]));

/**
 * The batch from `observed` (what the kernel holds, e.g. the last applied ruleset; null = nothing)
 * to `desired`, both of one family.
 */
export function planNftablesUpdate(observed: NftRuleSet | null, desired: NftRuleSet): NftablesUpdate {
  const full = (): NftablesUpdate => ({
    text: serializeNftables(desired),
    elementOnly: false,
    fullReplace: true,
    changedSets: desired.sets.map((s) => s.name),
    changedChains: desired.chains.map((c) => c.name),
    elementCommands: [],
  });
  if (observed === null || observed.nftFamily !== desired.nftFamily || observed.table !== desired.table)
    return full();

  const t = `${desired.nftFamily} ${desired.table}`;
  const oldSets = new Map(observed.sets.map((s) => [s.name, s]));
  const newSets = new Map(desired.sets.map((s) => [s.name, s]));
  const oldChains = new Map(observed.chains.map((c) => [c.name, c]));
  const newChains = new Map(desired.chains.map((c) => [c.name, c]));
  for (const s of desired.sets) {
    const old = oldSets.get(s.name);
    if (old !== undefined && (old.kind !== s.kind || setDeclaration(old) !== setDeclaration(s)))
      return full();
  }
  for (const c of desired.chains) {
    const old = oldChains.get(c.name);
    if (old !== undefined && chainDeclaration(old) !== chainDeclaration(c)) return full();
  }

  const addSets: string[] = [];
  const addChains: string[] = [];
  const deleteElements: string[] = [];
  const dataElements: string[] = [];
  const verdictElements: string[] = [];
  const rules: string[] = [];
  const deleteChains: string[] = [];
  const deleteSets: string[] = [];
  const changedSets = new Set<string>();
  const changedChains = new Set<string>();
  const deleteCommands: ElementCommand[] = [];
  const addCommands: ElementCommand[] = [];

  const addElements = (s: NftSet, elements: NftElement[]): void => {
    if (elements.length === 0) return;
    addCommands.push({ op: 'add', set: s.name, role: s.role, verdicts: holdsVerdicts(s), elements });
    const line = `add element ${t} ${s.name} { ${elements.map(elementText).join(', ')} }`;
    (holdsVerdicts(s) ? verdictElements : dataElements).push(line);
  };

  for (const s of desired.sets) {
    const old = oldSets.get(s.name);
    if (old === undefined) {
      addSets.push(`add ${s.kind} ${t} ${s.name}${setDeclaration(s)}`);
      addElements(s, s.elements);
      changedSets.add(s.name);
      continue;
    }
    const before = keyed(old.elements);
    const after = keyed(s.elements);
    const removed = old.elements.filter((e) => !after.has(e.key) || after.get(e.key) !== e.value);
    const added = s.elements.filter((e) => !before.has(e.key) || before.get(e.key) !== e.value);
    if (removed.length > 0) {
      deleteCommands.push({
        op: 'delete',
        set: s.name,
        role: s.role,
        verdicts: holdsVerdicts(s),
        elements: removed,
      });
      deleteElements.push(`delete element ${t} ${s.name} { ${removed.map((e) => e.key).join(', ')} }`);
    }
    addElements(s, added);
    if (removed.length > 0 || added.length > 0) changedSets.add(s.name);
  }

  for (const c of desired.chains) {
    const old = oldChains.get(c.name);
    if (old === undefined) {
      addChains.push(`add chain ${t} ${c.name}${chainDeclaration(c)}`);
    } else if (sameRules(old, c)) {
      continue;
    } else {
      rules.push(`flush chain ${t} ${c.name}`);
    }
    for (const r of c.rules) rules.push(`add rule ${t} ${c.name} ${r}`);
    changedChains.add(c.name);
  }
  // Removed chains are emptied first (a chain with rules cannot be deleted), then deleted once every
  // rule and element that referred to them is gone (earlier in the same batch).
  for (const c of observed.chains) {
    if (newChains.has(c.name)) continue;
    rules.push(`flush chain ${t} ${c.name}`);
    deleteChains.push(`delete chain ${t} ${c.name}`);
    changedChains.add(c.name);
  }
  for (const s of observed.sets) {
    if (newSets.has(s.name)) continue;
    deleteSets.push(`delete ${s.kind} ${t} ${s.name}`);
    changedSets.add(s.name);
  }

  const lines = [
    ...addSets,
    ...addChains,
    ...deleteElements,
    ...dataElements,
    ...rules,
    ...verdictElements,
    ...deleteChains,
    ...deleteSets,
  ];
  const elementOnly =
    lines.length > 0 &&
    addSets.length + addChains.length + rules.length + deleteChains.length + deleteSets.length === 0;
  return {
    text: lines.length === 0 ? '' : lines.join('\n') + '\n',
    elementOnly,
    fullReplace: false,
    changedSets: [...changedSets],
    changedChains: [...changedChains],
    elementCommands: elementOnly ? [...deleteCommands, ...addCommands] : [],
  };
}
