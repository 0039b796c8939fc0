// Render benchmark: synthetic clusters rendered by renderIptables + serializeRuleSet (iptables mode)
// and by renderIpvs + its three serializers (ipvs mode) in the same run, and the time the real tools
// take to load the payload into a fresh network namespace (iptables mode: iptables-restore; ipvs mode:
// ipset restore, then iptables-restore of its constant rules; IPVS itself is not in this kernel).
//
//   npm run bench                      all sizes (1k, 10k, 20k × 10 endpoints; 1k × 100), both modes
//   npm run bench -- --modes ipvs      one mode only (iptables, ipvs)
//   npm run bench -- --sizes 1000x10   selected sizes
//   npm run bench -- --no-restore      skip the iptables-restore measurement
//   npm run bench -- --backend legacy  use iptables-legacy-restore (default: iptables-restore, nft here)
//   npm run bench -- --stream          serialise by writing chunks to a file (writeRuleSet) instead of
//                                      building the payload as one string (serializeRuleSet)
//   npm run bench -- --tsx             run the measured child under tsx instead of plain node
//
// Each size is measured in its own child process so the sizes do not pollute each other's heap and
// peak RSS. The child runs as plain `node` on a bundle of this file (esbuild, which tsx brings) —
// the agent's own shape (compiled JS): under tsx the runtime alone takes ~45 MB more RSS than node.
// Columns: "base" is the child's RSS once loaded, "state" what building the synthetic ClusterState
// adds (after a GC), "peak" the child's maxRSS over the render+serialize runs (measured before the
// payload is written out for the restore timing), and "peak-state" = peak - (base + state): what
// render + serialise cost on top of their input.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  emptyClusterState,
  type ClusterState,
  type Endpoint,
  type ServicePort,
} from '../../src/model/cluster-state.js';
import {
  renderIptables,
  serializeRuleSet,
  writeRuleSet,
  type IptablesRenderOptions,
} from '../../src/render/iptables/index.js';
import {
  renderIpvs,
  serializeIpsets,
  serializeIpvs,
  serializeIpvsIptables,
  type IpvsRenderOptions,
} from '../../src/render/ipvs/index.js';
import type { IptablesRuleSet } from '../../src/render/types.js';
import { BENCH_NETNS_PREFIX, sweepStaleTopologies } from '../../test/e2e/harness/topology.js';

const DEFAULT_SIZES = ['1000x10', '10000x10', '20000x10', '1000x100'];
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

function ipv4(base: [number, number], offset: number): string {
  const v = offset + 1;
  return `${base[0]}.${base[1] + (v >> 16)}.${(v >> 8) & 255}.${v & 255}`;
}

/** A cluster shaped like kube-proxy's scale tests: every 10th Service is a NodePort, one in 20 has eTP=Local. */
export function syntheticState(services: number, endpointsPerService: number): ClusterState {
  const state = emptyClusterState();
  for (let i = 0; i < services; i++) {
    const endpoints: Endpoint[] = [];
    for (let k = 0; k < endpointsPerService; k++) {
      endpoints.push({
        ip: ipv4([10, 128], i * endpointsPerService + k),
        port: 8080,
        family: 'IPv4',
        ready: true,
        serving: true,
        terminating: false,
        nodeName: k % 2 === 0 ? 'node-a' : 'node-b',
      });
    }
    const nodePortService = i % 10 === 0;
    const sp: ServicePort = {
      id: `ns${i % 100}/svc${i}:http`,
      namespace: `ns${i % 100}`,
      serviceName: `svc${i}`,
      portName: 'http',
      protocol: 'TCP',
      type: nodePortService ? 'NodePort' : 'ClusterIP',
      port: 80,
      nodePort: nodePortService ? 30000 + ((i / 10) % 2768) : 0,
      healthCheckNodePort: 0,
      clusterIPs: [ipv4([10, 96], i)],
      externalIPs: [],
      loadBalancerIngress: [],
      loadBalancerSourceRanges: [],
      externalTrafficPolicy: nodePortService && i % 20 === 0 ? 'Local' : 'Cluster',
      internalTrafficPolicy: 'Cluster',
      sessionAffinity: { type: 'None' },
      ipFamilies: ['IPv4'],
      endpoints,
    };
    state.servicePorts.push(sp);
  }
  state.servicePorts.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return state;
}

const OPTIONS: IptablesRenderOptions = {
  family: 'IPv4',
  nodeName: 'node-a',
  nodeIPs: ['10.99.0.2'],
  clusterCIDRs: ['10.128.0.0/9'],
  masqueradeAll: false,
  masqueradeBit: 14,
  nodePortAddresses: [],
  localhostNodePorts: true,
  randomFully: true,
  largeClusterEndpointThreshold: 1000,
};

const IPVS_OPTIONS: IpvsRenderOptions = {
  family: 'IPv4',
  nodeName: 'node-a',
  nodeIPs: ['10.99.0.2'],
  clusterCIDRs: ['10.128.0.0/9'],
  nodePortAddresses: [],
  localhostNodePorts: false,
  masqueradeAll: false,
  masqueradeBit: 14,
  randomFully: true,
  scheduler: 'rr',
  schedulerFlags: [],
  strictARP: false,
  timeouts: { tcpSeconds: 0, tcpFinSeconds: 0, udpSeconds: 0 },
};

type Mode = 'iptables' | 'ipvs';

interface ChildResult {
  mode: Mode;
  /** ipvs mode: bytes and lines of each part (ipset, ipvs, iptables). */
  parts?: Record<string, { bytes: number; lines: number }>;
  services: number;
  endpoints: number;
  renderMs: number;
  serializeMs: number;
  payloadBytes: number;
  lines: number;
  baseRssMB: number;
  stateRssMB: number;
  peakRssMB: number;
  payloadFile: string;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const MB = 1024 * 1024;

function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function countLines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/** The synthetic state, with the child's RSS before it and what building it added (after a GC). */
function measuredState(
  services: number,
  endpointsPerService: number,
): { state: ClusterState; baseRss: number; stateRss: number } {
  collectGarbage();
  const baseRss = process.memoryUsage().rss;
  const state = syntheticState(services, endpointsPerService);
  collectGarbage();
  return { state, baseRss, stateRss: process.memoryUsage().rss - baseRss };
}

/** The child's measurements (medians, RSS in MB) as one JSON line for the parent. */
function reportChild(
  fields: Pick<
    ChildResult,
    'mode' | 'parts' | 'services' | 'endpoints' | 'payloadBytes' | 'lines' | 'payloadFile'
  >,
  times: { render: number[]; serialize: number[] },
  rss: { base: number; state: number; peak: number },
): void {
  const result: ChildResult = {
    ...fields,
    renderMs: median(times.render),
    serializeMs: median(times.serialize),
    baseRssMB: rss.base / MB,
    stateRssMB: rss.state / MB,
    peakRssMB: rss.peak / MB,
  };
  process.stdout.write(JSON.stringify(result) + '\n');
}

/** ipvs mode: render + the three serializers; the parts are written to `payloadFile`.{ipset,ipvs,rules}. */
function runIpvsChild(services: number, endpointsPerService: number, payloadFile: string): void {
  const measured = measuredState(services, endpointsPerService);
  let state: ClusterState | undefined = measured.state;
  const { baseRss, stateRss } = measured;
  const renderTimes: number[] = [];
  const serializeTimes: number[] = [];
  let parts: Record<string, string> | undefined;
  for (let r = 0; r < RUNS; r++) {
    parts = undefined;
    collectGarbage();
    const t0 = performance.now();
    const rs = renderIpvs(state, IPVS_OPTIONS);
    const t1 = performance.now();
    parts = {
      ipset: serializeIpsets(rs),
      ipvs: serializeIpvs(rs),
      rules: serializeIpvsIptables(rs, { includeBuiltinJumps: true }),
    };
    const t2 = performance.now();
    renderTimes.push(t1 - t0);
    serializeTimes.push(t2 - t1);
  }
  const peakRss = process.resourceUsage().maxRSS * 1024;
  state = undefined;
  const summary: Record<string, { bytes: number; lines: number }> = {};
  let bytes = 0;
  let lines = 0;
  for (const [part, text] of Object.entries(parts ?? {})) {
    summary[part] = { bytes: Buffer.byteLength(text), lines: countLines(text) };
    bytes += summary[part].bytes;
    lines += summary[part].lines;
    writeFileSync(`${payloadFile}.${part}`, text);
  }
  reportChild(
    {
      mode: 'ipvs',
      parts: summary,
      services,
      endpoints: endpointsPerService,
      payloadBytes: bytes,
      lines,
      payloadFile,
    },
    { render: renderTimes, serialize: serializeTimes },
    { base: baseRss, state: stateRss, peak: peakRss },
  );
}

function runChild(services: number, endpointsPerService: number, payloadFile: string, stream: boolean): void {
  const measured = measuredState(services, endpointsPerService);
  let state: ClusterState | undefined = measured.state;
  const { baseRss, stateRss } = measured;
  const renderTimes: number[] = [];
  const serializeTimes: number[] = [];
  let payload: string | undefined;
  let bytes = 0;
  let lines = 0;
  for (let r = 0; r < RUNS; r++) {
    // Drop the previous run's output first: the peak is that of one render + serialise.
    payload = undefined;
    collectGarbage();
    const t0 = performance.now();
    let rs: IptablesRuleSet | undefined = renderIptables(state, OPTIONS);
    const t1 = performance.now();
    if (stream) {
      const fd = openSync(payloadFile, 'w');
      // Chunks are gathered into ~1 MB writes, as a stream with a buffer would do.
      let pending: string[] = [];
      let pendingLength = 0;
      const flush = (): void => {
        const block = pending.join('');
        writeSync(fd, block);
        lines += countLines(block);
        pending = [];
        pendingLength = 0;
      };
      bytes = 0;
      lines = 0;
      try {
        writeRuleSet(
          rs,
          (chunk) => {
            pending.push(chunk);
            pendingLength += chunk.length;
            bytes += chunk.length;
            if (pendingLength >= 1 << 20) flush();
          },
          { includeBuiltinJumps: true },
        );
        flush();
      } finally {
        closeSync(fd);
      }
    } else {
      payload = serializeRuleSet(rs, { includeBuiltinJumps: true });
    }
    const t2 = performance.now();
    rs = undefined;
    renderTimes.push(t1 - t0);
    serializeTimes.push(t2 - t1);
  }
  const peakRss = process.resourceUsage().maxRSS * 1024;
  state = undefined;
  if (payload !== undefined) {
    bytes = Buffer.byteLength(payload);
    lines = countLines(payload);
    writeFileSync(payloadFile, payload);
  }
  reportChild(
    { mode: 'iptables', services, endpoints: endpointsPerService, payloadBytes: bytes, lines, payloadFile },
    { render: renderTimes, serialize: serializeTimes },
    { base: baseRss, state: stateRss, peak: peakRss },
  );
}

/**
 * The child's command: plain node on a bundle of this file when esbuild can make one (the agent
 * runs compiled JS), else node with tsx.
 */
async function childCommand(dir: string, useTsx: boolean): Promise<{ args: string[]; runtime: string }> {
  const self = fileURLToPath(import.meta.url);
  const viaTsx = { args: ['--expose-gc', '--import', 'tsx', self], runtime: 'node+tsx' };
  if (useTsx) return viaTsx;
  try {
    // esbuild comes with tsx (not a direct dependency): fall back to tsx when it is missing.
    const esbuild = (await import('esbuild' as string)) as {
      build(opts: Record<string, unknown>): Promise<unknown>;
    };
    const outfile = join(dir, 'render-bench.mjs');
    await esbuild.build({
      entryPoints: [self],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile,
      logLevel: 'silent',
      // CommonJS dependencies (cross-spawn under execa) call require(): give the ESM bundle one.
      banner: {
        js: "import { createRequire as __benchRequire } from 'node:module'; const require = __benchRequire(import.meta.url);",
      },
    });
    return { args: ['--expose-gc', outfile], runtime: 'node (bundled)' };
  } catch (err) {
    console.log(`esbuild bundle failed (${String(err).slice(0, 120)}); measuring under tsx`);
    return viaTsx;
  }
}

/** ipvs mode's loadable parts: the sets by ipset restore, then the constant rules (which match them). */
function timeIpvsRestore(payloadFile: string, tool: string): { ms: number; ok: boolean; detail: string } {
  const ns = `${BENCH_NETNS_PREFIX}${process.pid}-ipvs-${randomBytes(2).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    const t0 = performance.now();
    const sets = spawnSync('ip', ['netns', 'exec', ns, 'ipset', 'restore'], {
      input: readFileSync(`${payloadFile}.ipset`),
      stdio: ['pipe', 'ignore', 'pipe'],
      maxBuffer: 1 << 30,
    });
    if (sets.status !== 0) return { ms: 0, ok: false, detail: String(sets.stderr).slice(0, 300) };
    const rules = spawnSync('ip', ['netns', 'exec', ns, tool, '-w'], {
      input: readFileSync(`${payloadFile}.rules`),
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    const ms = performance.now() - t0;
    return {
      ms,
      ok: rules.status === 0,
      detail: rules.status === 0 ? '' : String(rules.stderr).slice(0, 300),
    };
  } finally {
    spawnSync('ip', ['netns', 'delete', ns]);
  }
}

/** Load the payload into a fresh namespace; "-S" after "*nat" keeps iptables-nft-restore linear. */
function timeRestore(payloadFile: string, tool: string): { ms: number; ok: boolean; detail: string } {
  const ns = `${BENCH_NETNS_PREFIX}${process.pid}-render-${randomBytes(2).toString('hex')}`;
  // The built-in jumps ("-I PREROUTING …") are left out: in a fresh namespace iptables-nft-restore
  // fails them after "-S" (the listing caches a nat table without its built-in chains). They are
  // 15 lines; the agent ensures them separately anyway.
  const withList = readFileSync(payloadFile, 'utf8')
    .replace(/^-I .*\n/gm, '')
    .replace(/^\*nat\n/m, '*nat\n-S\n');
  const listFile = payloadFile + '.listfirst';
  writeFileSync(listFile, withList);
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    const t0 = performance.now();
    const r = spawnSync('ip', ['netns', 'exec', ns, tool, '-w'], {
      input: readFileSync(listFile),
      stdio: ['pipe', 'ignore', 'pipe'],
      maxBuffer: 1 << 30,
    });
    const ms = performance.now() - t0;
    return { ms, ok: r.status === 0, detail: r.status === 0 ? '' : String(r.stderr).slice(0, 300) };
  } finally {
    spawnSync('ip', ['netns', 'delete', ns]);
    rmSync(listFile, { force: true });
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--child') {
    if (args[5] === 'ipvs') runIpvsChild(Number(args[1]), Number(args[2]), args[3] ?? '');
    else runChild(Number(args[1]), Number(args[2]), args[3] ?? '', args[4] === 'stream');
    return;
  }
  const modesArg = args.indexOf('--modes');
  const modes = (modesArg >= 0 ? (args[modesArg + 1] ?? '').split(',') : ['iptables', 'ipvs']) as Mode[];
  for (const ns of await sweepStaleTopologies(BENCH_NETNS_PREFIX))
    console.log(`removed stale namespace ${ns}`);
  const sizesArg = args.indexOf('--sizes');
  const sizes = sizesArg >= 0 ? (args[sizesArg + 1] ?? '').split(',') : DEFAULT_SIZES;
  const backendArg = args.indexOf('--backend');
  const tool =
    backendArg >= 0 && args[backendArg + 1] === 'legacy' ? 'iptables-legacy-restore' : 'iptables-restore';
  const restore = !args.includes('--no-restore');
  const stream = args.includes('--stream');
  const isRoot = process.getuid?.() === 0;
  if (restore && !isRoot) console.log('iptables-restore timing SKIPPED: needs root (network namespaces)');
  const dir = mkdtempSync(join(tmpdir(), 'pw-bench-'));
  try {
    const child = await childCommand(dir, args.includes('--tsx'));
    console.log(
      `child runtime: ${child.runtime}; serialise: ${stream ? 'chunks written to a file (writeRuleSet)' : 'one string (serializeRuleSet)'}`,
    );
    console.log(
      'mode     | services x endpoints | render ms (median of 5) | serialize ms | payload MB | lines | RSS MB: base | state | peak | peak-state | restore s',
    );
    for (const size of sizes) {
      for (const mode of modes) {
        const [s, e] = size.split('x').map(Number);
        const file = join(dir, `${size}-${mode}.rules`);
        const run = spawnSync(
          process.execPath,
          [...child.args, '--child', String(s), String(e), file, stream ? 'stream' : 'string', mode],
          { encoding: 'utf8', maxBuffer: 1 << 20 },
        );
        if (run.status !== 0) {
          console.log(`${size} ${mode}: child failed: ${run.stderr}`);
          continue;
        }
        const r = JSON.parse(run.stdout.trim().split('\n').pop() ?? '{}') as ChildResult;
        let restoreText = 'skipped';
        if (restore && isRoot) {
          const t = mode === 'ipvs' ? timeIpvsRestore(r.payloadFile, tool) : timeRestore(r.payloadFile, tool);
          restoreText = t.ok ? (t.ms / 1000).toFixed(2) : `FAILED ${t.detail}`;
        }
        const restoreTool = mode === 'ipvs' ? `ipset restore + ${tool}` : tool;
        const mb = (x: number, w: number): string => x.toFixed(0).padStart(w);
        console.log(
          `${mode.padEnd(8)} | ${String(s).padStart(6)} x ${String(e).padEnd(4)} | ${mb(r.renderMs, 8)} | ${mb(r.serializeMs, 6)} | ${(
            r.payloadBytes / 1e6
          )
            .toFixed(1)
            .padStart(
              6,
            )} | ${String(r.lines).padStart(7)} | ${mb(r.baseRssMB, 4)} | ${mb(r.stateRssMB, 4)} | ${mb(
            r.peakRssMB,
            5,
          )} | ${mb(r.peakRssMB - r.baseRssMB - r.stateRssMB, 5)} | ${restoreText} (${restoreTool})`,
        );
        if (r.parts !== undefined) {
          // The iptables part of ipvs mode must stay constant-size whatever the number of Services.
          const parts = Object.entries(r.parts).map(
            ([part, p]) => `${part} ${p.lines} lines ${(p.bytes / 1e6).toFixed(2)} MB`,
          );
          console.log(`         |   ipvs parts: ${parts.join('; ')}`);
        }
        for (const suffix of ['', '.ipset', '.ipvs', '.rules']) rmSync(file + suffix, { force: true });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
