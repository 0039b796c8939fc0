// Start-up benchmark (issue 13, "Start-up"): what a CLI call and an agent's one-shot sync cost beyond the
// work itself.
//
//   npm run bench:startup [-- --runs 15] [--services 5000] [--endpoints 10] [--skip-run-once]
//
// Figures printed:
//  1. `portway version` (the built CLI, ./bin/portway) against a bare `node -e 0`: median of --runs
//     starts each, and the ratio [target ≤ 4×]. Commands load their modules on demand, so this is the
//     floor every render/diff call in CI pays.
//  2. `portway run --once` on --services Services × --endpoints endpoints (a `kind: List` file, manifest
//     mode, nft backend) in a fresh network namespace, against iptables-nft-restore alone loading the
//     same payloads into another fresh namespace [target ≤ 1.5×]. The payloads are the very ones the
//     agent sent: a shim named iptables-nft-restore placed first in PATH records each call's arguments
//     and input (and the real tool's time inside the run) before running the real tool. Needs root;
//     skipped with a notice otherwise. Where the rest of the run's time goes is printed from the agent's
//     own debug log (time to first sync start, render/plan/restore stages) and from the shim.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bigListJson } from '../../test/fixtures/large-list.js';
import { BENCH_NETNS_PREFIX, removeAgentState } from '../../test/e2e/harness/topology.js';

const argv = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
};
const RUNS = Number(flag('runs', '15'));
const SERVICES = Number(flag('services', '5000'));
const ENDPOINTS = Number(flag('endpoints', '10'));
const ROOT = new URL('../../', import.meta.url).pathname;
const CLI = join(ROOT, 'bin/portway');

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const ms = (x: number): string => `${x.toFixed(0)} ms`;

/** Wall time of one process run to its end (ms); throws when it fails. */
function timeProcess(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; input?: string } = {},
): number {
  const t = performance.now();
  const r = spawnSync(cmd, args, {
    env: opts.env ?? process.env,
    ...(opts.input !== undefined ? { input: opts.input } : { stdio: ['ignore', 'ignore', 'pipe'] }),
    maxBuffer: 1 << 30,
  });
  const elapsed = performance.now() - t;
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${String(r.stderr).slice(0, 2000)}`);
  return elapsed;
}

function startupFigures(): void {
  try {
    execFileSync(CLI, ['version'], { stdio: 'ignore' });
  } catch {
    throw new Error(`${CLI} does not run: npm run build first`);
  }
  const bare: number[] = [];
  const version: number[] = [];
  // Interleaved, so load on the machine hits both alike.
  for (let i = 0; i < RUNS; i++) {
    bare.push(timeProcess(process.execPath, ['-e', '0']));
    version.push(timeProcess(process.execPath, [CLI, 'version']));
  }
  const ratio = median(version) / median(bare);
  console.log(`node -e 0:         median ${ms(median(bare))} (${RUNS} runs)`);
  console.log(`portway version:   median ${ms(median(version))} (${RUNS} runs)`);
  console.log(`version / node:    ${ratio.toFixed(2)}   [target: ≤ 4]`);
}

/** A PATH directory whose iptables-nft-restore records each call (args, input, the real tool's ms) in `dir`. */
function restoreShim(dir: string, real: string): string {
  const bin = join(dir, 'bin');
  execFileSync('mkdir', ['-p', bin, join(dir, 'calls')]);
  const shim = join(bin, 'iptables-nft-restore');
  writeFileSync(
    shim,
    `#!/bin/bash
# Records one call of iptables-nft-restore for the start-up bench, then runs the real tool on the same input.
n=$(date +%s%N)
cat > "${dir}/calls/$n.in"
printf '%s\\n' "$@" > "${dir}/calls/$n.args"
t0=$(date +%s%N)
"${real}" "$@" < "${dir}/calls/$n.in"
rc=$?
echo $(( ($(date +%s%N) - t0) / 1000000 )) > "${dir}/calls/$n.ms"
exit $rc
`,
  );
  chmodSync(shim, 0o755);
  return bin;
}

function netns(name: string): void {
  execFileSync('ip', ['netns', 'add', name]);
  execFileSync('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  execFileSync('ip', ['-n', name, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1']);
  execFileSync('ip', ['-n', name, 'addr', 'add', '172.16.0.1/24', 'dev', 'eth0']);
  execFileSync('ip', ['-n', name, 'link', 'set', 'eth0', 'up']);
}

async function runOnceFigures(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('run --once vs iptables-nft-restore: SKIPPED (needs root for network namespaces)');
    return;
  }
  const real = execFileSync('bash', ['-c', 'command -v iptables-nft-restore']).toString().trim();
  const dir = mkdtempSync(join(tmpdir(), 'portway-startup-bench-'));
  const agentNs = `${BENCH_NETNS_PREFIX}${process.pid}-once`;
  const aloneNs = `${BENCH_NETNS_PREFIX}${process.pid}-alone`;
  try {
    const list = join(dir, 'cluster.json');
    writeFileSync(list, bigListJson({ objects: SERVICES * 2 + 3, endpoints: ENDPOINTS }));
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({
        nodeName: 'node-a',
        nodeIPs: ['172.16.0.1'],
        clusterCIDRs: ['11.0.0.0/8'],
        metricsBindAddress: '127.0.0.1:0',
        healthzBindAddress: '127.0.0.1:0',
      }),
    );
    const bin = restoreShim(dir, real);
    netns(agentNs);
    netns(aloneNs);
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` };
    const logFile = join(dir, 'agent.log');
    const t = performance.now();
    const agent = spawnSync(
      'ip',
      [
        'netns',
        'exec',
        agentNs,
        process.execPath,
        CLI,
        'run',
        '--once',
        '--manifests',
        list,
        '--config',
        join(dir, 'config.json'),
        '--log-level',
        'debug',
        '--log-format',
        'json',
      ],
      { env, stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 30 },
    );
    const runMs = performance.now() - t;
    writeFileSync(logFile, agent.stderr);
    if (agent.status !== 0)
      throw new Error(`run --once: exit ${agent.status}: ${String(agent.stderr).slice(-2000)}`);
    const calls = readdirSync(join(dir, 'calls'))
      .filter((f) => f.endsWith('.in'))
      .sort()
      .map((f) => f.slice(0, -3));
    const inRunMs = calls.map((c) => Number(readFileSync(join(dir, 'calls', `${c}.ms`), 'utf8')));
    // Restore alone: the same calls, in order, with the same arguments, into a fresh namespace.
    let aloneMs = 0;
    for (const c of calls) {
      const args = readFileSync(join(dir, 'calls', `${c}.args`), 'utf8')
        .split('\n')
        .filter((a) => a !== '');
      aloneMs += timeProcess('ip', ['netns', 'exec', aloneNs, real, ...args], {
        input: readFileSync(join(dir, 'calls', `${c}.in`), 'utf8'),
      });
    }
    const bytes = calls.reduce((n, c) => n + readFileSync(join(dir, 'calls', `${c}.in`)).length, 0);
    console.log(`run --once, ${SERVICES} Services × ${ENDPOINTS} endpoints (nft):`);
    console.log(`  portway run --once (process start to exit):   ${ms(runMs)}`);
    console.log(
      `  iptables-nft-restore alone, same ${calls.length} payload(s) (${(bytes / 1048576).toFixed(1)} MB): ${ms(aloneMs)}`,
    );
    console.log(`  run --once / restore alone: ${(runMs / aloneMs).toFixed(2)}   [target: ≤ 1.5]`);
    console.log(
      `  where the run's time goes: the real tool inside the run ${ms(inRunMs.reduce((a, b) => a + b, 0))}; the rest ${ms(runMs - inRunMs.reduce((a, b) => a + b, 0))}`,
    );
    for (const line of String(agent.stderr).split('\n')) {
      // The agent's own account of its first sync (stage timings), when it logs one.
      if (/"msg":"(sync(ed)? |initial|first sync)/i.test(line) || /stageMs|durationMs/.test(line))
        console.log(`    ${line.slice(0, 400)}`);
    }
  } finally {
    for (const ns of [agentNs, aloneNs]) {
      await removeAgentState(ns).catch(() => undefined);
      spawnSync('ip', ['netns', 'del', ns]);
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

startupFigures();
if (!argv.includes('--skip-run-once')) await runOnceFigures();
