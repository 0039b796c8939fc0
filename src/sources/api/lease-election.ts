// One writer among the agents, elected with a coordination.k8s.io/v1 Lease the way client-go's leaderelection
// does it: every candidate reads the Lease every retry period; the holder renews it (renewTime); a candidate
// takes it when it is free (no holder) or when its record has not changed for leaseDurationSeconds as
// measured on the candidate's own clock (so clock skew between nodes does not matter); every write carries the
// resourceVersion it read, so two candidates racing for an expired Lease cannot both win (the loser gets 409
// and re-reads). A holder that cannot renew within the renew deadline stops acting as leader before its Lease
// can expire elsewhere. On stop the holder releases the Lease (empty holder) so a peer takes over at once.
import type { Logger } from '../../observe/logger.js';
import type { Clock, TimerHandle } from '../../sync/clock.js';
import { apiErrorMessage, type KubeWriteClient } from './api-writer.js';

/** The Lease's spec fields the election uses. */
export interface LeaseRecord {
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime: string;
  renewTime: string;
  leaseTransitions: number;
}

export type LeaseDecision =
  | { action: 'create' }
  /** We hold it: write a new renewTime. */
  | { action: 'renew' }
  /** Free or expired: take it. */
  | { action: 'acquire'; previousHolder: string }
  /** Someone else holds a valid Lease. */
  | { action: 'wait'; holder: string; expiresInMs: number };

/**
 * What a candidate should do with the Lease it read. Pure. `observedAtMs` is when (on the candidate's clock)
 * the record was last seen to change; the Lease is valid until observedAtMs + leaseDurationSeconds.
 */
export function decideLease(
  record: LeaseRecord | null,
  identity: string,
  observedAtMs: number,
  nowMs: number,
): LeaseDecision {
  if (record === null) return { action: 'create' };
  if (record.holderIdentity === identity) return { action: 'renew' };
  if (record.holderIdentity === '') return { action: 'acquire', previousHolder: '' };
  const expiresInMs = observedAtMs + record.leaseDurationSeconds * 1000 - nowMs;
  if (expiresInMs > 0) return { action: 'wait', holder: record.holderIdentity, expiresInMs };
  return { action: 'acquire', previousHolder: record.holderIdentity };
}

/** Kubernetes MicroTime: RFC 3339 with six fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** The spec of a Lease object as LeaseRecord, with missing fields defaulted. */
export function parseLeaseRecord(lease: unknown): LeaseRecord {
  const spec = ((lease as { spec?: Record<string, unknown> } | undefined)?.spec ?? {}) as Record<string, unknown>;
  const str = (v: unknown): string => (typeof v === 'string' ? v : '');
  const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  return {
    holderIdentity: str(spec.holderIdentity),
    leaseDurationSeconds: num(spec.leaseDurationSeconds),
    acquireTime: str(spec.acquireTime),
    renewTime: str(spec.renewTime),
    leaseTransitions: num(spec.leaseTransitions),
  };
}

export const DEFAULT_LEASE_NAME = 'portway-lb-status';
export const DEFAULT_LEASE_NAMESPACE = 'kube-system';

export interface LeaseElectorOptions {
  client: KubeWriteClient;
  identity: string;
  namespace?: string;
  name?: string;
  /** How long a Lease stays valid without renewal (client-go's LeaseDuration; written in whole seconds, ≥ 1). */
  leaseDurationMs?: number;
  /** Gap between attempts to acquire or renew (client-go's RetryPeriod). */
  retryPeriodMs?: number;
  /** A leader that has not renewed for this long steps down (client-go's RenewDeadline; < leaseDuration). */
  renewDeadlineMs?: number;
  clock: Clock;
  /** Wall clock for the Lease's timestamps (default Date.now). */
  wallClock?: () => number;
  logger: Logger;
}

type Attempt = 'leader' | 'follower' | 'failed';

export class LeaseElector {
  private readonly path: string;
  private readonly namespace: string;
  private readonly name: string;
  private readonly durationSeconds: number;
  private readonly retryPeriodMs: number;
  private readonly renewDeadlineMs: number;
  private readonly wallClock: () => number;
  private leader = false;
  private running = false;
  private timer: TimerHandle | null = null;
  private inflight: Promise<void> | null = null;
  /** The last record read or written, the time it was first seen, and the object (for its resourceVersion). */
  private observedJson = '';
  private observedAt = 0;
  private observedHolder = '';
  private lastLease: Record<string, unknown> | null = null;
  private lastRenewAt = 0;
  private readonly listeners: Array<(leader: boolean) => void> = [];

  constructor(private readonly opts: LeaseElectorOptions) {
    if (opts.identity === '') throw new Error('lease election: identity (the node name) must not be empty');
    this.namespace = opts.namespace ?? DEFAULT_LEASE_NAMESPACE;
    this.name = opts.name ?? DEFAULT_LEASE_NAME;
    this.path = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.namespace)}/leases/${encodeURIComponent(this.name)}`;
    const durationMs = opts.leaseDurationMs ?? 15_000;
    this.durationSeconds = Math.max(1, Math.round(durationMs / 1000));
    this.retryPeriodMs = opts.retryPeriodMs ?? 2_000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? Math.floor((this.durationSeconds * 1000 * 2) / 3);
    if (this.renewDeadlineMs >= this.durationSeconds * 1000)
      throw new Error('lease election: renewDeadlineMs must be shorter than the lease duration');
    this.wallClock = opts.wallClock ?? Date.now;
  }

  /** Called with true on gaining and false on losing the Lease. */
  onLeadershipChange(listener: (leader: boolean) => void): void {
    this.listeners.push(listener);
  }

  isLeader(): boolean {
    return this.leader;
  }

  /** The holder last seen in the Lease ('' when free or not read yet). */
  holder(): string {
    return this.observedHolder;
  }

  /** Begin trying at once; then every retry period. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /** Stop trying; a leader steps down and (unless release is false, as after a crash) frees the Lease. */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.timer) this.opts.clock.clearTimeout(this.timer);
    this.timer = null;
    await this.inflight;
    const wasLeader = this.leader;
    this.setLeader(false);
    if (wasLeader && opts.release !== false) await this.release();
  }

  /** Wait for the attempt in flight (tests). */
  async idle(): Promise<void> {
    await this.inflight;
  }

  private schedule(ms: number): void {
    if (!this.running) return;
    this.timer = this.opts.clock.setTimeout(() => {
      this.timer = null;
      this.inflight = this.attempt().finally(() => {
        this.inflight = null;
        this.schedule(this.retryPeriodMs);
      });
    }, ms);
  }

  private async attempt(): Promise<void> {
    let outcome: Attempt;
    try {
      outcome = await this.tryAcquireOrRenew();
    } catch (e) {
      this.opts.logger.warn(
        { lease: `${this.namespace}/${this.name}`, err: (e as Error).message },
        'lease election: cannot read or write the Lease',
      );
      outcome = 'failed';
    }
    if (!this.running) return;
    if (outcome === 'leader') {
      this.lastRenewAt = this.opts.clock.now();
      this.setLeader(true);
    } else if (outcome === 'follower') {
      this.setLeader(false);
    } else if (this.leader && this.opts.clock.now() - this.lastRenewAt >= this.renewDeadlineMs) {
      // Step down before the Lease can expire for the others: two writers at once is what this prevents.
      this.opts.logger.warn(
        { lease: `${this.namespace}/${this.name}`, renewDeadlineMs: this.renewDeadlineMs },
        'lease election: could not renew the Lease in time; no longer the LoadBalancer status writer',
      );
      this.setLeader(false);
    }
  }

  private observe(lease: Record<string, unknown>): LeaseRecord {
    const record = parseLeaseRecord(lease);
    // Any write (a new resourceVersion) counts as a sign of life, even one within the same renewTime tick.
    const rv = (lease.metadata as { resourceVersion?: unknown } | undefined)?.resourceVersion;
    const json = JSON.stringify([record, rv]);
    if (json !== this.observedJson) {
      this.observedJson = json;
      this.observedAt = this.opts.clock.now();
    }
    this.observedHolder = record.holderIdentity;
    this.lastLease = lease;
    return record;
  }

  private async tryAcquireOrRenew(): Promise<Attempt> {
    const { client, identity } = this.opts;
    const wall = microTime(this.wallClock());
    // resourceVersion=0: served from the API server's watch cache, not a quorum read from etcd. Every
    // agent reads every retry period (1800 reads an hour each), so at thousands of nodes this is the
    // difference between thousands of etcd reads a second and none. A read that is a little stale is
    // harmless: every write below is conditional on the resourceVersion read (a stale one gets 409 and
    // the next round reads again), and a record seen unchanged for a lease duration is only taken over
    // by such a conditional write.
    const got = await client.get(`${this.path}?resourceVersion=0`);
    if (got.status === 404) {
      const created = await client.create(this.path.replace(/\/[^/]+$/, ''), {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: this.name, namespace: this.namespace },
        spec: {
          holderIdentity: identity,
          leaseDurationSeconds: this.durationSeconds,
          acquireTime: wall,
          renewTime: wall,
          leaseTransitions: 0,
        },
      });
      if (created.status === 201 || created.status === 200) {
        this.observe(created.body as Record<string, unknown>);
        this.logAcquired('');
        return 'leader';
      }
      if (created.status === 409) return 'failed'; // a peer created it first: read it next round
      throw new Error(`create Lease ${this.namespace}/${this.name}: ${apiErrorMessage(created)}`);
    }
    if (got.status !== 200) throw new Error(`get Lease ${this.namespace}/${this.name}: ${apiErrorMessage(got)}`);
    const lease = got.body as Record<string, unknown>;
    const record = this.observe(lease);
    const decision = decideLease(record, identity, this.observedAt, this.opts.clock.now());
    if (decision.action === 'wait') return 'follower';
    const renewing = decision.action === 'renew';
    const spec: LeaseRecord = {
      holderIdentity: identity,
      leaseDurationSeconds: this.durationSeconds,
      acquireTime: renewing && record.acquireTime !== '' ? record.acquireTime : wall,
      renewTime: wall,
      leaseTransitions: renewing ? record.leaseTransitions : record.leaseTransitions + 1,
    };
    // resourceVersion is what makes the write conditional: 409 when a peer wrote in between.
    const updated = await client.update(this.path, { ...lease, spec: { ...(lease.spec as object), ...spec } });
    if (updated.status === 200) {
      this.observe(updated.body as Record<string, unknown>);
      if (!renewing) this.logAcquired(decision.action === 'acquire' ? decision.previousHolder : '');
      return 'leader';
    }
    if (updated.status === 409) return 'failed';
    throw new Error(`update Lease ${this.namespace}/${this.name}: ${apiErrorMessage(updated)}`);
  }

  private logAcquired(previousHolder: string): void {
    this.opts.logger.info(
      { lease: `${this.namespace}/${this.name}`, identity: this.opts.identity, previousHolder },
      'lease election: acquired the Lease; this node writes LoadBalancer status',
    );
  }

  private async release(): Promise<void> {
    const lease = this.lastLease;
    if (!lease) return;
    const wall = microTime(this.wallClock());
    const record = parseLeaseRecord(lease);
    try {
      const res = await this.opts.client.update(this.path, {
        ...lease,
        spec: { ...(lease.spec as object), holderIdentity: '', leaseDurationSeconds: 1, acquireTime: wall, renewTime: wall, leaseTransitions: record.leaseTransitions },
      });
      // 409: a peer already took it over; nothing to release.
      if (res.status !== 200 && res.status !== 409)
        this.opts.logger.warn({ lease: `${this.namespace}/${this.name}`, err: apiErrorMessage(res) }, 'lease election: cannot release the Lease');
    } catch (e) {
      this.opts.logger.warn({ lease: `${this.namespace}/${this.name}`, err: (e as Error).message }, 'lease election: cannot release the Lease');
    }
  }

  private setLeader(leader: boolean): void {
    if (leader === this.leader) return;
    this.leader = leader;
    for (const l of this.listeners) l(leader);
  }
}
