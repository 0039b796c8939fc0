// The mode seam `run` uses: one place picks the syncer and the sync periods from config.mode.
import { describe, expect, it } from '@jest/globals';
import { parseConfig } from '../../../src/config/config.js';
import { proxyModeOf } from '../../../src/sync/syncer.js';

describe('proxyModeOf', () => {
  it('iptables mode syncs on the iptables block periods', () => {
    const mode = proxyModeOf(parseConfig({ iptables: { minSyncPeriod: '2s', syncPeriod: '1m' } }));
    expect([mode.name, mode.minSyncPeriodMs, mode.syncPeriodMs]).toEqual(['iptables', 2000, 60_000]);
  });

  it('refuses ipvs mode with a clear message until it can be applied', () => {
    expect(() => proxyModeOf(parseConfig({ mode: 'ipvs' }))).toThrow(
      'config mode: "ipvs" is not supported by `portway run` yet (use mode: iptables)',
    );
  });
});
