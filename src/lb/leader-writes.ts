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
