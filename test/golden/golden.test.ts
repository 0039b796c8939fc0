// Golden files (DESIGN habit 10): test/golden/<case>/input.yaml (+ config.yaml) → ipv4.rules and
// ipv6.rules, the full iptables-restore payload of iptables mode, and ipvs-ipv4.{ipset,ipvs,rules} /
// ipvs-ipv6.* for ipvs mode of the same node, nftables-ipv4.nft / nftables-ipv6.nft for nftables mode. UPDATE_GOLDEN=1 (npm run golden:update) rewrites them;
// review the diff like code. test/e2e/golden-load.test.ts and golden-ipvs-load.test.ts load them with
// the real tools.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  FAMILY_FILES,
  GOLDEN_DIR,
  goldenCases,
  IPVS_FILES,
  NFTABLES_FILES,
  renderCase,
} from './golden-cases.js';

const update = process.env.UPDATE_GOLDEN === '1';
const cases = goldenCases();

test('there are golden cases', () => {
  expect(cases.length).toBeGreaterThan(10);
});

describe.each(cases)('golden %s', (name) => {
  test('rendered payloads match the golden files', async () => {
    const rendered = await renderCase(name);
    for (const { file } of [...FAMILY_FILES, ...IPVS_FILES, ...NFTABLES_FILES]) {
      const path = join(GOLDEN_DIR, name, file);
      const text = rendered[file] ?? '';
      if (update) {
        writeFileSync(path, text);
        continue;
      }
      if (!existsSync(path)) throw new Error(`${path} is missing: run npm run golden:update`);
      expect(text).toBe(readFileSync(path, 'utf8'));
    }
  });
});
