// ipvs mode's sync benchmark: IpvsSyncer with the real executors (ipvsadm, ipset, ip, iptables) on the
// network namespace it runs in, which must have IPVS — on these machines only the IPVS test VM has it:
// run it there with hack/bench/ipvs-sync-bench-vm.sh (it bundles this file and boots the guest).
//
//   node ipvs-sync-bench.mjs [--services 1000] [--endpoints 10] [--changes 5]
//
// Figures (ratios within one guest run are what count; the guest is emulated):
//  1. the tools' floor: one `ipvsadm -R` + one `ipset restore` of the whole state onto an empty node;
//  2. the agent's first full sync of the same state (render, read back, plan, apply, iptables part);
//  3. one endpoint added to one Service: the sync from setState to the real server in the kernel, with
//     the commands it ran — vs one bare `ipvsadm -a` in the same guest (issue 11: ≤ 3×);
//  4. a full re-sync of the loaded node (reads IPVS, sets and addresses back; nothing to repair).
import { execFileSync } from 'node:child_process';
import { parseConfig } from '../../src/config/config.js';
import { detectIptablesBackend } from '../../src/dataplane/iptables.js';
import { createIptables, RealIpLinks, RealIpset, RealIpvs, createRunner } from '../../src/dataplane/index.js';
import { emptyClusterState, type ClusterState, type ServicePort } from '../../src/model/cluster-state.js';
import { silentLogger } from '../../src/observe/logger.js';
import {
  ipvsRenderOptionsFromConfig,
  renderIpvs,
  serializeIpsets,
  serializeIpvs,
} from '../../src/render/ipvs/index.js';
import { SystemClock } from '../../src/sync/clock.js';
import { IpvsSyncer } from '../../src/sync/ipvs-syncer.js';
import { endpoint, svcPort } from '../../test/fixtures/cluster-state.js';
import { benchFlag } from './bench-util.js';

const SERVICES = Number(benchFlag('services', '1000'));
const ENDPOINTS = Number(benchFlag('endpoints', '10'));
const CHANGES = Number(benchFlag('changes', '5'));
const NODE_IP = '10.98.0.2';

const ms = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e6;
const sh = (cmd: string, args: string[], input?: string): void => {
  execFileSync(cmd, args, { input, stdio: ['pipe', 'ignore', 'inherit'], maxBuffer: 1 << 30 });
};

function servicePortOf(i: number, extra = 0): ServicePort {
  const a = Math.floor(i / 250);
  const b = i % 250;
  const eps = [];
  for (let j = 1; j <= ENDPOINTS + extra; j++)
    eps.push(endpoint(`10.${100 + (a % 100)}.${b}.${j}`, 8080, { nodeName: 'node-b' }));
  return svcPort('bench', `svc-${i}`, 'http', { clusterIPs: [`10.96.${a}.${b + 1}`], endpoints: eps });
}

function stateWith(ports: ServicePort[]): ClusterState {
  const state = emptyClusterState();
  state.servicePorts = ports;
  return state;
}

const config = parseConfig(
  { mode: 'ipvs', nodeName: 'node-a', nodeIPs: [NODE_IP], clusterCIDRs: ['10.100.0.0/14'] },
  'bench',
);
const render = (state: ClusterState) =>
  renderIpvs(state, ipvsRenderOptionsFromConfig(config, 'IPv4', [NODE_IP]));
const ports = Array.from({ length: SERVICES }, (_, i) => servicePortOf(i)).sort((x, y) =>
  x.id < y.id ? -1 : 1,
);
const state = stateWith(ports);
const out: Record<string, unknown> = { services: SERVICES, endpoints: ENDPOINTS };

// 1. the floor
const rs = render(state);
const ipvsText = serializeIpvs(rs);
const ipsetText = serializeIpsets(rs);
let t = process.hrtime.bigint();
sh('ipvsadm', ['-R'], ipvsText);
const floorIpvs = ms(t);
t = process.hrtime.bigint();
sh('ipset', ['restore', '-exist'], ipsetText);
const floorIpset = ms(t);
out.floor = {
  ipvsadmRMs: Math.round(floorIpvs),
  ipsetRestoreMs: Math.round(floorIpset),
  ipvsLines: ipvsText.split('\n').length - 1,
};
sh('ipvsadm', ['-C']);
sh('ipset', ['flush']);

// 2. the first full sync
const runner = createRunner();
const backend = (await detectIptablesBackend(runner)).backend;
const syncer = new IpvsSyncer({
  families: [{ family: 'IPv4', iptables: await createIptables({ family: 'IPv4', backend, runner }) }],
  executors: {
    ipvs: new RealIpvs({ runner }),
    ipset: new RealIpset({ runner }),
    links: new RealIpLinks({ runner }),
  },
  render: (s) => render(s),
  clock: new SystemClock(),
  logger: silentLogger,
  gracefulTerminationTimeoutMs: 900_000,
});
syncer.setState(state);
t = process.hrtime.bigint();
const first = await syncer.sync();
out.firstFullSync = {
  ms: Math.round(ms(t)),
  stages: first.ipvs?.stageMs,
  vsFloorRatio: +(ms(t) / (floorIpvs + floorIpset)).toFixed(2),
};

// 3. one endpoint change, and one bare ipvsadm -a
const changes: Array<{ ms: number; commands: number; counts: unknown; stages: unknown }> = [];
let current = ports;
for (let c = 0; c < CHANGES; c++) {
  const i = (c * 97) % SERVICES;
  // svc-i by name: `ports` is sorted by id, so ports[i] is another Service.
  current = current.map((p) => (p.serviceName === `svc-${i}` ? servicePortOf(i, c + 1) : p));
  syncer.setState(stateWith(current));
  t = process.hrtime.bigint();
  const r = await syncer.sync();
  const took = ms(t);
  const nonZero = Object.fromEntries(Object.entries(r.ipvs?.counts ?? {}).filter(([, v]) => v !== 0));
  changes.push({
    ms: Math.round(took),
    commands: r.ipvs?.commands ?? -1,
    counts: nonZero,
    stages: r.ipvs?.stageMs,
  });
}
const bare: number[] = [];
for (let k = 0; k < 3; k++) {
  t = process.hrtime.bigint();
  sh('ipvsadm', ['-a', '-t', `10.96.0.1:80`, '-r', `10.99.9.${k + 1}:8080`, '-m', '-w', '1']);
  bare.push(Math.round(ms(t)));
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
out.oneEndpointChange = { runs: changes, medianMs: median(changes.map((c) => c.ms)) };
out.bareIpvsadmA = { runsMs: bare, medianMs: median(bare) };
out.changeVsBareRatio = +(median(changes.map((c) => c.ms)) / median(bare)).toFixed(2);

// 4. a full re-sync (the stray real servers added by the bare -a above are drift it repairs)
t = process.hrtime.bigint();
const again = await syncer.sync({ full: true });
out.fullResync = { ms: Math.round(ms(t)), drift: again.ipvs?.drift.length, stages: again.ipvs?.stageMs };
console.log(`BENCH ${JSON.stringify(out)}`);
