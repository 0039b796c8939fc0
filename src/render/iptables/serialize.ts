// The iptables-restore payload of a rule set: "*filter" then "*nat", chain declarations (which
// create or flush them), "-A" rules, "COMMIT". Pure; assembled through line buffers, joined once.
import { LineBuffer } from '../line-buffer.js';
import type { IptablesRuleSet, TableName } from '../types.js';

export interface SerializeOptions {
  /**
   * Also write the jumps from built-in chains (PREROUTING, INPUT, …) as "-I"/"-A" lines, so that the
   * payload alone programs a fresh network namespace (the dry-run CLI's default). The agent ensures
   * those jumps separately (idempotently) and leaves this off. Default true.
   */
  includeBuiltinJumps?: boolean;
}

const TABLE_ORDER: TableName[] = ['filter', 'nat'];

export function serializeRuleSet(rs: IptablesRuleSet, opts: SerializeOptions = {}): string {
  const includeBuiltinJumps = opts.includeBuiltinJumps ?? true;
  const out = new LineBuffer();
  for (const tableName of TABLE_ORDER) {
    const table = rs.tables.find((t) => t.name === tableName);
    if (table === undefined) continue;
    out.write(`*${tableName}`);
    // All declarations first (a rule may jump to a chain declared after its own), then all rules.
    for (const chain of table.chains) out.writeLine(`:${chain.name} - [0:0]`);
    for (const chain of table.chains) for (const rule of chain.rules) out.writeLine(rule);
    if (includeBuiltinJumps) {
      for (const jump of rs.builtinJumps) {
        if (jump.table !== tableName) continue;
        out.write(jump.position === 'prepend' ? '-I' : '-A', jump.chain, jump.spec);
      }
    }
    out.write('COMMIT');
  }
  return out.text();
}
