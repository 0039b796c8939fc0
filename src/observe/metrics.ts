// Prometheus metrics with kube-proxy's names, types and buckets (pkg/proxy/metrics/metrics.go), so
// existing kube-proxy dashboards and alerts keep working, plus portway_* metrics for what is new.
// The sync loop records through the small methods below; nothing here reads a clock.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { parseBindAddress, pathOf, replyNotFound, SimpleHttpServer } from './http-server.js';

/** prometheus.ExponentialBuckets(start, factor, count). */
export function exponentialBuckets(start: number, factor: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start * factor ** i);
}

/** prometheus.LinearBuckets(start, width, count). */
export function linearBuckets(start: number, width: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start + width * i);
}

/** component-base's MergeBuckets: note it starts with a 0 bucket, kept for identical series. */
export function mergeBuckets(...lists: number[][]): number[] {
  return [0, ...lists.flat()];
}

export const SYNC_DURATION_BUCKETS = exponentialBuckets(0.001, 2, 15);
export const NETWORK_PROGRAMMING_BUCKETS = mergeBuckets(
  linearBuckets(0.25, 0.25, 2),
  linearBuckets(1, 1, 59),
  linearBuckets(60, 5, 12),
  linearBuckets(120, 30, 7),
);

/** What the metrics read from the API source (ApiSource satisfies it). */
export interface ApiSourceView {
  connection(): { connected: boolean; disconnectedSince?: number; synced: boolean };
  readonly invalidObjectsTotal: number;
  current(): { problems: Array<{ kind: string }> };
}

export class ProxyMetrics {
  readonly registry: Registry;

  // ── kube-proxy's ──
  readonly syncProxyRulesDuration: Histogram;
  readonly syncFullProxyRulesDuration: Histogram;
  readonly syncPartialProxyRulesDuration: Histogram;
  readonly networkProgrammingDuration: Histogram;
  readonly syncProxyRulesLastTimestamp: Gauge;
  readonly syncProxyRulesLastQueuedTimestamp: Gauge;
  readonly iptablesRulesTotal: Gauge<'table'>;
  readonly iptablesRulesLast: Gauge<'table'>;
  readonly iptablesRestoreFailuresTotal: Counter;
  readonly iptablesPartialRestoreFailuresTotal: Counter;
  readonly endpointChangesPending: Gauge;
  readonly endpointChangesTotal: Counter;
  readonly serviceChangesPending: Gauge;
  readonly serviceChangesTotal: Counter;
  readonly noLocalEndpointsTotal: Gauge<'traffic_policy'>;
  readonly healthzTotal: Counter<'code'>;
  readonly livezTotal: Counter<'code'>;

  // ── portway's ──
  readonly apiConnected: Gauge;
  readonly apiDisconnectedSince: Gauge;
  readonly apiSynced: Gauge;
  readonly invalidObjects: Gauge<'kind'>;
  readonly invalidObjectsTotal: Counter;
  readonly healthCheckNodePorts: Gauge;
  /** Ingress backends by check state (ok, noService, noPort, noEndpoints, notChecked). */
  readonly ingressBackends: Gauge<'state'>;
  private apiSource?: ApiSourceView;

  constructor(opts: { processMetrics?: boolean } = {}) {
    const registers = [(this.registry = new Registry())];
    const hist = (name: string, help: string, buckets: number[]) =>
      new Histogram({ name, help, buckets, registers });
    const gauge = (name: string, help: string) => new Gauge({ name, help, registers });
    const counter = (name: string, help: string) => new Counter({ name, help, registers });

    this.syncProxyRulesDuration = hist(
      'kubeproxy_sync_proxy_rules_duration_seconds',
      'SyncProxyRules latency in seconds',
      SYNC_DURATION_BUCKETS,
    );
    this.syncFullProxyRulesDuration = hist(
      'kubeproxy_sync_full_proxy_rules_duration_seconds',
      'SyncProxyRules latency in seconds for full resyncs',
      SYNC_DURATION_BUCKETS,
    );
    this.syncPartialProxyRulesDuration = hist(
      'kubeproxy_sync_partial_proxy_rules_duration_seconds',
      'SyncProxyRules latency in seconds for partial resyncs',
      SYNC_DURATION_BUCKETS,
    );
    this.networkProgrammingDuration = hist(
      'kubeproxy_network_programming_duration_seconds',
      'In Cluster Network Programming Latency in seconds',
      NETWORK_PROGRAMMING_BUCKETS,
    );
    this.syncProxyRulesLastTimestamp = gauge(
      'kubeproxy_sync_proxy_rules_last_timestamp_seconds',
      'The last time proxy rules were successfully synced',
    );
    this.syncProxyRulesLastQueuedTimestamp = gauge(
      'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds',
      'The last time a sync of proxy rules was queued',
    );
    this.iptablesRulesTotal = new Gauge({
      name: 'kubeproxy_sync_proxy_rules_iptables_total',
      help: 'Total number of iptables rules owned by kube-proxy',
      labelNames: ['table'],
      registers,
    });
    this.iptablesRulesLast = new Gauge({
      name: 'kubeproxy_sync_proxy_rules_iptables_last',
      help: 'Number of iptables rules written by kube-proxy in last sync',
      labelNames: ['table'],
      registers,
    });
    this.iptablesRestoreFailuresTotal = counter(
      'kubeproxy_sync_proxy_rules_iptables_restore_failures_total',
      'Cumulative proxy iptables restore failures',
    );
    this.iptablesPartialRestoreFailuresTotal = counter(
      'kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total',
      'Cumulative proxy iptables partial restore failures',
    );
    this.endpointChangesPending = gauge(
      'kubeproxy_sync_proxy_rules_endpoint_changes_pending',
      'Pending proxy rules Endpoint changes',
    );
    this.endpointChangesTotal = counter(
      'kubeproxy_sync_proxy_rules_endpoint_changes_total',
      'Cumulative proxy rules Endpoint changes',
    );
    this.serviceChangesPending = gauge(
      'kubeproxy_sync_proxy_rules_service_changes_pending',
      'Pending proxy rules Service changes',
    );
    this.serviceChangesTotal = counter(
      'kubeproxy_sync_proxy_rules_service_changes_total',
      'Cumulative proxy rules Service changes',
    );
    this.noLocalEndpointsTotal = new Gauge({
      name: 'kubeproxy_sync_proxy_rules_no_local_endpoints_total',
      help: 'Number of services with a Local traffic policy and no endpoints',
      labelNames: ['traffic_policy'],
      registers,
    });
    this.ingressBackends = new Gauge({
      name: 'portway_ingress_backends',
      help: 'Ingress backends (rule paths and defaultBackends) by check state',
      labelNames: ['state'],
      registers,
    });
    this.healthzTotal = new Counter({
      name: 'kubeproxy_proxy_healthz_total',
      help: 'Cumulative proxy healthz HTTP status',
      labelNames: ['code'],
      registers,
    });
    this.livezTotal = new Counter({
      name: 'kubeproxy_proxy_livez_total',
      help: 'Cumulative proxy livez HTTP status',
      labelNames: ['code'],
      registers,
    });

    this.apiConnected = new Gauge({
      name: 'portway_api_connected',
      help: '1 while every API informer reaches the API server, 0 while disconnected (last known state is kept)',
      registers,
      collect: () => {
        if (this.apiSource) this.apiConnected.set(this.apiSource.connection().connected ? 1 : 0);
      },
    });
    this.apiDisconnectedSince = new Gauge({
      name: 'portway_api_disconnected_since_timestamp_seconds',
      help: 'When the API connection was lost (unix seconds); 0 while connected',
      registers,
      collect: () => {
        if (!this.apiSource) return;
        const since = this.apiSource.connection().disconnectedSince;
        this.apiDisconnectedSince.set(since === undefined ? 0 : since / 1000);
      },
    });
    this.apiSynced = new Gauge({
      name: 'portway_api_synced',
      help: '1 once every API informer has completed its initial list',
      registers,
      collect: () => {
        if (this.apiSource) this.apiSynced.set(this.apiSource.connection().synced ? 1 : 0);
      },
    });
    this.invalidObjects = new Gauge({
      name: 'portway_invalid_objects',
      help: 'Input objects currently skipped because they failed validation, by kind',
      labelNames: ['kind'],
      registers,
      collect: () => {
        if (!this.apiSource) return;
        this.invalidObjects.reset();
        let problems: Array<{ kind: string }> = [];
        try {
          problems = this.apiSource.current().problems;
        } catch {
          return; // not synced yet
        }
        for (const p of problems) this.invalidObjects.inc({ kind: p.kind || 'unknown' });
      },
    });
    this.invalidObjectsTotal = new Counter({
      name: 'portway_invalid_objects_total',
      help: 'Input objects found invalid (logged and skipped), counted each time a problem appears',
      registers,
      collect: () => {
        if (!this.apiSource) return;
        this.invalidObjectsTotal.reset();
        const n = this.apiSource.invalidObjectsTotal;
        if (n > 0) this.invalidObjectsTotal.inc(n);
      },
    });
    this.healthCheckNodePorts = gauge(
      'portway_health_check_node_ports',
      'Service health-check node ports currently served',
    );
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** Read API connection and invalid-object figures from this source at scrape time. */
  bindApiSource(source: ApiSourceView): void {
    this.apiSource = source;
  }

  /** A change was queued for sync (kube-proxy sets this from its BoundedFrequencyRunner request). */
  syncQueued(nowSeconds: number): void {
    this.syncProxyRulesLastQueuedTimestamp.set(nowSeconds);
  }

  /** One completed sync: duration into the overall and full/partial histograms; timestamp on success. */
  syncCompleted(sync: {
    durationSeconds: number;
    full: boolean;
    succeeded: boolean;
    endSeconds: number;
  }): void {
    this.syncProxyRulesDuration.observe(sync.durationSeconds);
    (sync.full ? this.syncFullProxyRulesDuration : this.syncPartialProxyRulesDuration).observe(
      sync.durationSeconds,
    );
    if (sync.succeeded) this.syncProxyRulesLastTimestamp.set(sync.endSeconds);
  }

  /** One iptables-restore run that failed (kube-proxy counts it where the restore returns an error). */
  restoreFailed(): void {
    this.iptablesRestoreFailuresTotal.inc();
  }

  /**
   * One partial sync of one family that failed, at whatever stage, so that the next one is full:
   * kube-proxy counts `!success && tryPartialSync`, not only a failed restore.
   */
  partialSyncFailed(): void {
    this.iptablesPartialRestoreFailuresTotal.inc();
  }

  /** Rules owned per table after a sync, and how many were written in it. */
  iptablesRules(table: string, total: number, writtenLastSync: number): void {
    this.iptablesRulesTotal.set({ table }, total);
    this.iptablesRulesLast.set({ table }, writtenLastSync);
  }

  changesSeen(counts: { services: number; endpoints: number }): void {
    if (counts.services > 0) this.serviceChangesTotal.inc(counts.services);
    if (counts.endpoints > 0) this.endpointChangesTotal.inc(counts.endpoints);
  }

  changesPending(counts: { services: number; endpoints: number }): void {
    this.serviceChangesPending.set(counts.services);
    this.endpointChangesPending.set(counts.endpoints);
  }

  networkProgrammed(seconds: number): void {
    this.networkProgrammingDuration.observe(seconds);
  }

  noLocalEndpoints(counts: { internal: number; external: number }): void {
    this.noLocalEndpointsTotal.set({ traffic_policy: 'internal' }, counts.internal);
    this.noLocalEndpointsTotal.set({ traffic_policy: 'external' }, counts.external);
  }

  /** Prometheus text exposition of everything registered. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}

/** What kube-proxy's metrics server puts on its plain-text replies (/proxyMode, /healthz). */
const PLAIN_TEXT = { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' };

/**
 * kube-proxy's metrics server, on metricsBindAddress: /metrics (Prometheus text), /proxyMode, and
 * the generic liveness ping /healthz (and /healthz/ping) that component-base installs there: "ok"
 * while the process serves, whatever the sync state (the proxy's health is on healthzBindAddress).
 */
export class MetricsServer extends SimpleHttpServer {
  constructor(metrics: ProxyMetrics, opts: { bindAddress: string; proxyMode?: string }) {
    super(parseBindAddress(opts.bindAddress, 'metricsBindAddress'), async (req, res) => {
      const path = pathOf(req);
      if (path === '/metrics') {
        const body = await metrics.text();
        res.writeHead(200, { 'Content-Type': metrics.registry.contentType });
        res.end(body);
      } else if (path === '/proxyMode' && opts.proxyMode) {
        res.writeHead(200, PLAIN_TEXT);
        res.end(opts.proxyMode);
      } else if (path === '/healthz' || path === '/healthz/ping') {
        res.writeHead(200, PLAIN_TEXT);
        res.end('ok');
      } else {
        replyNotFound(res);
      }
    });
  }
}
