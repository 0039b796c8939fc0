// Large-input benchmark (issue 9): one generated `kind: List` through every command's path (render,
// diff, status, trace, and run's incremental build and full plan), timed step by step, with peak RSS.
//
//   node --expose-gc --import tsx hack/bench/large-input-bench.ts                     1M objects
//   node --expose-gc --import tsx hack/bench/large-input-bench.ts --objects 125000
//
// Needs a large heap at 1M objects: npm run bench:large passes --max-old-space-size.
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/config.js';
import { bigListJson, runCommandPaths } from '../../test/fixtures/large-list.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : NaN;
  return Number.isFinite(v) ? v : fallback;
}
const OBJECTS = arg('--objects', 1_000_000);
const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(0)} MB`;

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'portway-large-bench-'));
  try {
    const file = join(dir, 'list.json');
    await writeFile(file, bigListJson({ objects: OBJECTS, endpoints: 1 }));
    console.log(`large-input bench: ${OBJECTS} objects, ${mb((await stat(file)).size)} of JSON`);
    const config = parseConfig({ nodeName: 'node-a', nodeIPs: ['172.16.0.1'] });
    const r = await runCommandPaths(file, config);
    for (const [name, ms] of Object.entries(r.timings)) {
      console.log(`  ${name.padEnd(26)} ${(ms / 1000).toFixed(2)} s`);
    }
    console.log(
      `  ${r.services} Services, ${r.restoreLines} restore lines, ${r.changedChains} chains in the full plan, ` +
        `trace → ${r.trace.endpoints.join(' ')}`,
    );
    // maxRSS is in kilobytes.
    console.log(`  peak RSS ${mb(process.resourceUsage().maxRSS * 1024)}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
