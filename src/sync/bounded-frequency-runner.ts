// kube-proxy's BoundedFrequencyRunner (DESIGN habit 6): a coalescing scheduler, not an event queue.
// - request() asks for a run; it is a no-op while a run is already pending (not yet started);
// - runs start at least minInterval apart (measured start to start), so a burst of changes costs one sync;
// - at most maxInterval passes without a run: the periodic run (the caller makes it a full resync);
// - a failed run is retried after a backoff that doubles up to retryMaxInterval; requests during the
//   backoff join the retry instead of hammering a failing tool;
// - one run at a time (p-queue, concurrency 1).
import PQueue from 'p-queue';
import type { Clock, TimerHandle } from './clock.js';

/** Why a run happens; when several reasons meet in one run, the strongest (last listed) is reported. */
export type RunTrigger = 'requested' | 'periodic' | 'retry';
const STRENGTH: Record<RunTrigger, number> = { requested: 0, periodic: 1, retry: 2 };

export interface BoundedFrequencyRunnerOptions {
  name: string;
  clock: Clock;
  /** Minimum gap between the starts of two runs (minSyncPeriod). */
  minIntervalMs: number;
  /** Maximum time between runs (syncPeriod); 0 = no periodic runs. */
  maxIntervalMs: number;
  /** First retry delay after a failure; doubled per consecutive failure. Default 1 s. */
  retryIntervalMs?: number;
  /** Cap of the retry delay. Default: maxIntervalMs, or 60 s when that is 0. */
  retryMaxIntervalMs?: number;
  /** The work. A rejection counts as a failure and schedules a retry. */
  run: (trigger: RunTrigger) => Promise<void>;
  /** Told about each failure (the runner itself never logs). */
  onFailure?: (err: unknown, retryInMs: number, consecutiveFailures: number) => void;
}

export class BoundedFrequencyRunner {
  private readonly queue = new PQueue({ concurrency: 1 });
  private pending: { timer: TimerHandle | null; at: number; trigger: RunTrigger } | null = null;
  private periodicTimer: TimerHandle | null = null;
  private lastStart = Number.NEGATIVE_INFINITY;
  private failures = 0;
  private started = false;
  private stopped = false;
  private readonly retryInterval: number;
  private readonly retryMax: number;

  constructor(private readonly opts: BoundedFrequencyRunnerOptions) {
    if (opts.minIntervalMs < 0 || opts.maxIntervalMs < 0) throw new Error(`${opts.name}: intervals must not be negative`);
    if (opts.maxIntervalMs > 0 && opts.minIntervalMs > opts.maxIntervalMs) {
      throw new Error(`${opts.name}: minInterval (${opts.minIntervalMs} ms) exceeds maxInterval (${opts.maxIntervalMs} ms)`);
    }
    this.retryInterval = opts.retryIntervalMs ?? 1000;
    this.retryMax = opts.retryMaxIntervalMs ?? (opts.maxIntervalMs > 0 ? opts.maxIntervalMs : 60_000);
  }

  /** Arm the periodic timer. Runs only start after start(); requests made before are kept. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.armPeriodic();
    if (this.pending) this.arm(this.pending.at, this.pending.trigger);
  }

  /** Ask for a run as soon as the minimum gap allows. No-op while one is pending. */
  request(): void {
    if (this.stopped || this.pending) return;
    this.schedule(Math.max(this.opts.clock.now(), this.lastStart + this.opts.minIntervalMs), 'requested');
  }

  /** Consecutive failures so far (0 after a success). */
  get consecutiveFailures(): number {
    return this.failures;
  }

  /** True while a run is scheduled but not yet started. */
  get hasPendingRun(): boolean {
    return this.pending !== null;
  }

  /** Cancel timers and wait for a run in progress to finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.pending?.timer) this.opts.clock.clearTimeout(this.pending.timer);
    this.pending = null;
    if (this.periodicTimer) this.opts.clock.clearTimeout(this.periodicTimer);
    this.periodicTimer = null;
    await this.queue.onIdle();
  }

  /** Wait until no run is in progress or queued (tests; `--once`). */
  async whenIdle(): Promise<void> {
    await this.queue.onIdle();
  }

  private schedule(at: number, trigger: RunTrigger): void {
    if (this.pending) {
      // Merge: keep the later due time (a retry's backoff wins over a request) and the stronger reason.
      const merged = STRENGTH[trigger] > STRENGTH[this.pending.trigger] ? trigger : this.pending.trigger;
      const due = Math.max(at, this.pending.at);
      if (this.pending.timer) this.opts.clock.clearTimeout(this.pending.timer);
      this.pending = { timer: null, at: due, trigger: merged };
    } else {
      this.pending = { timer: null, at, trigger };
    }
    if (this.started) this.arm(this.pending.at, this.pending.trigger);
  }

  private arm(at: number, trigger: RunTrigger): void {
    const delay = Math.max(0, at - this.opts.clock.now());
    const timer = this.opts.clock.setTimeout(() => this.fire(), delay);
    this.pending = { timer, at, trigger };
  }

  private fire(): void {
    const p = this.pending;
    if (!p || this.stopped) return;
    // Still pending until the queue actually starts it: requests meanwhile stay coalesced.
    p.timer = null;
    void this.queue.add(async () => {
      if (this.stopped) return;
      // A failure while this job waited re-armed the pending run for later (backoff): leave it to that timer.
      if (this.pending?.timer && this.pending.at > this.opts.clock.now()) return;
      const trigger = this.pending?.trigger ?? p.trigger;
      this.pending = null;
      await this.runOnce(trigger);
    });
  }

  private async runOnce(trigger: RunTrigger): Promise<void> {
    this.lastStart = this.opts.clock.now();
    if (this.periodicTimer) this.opts.clock.clearTimeout(this.periodicTimer);
    this.periodicTimer = null;
    try {
      await this.opts.run(trigger);
      this.failures = 0;
    } catch (err) {
      this.failures++;
      const delay = Math.min(this.retryMax, this.retryInterval * 2 ** (this.failures - 1));
      this.opts.onFailure?.(err, delay, this.failures);
      if (!this.stopped) this.schedule(this.opts.clock.now() + delay, 'retry');
    }
    if (!this.stopped) this.armPeriodic();
  }

  private armPeriodic(): void {
    if (this.opts.maxIntervalMs <= 0 || this.stopped) return;
    if (this.periodicTimer) this.opts.clock.clearTimeout(this.periodicTimer);
    this.periodicTimer = this.opts.clock.setTimeout(() => {
      this.periodicTimer = null;
      if (this.pending) {
        // A run is already coming: make it count as the periodic one too.
        if (STRENGTH[this.pending.trigger] < STRENGTH.periodic) this.pending.trigger = 'periodic';
        return;
      }
      this.schedule(this.opts.clock.now(), 'periodic');
    }, this.opts.maxIntervalMs);
  }
}
