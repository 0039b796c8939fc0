// Cluster-mode benchmark: the agent (runAgent, as `portway run --kubeconfig` runs it) against the API
// stand-in holding a large cluster.
//
//   npx tsx hack/bench/cluster-bench.ts                     10k Services × 10 endpoints, real iptables in a netns
//   npx tsx hack/bench/cluster-bench.ts --dataplane null    the agent alone: restores are accepted, not run
//   options: --services N  --endpoints N  --rate CHANGES_PER_S  --seconds N  --min-sync-period DUR
//            --backend nft|legacy (kernel dataplane; default: what the node uses)
//            --tsx (run the agent under tsx instead of plain node on an esbuild bundle)
//            --managed-fields (objects carry metadata.managedFields as an API server writes them)
//   npm run bench:memory                                     the agent's memory at 1k and 10k Services × 10
//                                                            (= --memory: null dataplane, a short stream,
//                                                            a full GC each second; --sizes 1000,10000)
//
// Measured:
//   - start → first sync: from spawning the agent process to its first applied sync (split into "initial
//     list" — every informer listed and the state built — and "first sync"), and the agent process's peak
//     RSS (VmHWM) at that moment. The iptables-restore child's own memory is not included;
//   - network programming latency: a stream of single-endpoint EndpointSlice changes at --rate per second
//     for --seconds, each stamped with `endpoints.kubernetes.io/last-change-trigger-time` = the moment it
//     is written to the stand-in; the agent observes "rules applied − trigger time" for each
//     (kubeproxy_network_programming_duration_seconds) and, at debug level, logs the exact values, which
//     this bench collects for p50/p90/p99/max;
//   - an agent restart (kernel dataplane): SIGTERM (the rules stay), a new process, start → first sync;
//     the new process adopts the chains the kernel already holds instead of loading them again;
//   - the agent's memory, sampled in the agent every 20 ms: peak RSS (VmHWM), peak V8 heap used and
//     total, peak external (Buffers), and with --memory the live heap after a forced full GC.
// The kernel dataplane runs the agent in a fresh network namespace; the stand-in stays in this process
// (root namespace, 127.0.0.1) and two socat relays over a Unix socket carry the API connection.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { StandInApiServer, writeKubeconfig } from '../../test/stand-in/api-server.js';
import { BENCH_NETNS_PREFIX, sweepStaleTopologies } from '../../test/e2e/harness/topology.js';

const SELF = fileURLToPath(import.meta.url);
const NODE_IP = '10.97.0.2';
const TRIGGER = 'endpoints.kubernetes.io/last-change-trigger-time';
/** The agent's /metrics port (inside its namespace for the kernel dataplane; a free one for null). */
let metricsPort = 10249;

interface Options {
  services: number;
  endpoints: number;
  rate: number;
  seconds: number;
  minSyncPeriod: string;
  dataplane: 'kernel' | 'null';
  backend?: 'nft' | 'legacy';
  /** Run the agent child under tsx instead of a bundle. */
  tsx: boolean;
  managedFields: boolean;
  /** bench:memory: one short run per size, memory figures only. */
  memory: boolean;
  sizes: number[];
}

function parseArgs(argv: string[]): Options & {
  child: boolean;
  kubeconfig?: string;
  config?: string;
  stateDir?: string;
  metricsPort?: number;
} {
  const o: Options & {
    child: boolean;
    kubeconfig?: string;
    config?: string;
    stateDir?: string;
    metricsPort?: number;
  } = {
    services: 10_000,
    endpoints: 10,
    rate: 50,
    seconds: 20,
    minSyncPeriod: '0s',
    dataplane: 'kernel',
    tsx: false,
    managedFields: false,
    memory: false,
    sizes: [1000, 10_000],
    child: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--services') o.services = Number(next());
    else if (a === '--endpoints') o.endpoints = Number(next());
    else if (a === '--rate') o.rate = Number(next());
    else if (a === '--seconds') o.seconds = Number(next());
    else if (a === '--min-sync-period') o.minSyncPeriod = next();
    else if (a === '--dataplane') {
      const v = next();
      if (v !== 'kernel' && v !== 'null') throw new Error('--dataplane must be kernel or null');
      o.dataplane = v;
    } else if (a === '--backend') {
      const v = next();
      if (v !== 'nft' && v !== 'legacy') throw new Error('--backend must be nft or legacy');
      o.backend = v;
    } else if (a === '--agent-child') o.child = true;
    else if (a === '--kubeconfig') o.kubeconfig = next();
    else if (a === '--config') o.config = next();
    else if (a === '--state-dir') o.stateDir = next();
    else if (a === '--metrics-port') o.metricsPort = Number(next());
    else if (a === '--tsx') o.tsx = true;
    else if (a === '--managed-fields') o.managedFields = true;
    else if (a === '--memory') o.memory = true;
    else if (a === '--sizes') o.sizes = next().split(',').map(Number);
    else throw new Error(`unknown argument "${a}"`);
  }
  for (const k of ['services', 'endpoints', 'rate', 'seconds'] as const) {
    if (!Number.isFinite(o[k]) || o[k] <= 0) throw new Error(`--${k} must be a positive number`);
  }
  return o;
}

// ── the agent child ───────────────────────────────────────────────────────────────────────────────

async function agentChild(o: ReturnType<typeof parseArgs>): Promise<void> {
  const { runAgent } = await import('../../src/cli/commands/run.js');
  const { createAgentLogger } = await import('../../src/cli/commands/register-agent.js');
  const { createDataplane, createFakeDataplane } = await import('../../src/dataplane/index.js');
  const logger = createAgentLogger('debug');
  if (process.env.BENCH_MEMORY_TRACE) traceMemory(process.env.BENCH_MEMORY_TRACE);
  const code = await runAgent({
    kubeconfig: o.kubeconfig!,
    configPath: o.config!,
    stateDir: o.stateDir!,
    once: false,
    logger,
    metricsBindAddress: `127.0.0.1:${o.metricsPort ?? metricsPort}`,
    healthzBindAddress: '127.0.0.1:0',
    createDataplane: async (families) => {
      if (o.dataplane === 'kernel')
        return createDataplane({ families, ...(o.backend ? { backend: o.backend } : {}) });
      // The agent alone: every restore accepted as is (the kernel's cost is measured separately).
      const fake = createFakeDataplane({ families });
      for (const family of families) {
        (fake as { iptables: Record<string, unknown> }).iptables[family] = {
          family,
          backend: 'nft',
          save: async () => '',
          restore: async () => undefined,
          restoreStreamed: async (head: string | Iterable<string>, rest: Promise<string>) => {
            // Read as the real executor reads it (chunks are made on reading).
            if (typeof head !== 'string') for (const chunk of head) void chunk;
            await rest;
          },
          checkRule: async () => true,
          insertRule: async () => undefined,
          deleteRule: async () => true,
        };
      }
      return fake;
    },
  });
  process.exit(code);
}

/**
 * Samples the agent's memory every 20 ms into FILE (one JSON line each: time, rss, heapUsed,
 * heapTotal, external, arrayBuffers in MB), so that phases can be told apart with the agent's log.
 */
function traceMemory(file: string): void {
  const lines: string[] = [];
  const mb = (n: number) => Math.round(n / 1048576);
  const gc = (globalThis as { gc?: () => void }).gc;
  let tick = 0;
  const timer = setInterval(() => {
    // With --expose-gc in BENCH_AGENT_NODE_ARGS: a full GC every second, so heapUsed after it is what is live.
    const collected = gc !== undefined && ++tick % 50 === 0;
    if (collected) gc();
    const m = process.memoryUsage();
    lines.push(
      JSON.stringify({
        time: Date.now(),
        rss: mb(m.rss),
        heapUsed: mb(m.heapUsed),
        heapTotal: mb(m.heapTotal),
        external: mb(m.external),
        arrayBuffers: mb(m.arrayBuffers),
        ...(collected ? { afterGc: true } : {}),
      }),
    );
  }, 20);
  timer.unref();
  process.on('exit', () => writeFileSync(`${file}.${process.pid}`, lines.join('\n') + '\n'));
}

// ── the bench ─────────────────────────────────────────────────────────────────────────────────────

function ip(base: [number, number], offset: number): string {
  const v = offset + 1;
  return `${base[0]}.${base[1] + (v >> 16)}.${(v >> 8) & 255}.${v & 255}`;
}

/** With --managed-fields: what server-side apply records (about the size a real API server writes). */
let withManagedFields = false;
function managedFieldsOf(kind: 'Service' | 'EndpointSlice', endpoints = 0): Record<string, unknown> {
  if (!withManagedFields) return {};
  const fieldsV1 =
    kind === 'Service'
      ? {
          'f:metadata': { 'f:labels': { '.': {}, 'f:app': {} } },
          'f:spec': {
            'f:internalTrafficPolicy': {},
            'f:ports': {
              '.': {},
              'k:{"port":80,"protocol":"TCP"}': {
                '.': {},
                'f:name': {},
                'f:port': {},
                'f:protocol': {},
                'f:targetPort': {},
              },
            },
            'f:selector': {},
            'f:sessionAffinity': {},
            'f:type': {},
          },
        }
      : {
          'f:addressType': {},
          'f:endpoints': {},
          'f:metadata': {
            'f:annotations': { '.': {}, 'f:endpoints.kubernetes.io/last-change-trigger-time': {} },
            'f:generateName': {},
            'f:labels': {
              '.': {},
              'f:endpointslice.kubernetes.io/managed-by': {},
              'f:kubernetes.io/service-name': {},
            },
            'f:ownerReferences': { '.': {}, 'k:{"uid":"0b7c3a52-1d1e-4f5e-9a0b-3c2d1e0f9a8b"}': {} },
          },
          'f:ports': {},
          ...Object.fromEntries(Array.from({ length: endpoints }, (_, k) => [`f:endpoint-${k}`, {}])),
        };
  return {
    managedFields: [
      {
        manager: kind === 'Service' ? 'kubectl-client-side-apply' : 'kube-controller-manager',
        operation: 'Update',
        apiVersion: kind === 'Service' ? 'v1' : 'discovery.k8s.io/v1',
        time: '2026-01-01T00:00:00Z',
        fieldsType: 'FieldsV1',
        fieldsV1,
      },
    ],
  };
}

function serviceObject(i: number): Record<string, unknown> {
  const clusterIP = ip([10, 96], i);
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: `svc-${i}`, namespace: 'bench', uid: `svc-uid-${i}`, ...managedFieldsOf('Service') },
    spec: {
      type: i % 10 === 0 ? 'NodePort' : 'ClusterIP',
      clusterIP,
      clusterIPs: [clusterIP],
      ipFamilies: ['IPv4'],
      ports: [
        {
          name: 'http',
          port: 80,
          protocol: 'TCP',
          targetPort: 8080,
          ...(i % 10 === 0 ? { nodePort: 30000 + ((i / 10) % 2000) } : {}),
        },
      ],
    },
  };
}

function sliceObject(
  i: number,
  endpoints: number,
  generation: number,
  trigger?: string,
): Record<string, unknown> {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: `svc-${i}-abcde`,
      namespace: 'bench',
      labels: { 'kubernetes.io/service-name': `svc-${i}` },
      ...(trigger ? { annotations: { [TRIGGER]: trigger } } : {}),
      ...managedFieldsOf('EndpointSlice', endpoints),
    },
    addressType: 'IPv4',
    endpoints: Array.from({ length: endpoints }, (_, k) => ({
      // Endpoint 0 moves between two addresses: one endpoint changes per update.
      addresses: [k === 0 && generation % 2 === 1 ? ip([10, 200], i) : ip([10, 128], i * endpoints + k)],
      conditions: { ready: true },
      nodeName: k % 2 === 0 ? 'node-a' : 'node-b',
    })),
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

interface AgentLogRecord {
  msg?: string;
  time?: number;
  networkProgrammingSeconds?: number[];
  level?: number;
  adopted?: { kept: number; rewritten: number; deleted: number };
}

/** Hands each JSON line of the agent's stderr to onRecord; returns the last lines (for error messages). */
function followAgentLog(child: ChildProcess, onRecord: (rec: AgentLogRecord) => void): string[] {
  const lastLines: string[] = [];
  let tail = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    tail += chunk.toString();
    let nl: number;
    while ((nl = tail.indexOf('\n')) !== -1) {
      const line = tail.slice(0, nl);
      tail = tail.slice(nl + 1);
      lastLines.push(line);
      if (process.env.BENCH_AGENT_LOG) appendFileSync(process.env.BENCH_AGENT_LOG, line + '\n');
      if (lastLines.length > 20) lastLines.shift();
      let rec: AgentLogRecord;
      try {
        rec = JSON.parse(line) as AgentLogRecord;
      } catch {
        continue;
      }
      onRecord(rec);
    }
  });
  return lastLines;
}

const isSyncDone = (rec: AgentLogRecord): boolean =>
  rec.msg === 'iptables rules applied' || rec.msg === 'iptables already up to date';

async function stopAgent(agent: ChildProcess): Promise<void> {
  if (agent.exitCode !== null) return;
  const exited = new Promise((r) => agent.once('exit', r));
  agent.kill('SIGTERM');
  const timer = setTimeout(() => agent.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

async function vmHWM(pid: number): Promise<{ peakMB: number; rssMB: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { peakMB: kb('VmHWM') / 1024, rssMB: kb('VmRSS') / 1024 };
}

/**
 * How the agent child starts: plain node on an esbuild bundle of this file (the agent ships as compiled
 * JS; under tsx the runtime alone costs ~1 s of start-up and ~45 MB of RSS), or tsx with --tsx or when
 * esbuild (which tsx brings) is missing. Packages stay external, so the bundle lives under node_modules
 * where node resolves them.
 */
let runtime = 'node+tsx';
async function agentEntry(useTsx: boolean): Promise<string[]> {
  const viaTsx = ['--import', 'tsx', SELF];
  if (useTsx) return viaTsx;
  try {
    const esbuild = (await import('esbuild' as string)) as {
      build(opts: Record<string, unknown>): Promise<unknown>;
    };
    const outfile = join(dirname(SELF), '../../node_modules/.cache/portway-bench/cluster-bench.mjs');
    await esbuild.build({
      entryPoints: [SELF],
      bundle: true,
      packages: 'external',
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile,
      logLevel: 'silent',
    });
    runtime = 'node (bundled)';
    return [outfile];
  } catch (err) {
    process.stdout.write(
      `esbuild bundle failed (${String(err).slice(0, 120)}); running the agent under tsx\n`,
    );
    return viaTsx;
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}

async function scrapeMetrics(netns: string | undefined): Promise<Map<string, number>> {
  const curl = ['curl', '-s', '--max-time', '10', `http://127.0.0.1:${metricsPort}/metrics`];
  const res = netns
    ? await execa('ip', ['netns', 'exec', netns, ...curl], { reject: false })
    : await execa(curl[0]!, curl.slice(1), { reject: false });
  const out = new Map<string, number>();
  for (const line of String(res.stdout ?? '').split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

interface MemoryFigures {
  peakRssMB: number;
  peakHeapUsedMB: number;
  peakHeapTotalMB: number;
  peakExternalMB: number;
  /** The largest live heap seen after a forced full GC (--memory only; one each second). */
  liveHeapMB?: number;
}

/** Peaks of the agent's own samples (traceMemory), read once it has exited. */
async function memoryOf(traceFile: string, peakRssMB: number): Promise<MemoryFigures | undefined> {
  let text: string;
  try {
    text = await readFile(traceFile, 'utf8');
  } catch {
    return undefined;
  }
  const samples = text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, number | boolean>);
  const peak = (k: string) => Math.max(...samples.map((m) => Number(m[k] ?? 0)));
  // The largest, not the last: the last may be taken while the agent shuts down and lets go of its state.
  const afterGc = samples.filter((m) => m.afterGc === true);
  return {
    peakRssMB,
    peakHeapUsedMB: peak('heapUsed'),
    peakHeapTotalMB: peak('heapTotal'),
    peakExternalMB: peak('external'),
    ...(afterGc.length > 0 ? { liveHeapMB: Math.max(...afterGc.map((m) => Number(m.heapUsed))) } : {}),
  };
}

async function bench(o: Options): Promise<MemoryFigures | undefined> {
  withManagedFields = o.managedFields;
  let memory: MemoryFigures | undefined;
  const dir = await mkdtemp(join(tmpdir(), 'portway-cluster-bench-'));
  const netns = `${BENCH_NETNS_PREFIX}${process.pid}-cluster`;
  const api = new StandInApiServer({ historyLimit: 100_000 });
  const started: ChildProcess[] = [];
  let agent: ChildProcess | undefined;
  try {
    await api.start();
    const fillStart = performance.now();
    for (let i = 0; i < o.services; i++) {
      api.put(serviceObject(i));
      api.put(sliceObject(i, o.endpoints, 0));
    }
    for (const name of ['node-a', 'node-b', 'bench-node']) {
      api.put({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name },
        status: { conditions: [{ type: 'Ready', status: 'True' }] },
      });
    }
    process.stdout.write(
      `stand-in: ${o.services} Services, ${o.services} EndpointSlices × ${o.endpoints} endpoints ` +
        `(filled in ${((performance.now() - fillStart) / 1000).toFixed(1)} s)\n`,
    );
    await writeKubeconfig(api, join(dir, 'kubeconfig'));
    await writeFile(
      join(dir, 'config.yaml'),
      [
        'nodeName: bench-node',
        `nodeIPs: [${NODE_IP}]`,
        `iptables: { minSyncPeriod: ${o.minSyncPeriod}, syncPeriod: 1h }`,
        'loadBalancer: { layer2: false }',
        '',
      ].join('\n'),
    );

    if (o.dataplane === 'null') metricsPort = await freePort();
    const childArgs = [
      // e.g. BENCH_AGENT_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the agent.
      ...(process.env.BENCH_AGENT_NODE_ARGS ?? '').split(' ').filter(Boolean),
      ...(o.memory ? ['--expose-gc'] : []),
      ...(await agentEntry(o.tsx)),
      '--agent-child',
      '--kubeconfig',
      join(dir, 'kubeconfig'),
      '--config',
      join(dir, 'config.yaml'),
      '--state-dir',
      join(dir, 'state'),
      '--dataplane',
      o.dataplane,
      '--metrics-port',
      String(metricsPort),
      ...(o.backend ? ['--backend', o.backend] : []),
    ];
    if (o.dataplane === 'kernel') {
      for (const ns of await sweepStaleTopologies(BENCH_NETNS_PREFIX))
        console.log(`removed stale namespace ${ns}`);
      await execa('ip', ['netns', 'add', netns]);
      await execa('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
      await execa('ip', ['-n', netns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1']);
      await execa('ip', ['-n', netns, 'addr', 'add', `${NODE_IP}/24`, 'dev', 'eth0']);
      await execa('ip', ['-n', netns, 'link', 'set', 'eth0', 'up']);
      await execa('ip', ['-n', netns, 'link', 'set', 'eth1', 'up']);
      const sock = join(dir, 'api.sock');
      started.push(
        spawn('socat', [`UNIX-LISTEN:${sock},fork`, `TCP:127.0.0.1:${api.port}`], { stdio: 'ignore' }),
      );
      for (let i = 0; i < 50 && (await execa('test', ['-S', sock], { reject: false })).exitCode !== 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      started.push(
        spawn(
          'ip',
          [
            'netns',
            'exec',
            netns,
            'socat',
            `TCP-LISTEN:${api.port},bind=127.0.0.1,fork,reuseaddr`,
            `UNIX-CONNECT:${sock}`,
          ],
          {
            stdio: 'ignore',
          },
        ),
      );
      await new Promise((r) => setTimeout(r, 300));
    }

    // ── start → first sync ──
    const agentEnv = {
      ...process.env,
      BENCH_MEMORY_TRACE: process.env.BENCH_MEMORY_TRACE ?? join(dir, 'memory'),
    };
    const spawnAgent = (): ChildProcess =>
      o.dataplane === 'kernel'
        ? spawn('ip', ['netns', 'exec', netns, process.execPath, ...childArgs], {
            stdio: ['ignore', 'ignore', 'pipe'],
            env: agentEnv,
          })
        : spawn(process.execPath, childArgs, { stdio: ['ignore', 'ignore', 'pipe'], env: agentEnv });
    const spawnedAt = Date.now();
    agent = spawnAgent();
    const child = agent;
    let listedAt: number | undefined;
    let firstSyncAt: number | undefined;
    let firstSyncMemory: { peakMB: number; rssMB: number } | undefined;
    let streamStartedAt = Infinity;
    const latencies: number[] = [];
    let syncs = 0;
    let failures = 0;
    const firstSync = new Promise<void>((resolve, reject) => {
      const lastLines = followAgentLog(child, (rec) => {
        if (rec.msg === 'initial state read; syncing') listedAt = rec.time;
        if (isSyncDone(rec)) {
          syncs++;
          if (firstSyncAt === undefined) {
            firstSyncAt = rec.time;
            void vmHWM(child.pid!).then((m) => {
              firstSyncMemory = m;
              resolve();
            }, reject);
          }
        }
        if (rec.msg === 'iptables sync failed; previous rules stay in force, next sync is full') failures++;
        if (rec.msg === 'network programmed' && (rec.time ?? 0) >= streamStartedAt)
          latencies.push(...(rec.networkProgrammingSeconds ?? []));
      });
      child.once('exit', (code) =>
        reject(new Error(`agent exited (${code}) before its first sync:\n${lastLines.join('\n')}`)),
      );
    });
    await firstSync;
    const listMs = (listedAt ?? NaN) - spawnedAt;
    const firstMs = (firstSyncAt ?? NaN) - spawnedAt;
    process.stdout.write(
      `start → first sync (${o.dataplane} dataplane, ${runtime}): ${(firstMs / 1000).toFixed(2)} s ` +
        `(initial list + state: ${(listMs / 1000).toFixed(2)} s, first sync: ${((firstMs - listMs) / 1000).toFixed(2)} s); ` +
        `agent peak RSS ${firstSyncMemory!.peakMB.toFixed(0)} MB (RSS now ${firstSyncMemory!.rssMB.toFixed(0)} MB)\n`,
    );

    // ── a stream of single-endpoint changes ──
    await new Promise((r) => setTimeout(r, 1000));
    const syncsBefore = syncs;
    streamStartedAt = Date.now();
    const total = Math.round(o.rate * o.seconds);
    const generation = new Map<number, number>();
    let sent = 0;
    await new Promise<void>((resolve) => {
      const t0 = performance.now();
      const tick = (): void => {
        // Catch up to the schedule (timers drift under load): changes go out at the requested rate.
        const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * o.rate) + 1);
        for (; sent < due; sent++) {
          const i = (sent * 7919) % o.services; // spread over many Services
          const g = (generation.get(i) ?? 0) + 1;
          generation.set(i, g);
          api.put(sliceObject(i, o.endpoints, g, new Date().toISOString()));
        }
        if (sent >= total) resolve();
        else setTimeout(tick, 1000 / o.rate / 2);
      };
      tick();
    });
    const streamSeconds = (Date.now() - streamStartedAt) / 1000;
    // Let the last changes land.
    const deadline = Date.now() + 30_000;
    while (latencies.length < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 500));
    const sorted = [...latencies].sort((a, b) => a - b);
    const ms = (s: number) => `${(s * 1000).toFixed(0)} ms`;
    process.stdout.write(
      `stream: ${sent} single-endpoint changes in ${streamSeconds.toFixed(1)} s (${(sent / streamSeconds).toFixed(1)}/s), ` +
        `${syncs - syncsBefore} syncs, ${failures} failed; ${latencies.length} latencies measured\n` +
        `network programming latency: p50 ${ms(quantile(sorted, 0.5))}, p90 ${ms(quantile(sorted, 0.9))}, ` +
        `p99 ${ms(quantile(sorted, 0.99))}, max ${ms(sorted.at(-1) ?? NaN)}\n`,
    );
    const metrics = await scrapeMetrics(o.dataplane === 'kernel' ? netns : undefined);
    const mean = (name: string) => {
      const sum = metrics.get(`${name}_sum`) ?? NaN;
      const count = metrics.get(`${name}_count`) ?? NaN;
      return `${count} × mean ${ms(sum / count)}`;
    };
    process.stdout.write(
      `syncs (whole run): full ${mean('kubeproxy_sync_full_proxy_rules_duration_seconds')}, ` +
        `partial ${mean('kubeproxy_sync_partial_proxy_rules_duration_seconds')}; ` +
        `nat rules ${metrics.get('kubeproxy_sync_proxy_rules_iptables_total{table="nat"}')}\n`,
    );
    const peak = await vmHWM(child.pid!);
    process.stdout.write(`agent peak RSS over the whole run: ${peak.peakMB.toFixed(0)} MB\n`);
    await stopAgent(child);
    memory = await memoryOf(`${agentEnv.BENCH_MEMORY_TRACE}.${child.pid}`, peak.peakMB);
    if (memory)
      process.stdout.write(
        `agent memory (first process): peak RSS ${memory.peakRssMB.toFixed(0)} MB, peak heap used ` +
          `${memory.peakHeapUsedMB} MB (heap total ${memory.peakHeapTotalMB} MB), peak external ${memory.peakExternalMB} MB` +
          (memory.liveHeapMB !== undefined
            ? `, peak live heap (after a full GC) ${memory.liveHeapMB} MB`
            : '') +
          '\n',
      );

    // ── an agent restart (a rollout): SIGTERM leaves the rules, the new process adopts them ──
    if (o.dataplane === 'kernel') {
      const restartedAt = Date.now();
      const again = spawnAgent();
      agent = again;
      let relistedAt: number | undefined;
      const done = await new Promise<AgentLogRecord>((resolve, reject) => {
        const lastLines = followAgentLog(again, (rec) => {
          if (rec.msg === 'initial state read; syncing') relistedAt = rec.time;
          if (isSyncDone(rec)) resolve(rec);
        });
        again.once('exit', (code) =>
          reject(
            new Error(`restarted agent exited (${code}) before its first sync:\n${lastLines.join('\n')}`),
          ),
        );
      });
      const total = (done.time ?? NaN) - restartedAt;
      const list = (relistedAt ?? NaN) - restartedAt;
      const a = done.adopted;
      process.stdout.write(
        `agent restart on the programmed node: start → first sync ${(total / 1000).toFixed(2)} s ` +
          `(initial list + state: ${(list / 1000).toFixed(2)} s, first sync: ${((total - list) / 1000).toFixed(2)} s; ` +
          (a
            ? `adopted: kept ${a.kept} chains, rewrote ${a.rewritten}, deleted ${a.deleted})\n`
            : 'not adopted: full rewrite)\n'),
      );
    }
  } finally {
    if (agent) await stopAgent(agent);
    for (const p of started) p.kill('SIGTERM');
    await execa('ip', ['netns', 'del', netns], { reject: false });
    await api.stop();
    await rm(dir, { recursive: true, force: true });
  }
  return memory;
}

/** bench:memory: the agent's memory per cluster size, one short null-dataplane run each. */
async function memoryBench(o: Options): Promise<void> {
  const rows: string[] = [];
  for (const services of o.sizes) {
    process.stdout.write(`\n── ${services} Services × ${o.endpoints} endpoints ──\n`);
    const m = await bench({ ...o, services, memory: true });
    if (m)
      rows.push(
        `| ${services} | ${m.peakRssMB.toFixed(0)} | ${m.peakHeapUsedMB} | ${m.peakHeapTotalMB} | ${m.peakExternalMB} | ${m.liveHeapMB ?? '-'} |`,
      );
  }
  process.stdout.write(
    `\nagent memory (${o.dataplane} dataplane${o.managedFields ? ', objects with managedFields' : ''}), MB:\n` +
      '| Services | peak RSS | peak heap used | peak heap total | peak external | peak live heap (after GC) |\n' +
      '|---|---|---|---|---|---|\n' +
      rows.join('\n') +
      '\n',
  );
}

const opts = parseArgs(process.argv.slice(2));
if (opts.child) await agentChild(opts);
else if (opts.memory) await memoryBench(opts);
else await bench(opts);
