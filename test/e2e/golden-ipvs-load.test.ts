// Every ipvs-mode golden file the kernel here can take is loaded by the real tool in a fresh network
// namespace: the ipset part by `ipset restore` (then read back with `ipset save`: same sets, types and
// members), the iptables part by iptables-restore/ip6tables-restore (nft and legacy backends) after its
// sets exist, read back with the same chains and rule counts. IPVS itself is absent from this kernel:
// the ipvsadm part is checked by the reader (test/unit/render/ipvs/ipvsadm-text.test.ts) and applied
// in a VM by the next issue; so is the `ipvs` match (xt_ipvs) of the KUBE-IPVS-OUT-FILTER rules: where
// the kernel lacks it those rules alone are left out of the load, and the test says so.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { GOLDEN_DIR, goldenCases, IPVS_FILES } from '../golden/golden-cases.js';
import { chainSummary, withNamespace } from './harness/restore-check.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) {
  console.warn(
    '\n*** golden-ipvs-load: SKIPPED — needs root for network namespaces, ipset and iptables-restore ***\n',
  );
}
const maybe = isRoot ? describe : describe.skip;

const BACKENDS = [
  { name: 'nft', v4: 'iptables-nft', v6: 'ip6tables-nft' },
  { name: 'legacy', v4: 'iptables-legacy', v6: 'ip6tables-legacy' },
];

/** set name → "type;sorted members" from `ipset restore` input or `ipset save` output. */
function ipsetSummary(text: string): Record<string, string> {
  const types = new Map<string, string>();
  const members = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const words = line.trim().split(/\s+/);
    if (words[0] === 'create' && words[1] !== undefined) {
      types.set(words[1], words[2] ?? '');
      members.set(words[1], []);
    } else if (words[0] === 'add' && words[1] !== undefined) {
      members.get(words[1])?.push(words[2] ?? '');
    }
  }
  return Object.fromEntries(
    [...types].map(([name, type]) => [name, `${type};${(members.get(name) ?? []).sort().join(' ')}`]),
  );
}

/** Whether this kernel and backend take the `ipvs` match (xt_ipvs needs IPVS in the kernel). */
async function ipvsMatchSupported(tool: string): Promise<boolean> {
  return withNamespace('pw-gipvs', async (ns) => {
    await execa('ip', ['netns', 'exec', ns, tool, '-w', '-N', 'PW-PROBE']);
    const probe = await execa(
      'ip',
      ['netns', 'exec', ns, tool, '-w', '-A', 'PW-PROBE', '-m', 'ipvs', '--vproto', 'tcp', '-j', 'RETURN'],
      { reject: false },
    );
    return probe.exitCode === 0;
  });
}

/** The rules without its `-m ipvs` lines, which must all be KUBE-IPVS-OUT-FILTER's. */
function withoutIpvsMatch(rules: string): string {
  const lines = rules.split('\n');
  const ipvsLines = lines.filter((l) => l.includes(' -m ipvs '));
  expect(ipvsLines.filter((l) => !l.startsWith('-A KUBE-IPVS-OUT-FILTER '))).toEqual([]);
  return lines.filter((l) => !l.includes(' -m ipvs ')).join('\n');
}

const fileOf = (name: string, family: 'IPv4' | 'IPv6', part: 'ipset' | 'rules'): string =>
  readFileSync(
    join(GOLDEN_DIR, name, IPVS_FILES.find((f) => f.family === family && f.part === part)?.file ?? ''),
    'utf8',
  );

maybe.each(BACKENDS)('ipvs golden parts load with ipset restore and iptables-restore ($name)', (backend) => {
  const ipvsMatch: Record<string, boolean> = {};
  beforeAll(async () => {
    for (const tool of [backend.v4, backend.v6]) {
      ipvsMatch[tool] = await ipvsMatchSupported(tool);
      if (!ipvsMatch[tool]) {
        console.warn(
          `golden-ipvs-load: ${tool} has no ipvs match here (no IPVS in this kernel): KUBE-IPVS-OUT-FILTER's -m ipvs rules are not loaded`,
        );
      }
    }
  });

  test.each(goldenCases())('%s', async (name) => {
    for (const family of ['IPv4', 'IPv6'] as const) {
      const sets = fileOf(name, family, 'ipset');
      const tool = family === 'IPv4' ? backend.v4 : backend.v6;
      const full = fileOf(name, family, 'rules');
      const rules = ipvsMatch[tool] ? full : withoutIpvsMatch(full);
      await withNamespace('pw-gipvs', async (ns) => {
        const restoreSets = await execa('ip', ['netns', 'exec', ns, 'ipset', 'restore'], {
          input: sets,
          reject: false,
        });
        if (restoreSets.exitCode !== 0)
          throw new Error(`${name} ${family} ipset part rejected: ${restoreSets.stderr}`);
        const savedSets = await execa('ip', ['netns', 'exec', ns, 'ipset', 'save']);
        expect({ [`${name} ${family}`]: ipsetSummary(savedSets.stdout) }).toEqual({
          [`${name} ${family}`]: ipsetSummary(sets),
        });

        const restore = await execa('ip', ['netns', 'exec', ns, `${tool}-restore`, '-w'], {
          input: rules,
          reject: false,
        });
        if (restore.exitCode !== 0)
          throw new Error(`${name} ${family} iptables part (${backend.name}) rejected: ${restore.stderr}`);
        const saved = await execa('ip', ['netns', 'exec', ns, `${tool}-save`]);
        expect({ [`${name} ${family}`]: chainSummary(saved.stdout) }).toEqual({
          [`${name} ${family}`]: chainSummary(rules),
        });
      });
    }
  });
});
