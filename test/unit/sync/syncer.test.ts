// The mode seam `run` uses: one place picks the syncer and the sync periods from config.mode.
import { describe, expect, it } from '@jest/globals';
import { parseConfig } from '../../../src/config/config.js';
import { createFakeDataplane } from '../../../src/dataplane/index.js';
import { RecordingLogger } from '../../../src/observe/logger.js';
import { ManualClock } from '../../../src/sync/clock.js';
import { IpvsSyncer } from '../../../src/sync/ipvs-syncer.js';
import { proxyModeOf } from '../../../src/sync/syncer.js';

describe('proxyModeOf', () => {
  it('iptables mode syncs on the iptables block periods', () => {
    const mode = proxyModeOf(parseConfig({ iptables: { minSyncPeriod: '2s', syncPeriod: '1m' } }));
    expect([mode.name, mode.minSyncPeriodMs, mode.syncPeriodMs]).toEqual(['iptables', 2000, 60_000]);
  });

  it('ipvs mode syncs on the ipvs block periods with the ipvs syncer', () => {
    const config = parseConfig({ mode: 'ipvs', ipvs: { minSyncPeriod: '3s', syncPeriod: '2m' } });
    const mode = proxyModeOf(config);
    expect([mode.name, mode.minSyncPeriodMs, mode.syncPeriodMs]).toEqual(['ipvs', 3000, 120_000]);
    const dp = createFakeDataplane();
    const syncer = mode.createSyncer({
      config,
      nodeIPs: ['192.168.0.2'],
      families: [{ family: 'IPv4', iptables: dp.iptables.IPv4! }],
      clock: new ManualClock(),
      logger: new RecordingLogger(),
      ipvs: { ipvs: dp.ipvs, ipset: dp.ipset, links: dp.ip },
    });
    expect(syncer).toBeInstanceOf(IpvsSyncer);
    expect(() =>
      mode.createSyncer({
        config,
        nodeIPs: ['192.168.0.2'],
        families: [{ family: 'IPv4', iptables: dp.iptables.IPv4! }],
        clock: new ManualClock(),
        logger: new RecordingLogger(),
      }),
    ).toThrow('ipvs mode: no IPVS, ipset and link executors given');
  });
});
