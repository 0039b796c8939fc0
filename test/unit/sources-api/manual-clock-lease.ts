// A LeaseElector with timings short enough to step through on a ManualClock, shared by the lease
// election tests and the LoadBalancer status writer tests (which elect one writer between agents).
import type { Logger } from '../../../src/observe/logger.js';
import { LeaseElector, type LeaseElectorOptions } from '../../../src/sources/api/lease-election.js';
import type { ManualClock } from '../../../src/sync/clock.js';

/** 1 s lease, 200 ms retry period, 600 ms renew deadline; Lease timestamps from a fixed epoch plus the clock. */
export function manualClockLeaseElector(
  client: LeaseElectorOptions['client'],
  identity: string,
  clock: ManualClock,
  logger: Logger,
): LeaseElector {
  return new LeaseElector({
    client,
    identity,
    leaseDurationMs: 1000,
    retryPeriodMs: 200,
    renewDeadlineMs: 600,
    clock,
    wallClock: () => 1_700_000_000_000 + clock.now(),
    logger,
  });
}
