// Health-check node ports (kube-proxy's pkg/proxy/healthcheck/service_health.go): for every
// LoadBalancer Service with externalTrafficPolicy Local, an HTTP server on its healthCheckNodePort
// tells the external load balancer whether this node has ready local endpoints: 200 with the count
// when it has some (and the proxy is healthy), 503 otherwise. Servers open and close as Services
// come and go. planServiceHealthChecks is the pure part; ServiceHealthServer the I/O.
import type { ClusterState } from '../model/cluster-state.js';
import { joinHostPort } from '../model/ip.js';
import { SimpleHttpServer } from './http-server.js';
import { silentLogger, type Logger } from './logger.js';
import type { ProxyMetrics } from './metrics.js';

export interface ServiceHealthCheck {
  namespace: string;
  name: string;
  port: number;
  /** Distinct ready endpoints (ip:port, over all the Service's ports) on this node. */
  localEndpoints: number;
}

/** "ns/name" → what its health-check port should say. Pure. */
export function planServiceHealthChecks(
  state: ClusterState,
  nodeName: string,
): Map<string, ServiceHealthCheck> {
  const checks = new Map<string, ServiceHealthCheck>();
  const local = new Map<string, Set<string>>();
  for (const sp of state.servicePorts) {
    // kube-proxy's NeedsHealthCheck: LoadBalancer with externalTrafficPolicy Local.
    if (sp.healthCheckNodePort === 0 || sp.type !== 'LoadBalancer' || sp.externalTrafficPolicy !== 'Local')
      continue;
    const key = `${sp.namespace}/${sp.serviceName}`;
    if (!checks.has(key)) {
      checks.set(key, {
        namespace: sp.namespace,
        name: sp.serviceName,
        port: sp.healthCheckNodePort,
        localEndpoints: 0,
      });
      local.set(key, new Set());
    }
    // Only ready counts here (not serving/terminating), as in kube-proxy's LocalReadyEndpoints.
    for (const ep of sp.endpoints) {
      if (ep.ready && ep.nodeName === nodeName) local.get(key)!.add(joinHostPort(ep.ip, ep.port));
    }
  }
  for (const [key, check] of checks) check.localEndpoints = local.get(key)!.size;
  return checks;
}

/** kube-proxy's reply body, byte for byte (a dedented, tab-indented JSON document). */
export function renderServiceHealthBody(
  namespace: string,
  name: string,
  localEndpoints: number,
  proxyHealthy: boolean,
): string {
  return [
    '{',
    '\t"service": {',
    `\t\t"namespace": ${JSON.stringify(namespace)},`,
    `\t\t"name": ${JSON.stringify(name)}`,
    '\t},',
    `\t"localEndpoints": ${localEndpoints},`,
    `\t"serviceProxyHealthy": ${proxyHealthy}`,
    '}',
  ].join('\n');
}

export interface ServiceHealthServerOptions {
  nodeName: string;
  /** Addresses to listen on (nodePortAddresses' node IPs); empty = every address. */
  listenAddresses?: string[];
  /** The proxy's own health: an unhealthy proxy makes every health check 503. */
  proxyHealth?: { isHealthy(): boolean };
  logger?: Logger;
  metrics?: ProxyMetrics;
}

interface OpenCheck {
  check: ServiceHealthCheck;
  servers: SimpleHttpServer[];
}

export class ServiceHealthServer {
  private readonly open = new Map<string, OpenCheck>();
  private readonly logger: Logger;
  private syncing: Promise<void> = Promise.resolve();

  constructor(private readonly opts: ServiceHealthServerOptions) {
    this.logger = opts.logger ?? silentLogger;
  }

  /** Nothing to do until the first sync(); present for the uniform start/stop shape. */
  async start(): Promise<void> {}

  /** Close every health-check port. */
  async stop(): Promise<void> {
    await this.serialise(async () => {
      for (const [key, entry] of this.open) {
        await Promise.all(entry.servers.map((s) => s.stop()));
        this.open.delete(key);
      }
      this.opts.metrics?.healthCheckNodePorts.set(0);
    });
  }

  /** Open/close/update health-check ports to match the state. A port that cannot be bound is logged and retried next sync. */
  sync(state: ClusterState): Promise<void> {
    return this.serialise(() => this.apply(planServiceHealthChecks(state, this.opts.nodeName)));
  }

  /** Currently served checks (for tests, doctor and trace). */
  served(): ServiceHealthCheck[] {
    return [...this.open.values()].map((e) => ({ ...e.check }));
  }

  private serialise(work: () => Promise<void>): Promise<void> {
    const next = this.syncing.then(work, work);
    this.syncing = next.catch(() => undefined);
    return next;
  }

  private async apply(wanted: Map<string, ServiceHealthCheck>): Promise<void> {
    for (const [key, entry] of this.open) {
      const want = wanted.get(key);
      if (want === undefined || want.port !== entry.check.port) {
        this.logger.info({ service: key, port: entry.check.port }, 'closing health-check node port');
        await Promise.all(entry.servers.map((s) => s.stop()));
        this.open.delete(key);
      }
    }
    for (const [key, check] of wanted) {
      const existing = this.open.get(key);
      if (existing) {
        existing.check.localEndpoints = check.localEndpoints;
        continue;
      }
      const entry: OpenCheck = { check: { ...check }, servers: [] };
      const hosts = this.opts.listenAddresses?.length ? this.opts.listenAddresses : [''];
      try {
        for (const host of hosts) {
          const server = new SimpleHttpServer({ host, port: check.port }, (_req, res) => {
            const healthy = this.opts.proxyHealth?.isHealthy() ?? true;
            const count = entry.check.localEndpoints;
            res.writeHead(count !== 0 && healthy ? 200 : 503, {
              'Content-Type': 'application/json',
              'X-Content-Type-Options': 'nosniff',
            });
            res.end(renderServiceHealthBody(check.namespace, check.name, count, healthy));
          });
          await server.start();
          entry.servers.push(server);
        }
      } catch (e) {
        await Promise.all(entry.servers.map((s) => s.stop()));
        this.logger.error(
          { service: key, port: check.port, error: (e as Error).message },
          `node ${this.opts.nodeName} failed to start healthcheck "${key}" on port ${check.port}`,
        );
        continue;
      }
      this.logger.info({ service: key, port: check.port }, 'opened health-check node port');
      this.open.set(key, entry);
    }
    this.opts.metrics?.healthCheckNodePorts.set(this.open.size);
  }
}
