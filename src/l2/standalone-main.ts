// A standalone layer2 announcer for one address: the whole path (allocation → election → member health →
// ARP responder) without an API server. Used by the e2e tests and for trying layer2 on a bench:
//
//   node --import tsx src/l2/standalone-main.ts --node node-a --interface eth0 --vip 192.168.50.100 \
//        --bind 192.168.50.11 --peers node-a=192.168.50.11,node-b=192.168.50.12 [--port 7473]
//
// An IPv6 --vip (e.g. 2001:db8:50::100) is announced by NDP instead of ARP.
//
// Without --interface it announces as an L2Advertisement without interfaces does: on every suitable
// interface (interface-choice.ts), read with `ip -j -d link show` at start and every --link-refresh-ms.
//
// Logs one JSON object per line on stdout. SIGTERM/SIGINT stop it cleanly.
import { parseArgs } from 'node:util';
import { allocate } from '../lb/allocator.js';
import { parsePoolAddress } from '../lb/pools.js';
import type { ClusterState, ServiceInfo, ServicePort } from '../model/cluster-state.js';
import { canonicalIP, ipFamilyOf } from '../model/ip.js';
import { RealIpLinks } from '../dataplane/ip.js';
import { L2Announcer } from './announcer.js';
import { openArpSocket, openNdpSocket } from './arp-socket.js';
import {
  DEFAULT_EXCLUDED_INTERFACES,
  compileInterfaceExclusion,
  describeSkipped,
} from './interface-choice.js';
import { MemberHealth, type Peer } from './member-health.js';
import { planInterfaces } from './speaker.js';

function fail(message: string): never {
  process.stderr.write(`l2 announcer: ${message}\n`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    node: { type: 'string' },
    interface: { type: 'string' },
    vip: { type: 'string' },
    bind: { type: 'string', default: '' },
    peers: { type: 'string', default: '' },
    port: { type: 'string', default: '7473' },
    'interval-ms': { type: 'string', default: '300' },
    'timeout-ms': { type: 'string', default: '1000' },
    'down-after-ms': { type: 'string', default: '1000' },
    'hold-ms': { type: 'string', default: '1500' },
    'link-refresh-ms': { type: 'string', default: '10000' },
  },
});

const node = values.node ?? fail('--node is required');
// null: every suitable interface, as an L2Advertisement without interfaces.
const ifname = values.interface ?? null;
const vip =
  canonicalIP(values.vip ?? fail('--vip is required')) ?? fail(`--vip: "${values.vip}" is not an IP address`);
// An IPv6 VIP is answered by NDP (Neighbor Solicitations, unsolicited advertisements on takeover).
const family = ipFamilyOf(vip) ?? 'IPv4';
const num = (flag: string, text: string | undefined) => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) fail(`--${flag}: "${text}" is not a non-negative integer`);
  return n;
};
const peers: Peer[] = (values.peers ?? '')
  .split(',')
  .filter((s) => s !== '')
  .map((entry) => {
    const [name, address] = entry.split('=');
    if (!name || !address || canonicalIP(address) === null) fail(`--peers: "${entry}" is not name=address`);
    return { name, address };
  });

const log = (event: Record<string, unknown>) =>
  process.stdout.write(`${JSON.stringify({ t: Date.now(), node, ...event })}\n`);

const service: ServiceInfo = {
  namespace: 'default',
  name: 'vip',
  type: 'LoadBalancer',
  labels: {},
  annotations: {},
  selector: {},
  clusterIPs: [],
  ipFamilies: [family],
  ipFamilyPolicy: 'SingleStack',
  loadBalancerIP: vip,
  loadBalancerClass: '',
  externalTrafficPolicy: 'Cluster',
  ports: [{ name: '', protocol: 'TCP', port: 80, nodePort: 0 }],
  statusIngress: [],
};
const nodeNames = [...new Set([node, ...peers.map((p) => p.name)])].sort();
// There are no EndpointSlices here: the VIP stands for a Service with one serving endpoint on every node
// (a Service without one is announced by no node, as in MetalLB).
const servicePort: ServicePort = {
  id: 'default/vip',
  namespace: 'default',
  serviceName: 'vip',
  portName: '',
  protocol: 'TCP',
  type: 'LoadBalancer',
  port: 80,
  nodePort: 0,
  healthCheckNodePort: 0,
  clusterIPs: [],
  externalIPs: [],
  loadBalancerIngress: [{ ip: vip, ipMode: 'VIP' }],
  loadBalancerSourceRanges: [],
  externalTrafficPolicy: 'Cluster',
  internalTrafficPolicy: 'Cluster',
  sessionAffinity: { type: 'None' },
  ipFamilies: [family],
  endpoints: nodeNames.map((name, i) => ({
    ip: `127.0.0.${i + 1}`,
    port: 80,
    family: 'IPv4' as const,
    ready: true,
    serving: true,
    terminating: false,
    nodeName: name,
  })),
};
const state: Pick<ClusterState, 'services' | 'servicePorts' | 'nodes' | 'addressPools' | 'l2Advertisements'> =
  {
    services: [service],
    servicePorts: [servicePort],
    nodes: nodeNames.map((name) => ({
      name,
      addresses: peers.filter((p) => p.name === name).map((p) => p.address),
      ready: true,
      labels: {},
    })),
    addressPools: [
      {
        name: 'standalone',
        addresses: [parsePoolAddress(`${vip}/${family === 'IPv6' ? 128 : 32}`)],
        autoAssign: true,
        avoidBuggyIPs: false,
      },
    ],
    l2Advertisements: [
      {
        name: 'standalone',
        ipAddressPools: [],
        ipAddressPoolSelectors: [],
        nodeSelectors: [],
        interfaces: [],
      },
    ],
  };
const allocation = allocate(state.services, state.addressPools, {});
if (allocation.reasons.size > 0) fail(`allocation failed: ${[...allocation.reasons.values()].join('; ')}`);

let announcer: L2Announcer | null = null;
const health = new MemberHealth({
  self: node,
  bindAddress: values.bind ?? '',
  port: num('port', values.port),
  intervalMs: num('interval-ms', values['interval-ms']),
  timeoutMs: num('timeout-ms', values['timeout-ms']),
  downAfterMs: num('down-after-ms', values['down-after-ms']),
  onChange: (alive) => {
    log({ msg: 'alive set changed', alive: [...alive].sort() });
    announcer?.membershipChanged();
  },
});
health.setPeers(peers);
announcer = new L2Announcer({
  nodeName: node,
  interfaces: ifname === null ? [] : [ifname],
  openSocket: openArpSocket,
  openNdpSocket: openNdpSocket,
  aliveNodes: () => health.aliveNodes(),
  startupHoldMs: num('hold-ms', values['hold-ms']),
  log,
});

try {
  await health.start();
  announcer.start();
} catch (e) {
  fail((e as Error).message);
}
let refreshTimer: NodeJS.Timeout | null = null;
let lastInterfaces = '';
const exclude = compileInterfaceExclusion(DEFAULT_EXCLUDED_INTERFACES);
/** Re-read the links and follow them (only without --interface). */
async function refreshInterfaces(): Promise<void> {
  if (ifname !== null || !announcer) return;
  try {
    const links = await new RealIpLinks().listLinks();
    const plan = planInterfaces(node, state, links, exclude);
    // With the indexes, an interface recreated under the same name gets new sockets (as in the agent).
    const failures = announcer.setInterfaces(
      plan.interfaces,
      plan.defaults,
      new Map(links.map((l) => [l.ifname, l.ifindex])),
    );
    const key = plan.interfaces.join(',');
    if (key !== lastInterfaces) {
      lastInterfaces = key;
      log({
        msg: 'interfaces',
        interfaces: plan.interfaces,
        skipped: describeSkipped(plan.verdicts),
        problems: plan.problems,
      });
    }
    for (const f of failures) log({ msg: 'cannot open interface', interface: f.ifname, error: f.error });
  } catch (e) {
    log({ msg: 'reading interfaces failed', error: (e as Error).message });
  }
}

await refreshInterfaces();
announcer.update(state, allocation);
log({ msg: 'started', interface: ifname ?? '(every suitable)', vip });
const refreshMs = num('link-refresh-ms', values['link-refresh-ms']);
if (ifname === null && refreshMs > 0) {
  const tick = () => {
    refreshTimer = setTimeout(() => void refreshInterfaces().then(tick), refreshMs);
  };
  tick();
}

const shutdown = async () => {
  if (refreshTimer !== null) clearTimeout(refreshTimer);
  announcer?.stop();
  await health.stop();
  log({ msg: 'stopped' });
  process.exit(0);
};
process.on('SIGTERM', () => void shutdown());
process.on('SIGINT', () => void shutdown());
