// kube-proxy's proxy health (pkg/proxy/healthcheck/proxy_health.go): healthy while every IP family's
// queued changes are applied within healthTimeout (kube-proxy uses 2 × syncPeriod); /healthz also
// turns 503 when this node is being deleted (deletionTimestamp or the cluster autoscaler's taint).
// /readyz (portway's addition) is 503 until the first successful sync.
// portway adds one rule to kube-proxy's (failingTooLong): a family whose syncs keep failing is
// unhealthy once its last successful sync is healthTimeout old, whether or not a change is queued.
// Both /healthz and /readyz are also 503 while the source cannot be believed (a manifest directory
// missing or unreadable): the rules stay as last synced, but a node that cannot follow its source
// must not look healthy.
// The evaluation is pure over an injected clock; HealthServer is the HTTP shell around it.
import type { IPFamily } from '../model/cluster-state.js';
import { parseBindAddress, pathOf, replyNotFound, SimpleHttpServer } from './http-server.js';
import type { ProxyMetrics } from './metrics.js';

/** Taint the cluster autoscaler puts on a node before deleting it. */
export const TO_BE_DELETED_TAINT = 'ToBeDeletedByClusterAutoscaler';

export interface HealthReply {
  status: 200 | 503;
  /** JSON text, laid out as kube-proxy writes it. */
  body: string;
}

export interface ProxyHealthOptions {
  /** A queued change not applied within this long makes the proxy unhealthy. */
  healthTimeoutMs: number;
  now?: () => number;
  metrics?: ProxyMetrics;
  /** Why the agent's source cannot be believed right now (AgentSource.problem), or undefined. */
  sourceProblem?: () => string | undefined;
}

/** kube-proxy's choice: healthTimeout = 2 × syncPeriod. */
export function healthTimeoutFor(syncPeriodMs: number): number {
  return 2 * syncPeriodMs;
}

/** Go's time.Time.String() for a UTC instant ("2006-01-02 15:04:05.999999999 +0000 UTC"); undefined = zero time. */
export function formatGoTime(ms: number | undefined): string {
  if (ms === undefined) return '0001-01-01 00:00:00 +0000 UTC';
  const iso = new Date(ms).toISOString(); // 2024-05-01T10:00:00.123Z
  const [date, time] = iso.slice(0, -1).split('T') as [string, string];
  const [hms, frac = ''] = time.split('.');
  const trimmed = frac.replace(/0+$/, '');
  return `${date} ${hms}${trimmed ? `.${trimmed}` : ''} +0000 UTC`;
}

export class ProxyHealth {
  private readonly lastUpdated = new Map<IPFamily, number>();
  private readonly oldestPendingQueued = new Map<IPFamily, number>();
  /** Per family: when the first of the failed syncs since its last successful one was attempted. */
  private readonly failingSince = new Map<IPFamily, number>();
  private nodeEligible = true;
  private readonly now: () => number;

  constructor(private readonly opts: ProxyHealthOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** A change for this family arrived and is waiting for a sync (only the oldest pending one counts). */
  queuedUpdate(family: IPFamily): void {
    if (!this.oldestPendingQueued.has(family)) this.oldestPendingQueued.set(family, this.now());
  }

  /** This family's rules were synced successfully. */
  updated(family: IPFamily): void {
    this.oldestPendingQueued.delete(family);
    this.failingSince.delete(family);
    this.lastUpdated.set(family, this.now());
  }

  /** A sync of this family failed: its rules may not be what they should be until one succeeds. */
  syncFailed(family: IPFamily): void {
    if (!this.failingSince.has(family)) this.failingSince.set(family, this.now());
  }

  /**
   * portway's addition to kube-proxy's rule. kube-proxy judges only queued changes, so a node whose
   * periodic syncs all fail while nothing changes (a full state disk, a broken iptables) stays healthy
   * there for ever. Here a family whose last sync failed is unhealthy once its last successful sync —
   * or, never synced, its first failed attempt — is healthTimeout (2 × syncPeriod) old: with a
   * periodic full sync every syncPeriod, a working node always has a newer success than that.
   */
  private failingTooLong(now: number): boolean {
    for (const [family, since] of this.failingSince) {
      const lastGood = this.lastUpdated.get(family) ?? since;
      if (now - lastGood >= this.opts.healthTimeoutMs) return true;
    }
    return false;
  }

  /** Node object as read from the API (or manifests): not eligible while being deleted. */
  syncNode(node: {
    metadata?: { deletionTimestamp?: unknown };
    spec?: { taints?: Array<{ key?: string }> };
  }): void {
    const deleting =
      node.metadata?.deletionTimestamp !== undefined && node.metadata.deletionTimestamp !== null;
    const tainted = (node.spec?.taints ?? []).some((t) => t.key === TO_BE_DELETED_TAINT);
    this.nodeEligible = !deleting && !tainted;
  }

  get isNodeEligible(): boolean {
    return this.nodeEligible;
  }

  /** Healthy, ignoring the node's state (what service health checks consult). */
  isHealthy(): boolean {
    return this.evaluate().healthy;
  }

  private evaluate(): { healthy: boolean; lastUpdated?: number; now: number } {
    const now = this.now();
    let lastUpdated: number | undefined;
    for (const [family, updated] of this.lastUpdated) {
      if (lastUpdated === undefined || updated > lastUpdated) lastUpdated = updated;
      const queued = this.oldestPendingQueued.get(family);
      if (queued !== undefined && now - queued >= this.opts.healthTimeoutMs) {
        return { healthy: false, lastUpdated: updated, now };
      }
    }
    // A family that has never synced is judged on its pending change too: a first sync that
    // never completes must not look healthy forever. (kube-proxy only iterates families that
    // have synced at least once; it starts healthy and stays so until then.)
    for (const [family, queued] of this.oldestPendingQueued) {
      if (!this.lastUpdated.has(family) && now - queued >= this.opts.healthTimeoutMs)
        return { healthy: false, lastUpdated, now };
    }
    if (this.failingTooLong(now)) return { healthy: false, lastUpdated, now };
    return { healthy: true, lastUpdated, now };
  }

  /** `, "sourceProblem": "…"` for a reply body while the source is broken, else ''. */
  private sourceField(): { broken: boolean; field: string } {
    const problem = this.opts.sourceProblem?.();
    return problem === undefined
      ? { broken: false, field: '' }
      : { broken: true, field: `, "sourceProblem": ${JSON.stringify(problem)}` };
  }

  healthz(): HealthReply {
    const { healthy, lastUpdated, now } = this.evaluate();
    const source = this.sourceField();
    const ok = healthy && this.nodeEligible && !source.broken;
    this.opts.metrics?.healthzTotal.inc({ code: ok ? '200' : '503' });
    // As kube-proxy: when healthy, lastUpdated reports the current time (compatibility with old releases).
    const shown = ok ? now : lastUpdated;
    return {
      status: ok ? 200 : 503,
      body: `{"lastUpdated": ${JSON.stringify(formatGoTime(shown))},"currentTime": ${JSON.stringify(formatGoTime(now))}, "nodeEligible": ${this.nodeEligible}${source.field}}`,
    };
  }

  livez(): HealthReply {
    const { healthy, lastUpdated, now } = this.evaluate();
    this.opts.metrics?.livezTotal.inc({ code: healthy ? '200' : '503' });
    const shown = healthy ? now : lastUpdated;
    return {
      status: healthy ? 200 : 503,
      body: `{"lastUpdated": ${JSON.stringify(formatGoTime(shown))},"currentTime": ${JSON.stringify(formatGoTime(now))}}`,
    };
  }

  /** Ready = healthz, and at least one successful sync has happened. */
  readyz(): HealthReply {
    const { healthy, lastUpdated, now } = this.evaluate();
    const source = this.sourceField();
    const ok = healthy && this.nodeEligible && lastUpdated !== undefined && !source.broken;
    return {
      status: ok ? 200 : 503,
      body: `{"lastUpdated": ${JSON.stringify(formatGoTime(lastUpdated))},"currentTime": ${JSON.stringify(formatGoTime(now))}, "nodeEligible": ${this.nodeEligible}, "synced": ${lastUpdated !== undefined}${source.field}}`,
    };
  }
}

/** /healthz, /livez and /readyz on healthzBindAddress. */
export class HealthServer extends SimpleHttpServer {
  constructor(health: ProxyHealth, opts: { bindAddress: string }) {
    super(parseBindAddress(opts.bindAddress, 'healthzBindAddress'), (req, res) => {
      const path = pathOf(req);
      const reply =
        path === '/healthz'
          ? health.healthz()
          : path === '/livez'
            ? health.livez()
            : path === '/readyz'
              ? health.readyz()
              : undefined;
      if (!reply) {
        replyNotFound(res);
        return;
      }
      res.writeHead(reply.status, {
        'Content-Type': 'application/json',
        'X-Content-Type-Options': 'nosniff',
      });
      res.end(reply.body);
    });
  }
}
