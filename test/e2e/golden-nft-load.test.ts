// Every nftables-mode golden file is loaded by the real `nft -f` in a fresh network namespace, and
// the table read back (`nft -j list table`) holds exactly the chains, rule counts, sets and element
// counts the file declares: the golden text is input the kernel and the tool take, not just text.
// Loading it twice checks the add/delete/add header: a full load over an existing table replaces it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { GOLDEN_DIR, goldenCases, NFTABLES_FILES } from '../golden/golden-cases.js';
import { withNamespace } from './harness/restore-check.js';

const isRoot = process.getuid?.() === 0;
const hasNft =
  (await execa('nft', ['--version'], { reject: false }).catch(() => ({ exitCode: 1 }))).exitCode === 0;
if (!isRoot || !hasNft) {
  console.warn('\n*** golden-nft-load: SKIPPED — needs root and the nft binary (apt package nftables) ***\n');
}
const maybe = isRoot && hasNft ? describe : describe.skip;

interface TableSummary {
  chains: Record<string, number>;
  /** set name → element count (sets that merge overlapping intervals: -1, the count may shrink). */
  sets: Record<string, number>;
}

/** What the golden file declares: chains with their rule counts, sets with their element counts. */
function declared(text: string): TableSummary {
  const out: TableSummary = { chains: {}, sets: {} };
  const merging = new Set<string>();
  let block: string | null = null; // the set of a multi-line `add element … {` command
  for (const line of text.split('\n')) {
    if (block !== null) {
      if (line === '}') block = null;
      else out.sets[block]! += 1;
      continue;
    }
    const w = line.split(' ');
    if (w[0] === 'add' && w[1] === 'element' && line.endsWith('{')) {
      block = w[4]!;
      continue;
    }
    if (w[0] === 'add' && w[1] === 'chain') out.chains[w[4]!] = 0;
    else if (w[0] === 'add' && w[1] === 'rule') out.chains[w[4]!]! += 1;
    else if (w[0] === 'add' && (w[1] === 'set' || w[1] === 'map')) {
      out.sets[w[4]!] = 0;
      if (line.includes('auto-merge')) merging.add(w[4]!);
    } else if (w[0] === 'add' && w[1] === 'element') out.sets[w[4]!]! += 1;
  }
  for (const name of merging) out.sets[name] = -1;
  return out;
}

/** The same summary of the table the kernel holds. */
function listed(json: string, merging: Set<string>): TableSummary {
  const out: TableSummary = { chains: {}, sets: {} };
  const items = (
    JSON.parse(json) as {
      nftables: Array<Record<string, { name?: string; chain?: string; elem?: unknown[] }>>;
    }
  ).nftables;
  for (const item of items) {
    if (item.chain) out.chains[item.chain.name!] = 0;
  }
  for (const item of items) {
    if (item.rule) out.chains[item.rule.chain!]! += 1;
    const s = item.set ?? item.map;
    if (s) out.sets[s.name!] = merging.has(s.name!) ? -1 : (s.elem?.length ?? 0);
  }
  return out;
}

const cases = goldenCases().flatMap((name) => NFTABLES_FILES.map((f) => ({ name, ...f })));

maybe.each(cases)('nftables golden $name $family loads with nft -f', ({ name, file }) => {
  test('the kernel holds what the file declares, and a second load replaces it', async () => {
    const path = join(GOLDEN_DIR, name, file);
    const text = readFileSync(path, 'utf8');
    const want = declared(text);
    const merging = new Set(
      Object.entries(want.sets)
        .filter(([, n]) => n === -1)
        .map(([s]) => s),
    );
    const nftFamily = file.includes('ipv6') ? 'ip6' : 'ip';
    await withNamespace('pw-gnft', async (ns) => {
      for (let load = 0; load < 2; load++) {
        const r = await execa('ip', ['netns', 'exec', ns, 'nft', '-f', path], { reject: false });
        expect(r.stderr).toBe('');
        expect(r.exitCode).toBe(0);
      }
      const list = await execa('ip', [
        'netns',
        'exec',
        ns,
        'nft',
        '-j',
        'list',
        'table',
        nftFamily,
        'portway',
      ]);
      expect(listed(list.stdout, merging)).toEqual(want);
    });
  });
});
