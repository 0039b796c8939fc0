// Shared by the golden load tests: a throwaway network namespace, and a table → chain → rule-count
// summary of an iptables-restore payload or an iptables-save dump, so the two can be compared.
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';

/** table → chain → rule count, counting "-A"/"-I" lines; built-in chains only if they have rules. */
export function chainSummary(
  text: string,
  tables = ['filter', 'nat'],
): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  let table = '';
  const builtins = new Set(['INPUT', 'OUTPUT', 'FORWARD', 'PREROUTING', 'POSTROUTING']);
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      table = line.slice(1).trim();
      if (tables.includes(table)) out[table] = {};
      continue;
    }
    const t = out[table];
    if (t === undefined) continue;
    if (line.startsWith(':')) {
      const name = line.slice(1).split(' ')[0] ?? '';
      if (!builtins.has(name)) t[name] ??= 0;
    } else {
      const m = /^-[AI] (\S+)/.exec(line);
      if (m?.[1]) t[m[1]] = (t[m[1]] ?? 0) + 1;
    }
  }
  return out;
}

/** Run fn in a fresh network namespace (unique name), deleted afterwards. */
export async function withNamespace<T>(prefix: string, fn: (ns: string) => Promise<T>): Promise<T> {
  const ns = `${prefix}-${process.pid}-${randomBytes(3).toString('hex')}`;
  await execa('ip', ['netns', 'add', ns]);
  try {
    return await fn(ns);
  } finally {
    await execa('ip', ['netns', 'delete', ns], { reject: false });
  }
}
