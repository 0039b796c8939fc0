// `portway run` in ipvs mode, for real, in the IPVS test VM: the agent (bundled with esbuild, run by this
// host's node copied into the guest) watches a manifest directory and programs the node namespace —
// IPVS, ipsets, kube-ipvs0, the constant iptables rules, sysctls. Then real TCP and UDP from a client,
// from the node and from a pod to itself; IPVS round-robin is exact, so counts are asserted exactly.
// One guest boot runs every scenario in turn (each boot costs ~10 s):
//   A. ClusterIP (client, node, pod → itself), UDP, NodePort, externalIP, LoadBalancer IP with
//      loadBalancerSourceRanges (an allowed and a refused source), eTP Local (only the local endpoint,
//      the client's address preserved), session affinity (every request to one pod);
//   B. an endpoint removed while a client holds a connection to it: the connection keeps working, new
//      connections avoid it (weight 0), and once it is closed the real server goes;
//   C. the agent restarted (SIGTERM, start again) while a client sends a request every 200 ms, until the
//      new agent's first sync is done: none fails, and the stopped agent exits 0.
//
//   client 10.99.0.100 (+ .101) ── eth0 ─ node 10.99.0.2, cbr0 10.244.1.1/24 ─┬─ pod1 10.244.1.11
//                                          kube-ipvs0: service addresses        └─ pod2 10.244.1.12
// The external and LoadBalancer IPs (10.98.0.50, .60) reach the node by the client's route, as through a
// router: in ipvs mode strictARP is on, so the node answers no ARP for kube-ipvs0's addresses.
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { endpointSliceYaml } from '../../fixtures/web-nodeport.js';
import { TWO_POD_NODE_PRELUDE } from './guest-topology.js';
import { PORTWAY_GUEST_PRELUDE, portwayGuestPaths } from './portway-in-guest.js';
import { prepareIpvsVm, runInIpvsVm, warnIpvsVmSkipped, type IpvsVmRun } from './vm.js';

const vm = await prepareIpvsVm();
if (!vm.ok) warnIpvsVmSkipped('run-ipvs-vm', vm.reason);
const maybe = vm.ok ? describe : describe.skip;

const GUEST = join(dirname(fileURLToPath(import.meta.url)), 'guest');

// web's slice has its UDP port too; the others only endpointSliceYaml's default, http 8080/TCP.
const slice = endpointSliceYaml;
const WEB_PORTS = '[{ name: http, port: 8080, protocol: TCP }, { name: dns, port: 8081, protocol: UDP }]';

const BOTH: Array<[string, string]> = [
  ['10.244.1.11', 'node-a'],
  ['10.244.1.12', 'node-a'],
];

const MANIFESTS: Record<string, string> = {
  'web.yaml': `
apiVersion: v1
kind: Service
metadata: { name: web, namespace: demo }
spec:
  type: NodePort
  clusterIP: 10.96.0.10
  externalIPs: [10.98.0.50]
  ports:
    - { name: http, port: 80, targetPort: 8080, nodePort: 30080 }
    - { name: dns, port: 53, targetPort: 8081, protocol: UDP }
`,
  'web-slice.yaml': slice('web-1', 'web', BOTH, WEB_PORTS),
  'lb.yaml': `
apiVersion: v1
kind: Service
metadata: { name: lb, namespace: demo }
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.40
  loadBalancerSourceRanges: [10.99.0.100/32]
  ports: [{ name: http, port: 80, targetPort: 8080, nodePort: 30040 }]
status: { loadBalancer: { ingress: [{ ip: 10.98.0.60 }] } }
---
${slice('lb-1', 'lb', BOTH)}
---
apiVersion: v1
kind: Service
metadata: { name: sticky, namespace: demo }
spec:
  clusterIP: 10.96.0.30
  sessionAffinity: ClientIP
  ports: [{ name: http, port: 80, targetPort: 8080 }]
---
${slice('sticky-1', 'sticky', BOTH)}
---
apiVersion: v1
kind: Service
metadata: { name: local, namespace: demo }
spec:
  type: NodePort
  clusterIP: 10.96.0.20
  externalTrafficPolicy: Local
  ports: [{ name: http, port: 80, targetPort: 8080, nodePort: 30090 }]
---
${slice('local-1', 'local', [
  ['10.244.1.11', 'node-a'],
  ['10.244.1.12', 'node-b'],
])}
`,
};

const CONFIG = `
mode: ipvs
nodeName: node-a
nodeIPs: [10.99.0.2]
clusterCIDRs: [10.244.0.0/16]
loadBalancer: { layer2: false }
ipvs: { minSyncPeriod: 100ms, syncPeriod: 2s, gracefulTerminationTimeout: 20s }
`;

const tcp = (label: string, host: string, port: number, count = 10, extra = {}): object => ({
  label,
  proto: 'tcp',
  host,
  port,
  count,
  ...extra,
});
const udp = (label: string, host: string, port: number, count = 10): object => ({
  label,
  proto: 'udp',
  host,
  port,
  count,
});

const PHASE_A_CLIENT = [
  tcp('client-clusterip', '10.96.0.10', 80),
  udp('client-udp-clusterip', '10.96.0.10', 53),
  tcp('client-nodeport', '10.99.0.2', 30080),
  tcp('client-externalip', '10.98.0.50', 80),
  tcp('client-lb-allowed', '10.98.0.60', 80),
  tcp('client-lb-refused', '10.98.0.60', 80, 2, { source: '10.99.0.101', timeoutMs: 1500 }),
  tcp('client-local-nodeport', '10.99.0.2', 30090),
  tcp('client-sticky', '10.96.0.30', 80),
];
const PHASE_A_NODE = [tcp('node-clusterip', '10.96.0.10', 80), udp('node-udp-clusterip', '10.96.0.10', 53)];
const PHASE_A_POD1 = [tcp('pod1-clusterip', '10.96.0.10', 80)];

maybe('portway run in ipvs mode in the IPVS test VM: real traffic, graceful termination, restart', () => {
  let run: IpvsVmRun;
  const answers: Record<string, Record<string, number>> = {};
  const sequence: Record<string, string[]> = {};

  beforeAll(async () => {
    const files: Record<string, string> = {
      'config.yaml': CONFIG,
      'a-client.json': JSON.stringify(PHASE_A_CLIENT),
      'a-node.json': JSON.stringify(PHASE_A_NODE),
      'a-pod1.json': JSON.stringify(PHASE_A_POD1),
      'pod-server.mjs': await readFile(join(GUEST, 'pod-server.mjs'), 'utf8'),
      'probe.mjs': await readFile(join(GUEST, 'probe.mjs'), 'utf8'),
    };
    for (const [name, text] of Object.entries(MANIFESTS)) files[`manifests/${name}`] = text;
    run = await runInIpvsVm({
      script:
        PORTWAY_GUEST_PRELUDE + TWO_POD_NODE_PRELUDE + (await readFile(join(GUEST, 'run-agent.sh'), 'utf8')),
      files,
      paths: await portwayGuestPaths(),
      timeoutMs: 600_000,
      memoryMb: 1024,
    });
    for (const line of run.output.split('\n')) {
      const m = /^R (\S+) (.*)$/.exec(line);
      if (m) {
        const pod = m[2]!.split(' ')[0]!;
        const byLabel = (answers[m[1]!] ??= {});
        byLabel[pod] = (byLabel[pod] ?? 0) + 1;
        (sequence[m[1]!] ??= []).push(m[2]!);
      }
    }
    console.log(`run-ipvs-vm: guest run ${run.durationMs} ms\n${run.output}`);
  }, 900_000);

  test('the guest script completes and the agent programmed the node', () => {
    expect(run.exitCode).toBe(0);
    expect(run.output).not.toMatch(/agent did not program the node|server not ready/);
  });

  test.each([
    'client-clusterip',
    'client-udp-clusterip',
    'client-nodeport',
    'client-externalip',
    'client-lb-allowed',
    'node-clusterip',
    'node-udp-clusterip',
    'pod1-clusterip',
  ])('%s: 10 requests, round-robin 5 and 5', (label) => {
    expect({ [label]: answers[label] }).toEqual({ [label]: { pod1: 5, pod2: 5 } });
  });

  test('loadBalancerSourceRanges: a source outside the ranges gets no answer', () => {
    expect(answers['client-lb-refused']).toEqual({ failed: 2 });
  });

  test('externalTrafficPolicy Local: only the local endpoint, and it sees the client address', () => {
    expect(answers['client-local-nodeport']).toEqual({ pod1: 10 });
    expect(new Set(sequence['client-local-nodeport'])).toEqual(new Set(['pod1 10.99.0.100']));
  });

  test('session affinity ClientIP: every request to the same pod', () => {
    expect(Object.values(answers['client-sticky'] ?? {})).toEqual([10]);
  });

  test('an endpoint removed under an open connection: weight 0, the connection keeps working, new ones avoid it, then it goes', () => {
    const held = /^HELD-BY (pod\d)$/m.exec(run.output)?.[1];
    expect(held).toMatch(/^pod[12]$/);
    const other = held === 'pod1' ? 'pod2' : 'pod1';
    expect(run.output).toMatch(/^WEIGHT-0 yes$/m);
    expect(answers['after-removal']).toEqual({ [other]: 6 });
    const replies = [...run.output.matchAll(/^H held (\S+) (ping\d+)$/gm)].map((m) => m[1]);
    expect(replies.length).toBeGreaterThanOrEqual(3);
    expect(new Set(replies)).toEqual(new Set([held]));
    expect(run.output).toMatch(/^H held closed$/m);
    expect(run.output).toMatch(/^DRAINED yes after \d+ s$/m);
  });

  test('the agent logged no failed sync and no drift (its own constant rules read back as written)', () => {
    expect(run.output).not.toMatch(/sync failed|behind portway/);
  });

  test('agent restart under traffic: no request fails', () => {
    expect(run.output).toMatch(/^AGENT-STOPPED exit 0$/m);
    expect(run.output).toMatch(/^RESTARTED-SYNCED yes$/m);
    const results = sequence.restart ?? [];
    expect(results.length).toBeGreaterThan(10);
    expect(results.filter((r) => r === 'failed')).toEqual([]);
  });
});
