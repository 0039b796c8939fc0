// nftables mode renders (render, diff) but `run` cannot apply it yet: the mode seam refuses it before
// anything on the node is touched, naming the mode and what to use instead.
import { describe, expect, it } from '@jest/globals';
import { parseConfig } from '../../../src/config/config.js';
import { proxyModeOf } from '../../../src/sync/syncer.js';

describe('proxyModeOf in nftables mode', () => {
  it('is accepted by the configuration and refused by run with a clear message', () => {
    const config = parseConfig({ mode: 'nftables' });
    expect(config.mode).toBe('nftables');
    expect(() => proxyModeOf(config)).toThrow(
      'config mode: "nftables" is dry-run only for now (render, diff); `portway run` needs mode: iptables',
    );
  });
});
