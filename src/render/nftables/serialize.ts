// An NftRuleSet as `nft -f` input: the whole table replaced in one transaction (add, delete and add
// the table again, so the file loads on a node that has none as well as over an old one), then every
// chain and set declared before any rule or element refers to it. Deterministic.
import type { NftChain, NftElement, NftRuleSet, NftSet } from './types.js';

/** "10.96.0.1 . tcp . 80 : goto svc-…" or the key alone. */
export function elementText(e: NftElement): string {
  return e.value === undefined ? e.key : `${e.key} : ${e.value}`;
}

/** The `{ … }` body of a chain declaration: base chains carry their hook. */
export function chainDeclaration(c: NftChain): string {
  if (c.hook === undefined) return '';
  return ` { type ${c.hook.type} hook ${c.hook.hook} priority ${c.hook.priority} ; policy accept ; }`;
}

/** The `{ … }` body of a set or map declaration. */
export function setDeclaration(s: NftSet): string {
  let body = `${s.type} ;`;
  if (s.flags.length > 0) body += ` flags ${s.flags.join(',')} ;`;
  if (s.timeoutSeconds !== undefined) body += ` timeout ${s.timeoutSeconds}s ;`;
  if (s.autoMerge === true) body += ' auto-merge ;';
  return ` { ${body} }`;
}

/** True when the set's elements name chains (goto/jump): they must come after every chain's rules. */
export function holdsVerdicts(s: NftSet): boolean {
  return s.type.endsWith(': verdict');
}

export function serializeNftables(rs: NftRuleSet): string {
  const t = `${rs.nftFamily} ${rs.table}`;
  const lines: string[] = [`add table ${t}`, `delete table ${t}`, `add table ${t}`];
  for (const c of rs.chains) lines.push(`add chain ${t} ${c.name}${chainDeclaration(c)}`);
  for (const s of rs.sets) lines.push(`add ${s.kind} ${t} ${s.name}${setDeclaration(s)}`);
  // All elements of a set in one command: nft sends one message per command, and the kernel finds
  // the set of each message by walking the table's list of sets — one line per element made a 10k
  // Service load take 309 s of kernel time here, one command per set a few seconds.
  const elements = (s: NftSet): void => {
    if (s.elements.length === 0) return;
    if (s.elements.length === 1) {
      lines.push(`add element ${t} ${s.name} { ${elementText(s.elements[0]!)} }`);
      return;
    }
    lines.push(`add element ${t} ${s.name} {`);
    s.elements.forEach((e, i) => lines.push(`\t${elementText(e)}${i < s.elements.length - 1 ? ',' : ''}`));
    lines.push('}');
  };
  for (const s of rs.sets) if (!holdsVerdicts(s)) elements(s);
  for (const c of rs.chains) for (const r of c.rules) lines.push(`add rule ${t} ${c.name} ${r}`);
  for (const s of rs.sets) if (holdsVerdicts(s)) elements(s);
  return lines.join('\n') + '\n';
}
