// What portway's agents cost the API server: requests, TLS connections and bytes per node, at start and
// per hour, measured by the API stand-in (test/stand-in/api-server.ts trafficStats: bytes are counted on
// the server's TCP sockets, so they include TLS records and HTTP headers).
//
//   npm run bench:api                                   4 agents, 2k Services, 200 Nodes, an hour in 60 s
//   options: --agents N  --services N  --headless N  --nodes N  --speedup K  --churn CHANGES_PER_S
//            --lease-rounds N  --server-http2 0|1 (0: the stand-in refuses h2, as an HTTP/1.1 proxy would)
//   PORTWAY_BENCH_SRC=/path/to/other/checkout/src npm run bench:api
//                                                       the same bench with another tree's client code
//                                                       (e.g. the previous commit's, for a before/after)
//
// Each simulated agent is what `portway run` starts in cluster mode against the API: the ApiSource (an
// informer per watched kind) and the Lease election of the LoadBalancer status writer (one GET every
// retry period; the holder also PUTs), all in this process, each with its own kubeconfig object as each
// node has. The normaliser is a stub: what the agent does with the objects costs the server nothing.
//
// "Per hour" is simulated in two parts, added up:
// - the informers over a compressed hour: every period is divided by --speedup K (default 60: an hour in
//   60 s): the watch timeout (client-go's random 300–600 s: 450/K s), bookmarks (kube-apiserver sends one
//   about every minute: 60/K s) and the churn: exactly --churn × 3600 EndpointSlice changes (default one
//   per second), half of them to headless Services' slices, sent on schedule (late ones catch up, so the
//   count does not depend on how busy the process is); each is delivered to every agent watching it;
// - the Lease election on a stepped clock, not in compressed real time (a round's latency — a TLS
//   handshake each in the old code — would otherwise decide how many rounds fit): --lease-rounds rounds of
//   every agent at once (each agent's retry timer fired, all attempts awaited), scaled to the 1800 rounds
//   an hour of 2 s retry periods makes. One agent holds the Lease and renews (GET + PUT), the others read.
// Bytes are the server's socket counters, so each part's TLS handshakes and headers are in them.
import { randomUUID } from 'node:crypto';
import { KubeConfig } from '@kubernetes/client-node';
import { StandInApiServer, type RequestRecord, type TrafficStats } from '../../test/stand-in/api-server.js';

interface Options {
  agents: number;
  services: number;
  headless: number;
  nodes: number;
  speedup: number;
  churn: number;
  'lease-rounds': number;
  /** 0: the stand-in speaks HTTP/1.1 only (as before it learnt HTTP/2). */
  'server-http2': number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    agents: 4,
    services: 2000,
    headless: 500,
    nodes: 200,
    speedup: 60,
    churn: 1,
    'lease-rounds': 300,
    'server-http2': 1,
  };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i]!.replace(/^--/, '') as keyof Options;
    if (!(key in o)) throw new Error(`unknown option ${argv[i]}`);
    o[key] = Number(argv[i + 1]);
    if (!Number.isFinite(o[key]) || o[key] < 0) throw new Error(`${argv[i]}: not a number`);
  }
  return o;
}

const SRC = process.env.PORTWAY_BENCH_SRC ?? new URL('../../src', import.meta.url).pathname;

interface ClientModules {
  ApiSource: new (opts: Record<string, unknown>) => {
    start(): Promise<void>;
    stop(): Promise<void>;
  };
  resources: unknown;
  LeaseElector: new (opts: Record<string, unknown>) => Agent['election'];
  KubeApiWriter: new (opts: Record<string, unknown>) => unknown;
  silentLogger: unknown;
}

async function loadClient(): Promise<ClientModules> {
  const source = (await import(`${SRC}/sources/api/api-source.js`)) as Record<string, unknown>;
  const lease = (await import(`${SRC}/sources/api/lease-election.js`)) as Record<string, unknown>;
  const writer = (await import(`${SRC}/sources/api/api-writer.js`)) as Record<string, unknown>;
  const logger = (await import(`${SRC}/observe/logger.js`)) as Record<string, unknown>;
  // An agent that announces (layer2 on, the default) watches every Node: the widest set.
  const resources =
    typeof source.watchedResources === 'function'
      ? (source.watchedResources as () => unknown)()
      : source.WATCHED_RESOURCES;
  return {
    ApiSource: source.ApiSource as ClientModules['ApiSource'],
    resources,
    LeaseElector: lease.LeaseElector as ClientModules['LeaseElector'],
    KubeApiWriter: writer.KubeApiWriter as ClientModules['KubeApiWriter'],
    silentLogger: logger.silentLogger,
  };
}

function populate(api: StandInApiServer, o: Options): void {
  for (let n = 0; n < 10; n++)
    api.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: `ns-${n}` } });
  for (let n = 0; n < o.nodes; n++)
    api.put({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: `node-${n}`, labels: { 'kubernetes.io/hostname': `node-${n}` } },
      status: {
        conditions: [{ type: 'Ready', status: 'True' }],
        addresses: [{ type: 'InternalIP', address: `10.0.${n >> 8}.${n & 255}` }],
      },
    });
  api.put({
    apiVersion: 'portway.io/v1alpha1',
    kind: 'IPAddressPool',
    metadata: { name: 'lan' },
    spec: { addresses: ['192.168.50.0/24'] },
  });
  for (let s = 0; s < o.services + o.headless; s++) {
    const headless = s >= o.services;
    const name = `svc-${s}`;
    const namespace = `ns-${s % 10}`;
    api.put({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace, uid: randomUUID() },
      spec: {
        clusterIP: headless ? 'None' : `10.96.${(s >> 8) & 255}.${s & 255}`,
        ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }],
      },
    });
    api.put(slice(name, namespace, headless, 0));
  }
}

function slice(
  service: string,
  namespace: string,
  headless: boolean,
  generation: number,
): Record<string, unknown> {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: `${service}-abcde`,
      namespace,
      labels: {
        'kubernetes.io/service-name': service,
        'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
        ...(headless ? { 'service.kubernetes.io/headless': '' } : {}),
      },
    },
    addressType: 'IPv4',
    endpoints: [0, 1, 2].map((e) => ({
      addresses: [`10.244.${e}.${(generation + e) & 255}`],
      conditions: { ready: true, serving: true, terminating: false },
      nodeName: `node-${e}`,
    })),
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
}

const stubNormaliser = () => ({ state: { services: [], servicePorts: [], nodes: [] }, problems: [] });

interface Agent {
  source: { start(): Promise<void>; stop(): Promise<void> };
  election: { start(): void; stop(opts?: { release?: boolean }): Promise<void>; idle(): Promise<void> };
}

/** A clock that moves only in steps; each step fires the timers then due (the Lease retry timers). */
class SteppedClock {
  private current = 0;
  private nextId = 1;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.current;
  }
  setTimeout(fn: () => void, ms: number): { id: number } {
    const id = this.nextId++;
    this.timers.set(id, { at: this.current + ms, fn });
    return { id };
  }
  clearTimeout(handle: { id: number }): void {
    this.timers.delete(handle.id);
  }
  step(ms: number): void {
    this.current += ms;
    for (const [id, t] of [...this.timers]) {
      if (t.at > this.current) continue;
      this.timers.delete(id);
      t.fn();
    }
  }
}

function makeAgents(client: ClientModules, api: StandInApiServer, o: Options, clock: SteppedClock): Agent[] {
  const agents: Agent[] = [];
  for (let a = 0; a < o.agents; a++) {
    // `portway run` loads the kubeconfig once, for the informers and the status writer alike.
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromString(api.kubeconfig());
    const watchTimeoutSeconds = Math.max(1, Math.round(450 / o.speedup));
    agents.push({
      source: new client.ApiSource({
        kubeConfig,
        normalise: stubNormaliser,
        logger: client.silentLogger,
        resources: client.resources,
        watchTimeoutSeconds,
        watchStallGraceMs: 5_000,
      }),
      election: new client.LeaseElector({
        client: new client.KubeApiWriter({ kubeConfig }),
        identity: `node-${a}`,
        namespace: 'portway-system',
        clock,
        logger: client.silentLogger,
      }),
    });
  }
  return agents;
}

interface Measured extends TrafficStats {
  leaseReads: number;
  leaseWrites: number;
}

/** Counters of the stand-in from now until the returned function is called. */
function measure(api: StandInApiServer): () => Measured {
  api.resetTraffic();
  const from = api.requests.length;
  return () => {
    const requests = api.requests.slice(from);
    const count = (test: (r: RequestRecord) => boolean) => requests.filter(test).length;
    return {
      ...api.trafficStats(),
      leaseReads: count((r) => r.method === 'GET' && r.path.includes('/leases/')),
      leaseWrites: count((r) => r.method !== 'GET' && r.path.includes('/leases')),
    };
  };
}

/** a + b × bScale, counter by counter. */
function sum(a: Measured, b: Measured, bScale: number): Measured {
  const total = { ...a };
  for (const key of Object.keys(total) as Array<keyof Measured>) total[key] += b[key] * bScale;
  return total;
}

function perNode(t: Measured, agents: number): Record<string, string> {
  const f = (n: number) => (n / agents).toFixed(1);
  return {
    requests: f(t.requests),
    '  of which Lease reads': f(t.leaseReads),
    '  of which Lease writes': f(t.leaseWrites),
    '  of which watches': f(t.watches),
    'TLS connections': f(t.connections),
    'KB received (by the server)': f(t.bytesReceived / 1024),
    'KB sent (by the server)': f(t.bytesSent / 1024),
    'lists from watch cache': f(t.cachedLists),
    'consistent list pages (etcd)': f(t.consistentListPages),
    'GETs from etcd / from watch cache': `${f(t.consistentGets)} / ${f(t.cachedGets)}`,
  };
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const client = await loadClient();
  const api = new StandInApiServer({
    bookmarkIntervalMs: Math.round(60_000 / o.speedup),
    http2: o['server-http2'] !== 0,
  });
  await api.start();
  populate(api, o);
  const clock = new SteppedClock();
  const agents = makeAgents(client, api, o, clock);
  console.log(
    `api bench: client code ${SRC}; server HTTP/${o['server-http2'] !== 0 ? '2 and 1.1' : '1.1 only'}\n${o.agents} agents; ${o.services} Services + ${o.headless} headless (one 3-endpoint slice each), ${o.nodes} Nodes; informers' hour in ${(3600 / o.speedup).toFixed(0)} s (speedup ${o.speedup}), ${o.churn * 3600} slice changes; Lease: ${o['lease-rounds']} rounds × ${(1800 / o['lease-rounds']).toFixed(1)}`,
  );

  let done = measure(api);
  const started = Date.now();
  await Promise.all(agents.map((a) => a.source.start()));
  const watchCount = (client.resources as unknown[]).length * o.agents;
  while (api.openWatchCount < watchCount) await sleep(5);
  for (const a of agents) a.election.start();
  // The first round: the Lease created (or read), as at start.
  clock.step(0);
  await Promise.all(agents.map((a) => a.election.idle()));
  console.log(
    `\nstart (every informer listed and watching, a first Lease round; ${Date.now() - started} ms), per node:`,
  );
  console.table(perNode(done(), o.agents));

  done = measure(api);
  const hourMs = 3_600_000 / o.speedup;
  const changes = Math.round(o.churn * 3600);
  const begin = Date.now();
  for (let sent = 0; sent < changes;) {
    const due = Math.min(changes, Math.floor(((Date.now() - begin) / hourMs) * changes) + 1);
    for (; sent < due; sent++) {
      const headless = sent % 2 === 1 && o.headless > 0;
      const s = headless ? o.services + (sent % o.headless) : sent % o.services;
      api.put(slice(`svc-${s}`, `ns-${s % 10}`, headless, sent + 1));
    }
    await sleep(Math.max(1, hourMs / changes));
  }
  await sleep(Math.max(0, hourMs - (Date.now() - begin)));
  const informersMs = Date.now() - begin;
  // A busy process can overrun the compressed hour: counted per hour of (compressed) time all the same.
  const informers = done();
  for (const key of Object.keys(informers) as Array<keyof Measured>) informers[key] *= hourMs / informersMs;
  // The Lease alone next: informers left running would add their own traffic to it, scaled up with it.
  await Promise.all(agents.map((a) => a.source.stop()));

  done = measure(api);
  for (let round = 0; round < o['lease-rounds']; round++) {
    clock.step(2_000);
    await Promise.all(agents.map((a) => a.election.idle()));
  }
  const lease = done();
  const hour = sum(informers, lease, 1800 / o['lease-rounds']);
  console.log(
    `\nper hour, per node (informers: ${(informersMs / 1000).toFixed(0)} s of compressed time scaled to ${(hourMs / 1000).toFixed(0)} s; + the Lease):`,
  );
  console.table(perNode(hour, o.agents));
  const agentsSeen = new Set(api.requests.map((r) => r.userAgent || '(none)'));
  console.log(`User-Agents seen: ${[...agentsSeen].join(' | ')}`);

  await Promise.all(agents.map((a) => a.election.stop({ release: false })));
  await api.stop();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
