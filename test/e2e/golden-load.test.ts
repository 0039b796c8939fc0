// Every golden payload must be accepted by the real iptables-restore/ip6tables-restore (nft and legacy
// backends) in a fresh network namespace, and read back with the same chains and rule counts.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { FAMILY_FILES, GOLDEN_DIR, goldenCases } from '../golden/golden-cases.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) {
  console.warn('\n*** golden-load: SKIPPED — needs root for network namespaces and iptables-restore ***\n');
}
const maybe = isRoot ? describe : describe.skip;

const BACKENDS = [
  { name: 'nft', v4: 'iptables-nft', v6: 'ip6tables-nft' },
  { name: 'legacy', v4: 'iptables-legacy', v6: 'ip6tables-legacy' },
];

/** table → chain → rule count, counting "-A"/"-I" lines; built-in chains only if they have rules. */
function chainSummary(text: string, tables = ['filter', 'nat']): Record<string, Record<string, number>> {
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

async function withNamespace<T>(fn: (ns: string) => Promise<T>): Promise<T> {
  const ns = `pw-golden-${randomBytes(4).toString('hex')}`;
  await execa('ip', ['netns', 'add', ns]);
  try {
    return await fn(ns);
  } finally {
    await execa('ip', ['netns', 'delete', ns], { reject: false });
  }
}

maybe.each(BACKENDS)('golden payloads load with iptables-restore ($name)', (backend) => {
  test.each(goldenCases())('%s', async (name) => {
    for (const { family, file } of FAMILY_FILES) {
      const payload = readFileSync(join(GOLDEN_DIR, name, file), 'utf8');
      const tool = family === 'IPv4' ? backend.v4 : backend.v6;
      await withNamespace(async (ns) => {
        const restore = await execa('ip', ['netns', 'exec', ns, `${tool}-restore`, '-w'], {
          input: payload,
          reject: false,
        });
        if (restore.exitCode !== 0) {
          throw new Error(`${name}/${file} (${backend.name}) rejected: ${restore.stderr}`);
        }
        const saved = await execa('ip', ['netns', 'exec', ns, `${tool}-save`]);
        expect({ [`${name}/${file}`]: chainSummary(saved.stdout) }).toEqual({
          [`${name}/${file}`]: chainSummary(payload),
        });
      });
    }
  });
});
