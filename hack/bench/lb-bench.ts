// Allocator benchmark: 10k LoadBalancer Services over pools holding 64k addresses.
//   node --expose-gc --import tsx hack/bench/lb-bench.ts [services] [poolCount]
// Prints wall time of a full recompute from nothing, a recompute that keeps every existing assignment
// and adds one new Service (the steady-state case), and the same from status only (agent restart).
import { performance } from 'node:perf_hooks';
import { allocate } from '../../src/lb/allocator.js';
import { parsePoolAddress } from '../../src/lb/pools.js';
import type { AddressPool, ServiceInfo } from '../../src/model/cluster-state.js';

const serviceCount = Number(process.argv[2] ?? 10_000);
const poolCount = Number(process.argv[3] ?? 4);

// 64k addresses split over `poolCount` pools (10.0.0.0/16 cut in equal CIDRs), avoidBuggyIPs on the first.
const prefix = 16 + Math.log2(poolCount);
if (!Number.isInteger(prefix)) throw new Error('poolCount must be a power of two');
const blockSize = 65536 / poolCount;
const pools: AddressPool[] = Array.from({ length: poolCount }, (_, i) => {
  const start = i * blockSize;
  return {
    name: `pool-${i}`,
    addresses: [parsePoolAddress(`10.0.${start >> 8}.${start & 255}/${prefix}`)],
    autoAssign: true,
    avoidBuggyIPs: i === 0,
  };
});

const makeService = (i: number): ServiceInfo => ({
  namespace: `ns-${i % 100}`,
  name: `svc-${i}`,
  type: 'LoadBalancer',
  labels: {},
  // Every tenth pair shares an address.
  annotations:
    i % 10 === 0 || i % 10 === 1 ? { 'portway.io/allow-shared-ip': `k-${Math.floor(i / 10)}` } : {},
  selector: { app: `a${i}` },
  clusterIPs: ['10.96.0.1'],
  ipFamilies: ['IPv4'],
  ipFamilyPolicy: 'SingleStack',
  loadBalancerIP: '',
  loadBalancerClass: '',
  externalTrafficPolicy: 'Cluster',
  ports: [{ name: 'p', protocol: 'TCP', port: 80 + (i % 10 === 1 ? 1 : 0), nodePort: 0 }],
  statusIngress: [],
});

const services = Array.from({ length: serviceCount }, (_, i) => makeService(i));
const gc = (globalThis as { gc?: () => void }).gc;

function time<T>(label: string, fn: () => T, runs = 3): T {
  let result: T | undefined;
  const samples: number[] = [];
  for (let r = 0; r < runs; r++) {
    gc?.();
    const t0 = performance.now();
    result = fn();
    samples.push(performance.now() - t0);
  }
  samples.sort((a, b) => a - b);
  console.log(
    `${label.padEnd(58)} median ${samples[Math.floor(runs / 2)]?.toFixed(1)} ms  (min ${samples[0]?.toFixed(1)}, max ${samples[runs - 1]?.toFixed(1)})`,
  );
  return result as T;
}

console.log(
  `lb-bench: ${serviceCount} Services, ${poolCount} pools over 10.0.0.0/16 (65536 addresses), node ${process.version}`,
);
const first = time('full recompute from nothing', () => allocate(services, pools, {}));
console.log(
  `  assigned ${first.assignments.size}, reasons ${first.reasons.size}, distinct addresses ${new Set([...first.assignments.values()].map((a) => a.ips[0])).size}`,
);
const plusOne = [...services, makeService(serviceCount + 1)];
const next = time('recompute with previous result + 1 new Service', () =>
  allocate(plusOne, pools, {}, first),
);
console.log(
  `  new Service got ${next.assignments.get(`ns-${(serviceCount + 1) % 100}/svc-${serviceCount + 1}`)?.ips.join(',')}`,
);
const restarted = services.map((s) => ({
  ...s,
  statusIngress: (first.assignments.get(`${s.namespace}/${s.name}`)?.ips ?? []).map((ip) => ({
    ip,
    ipMode: 'VIP' as const,
  })),
}));
time('recompute from status only (agent restart) + 1 new', () =>
  allocate([...restarted, makeService(serviceCount + 1)], pools, {}),
);
const full = Array.from({ length: 65_000 }, (_, i) => ({ ...makeService(i), annotations: {} }));
time('65k Services into 64k addresses (exhaustion path)', () => allocate(full, pools, {}), 1);
const mem = process.memoryUsage();
console.log(`rss ${(mem.rss / 2 ** 20).toFixed(0)} MiB, heapUsed ${(mem.heapUsed / 2 ** 20).toFixed(0)} MiB`);
