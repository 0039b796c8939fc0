// nftables mode benchmark (issue 14): portway's table for a big cluster loaded by the real `nft -f` in
// a fresh network namespace, then one-endpoint changes planned as element-only batches and applied by
// `nft -f` too. For each it prints the wall time of the nft process and the kernel's share: the longest
// `sendmsg()` of the run (`strace -T`), which carries the transaction (on a busy machine it includes time
// the thread waited for a CPU, far less than the nft process's). The gap between the two is what the
// in-process netlink client saves (ADR 0007, 0008): each change is then undone and applied again, the
// same planned element commands, through that client (src/dataplane/nft-netlink), and timed too. The
// plan time is of a whole-ruleset comparison: the syncer will plan only the service ports that changed.
//
//   node --import tsx hack/bench/nft-bench.ts [--services 10000] [--endpoints 10] [--changes 5]
//
// Each change replaces one endpoint of one Service and, every other time, adds one (the endpoint count
// changes): both must be element-only; the bench checks it.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { elementCommandOps, NftNetlink } from '../../src/dataplane/nft-netlink/index.js';
import type { ServicePort } from '../../src/model/cluster-state.js';
import { planNftablesUpdate } from '../../src/plan/nftables-plan.js';
import { renderNftables, serializeNftables } from '../../src/render/nftables/index.js';
import { BENCH_NETNS_PREFIX, sweepStaleTopologies } from '../../test/e2e/harness/topology.js';
import { endpoint, stateOf, svcPort } from '../../test/fixtures/cluster-state.js';
import { nftOptions } from '../../test/fixtures/nftables-options.js';
import { benchFlag, median, ms } from './bench-util.js';

const flag = benchFlag;
const SERVICES = Number(flag('services', '10000'));
const ENDPOINTS = Number(flag('endpoints', '10'));
const CHANGES = Number(flag('changes', '5'));
const NETNS = `${BENCH_NETNS_PREFIX}${process.pid}-nft`;

/** 10.<a>.<b>.<c> from an index (distinct addresses for up to 2^24). */
const addr = (first: number, i: number): string => `${first}.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

function cluster(changed: Map<number, string[]>): ServicePort[] {
  const ports: ServicePort[] = [];
  for (let s = 0; s < SERVICES; s++) {
    const ips =
      changed.get(s) ?? Array.from({ length: ENDPOINTS }, (_, e) => addr(10, 1 + s * ENDPOINTS + e));
    ports.push(
      svcPort('bench', `svc-${s}`, 'http', {
        type: s % 10 === 0 ? 'NodePort' : 'ClusterIP',
        nodePort: s % 10 === 0 ? 30000 + s / 10 : 0,
        clusterIPs: [addr(172, 1 + s)],
        endpoints: ips.map((ip) => endpoint(ip, 8080, { nodeName: 'node-b' })),
      }),
    );
  }
  return ports;
}

/** `nft -f file` in the namespace under strace: wall ms, longest sendmsg ms, sum of sendmsg ms. */
function timedNft(file: string): { wallMs: number; kernelMs: number; sendmsgTotalMs: number } {
  const trace = join(dir, 'strace.out');
  const t0 = performance.now();
  const r = spawnSync(
    'ip',
    ['netns', 'exec', NETNS, 'strace', '-f', '-T', '-e', 'trace=sendmsg', '-o', trace, 'nft', '-f', file],
    {
      encoding: 'utf8',
    },
  );
  const wallMs = performance.now() - t0;
  if (r.status !== 0) throw new Error(`nft -f ${file} failed: ${r.stderr}`);
  const times = [...readFileSync(trace, 'utf8').matchAll(/<(\d+\.\d+)>$/gm)].map((m) => Number(m[1]) * 1000);
  return { wallMs, kernelMs: Math.max(0, ...times), sendmsgTotalMs: times.reduce((a, b) => a + b, 0) };
}

const dir = mkdtempSync(join(tmpdir(), 'pw-nft-bench-'));
await sweepStaleTopologies(BENCH_NETNS_PREFIX);
execFileSync('ip', ['netns', 'add', NETNS]);
try {
  const opts = nftOptions({ nodeIPs: ['10.98.0.2'], clusterCIDRs: ['10.0.0.0/8'] });
  const changed = new Map<number, string[]>();
  let t0 = performance.now();
  let rs = renderNftables(stateOf(...cluster(changed)), opts);
  const renderMs = performance.now() - t0;
  const full = serializeNftables(rs);
  writeFileSync(join(dir, 'full.nft'), full);
  const load = timedNft(join(dir, 'full.nft'));
  console.log(
    `nftables mode, ${SERVICES} Services × ${ENDPOINTS} endpoints (${rs.chains.length} chains, ${rs.sets.length} sets/maps)`,
  );
  console.log(
    `  render ${ms(renderMs)}; full load (${(full.length / 1e6).toFixed(1)} MB): nft -f ${ms(load.wallMs)}, kernel (longest sendmsg) ${ms(load.kernelMs)}, all sendmsg ${ms(load.sendmsgTotalMs)}`,
  );

  const client = NftNetlink.open({ netns: NETNS });
  const wall: number[] = [];
  const kernel: number[] = [];
  const netlinkTotal: number[] = [];
  const netlinkKernel: number[] = [];
  const planMs: number[] = [];
  for (let c = 0; c < CHANGES; c++) {
    const s = (c * 7919 + 13) % SERVICES;
    const ips = Array.from({ length: ENDPOINTS }, (_, e) => addr(10, 1 + s * ENDPOINTS + e));
    ips[0] = addr(11, 1 + c);
    if (c % 2 === 1) ips.push(addr(12, 1 + c)); // the endpoint count changes too
    changed.set(s, ips);
    t0 = performance.now();
    const next = renderNftables(stateOf(...cluster(changed)), opts);
    const renderAll = performance.now() - t0;
    t0 = performance.now();
    const update = planNftablesUpdate(rs, next);
    planMs.push(performance.now() - t0);
    if (!update.elementOnly) throw new Error(`change ${c} is not element-only:\n${update.text}`);
    writeFileSync(join(dir, `change-${c}.nft`), update.text);
    const applied = timedNft(join(dir, `change-${c}.nft`));
    wall.push(applied.wallMs);
    kernel.push(applied.kernelMs);
    // The same change over netlink: undo it (the reverse plan), then send the planned commands again.
    const ops = (u: typeof update): ReturnType<typeof elementCommandOps> =>
      elementCommandOps(next.nftFamily, next.table, u.elementCommands);
    client.applyElements(ops(planNftablesUpdate(next, rs)));
    const viaNetlink = client.applyElements(ops(update));
    netlinkTotal.push(viaNetlink.totalMs);
    netlinkKernel.push(viaNetlink.kernelMs);
    rs = next;
    console.log(
      `  change ${c + 1} (${ips.length} endpoints, ${update.text.split('\n').length - 1} element commands, ${update.text.length} bytes): ` +
        `nft -f ${ms(applied.wallMs)}, kernel ${ms(applied.kernelMs)}; netlink client ${ms(viaNetlink.totalMs)}, ` +
        `kernel ${ms(viaNetlink.kernelMs)} (full re-render ${ms(renderAll)})`,
    );
  }
  console.log(
    `  one-endpoint change, element-only: median nft -f ${ms(median(wall))}, median kernel ${ms(median(kernel))}, ` +
      `median plan ${ms(median(planMs))}; nft's own share ${(median(wall) / Math.max(median(kernel), 0.001)).toFixed(0)}× the kernel's`,
  );
  console.log(
    `  the same changes through the netlink client: median ${ms(median(netlinkTotal))}, kernel ${ms(median(netlinkKernel))}`,
  );
  client.close();
} finally {
  execFileSync('ip', ['netns', 'delete', NETNS]);
  rmSync(dir, { recursive: true, force: true });
}
