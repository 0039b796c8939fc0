// portway itself inside the IPVS test VM: the guest image has no Node.js and no node_modules, so the CLI
// is bundled into one ES module by esbuild (from src/, so no build step is needed; tsx already depends on
// esbuild) and shipped in a run's payload with this host's `node` binary, its libraries and the native
// ARP addon. A guest script gets `portway …` and `l2_announcer …` (src/l2/standalone-main.ts: one VIP's
// election, member health and ARP responder) as shell functions (PORTWAY_GUEST_PRELUDE). Each portway
// start costs ~4-5 s under emulation: call it a few times per run, not in a loop.
//
// Guest layout (under /payload/portway): node, lib/ (node's libraries), app/dist/cli/portway.mjs (the
// bundle; its `../../package.json` and `../../../package.json` reads both find package.json),
// app/native/arp/build/Release/arp.node (found by nativeAddonPath's second candidate).
import { execFileSync } from 'node:child_process';
import { existsSync, realpathSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');

/** Bash lines that define `portway` in the guest (put them first in the script). */
export const PORTWAY_GUEST_PRELUDE = String.raw`
export LD_LIBRARY_PATH=/payload/portway/lib
# For a process whose pid matters (kill it later): "$PORTWAY_NODE" "$PORTWAY_CLI" run … &
export PORTWAY_NODE=/payload/portway/node PORTWAY_CLI=/payload/portway/app/dist/cli/portway.mjs
portway() { /payload/portway/node /payload/portway/app/dist/cli/portway.mjs "$@"; }
l2_announcer() { /payload/portway/node /payload/portway/app/dist/cli/l2-announcer.mjs "$@"; }
export -f portway l2_announcer
`;

let bundled: Promise<Record<string, string>> | undefined;

/** The `paths` for runInIpvsVm that put portway in the guest (the bundle is made once per test process). */
export function portwayGuestPaths(): Promise<Record<string, string>> {
  bundled ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pw-guest-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    await build({
      entryPoints: {
        portway: join(ROOT, 'src/cli/main.ts'),
        'l2-announcer': join(ROOT, 'src/l2/standalone-main.ts'),
      },
      outExtension: { '.js': '.mjs' },
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outdir: dir,
      logLevel: 'error',
      // CommonJS dependencies call require(); give the ES module one.
      banner: {
        js: "import { createRequire as __pwCreateRequire } from 'node:module'; const require = __pwCreateRequire(import.meta.url);",
      },
    });
    const node = process.execPath;
    const paths: Record<string, string> = {
      'portway/node': node,
      'portway/app/dist/cli/portway.mjs': join(dir, 'portway.mjs'),
      'portway/app/dist/cli/l2-announcer.mjs': join(dir, 'l2-announcer.mjs'),
      'portway/app/package.json': join(ROOT, 'package.json'),
      'portway/package.json': join(ROOT, 'package.json'),
    };
    const addon = join(ROOT, 'native/arp/build/Release/arp.node');
    if (existsSync(addon)) paths['portway/app/native/arp/build/Release/arp.node'] = addon;
    const ldd = execFileSync('ldd', [node], { encoding: 'utf8' });
    // run-in-vm copies a symlink as a symlink: give it the library itself, under the name ldd wants.
    for (const m of ldd.matchAll(/=> (\/\S+)/g))
      paths[`portway/lib/${m[1]!.split('/').pop()}`] = realpathSync(m[1]!);
    return paths;
  })();
  return bundled;
}
