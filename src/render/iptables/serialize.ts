// The iptables-restore payload of a rule set: "*filter" then "*nat", chain declarations (which
// create or flush them), "-A" rules, "COMMIT". Pure.
//
// The payload is produced as a sequence of chunks: per table a header, one string of declarations
// and then each chain's rule text as it is stored in the rule set (RenderedChain.text), so the rule
// characters are not copied. serializeRuleSet joins the chunks into one string (one copy, ~33 MB at
// 10k Services × 10 endpoints); a writer to a file, pipe or socket can take the chunks instead.
import type { IptablesRuleSet, RenderedChain, TableName } from '../types.js';
import { untouchedRuleText } from './chain-record.js';

export interface SerializeOptions {
  /**
   * Also write the jumps from built-in chains (PREROUTING, INPUT, …) as "-I"/"-A" lines, so that the
   * payload alone programs a fresh network namespace (the dry-run CLI's default). The agent ensures
   * those jumps separately (idempotently) and leaves this off. Default true.
   */
  includeBuiltinJumps?: boolean;
}

const TABLE_ORDER: TableName[] = ['filter', 'nat'];

/**
 * Feed the payload to `sink` chunk by chunk, in order; the concatenation of the chunks is exactly
 * serializeRuleSet's result. Chunks are never empty; a chunk always ends at a line end.
 */
export function writeRuleSet(
  rs: IptablesRuleSet,
  sink: (chunk: string) => void,
  opts: SerializeOptions = {},
): void {
  const includeBuiltinJumps = opts.includeBuiltinJumps ?? true;
  for (const tableName of TABLE_ORDER) {
    const table = rs.tables.find((t) => t.name === tableName);
    if (table === undefined) continue;
    // All declarations first (a rule may jump to a chain declared after its own), then all rules.
    sink(`*${tableName}\n`);
    if (table.chains.length > 0) {
      // One join over the names: no ":NAME - [0:0]" string per chain (110k of them at 10k Services).
      sink(':' + table.chains.map((c) => c.name).join(' - [0:0]\n:') + ' - [0:0]\n');
    }
    for (const chain of table.chains) {
      const text = chainText(chain);
      if (text !== '') sink(text);
    }
    const tail: string[] = [];
    if (includeBuiltinJumps) {
      for (const jump of rs.builtinJumps) {
        if (jump.table !== tableName) continue;
        tail.push(`${jump.position === 'prepend' ? '-I' : '-A'} ${jump.chain} ${jump.spec}`);
      }
    }
    tail.push('COMMIT', '');
    sink(tail.join('\n'));
  }
}

/** The payload as a list of chunks (see writeRuleSet): cheap, the chain texts are shared, not copied. */
export function serializeRuleSetChunks(rs: IptablesRuleSet, opts: SerializeOptions = {}): string[] {
  const chunks: string[] = [];
  writeRuleSet(rs, (chunk) => chunks.push(chunk), opts);
  return chunks;
}

/** The whole iptables-restore payload as one string. */
export function serializeRuleSet(rs: IptablesRuleSet, opts: SerializeOptions = {}): string {
  return serializeRuleSetChunks(rs, opts).join('');
}

/**
 * The chain's rule lines, each ending in "\n": its stored text when that still says exactly what
 * `rules` says (compared in place, nothing copied), else joined from `rules` — so a chain built or
 * edited by other code is serialised from its `rules`.
 */
function chainText(chain: RenderedChain): string {
  const untouched = untouchedRuleText(chain);
  if (untouched !== undefined) return untouched;
  const { rules, text } = chain;
  if (rules.length === 0) return '';
  if (text !== undefined && textMatchesRules(text, rules)) return text;
  return rules.join('\n') + '\n';
}

function textMatchesRules(text: string, rules: readonly string[]): boolean {
  let offset = 0;
  for (const rule of rules) {
    if (!text.startsWith(rule, offset)) return false;
    offset += rule.length;
    if (text.charCodeAt(offset) !== NEWLINE) return false;
    offset++;
  }
  return offset === text.length;
}

const NEWLINE = 10;
