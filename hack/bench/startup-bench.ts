// Start-up benchmark (issue 13, "Start-up"): what a CLI call and an agent's one-shot sync cost beyond the
// work itself.
//
//   npm run bench:startup [-- --runs 15] [--services 5000] [--endpoints 10] [--once-runs 3] [--skip-run-once]
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
//     skipped with a notice otherwise. Where the rest of the run's time goes is printed from the shim
//     (the tool's own time inside the run) and from the agent's log (when each milestone came).
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bigListJson } from '../../test/fixtures/large-list.js';
import { BENCH_NETNS_PREFIX, removeAgentState } from '../../test/e2e/harness/topology.js';
import { benchFlag } from './bench-util.js';

const RUNS = Number(benchFlag('runs', '15'));
const SERVICES = Number(benchFlag('services', '5000'));
const ENDPOINTS = Number(benchFlag('endpoints', '10'));
const ONCE_RUNS = Number(benchFlag('once-runs', '3'));
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

/** One `run --once` in a fresh namespace through the shim: wall ms, the agent's log, the recorded calls. */
function runOnceInFreshNetns(dir: string, bin: string, list: string, ns: string) {
  const calls = join(dir, 'calls');
  rmSync(calls, { recursive: true, force: true });
  execFileSync('mkdir', ['-p', calls]);
  netns(ns);
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` };
  const spawnedAt = Date.now();
  const t = performance.now();
  const agent = spawnSync(
    'ip',
    [
      'netns',
      'exec',
      ns,
      process.execPath,
      CLI,
      'run',
      '--once',
      '--manifests',
      list,
      '--config',
      join(dir, 'config.json'),
      '--log-format',
      'json',
    ],
    { env, stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 30 },
  );
  const wallMs = performance.now() - t;
  if (agent.status !== 0)
    throw new Error(`run --once: exit ${agent.status}: ${String(agent.stderr).slice(-2000)}`);
  const ids = readdirSync(calls)
    .filter((f) => f.endsWith('.in'))
    .sort()
    .map((f) => f.slice(0, -3));
  return {
    wallMs,
    spawnedAt,
    log: String(agent.stderr),
    calls: ids.map((id) => ({
      args: readFileSync(join(calls, `${id}.args`), 'utf8')
        .split('\n')
        .filter((a) => a !== ''),
      input: readFileSync(join(calls, `${id}.in`), 'utf8'),
      toolMs: Number(readFileSync(join(calls, `${id}.ms`), 'utf8')),
    })),
  };
}

/** When each milestone of the agent's log came, in ms after the process was spawned. */
function milestones(log: string, spawnedAt: number): string {
  const wanted: Array<[RegExp, string]> = [
    [/marked this network namespace/, 'first log line (modules loaded, state dir)'],
    [/portway agent starting/, 'agent starting (config, backend detected)'],
    [/LoadBalancer addresses allocated|initial/, 'manifests read and normalised, addresses allocated'],
    [/iptables rules applied/, 'restore returned'],
    [/synced once/, 'sync done'],
  ];
  const out: string[] = [];
  for (const line of log.split('\n')) {
    let rec: { time?: number; msg?: string };
    try {
      rec = JSON.parse(line) as { time?: number; msg?: string };
    } catch {
      continue;
    }
    const hit = wanted.find(([re]) => re.test(rec.msg ?? ''));
    if (hit && rec.time !== undefined && !out.some((o) => o.includes(hit[1])))
      out.push(`    +${ms(rec.time - spawnedAt)}  ${hit[1]}`);
  }
  return out.join('\n');
}

async function runOnceFigures(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('run --once vs iptables-nft-restore: SKIPPED (needs root for network namespaces)');
    return;
  }
  const real = execFileSync('bash', ['-c', 'command -v iptables-nft-restore']).toString().trim();
  const dir = mkdtempSync(join(tmpdir(), 'portway-startup-bench-'));
  const made: string[] = [];
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
    const runs: Array<ReturnType<typeof runOnceInFreshNetns>> = [];
    const alone: number[] = [];
    // Interleaved: an agent run, then the tool alone on that run's payloads, each in a fresh namespace.
    for (let i = 0; i < ONCE_RUNS; i++) {
      const agentNs = `${BENCH_NETNS_PREFIX}${process.pid}-once${i}`;
      made.push(agentNs);
      const run = runOnceInFreshNetns(dir, bin, list, agentNs);
      runs.push(run);
      const aloneNs = `${BENCH_NETNS_PREFIX}${process.pid}-alone${i}`;
      made.push(aloneNs);
      netns(aloneNs);
      let total = 0;
      for (const c of run.calls)
        total += timeProcess('ip', ['netns', 'exec', aloneNs, real, ...c.args], { input: c.input });
      alone.push(total);
      for (const ns of [agentNs, aloneNs]) {
        await removeAgentState(ns).catch(() => undefined);
        spawnSync('ip', ['netns', 'del', ns]);
      }
    }
    const wall = median(runs.map((r) => r.wallMs));
    const toolInRun = median(runs.map((r) => r.calls.reduce((n, c) => n + c.toolMs, 0)));
    const typical = runs.find((r) => r.wallMs === wall) ?? runs[0]!;
    const bytes = typical.calls.reduce((n, c) => n + Buffer.byteLength(c.input), 0);
    console.log(`run --once, ${SERVICES} Services × ${ENDPOINTS} endpoints (nft), median of ${ONCE_RUNS}:`);
    console.log(`  portway run --once (process start to exit):   ${ms(wall)}`);
    console.log(
      `  iptables-nft-restore alone, same ${typical.calls.length} payload(s) (${(bytes / 1048576).toFixed(1)} MB): ${ms(median(alone))}`,
    );
    console.log(`  run --once / restore alone: ${(wall / median(alone)).toFixed(2)}   [target: ≤ 1.5]`);
    console.log(
      `  where the run's time goes: the real tool inside the run ${ms(toolInRun)}, the rest ${ms(wall - toolInRun)}; milestones of the median run:`,
    );
    console.log(milestones(typical.log, typical.spawnedAt));
    const once = typical.log.split('\n').find((l) => l.includes('"synced once"'));
    if (once)
      console.log(
        `    sync stages (ms): ${JSON.stringify((JSON.parse(once) as { stageMs?: unknown }).stageMs)}`,
      );
  } finally {
    for (const ns of made) {
      await removeAgentState(ns).catch(() => undefined);
      spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

startupFigures();
if (!process.argv.slice(2).includes('--skip-run-once')) await runOnceFigures();
