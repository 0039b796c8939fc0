// `portway run`: the node agent. Its source is either the API (--kubeconfig/--master, or the in-cluster
// service account) or a directory of manifests (--manifests, watched); exactly one. It programs the
// network namespace it runs in (so `ip netns exec NS portway run …` just works): waits for the
// initial list of every informer (or the first read of the directory), re-syncs on change (coalesced
// by the BoundedFrequencyRunner), resyncs fully every syncPeriod, serves metrics, /healthz and the
// health-check node ports, and on SIGTERM/SIGINT stops watches and servers cleanly, leaving the rules
// in place (traffic keeps flowing while the agent restarts; `portway cleanup` removes them). While
// the API is unreachable the last good rules stay and portway_api_connected says 0.
import { hostname, release } from 'node:os';
import type { Config } from '../../config/config.js';
import { loadConfigFile } from '../../config/load.js';
import { createDataplane, type Dataplane } from '../../dataplane/index.js';
import type { IpLinks } from '../../dataplane/interfaces.js';
import { RealIpLinks } from '../../dataplane/ip.js';
import type { ClusterState, IPFamily } from '../../model/cluster-state.js';
import { cidrContains, ipFamilyOf } from '../../model/ip.js';
import { LoadBalancerAgent } from '../../lb/lb-agent.js'; // LoadBalancer addresses + layer2 hook
import { createLoadBalancerStatusWriter } from '../../lb/status-writer.js'; // LB status writer hook
import { createIngressStatusWriter } from '../../ingress/status-writer.js';
import { DEFAULT_LEASE_NAMESPACE } from '../../sources/api/lease-election.js'; // LB status writer hook
import type { Logger } from '../../observe/logger.js';
import { HealthServer, healthTimeoutFor, ProxyHealth } from '../../observe/health.js';
import { MetricsServer, ProxyMetrics } from '../../observe/metrics.js';
import { ServiceHealthServer } from '../../observe/service-health.js';
import { acceptsLocalhostNodePorts, renderOptionsFromConfig } from '../../render/iptables/index.js';
// Type-only: the API source and the Kubernetes client behind it are imported in setUp, in cluster mode
// only — a manifest-mode agent (run --once in CI, the demo) never loads the client (~1800 modules).
import type { ApiSource, CreateApiSourceOptions } from '../../sources/api/index.js';
import {
  ApiAgentSource,
  chooseSource,
  ManifestAgentSource,
  SERVICE_ACCOUNT_ROOT,
  SourceUnusableError,
  type AgentSource,
} from '../../sync/agent-source.js';
import { AgentTelemetry } from '../../sync/agent-telemetry.js';
import { BoundedFrequencyRunner } from '../../sync/bounded-frequency-runner.js';
import { SystemClock, type Clock } from '../../sync/clock.js';
import { SyncFailedError, type FamilyDataplane, type SyncResult } from '../../sync/iptables-syncer.js';
import { proxyModeOf, type ProxyMode, type ProxySyncer } from '../../sync/syncer.js';
import { AgentLock } from '../../sync/agent-lock.js';
import { DEFAULT_STATE_DIR, NetnsState } from '../../sync/netns-state.js';
import { chooseNodeName, nodeIPsFromInterfaces } from '../node-identity.js';

export { DEFAULT_STATE_DIR };
export { chooseNodeName, nodeIPsFromInterfaces };

export interface RunAgentOptions {
  /** Directory of manifests (Services, EndpointSlices, …): manifest mode. */
  manifests?: string;
  /** kubeconfig file (--kubeconfig): cluster mode. */
  kubeconfig?: string;
  /** API server URL (--master), alone or overriding the kubeconfig's server: cluster mode. */
  master?: string;
  /** --metrics-bind-address / --healthz-bind-address: override the configuration's. */
  metricsBindAddress?: string;
  healthzBindAddress?: string;
  configPath?: string;
  /** Sync once and return: 0 on success, 1 on failure, 2 when the source cannot be read or believed. */
  once: boolean;
  /**
   * Manifest mode: believe a source with no Service at start (or after it was missing): remove every
   * Service rule. Without it such a source is refused (--once: exit 2; running: not ready, no sync).
   */
  allowEmpty?: boolean;
  /** Manifest mode: how often the root's identity is checked (tests). Default 1 s. */
  manifestRootCheckMs?: number;
  logger: Logger;
  /** Where portway records what it changed (per network namespace below it). Default /run/portway. */
  stateDir?: string;
  /** Stop the agent (instead of, or besides, SIGTERM/SIGINT). */
  signal?: AbortSignal;
  /** Install SIGTERM/SIGINT handlers (default true). */
  handleSignals?: boolean;
  // Injection points for tests (habit 12).
  clock?: Clock;
  ipLinks?: IpLinks;
  createDataplane?: (families: IPFamily[]) => Promise<Dataplane>;
  hostname?: string;
  /** Environment (NODE_NAME, KUBERNETES_SERVICE_HOST/PORT); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Service-account mount for in-cluster config (default /var/run/secrets/kubernetes.io/serviceaccount). */
  serviceAccountRoot?: string;
  /** Builds the API source (tests: shorter backoff). Default createApiSource. */
  createApiSource?: (opts: CreateApiSourceOptions) => ApiSource;
  /** Wall clock (ms since the epoch) for health and metrics timestamps; default Date.now. */
  wallClock?: () => number;
  /** Called after every sync attempt (tests, metrics). */
  onSync?: (ok: boolean) => void;
  /** Called once the metrics and health servers listen (tests read the bound ports). */
  onServing?: (servers: { metricsPort: number; healthzPort: number }) => void;
}

/**
 * Whether the sysctls include route_localnet: exactly when the IPv4 rules accept NodePorts on
 * 127.0.0.1 (localhostNodePorts and nodePortAddresses overlapping 127.0.0.0/8), as kube-proxy decides.
 */
export function localhostNodePortsWanted(
  config: Config,
  families: readonly IPFamily[],
  nodeIPs: readonly string[],
): boolean {
  return (
    families.includes('IPv4') &&
    acceptsLocalhostNodePorts(renderOptionsFromConfig(config, 'IPv4', [...nodeIPs]))
  );
}

interface AgentSetup {
  config: Config;
  nodeName: string;
  nodeIPs: string[];
  families: IPFamily[];
  /** The proxy mode (chosen once, from config.mode) and its syncer. */
  mode: ProxyMode;
  syncer: ProxySyncer;
  source: AgentSource;
  clock: Clock;
  metrics: ProxyMetrics;
  health: ProxyHealth;
  serviceHealth: ServiceHealthServer;
  telemetry: AgentTelemetry;
  /** Where /metrics and /healthz listen (config, overridden by the flags). */
  metricsBindAddress: string;
  healthzBindAddress: string;
  /** Where each address came from, for errors: the flag when given, else the configuration key. */
  metricsBindAddressKey: string;
  healthzBindAddressKey: string;
  /** LoadBalancer allocation + layer2 (src/lb/lb-agent.ts): every state goes through lb.process(). */
  lb: LoadBalancerAgent;
}

/**
 * Addresses the health-check node ports listen on: kube-proxy's nodePortAddresses applied to the node's
 * addresses ([] = every address).
 */
export function healthCheckListenAddresses(
  nodePortAddresses: readonly string[],
  nodeIPs: readonly string[],
): string[] {
  if (nodePortAddresses.length === 0) return [];
  if (nodePortAddresses.includes('primary')) {
    return (['IPv4', 'IPv6'] as const).flatMap((f) => nodeIPs.find((ip) => ipFamilyOf(ip) === f) ?? []);
  }
  // CIDRs matching none of this node's addresses give [] = every address: the health check still
  // answers (503 without local endpoints), which is what a load balancer probing this node needs.
  return nodeIPs.filter((ip) => nodePortAddresses.some((cidr) => cidrContains(cidr, ip)));
}

/** What the agent holds while it runs and gives back when it stops, however it stops. */
interface Held {
  lock?: AgentLock;
}

async function setUp(opts: RunAgentOptions, held: Held): Promise<AgentSetup> {
  const log = opts.logger;
  const env = opts.env ?? process.env;
  const saRoot = opts.serviceAccountRoot ?? SERVICE_ACCOUNT_ROOT;
  // The source first: a usage error (two sources, none) is reported before anything is touched.
  const choice = chooseSource(
    {
      ...(opts.manifests !== undefined ? { manifests: opts.manifests } : {}),
      ...(opts.kubeconfig !== undefined ? { kubeconfig: opts.kubeconfig } : {}),
      ...(opts.master !== undefined ? { master: opts.master } : {}),
    },
    env,
    saRoot,
  );
  const config = await loadConfigFile(opts.configPath);
  // The one place the mode is chosen; a mode that cannot run yet is refused before anything is touched.
  const mode = proxyModeOf(config);
  const nodeName = chooseNodeName(config.nodeName, env, opts.hostname ?? hostname());
  let nodeIPs = [...config.nodeIPs];
  if (nodeIPs.length === 0) {
    const links = opts.ipLinks ?? new RealIpLinks();
    nodeIPs = nodeIPsFromInterfaces(await links.listAddresses());
  }
  const families = (['IPv4', 'IPv6'] as const).filter((f) => nodeIPs.some((ip) => ipFamilyOf(ip) === f));
  if (families.length === 0) {
    throw new Error('no node IPs: set nodeIPs in the configuration or give an interface a global address');
  }
  const effective: Config = { ...config, nodeName };
  const dataplane = await (opts.createDataplane ?? ((fams) => createDataplane({ families: fams })))([
    ...families,
  ]);
  // One agent per network namespace, then this namespace's own state (never a dead namespace's that
  // had the same inode): both before anything is changed.
  held.lock = await AgentLock.acquire(await dataplane.netns.inode());
  const netnsState = await NetnsState.open({
    stateDir: opts.stateDir ?? DEFAULT_STATE_DIR,
    identity: dataplane.netns,
    logger: log,
  });
  const familyDataplanes: FamilyDataplane[] = families.flatMap((family) => {
    const iptables = dataplane.iptables[family];
    return iptables ? [{ family, iptables, conntrack: dataplane.conntrack }] : [];
  });
  const clock = opts.clock ?? new SystemClock();
  const syncer = mode.createSyncer({
    config: effective,
    nodeIPs,
    families: familyDataplanes,
    clock,
    logger: log,
    sysctl: dataplane.sysctl,
    sysctlJournal: netnsState.sysctlJournal,
    localhostNodePorts: localhostNodePortsWanted(effective, families, nodeIPs),
    sharedChainsJournal: netnsState.sharedChainsJournal,
    // ipvs mode's executors (unused in iptables mode).
    ipvs: { ipvs: dataplane.ipvs, ipset: dataplane.ipset, links: dataplane.ip },
    kernelVersion: release(),
  });
  // Cluster mode: one client configuration for the informers and the status writer, so that they share
  // one connection to the API server. Loaded before anything starts, so that a bad kubeconfig is a
  // start-up error naming the flag.
  const apiModules =
    choice.kind === 'api'
      ? {
          kubeConfig: await import('../../sources/api/kube-config.js'),
          source: await import('../../sources/api/index.js'),
        }
      : undefined;
  const apiKubeConfig =
    choice.kind === 'api'
      ? apiModules!.kubeConfig.loadKubeConfig({
          ...(choice.kubeconfig !== undefined ? { kubeconfig: choice.kubeconfig } : {}),
          ...(choice.master !== undefined ? { master: choice.master } : {}),
          env,
          serviceAccountRoot: saRoot,
        })
      : undefined;
  // Filled once the metrics exist (they are made after the source); the writer reports on every sync.
  const ingressBackendCounts: { report?: (counts: Record<string, number>) => void } = {};
  // ── LoadBalancer addresses + layer2 hook (src/lb/lb-agent.ts) ──
  const lb = new LoadBalancerAgent({
    config,
    nodeName,
    nodeIPs,
    logger: log,
    sysctl: dataplane.sysctl,
    sysctlJournal: netnsState.sysctlJournal, // strictARP's previous values, for cleanup
    ...(opts.ipLinks ? { listLinks: () => (opts.ipLinks as IpLinks).listLinks() } : {}),
    // ── LB status writer hook (src/lb/status-writer.ts): cluster mode only; one writer, elected by a Lease
    // in $POD_NAMESPACE (default kube-system). Manifest mode writes nothing. ──
    ...(apiKubeConfig && config.loadBalancer.enabled
      ? {
          statusWriter: createLoadBalancerStatusWriter({
            kubeConfig: apiKubeConfig,
            nodeName,
            leaseNamespace: env.POD_NAMESPACE?.trim() || DEFAULT_LEASE_NAMESPACE,
            loadBalancerClass: config.loadBalancer.loadBalancerClass,
            logger: log,
            clock,
          }),
        }
      : {}),
    // ── end LB status writer hook ──
    // ── Ingress status writer (src/ingress/status-writer.ts): cluster mode with ingress.classes only, its
    // own Lease portway-ingress-status; Ingresses of other classes are never written. ──
    ...(apiKubeConfig && config.ingress.classes.length > 0
      ? {
          ingressWriter: createIngressStatusWriter({
            kubeConfig: apiKubeConfig,
            nodeName,
            leaseNamespace: env.POD_NAMESPACE?.trim() || DEFAULT_LEASE_NAMESPACE,
            classes: config.ingress.classes,
            nodePortAddresses: config.nodePortAddresses,
            logger: log,
            clock,
            onBackendCounts: (counts) => ingressBackendCounts.report?.(counts),
          }),
        }
      : {}),
  });
  // ── end LoadBalancer hook ──
  let source: AgentSource;
  if (choice.kind === 'manifests') {
    source = new ManifestAgentSource({
      dir: choice.dir,
      logger: log,
      clock,
      allowEmpty: opts.allowEmpty ?? false,
      ...(opts.manifestRootCheckMs !== undefined ? { rootCheckMs: opts.manifestRootCheckMs } : {}),
    });
  } else {
    const connection = {
      ...(choice.kubeconfig !== undefined ? { kubeconfig: choice.kubeconfig } : {}),
      ...(choice.master !== undefined ? { master: choice.master } : {}),
      env,
      serviceAccountRoot: saRoot,
    };
    // The start-up line names the server (credentials stripped).
    const server = apiModules!.kubeConfig.apiServerUrl(apiKubeConfig!);
    // Layer2 owner election needs every Node; without it the agent reads only its own.
    const announces = config.loadBalancer.enabled && config.loadBalancer.layer2;
    const api = (opts.createApiSource ?? apiModules!.source.createApiSource)({
      ...connection,
      kubeConfig: apiKubeConfig!,
      logger: log,
      ...(announces ? {} : { onlyNode: nodeName }),
    });
    source = new ApiAgentSource(api, choice, server);
  }
  const wallClock = opts.wallClock ?? Date.now;
  const metrics = new ProxyMetrics();
  ingressBackendCounts.report = (counts) => {
    for (const [state, n] of Object.entries(counts)) metrics.ingressBackends.set({ state }, n);
  };
  if (source.apiView) metrics.bindApiSource(source.apiView);
  const health = new ProxyHealth({
    healthTimeoutMs: healthTimeoutFor(mode.syncPeriodMs),
    metrics,
    now: wallClock,
    sourceProblem: () => source.problem,
  });
  const serviceHealth = new ServiceHealthServer({
    nodeName,
    listenAddresses: healthCheckListenAddresses(config.nodePortAddresses, nodeIPs),
    proxyHealth: health,
    logger: log,
    metrics,
  });
  const telemetry = new AgentTelemetry({
    families: [...families],
    nodeName,
    metrics,
    health,
    serviceHealth,
    logger: log,
    now: wallClock,
    startedAtMs: wallClock(),
  });
  const metricsBindAddress = opts.metricsBindAddress ?? config.metricsBindAddress;
  const healthzBindAddress = opts.healthzBindAddress ?? config.healthzBindAddress;
  log.info(
    {
      mode: source.kind === 'api' ? 'cluster' : 'manifests',
      proxyMode: config.mode,
      nodeName,
      nodeIPs,
      families,
      backend: familyDataplanes[0]?.iptables.backend,
      ...source.description,
      metricsBindAddress,
      healthzBindAddress,
      minSyncPeriodMs: mode.minSyncPeriodMs,
      syncPeriodMs: mode.syncPeriodMs,
    },
    'portway agent starting',
  );
  return {
    config,
    nodeName,
    nodeIPs,
    families: [...families],
    mode,
    syncer,
    source,
    clock,
    lb,
    metrics,
    health,
    serviceHealth,
    telemetry,
    metricsBindAddress,
    healthzBindAddress,
    metricsBindAddressKey:
      opts.metricsBindAddress !== undefined ? '--metrics-bind-address' : 'metricsBindAddress',
    healthzBindAddressKey:
      opts.healthzBindAddress !== undefined ? '--healthz-bind-address' : 'healthzBindAddress',
  };
}

/** A server that listens on a configured address. */
interface Listener {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Start every server, in order; when one cannot listen, stop the ones started and throw an error
 * naming the configuration key (or flag) and the address.
 */
export async function startListening(
  servers: ReadonlyArray<{ key: string; address: string; server: Listener }>,
): Promise<void> {
  const started: Listener[] = [];
  for (const { key, address, server } of servers) {
    try {
      await server.start();
    } catch (err) {
      await Promise.all(started.map((s) => s.stop()));
      throw new Error(`${key}: cannot listen on ${address}: ${(err as Error).message}`);
    }
    started.push(server);
  }
}

/** Run the agent; resolves with the process exit code. */
export async function runAgent(opts: RunAgentOptions): Promise<number> {
  const held: Held = {};
  try {
    return await runAgentHolding(opts, held);
  } finally {
    await held.lock?.release();
  }
}

async function runAgentHolding(opts: RunAgentOptions, held: Held): Promise<number> {
  const log = opts.logger;
  let runner: BoundedFrequencyRunner | null = null;
  let setup: AgentSetup;
  try {
    setup = await setUp(opts, held);
  } catch (err) {
    log.error({ err: (err as Error).message }, 'portway agent cannot start');
    return 2;
  }
  const { mode, syncer, source, clock, lb, telemetry } = setup;
  /** The state handed to the syncer last (what the next sync renders). */
  let latest: ClusterState | null = null;
  const accept = (state: ClusterState): void => {
    const before = latest?.services.length ?? 0;
    if (before > 0 && state.services.length === 0) {
      // Believed (see AgentSource.problem), but rarely meant: say so loudly, with the counts.
      log.warn(
        { servicesBefore: before, servicesAfter: 0, ...source.description },
        `every Service is gone from the source: removing the rules of ${before} Service(s)`,
      );
    }
    latest = lb.process(state); // LoadBalancer hook: allocation applied before rendering
    syncer.setState(latest);
  };
  source.onChange((state) => {
    accept(state);
    telemetry.changeQueued(source);
    runner?.request();
  });

  /** One sync with its metrics and health bookkeeping; throws as syncer.sync does. */
  const syncAndRecord = async (full: boolean): Promise<SyncResult> => {
    const state = latest;
    const ticket = telemetry.syncStarted(syncer.stats.restoreFailures);
    let result: SyncResult;
    let failure: unknown;
    try {
      result = await syncer.sync({ full });
    } catch (err) {
      failure = err;
      result =
        err instanceof SyncFailedError
          ? err.result
          : { ok: false, durationMs: 0, families: [], sysctlsChanged: [] };
    }
    if (state) {
      await telemetry.syncFinished(ticket, {
        result,
        full: full || result.families.some((f) => f.full),
        restoreFailures: syncer.stats.restoreFailures,
        lastApplied: (family) => syncer.lastApplied(family),
        state,
      });
    }
    opts.onSync?.(failure === undefined);
    if (failure !== undefined) throw failure;
    return result;
  };

  if (opts.once) {
    try {
      accept(await source.loadOnce());
    } catch (err) {
      log.error(
        { err: (err as Error).message },
        err instanceof SourceUnusableError
          ? 'not syncing: the source cannot be believed; the rules stay as they are'
          : 'cannot read the cluster state',
      );
      return 2;
    }
    try {
      const result = await syncAndRecord(true);
      // Stage times per family: where a one-shot sync (CI, `npm run bench:startup`) spends its time.
      const stageMs = Object.fromEntries(
        result.families.map((f) => [
          f.family,
          Object.fromEntries(Object.entries(f.stageMs).map(([k, v]) => [k, Math.round(v)])),
        ]),
      );
      log.info(
        { durationMs: result.durationMs, stageMs, sysctlsChanged: result.sysctlsChanged },
        'synced once',
      );
      return 0;
    } catch (err) {
      log.error({ err: (err as Error).message }, 'sync failed');
      return 1;
    }
  }

  // Servers first, before anything changes: a listen address that cannot be bound (in use, not an
  // address of this host) ends the agent with exit 2 naming the key, and /healthz and /metrics answer
  // (not ready, not synced) while the initial list runs.
  let metricsServer: MetricsServer;
  let healthServer: HealthServer;
  try {
    metricsServer = new MetricsServer(setup.metrics, {
      bindAddress: setup.metricsBindAddress,
      proxyMode: mode.name,
    });
    healthServer = new HealthServer(setup.health, { bindAddress: setup.healthzBindAddress });
    await startListening([
      { key: setup.metricsBindAddressKey, address: setup.metricsBindAddress, server: metricsServer },
      { key: setup.healthzBindAddressKey, address: setup.healthzBindAddress, server: healthServer },
    ]);
  } catch (err) {
    log.error({ err: (err as Error).message }, 'portway agent cannot start');
    return 2;
  }

  runner = new BoundedFrequencyRunner({
    name: 'iptables-sync',
    clock,
    minIntervalMs: mode.minSyncPeriodMs,
    maxIntervalMs: mode.syncPeriodMs,
    retryMaxIntervalMs: Math.max(mode.minSyncPeriodMs, Math.min(mode.syncPeriodMs || 30_000, 30_000)),
    // The periodic run and every retry are full: they repair drift and recover from failures.
    run: async (trigger) => {
      await syncAndRecord(trigger !== 'requested');
    },
    onFailure: (err, retryInMs, failures) => {
      const reason = err instanceof SyncFailedError ? err.message : (err as Error).message;
      log.warn(
        { retryInMs, consecutiveFailures: failures, reason },
        'sync failed; retrying with a full sync',
      );
    },
  });

  // `on`, not `once`, and removed only when the agent has stopped: execa loads signal-exit while a
  // command runs (a sync is in flight most of the time), and signal-exit, finding itself the only
  // SIGTERM listener left, kills that command and re-raises the signal — the agent then died with 143
  // in the middle of a sync instead of finishing it and exiting 0. A repeated signal is a no-op.
  const handlers: Array<[NodeJS.Signals, () => void]> = [];
  const stopped = new Promise<string>((resolve) => {
    if (opts.handleSignals !== false) {
      for (const sig of ['SIGTERM', 'SIGINT'] as const) {
        const h = (): void => resolve(sig);
        handlers.push([sig, h]);
        process.on(sig, h);
      }
    }
    if (opts.signal) {
      if (opts.signal.aborted) resolve('abort');
      else opts.signal.addEventListener('abort', () => resolve('abort'), { once: true });
    }
  });
  // Keep the event loop alive while the agent runs (the clock's timers are unref'd).
  const keepAlive = setInterval(() => undefined, 1 << 30);

  opts.onServing?.({ metricsPort: metricsServer.port, healthzPort: healthServer.port });
  await setup.serviceHealth.start();

  let exitCode = 0;
  let why: string;
  const starting = source.start().then(
    (state) => ({ state }),
    (err: unknown) => ({ error: err as Error }),
  );
  const first = await Promise.race([starting, stopped.then((signal) => ({ signal }))]);
  if ('signal' in first) {
    why = first.signal;
  } else if ('error' in first) {
    log.error({ err: first.error.message }, 'cannot read the cluster state');
    why = 'source failed';
    exitCode = 2;
  } else {
    accept(first.state);
    telemetry.changeQueued(source);
    log.info(
      { services: first.state.services.length, servicePorts: first.state.servicePorts.length },
      'initial state read; syncing',
    );
    runner.start();
    await lb.start(); // LoadBalancer hook: strictARP + layer2
    runner.request();
    why = await stopped;
  }
  clearInterval(keepAlive);
  log.info({ signal: why }, 'stopping; rules stay in place');
  try {
    await source.stop();
    await starting;
    await runner.stop(); // waits for the sync in flight
    await lb.stop(); // LoadBalancer hook
    await Promise.all([setup.serviceHealth.stop(), metricsServer.stop(), healthServer.stop()]);
  } finally {
    for (const [sig, h] of handlers) process.off(sig, h);
  }
  return exitCode;
}
