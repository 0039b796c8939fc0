// Model benchmark: raw API-shaped objects → ClusterState, as cluster mode does it.
//
//   node --expose-gc --import tsx hack/bench/model-bench.ts                 10k Services × 10 endpoints
//   node --expose-gc --import tsx hack/bench/model-bench.ts --services 20000 --endpoints 10
//   node --expose-gc --import tsx hack/bench/model-bench.ts --reference     also time buildClusterState rebuilds
//
// Prints: the cold build (first sync: every object parsed and joined), the rebuild after one
// endpoint of one EndpointSlice changed (median and p99 over 200 changes), and peak RSS.
import { performance } from 'node:perf_hooks';
import { ClusterStateBuilder } from '../../src/model/incremental.js';
import type { SourcedObject } from '../../src/model/load.js';
import { buildClusterState } from '../../src/model/normalise.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : NaN;
  return Number.isFinite(v) ? v : fallback;
}
const SERVICES = arg('--services', 10000);
const ENDPOINTS = arg('--endpoints', 10);
const CHANGES = arg('--changes', 200);
const WITH_REFERENCE = process.argv.includes('--reference');

function ipv4(a: number, b: number, offset: number): string {
  const v = offset + 1;
  return `${a}.${b + (v >> 16)}.${(v >> 8) & 255}.${v & 255}`;
}

/** A Service as the API server returns it (the fields a real list carries, including ones portway ignores). */
export function apiService(i: number): Record<string, unknown> {
  const namespace = `ns${i % 100}`;
  const nodePort = i % 10 === 0;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: `svc${i}`,
      namespace,
      uid: `00000000-0000-0000-0000-${String(i).padStart(12, '0')}`,
      resourceVersion: String(1000 + i),
      creationTimestamp: '2024-01-01T00:00:00Z',
      labels: { app: `svc${i}` },
      annotations: {},
    },
    spec: {
      type: nodePort ? 'NodePort' : 'ClusterIP',
      clusterIP: ipv4(10, 96, i),
      clusterIPs: [ipv4(10, 96, i)],
      ipFamilies: ['IPv4'],
      ipFamilyPolicy: 'SingleStack',
      internalTrafficPolicy: 'Cluster',
      ...(nodePort ? { externalTrafficPolicy: i % 20 === 0 ? 'Local' : 'Cluster' } : {}),
      sessionAffinity: 'None',
      selector: { app: `svc${i}` },
      ports: [
        {
          name: 'http',
          protocol: 'TCP',
          port: 80,
          targetPort: 8080,
          ...(nodePort ? { nodePort: 30000 + ((i / 10) % 2768) } : {}),
        },
      ],
    },
    status: { loadBalancer: {} },
  };
}

/** The EndpointSlice of apiService(i), `generation` shifts one endpoint's readiness. */
export function apiSlice(
  i: number,
  endpoints: number,
  changed = -1,
  generation = 0,
): Record<string, unknown> {
  const namespace = `ns${i % 100}`;
  const eps = [];
  for (let k = 0; k < endpoints; k++) {
    const ready = k === changed ? generation % 2 === 0 : true;
    eps.push({
      addresses: [ipv4(10, 128, i * endpoints + k)],
      conditions: { ready, serving: ready, terminating: false },
      nodeName: k % 2 === 0 ? 'node-a' : 'node-b',
      zone: 'zone-1',
      targetRef: { kind: 'Pod', namespace, name: `svc${i}-pod${k}`, uid: `pod-${i}-${k}` },
    });
  }
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: `svc${i}-abcde`,
      namespace,
      uid: `slice-${i}`,
      resourceVersion: String(500000 + i + generation * 100000),
      generateName: `svc${i}-`,
      labels: {
        'kubernetes.io/service-name': `svc${i}`,
        'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
      },
    },
    addressType: 'IPv4',
    endpoints: eps,
    ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}
const ms = (x: number) => `${x.toFixed(x < 10 ? 2 : 0)} ms`;
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

function main(): void {
  const objects: SourcedObject[] = [];
  for (let i = 0; i < SERVICES; i++) objects.push({ source: 'api', object: apiService(i) });
  for (let i = 0; i < SERVICES; i++) objects.push({ source: 'api', object: apiSlice(i, ENDPOINTS) });
  gc();
  const baseRSS = process.memoryUsage().rss;
  console.log(`model bench: ${SERVICES} Services × ${ENDPOINTS} endpoints (${objects.length} objects)`);

  // Cold: the first sync, every object new (and the code not yet optimised by the JIT, as at start-up).
  let t = performance.now();
  const builder = new ClusterStateBuilder();
  for (const o of objects) builder.upsert(o);
  let built = builder.build();
  const cold = performance.now() - t;
  if (built.problems.length > 0) throw new Error(`unexpected problems: ${JSON.stringify(built.problems[0])}`);
  console.log(
    `  cold build (ClusterStateBuilder):        ${ms(cold)}  (${built.state.servicePorts.length} service ports)`,
  );

  // One endpoint of one slice changes (a pod turns unready/ready), as 50 changes/s arrive.
  const times: number[] = [];
  for (let c = 0; c < CHANGES; c++) {
    const i = (c * 7919) % SERVICES;
    const object = apiSlice(i, ENDPOINTS, c % ENDPOINTS, c + 1);
    objects[SERVICES + i] = { source: 'api', object };
    t = performance.now();
    builder.upsert({ source: 'api', object });
    built = builder.build();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  console.log(
    `  one-endpoint change (builder):           median ${ms(percentile(times, 50))}, p99 ${ms(percentile(times, 99))}, max ${ms(times[times.length - 1]!)} over ${CHANGES}`,
  );
  const rss = process.resourceUsage().maxRSS / 1024;
  console.log(
    `  peak RSS (objects + builder):            ${Math.round(rss)} MB (objects alone: ${Math.round(baseRSS / 2 ** 20)} MB)`,
  );

  // The reference: same objects, full normalisation; the results must be identical.
  gc();
  t = performance.now();
  const reference = buildClusterState(objects);
  console.log(`  full build (buildClusterState):          ${ms(performance.now() - t)}`);
  if (JSON.stringify(reference) !== JSON.stringify(built))
    throw new Error('ClusterStateBuilder and buildClusterState disagree');
  console.log('  builder result identical to buildClusterState: yes');

  if (WITH_REFERENCE) {
    const ref: number[] = [];
    for (let c = 0; c < Math.min(CHANGES, 40); c++) {
      const i = (c * 104729) % SERVICES;
      objects[SERVICES + i] = { source: 'api', object: apiSlice(i, ENDPOINTS, c % ENDPOINTS, c + 1000) };
      t = performance.now();
      buildClusterState(objects);
      ref.push(performance.now() - t);
    }
    ref.sort((a, b) => a - b);
    console.log(
      `  one-endpoint change (buildClusterState): median ${ms(percentile(ref, 50))}, p99 ${ms(percentile(ref, 99))} over ${ref.length}`,
    );
  }
}

main();
