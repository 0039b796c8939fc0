// The loop both API status writers share (LoadBalancer status, Ingress status): writes run only while
// this agent holds the Lease and is started, one pass at a time, a request during a pass runs one more
// pass after it, and a failed pass is retried after a delay.
import type { Logger } from '../observe/logger.js';
import type { Clock, TimerHandle } from '../sync/clock.js';

/** What a leader-election handle must offer a writer. */
export interface Leadership {
  isLeader(): boolean;
  onLeadershipChange(listener: (leader: boolean) => void): void;
  start(): void;
  stop(opts?: { release?: boolean }): Promise<void>;
}

export interface LeaderGatedWritesOptions {
  leadership: Leadership;
  clock: Clock;
  logger: Logger;
  /** Delay before retrying after a failed pass (default 5 s). */
  retryMs?: number;
  /** Log message prefix, e.g. "Ingress status". */
  label: string;
  /** One pass; false when some write failed (retried later). */
  writeOnce: () => Promise<boolean>;
  /** Whether there is anything to write yet (no pass before the first input). */
  hasInput: () => boolean;
  /** Called once per failed pass that schedules a retry. */
  onFailure: () => void;
}

export class LeaderGatedWrites {
  private running = false;
  private dirty = false;
  private loop: Promise<void> | null = null;
  private retryTimer: TimerHandle | null = null;

  constructor(private readonly opts: LeaderGatedWritesOptions) {}

  /** Started and leader: a pass may write. */
  mayWrite(): boolean {
    return this.running && this.opts.leadership.isLeader();
  }

  start(): void {
    this.running = true;
    this.opts.leadership.start();
  }

  async stop(opts: { release?: boolean } = {}): Promise<void> {
    this.running = false;
    if (this.retryTimer) this.opts.clock.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    await this.loop;
    await this.opts.leadership.stop(opts);
  }

  /** Wait until nothing is being written (tests). */
  async idle(): Promise<void> {
    while (this.loop) await this.loop;
  }

  request(): void {
    if (!this.mayWrite() || !this.opts.hasInput()) return;
    this.dirty = true;
    this.loop ??= this.drain().finally(() => {
      this.loop = null;
    });
  }

  private async drain(): Promise<void> {
    while (this.dirty && this.running) {
      this.dirty = false;
      let ok: boolean;
      try {
        ok = await this.opts.writeOnce();
      } catch (e) {
        this.opts.logger.warn({ err: (e as Error).message }, `${this.opts.label}: write failed`);
        ok = false;
      }
      if (!ok && !this.retryTimer && this.running) {
        this.opts.onFailure();
        this.retryTimer = this.opts.clock.setTimeout(() => {
          this.retryTimer = null;
          this.request();
        }, this.opts.retryMs ?? 5_000);
      }
    }
  }
}

/** What every status writer is built from. */
export interface LeaderGatedStatusWriterOptions {
  leadership: Leadership;
  clock: Clock;
  logger: Logger;
  retryMs?: number;
}

/**
 * The part the LoadBalancer and Ingress status writers share: the leader-gated write loop, what was
 * written and which Event was last sent per object (forgotten when this agent becomes leader: a fresh
 * leader knows nothing of what the previous one sent; patches are re-planned from the observed status
 * and an Event may repeat once), the request counters, and start/stop/idle. A subclass keeps its input,
 * says whether it has any yet, and writes one pass.
 */
export abstract class LeaderGatedStatusWriter {
  /** Object key → the status patched in, and the status seen before (skip while the informer still shows that). */
  protected readonly written = new Map<string, { wanted: string; seenBefore: string }>();
  /** Object key → the last Event sent ("reason\nmessage"; the Ingress writer sets '' after a recovery). */
  protected readonly emitted = new Map<string, string>();
  protected readonly writes: LeaderGatedWrites;
  /** Requests sent, for metrics and tests. */
  readonly stats = { patches: 0, events: 0, failures: 0 };

  protected constructor(
    private readonly leadership: Leadership,
    opts: LeaderGatedStatusWriterOptions & { label: string },
  ) {
    this.writes = new LeaderGatedWrites({
      leadership,
      clock: opts.clock,
      logger: opts.logger,
      ...(opts.retryMs !== undefined ? { retryMs: opts.retryMs } : {}),
      label: opts.label,
      writeOnce: () => this.writeOnce(),
      hasInput: () => this.hasInput(),
      onFailure: () => {
        this.stats.failures += 1;
      },
    });
    leadership.onLeadershipChange((leader) => {
      if (leader) {
        this.written.clear();
        this.emitted.clear();
        this.request();
      }
    });
  }

  /** Whether there is anything to write yet. */
  protected abstract hasInput(): boolean;
  /** One pass over the latest input; false when some write failed (retried later). */
  protected abstract writeOnce(): Promise<boolean>;

  start(): void {
    this.writes.start();
  }

  async stop(opts: { release?: boolean } = {}): Promise<void> {
    await this.writes.stop(opts);
  }

  /** Wait until nothing is being written (tests). */
  async idle(): Promise<void> {
    await this.writes.idle();
  }

  isLeader(): boolean {
    return this.leadership.isLeader();
  }

  protected request(): void {
    this.writes.request();
  }
}
