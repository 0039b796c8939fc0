import { describe, expect, it } from '@jest/globals';
import { BoundedFrequencyRunner, type RunTrigger } from '../../../src/sync/bounded-frequency-runner.js';
import { ManualClock } from '../../../src/sync/clock.js';

interface Harness {
  clock: ManualClock;
  runner: BoundedFrequencyRunner;
  runs: Array<{ at: number; trigger: RunTrigger }>;
  failures: Array<{ retryIn: number; count: number }>;
  /** Make the next n runs fail. */
  failNext: (n: number) => void;
  /** Make each run take this long (on the manual clock). */
  setDuration: (ms: number) => void;
}

function harness(min = 1000, max = 30_000, retry = 1000, retryMax = 8000): Harness {
  const clock = new ManualClock(0);
  const runs: Harness['runs'] = [];
  const failures: Harness['failures'] = [];
  let failCount = 0;
  let duration = 0;
  const runner = new BoundedFrequencyRunner({
    name: 'test',
    clock,
    minIntervalMs: min,
    maxIntervalMs: max,
    retryIntervalMs: retry,
    retryMaxIntervalMs: retryMax,
    run: async (trigger) => {
      runs.push({ at: clock.now(), trigger });
      if (duration > 0) await new Promise<void>((r) => clock.setTimeout(r, duration));
      if (failCount > 0) {
        failCount--;
        throw new Error('iptables-restore failed');
      }
    },
    onFailure: (_e, retryIn, count) => failures.push({ retryIn, count }),
  });
  return {
    clock,
    runner,
    runs,
    failures,
    failNext: (n) => (failCount = n),
    setDuration: (ms) => (duration = ms),
  };
}

describe('BoundedFrequencyRunner', () => {
  it('runs a first request at once and coalesces a burst into one run after the minimum gap', async () => {
    const h = harness();
    h.runner.start();
    h.runner.request();
    await h.clock.advance(0);
    expect(h.runs).toEqual([{ at: 0, trigger: 'requested' }]);
    // a burst of 50 changes 100 ms later
    await h.clock.advance(100);
    for (let i = 0; i < 50; i++) h.runner.request();
    expect(h.runner.hasPendingRun).toBe(true);
    await h.clock.advance(800);
    expect(h.runs).toHaveLength(1); // not before the 1 s gap
    await h.clock.advance(100);
    expect(h.runs).toEqual([
      { at: 0, trigger: 'requested' },
      { at: 1000, trigger: 'requested' },
    ]);
    await h.runner.stop();
  });

  it('request() is a no-op while a run is pending', async () => {
    const h = harness();
    h.runner.start();
    h.runner.request();
    h.runner.request();
    h.runner.request();
    await h.clock.advance(5000);
    expect(h.runs).toHaveLength(1);
    await h.runner.stop();
  });

  it('runs periodically at the maximum interval with trigger "periodic"', async () => {
    const h = harness(1000, 30_000);
    h.runner.start();
    await h.clock.advance(29_999);
    expect(h.runs).toEqual([]);
    await h.clock.advance(1);
    expect(h.runs).toEqual([{ at: 30_000, trigger: 'periodic' }]);
    // a requested run resets the period
    await h.clock.advance(10_000);
    h.runner.request();
    await h.clock.advance(0);
    await h.clock.advance(29_999);
    expect(h.runs.map((r) => r.at)).toEqual([30_000, 40_000]);
    await h.clock.advance(1);
    expect(h.runs.map((r) => r.at)).toEqual([30_000, 40_000, 70_000]);
    await h.runner.stop();
  });

  it('retries after a failure with doubling backoff, capped, and resets after a success', async () => {
    const h = harness(1000, 60_000, 1000, 4000);
    h.runner.start();
    h.failNext(4);
    h.runner.request();
    await h.clock.advance(0);
    await h.clock.advance(20_000);
    // failed at 0, retried at 1000 (+1 s), 3000 (+2 s), 7000 (+4 s), 11000 (+4 s, capped) which succeeds
    expect(h.runs.map((r) => [r.at, r.trigger])).toEqual([
      [0, 'requested'],
      [1000, 'retry'],
      [3000, 'retry'],
      [7000, 'retry'],
      [11_000, 'retry'],
    ]);
    expect(h.failures.map((f) => f.retryIn)).toEqual([1000, 2000, 4000, 4000]);
    expect(h.runner.consecutiveFailures).toBe(0);
    // after success, the next failure starts from the first retry delay again
    h.failNext(1);
    h.runner.request();
    await h.clock.advance(0);
    expect(h.failures.at(-1)).toEqual({ retryIn: 1000, count: 1 });
    await h.runner.stop();
  });

  it('a request during the backoff joins the retry instead of running early', async () => {
    const h = harness(100, 60_000, 5000, 5000);
    h.runner.start();
    h.failNext(1);
    h.runner.request();
    await h.clock.advance(0);
    await h.clock.advance(200);
    h.runner.request();
    await h.clock.advance(1000);
    expect(h.runs).toHaveLength(1);
    await h.clock.advance(4000);
    expect(h.runs.map((r) => [r.at, r.trigger])).toEqual([
      [0, 'requested'],
      [5000, 'retry'],
    ]);
    await h.runner.stop();
  });

  it('runs one at a time: a request during a long run waits for it and then for the gap', async () => {
    const h = harness(1000, 60_000);
    h.setDuration(3000);
    h.runner.start();
    h.runner.request();
    await h.clock.advance(0);
    await h.clock.advance(500);
    h.runner.request(); // during the run
    await h.clock.advance(2000);
    expect(h.runs).toHaveLength(1); // the first is still running (until 3000)
    await h.clock.advance(600);
    expect(h.runs.map((r) => r.at)).toEqual([0, 3000]);
    await h.clock.advance(10_000);
    expect(h.runs).toHaveLength(2);
    await h.runner.stop();
  });

  it('requests before start() are kept; stop() cancels timers', async () => {
    const h = harness();
    h.runner.request();
    await h.clock.advance(5000);
    expect(h.runs).toEqual([]);
    h.runner.start();
    await h.clock.advance(0);
    expect(h.runs).toHaveLength(1);
    await h.runner.stop();
    h.runner.request();
    await h.clock.advance(120_000);
    expect(h.runs).toHaveLength(1);
    expect(h.clock.pendingTimers()).toEqual([]);
  });

  it('rejects a minimum interval above the maximum', () => {
    expect(
      () =>
        new BoundedFrequencyRunner({ name: 'x', clock: new ManualClock(), minIntervalMs: 5, maxIntervalMs: 1, run: async () => {} }),
    ).toThrow(/minInterval \(5 ms\) exceeds maxInterval \(1 ms\)/);
  });
});
