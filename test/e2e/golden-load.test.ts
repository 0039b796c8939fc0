// Every golden payload must be accepted by the real iptables-restore/ip6tables-restore (nft and legacy
// backends) in a fresh network namespace, and read back with the same chains and rule counts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { FAMILY_FILES, GOLDEN_DIR, goldenCases } from '../golden/golden-cases.js';
import { chainSummary, withNamespace } from './harness/restore-check.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) {
  console.warn('\n*** golden-load: SKIPPED — needs root for network namespaces and iptables-restore ***\n');
}
const maybe = isRoot ? describe : describe.skip;

const BACKENDS = [
  { name: 'nft', v4: 'iptables-nft', v6: 'ip6tables-nft' },
  { name: 'legacy', v4: 'iptables-legacy', v6: 'ip6tables-legacy' },
];

maybe.each(BACKENDS)('golden payloads load with iptables-restore ($name)', (backend) => {
  test.each(goldenCases())('%s', async (name) => {
    for (const { family, file } of FAMILY_FILES) {
      const payload = readFileSync(join(GOLDEN_DIR, name, file), 'utf8');
      const tool = family === 'IPv4' ? backend.v4 : backend.v6;
      await withNamespace('pw-golden', async (ns) => {
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
