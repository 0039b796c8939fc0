import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, defaultConfig, parseConfig, parseDuration } from '../../../src/config/config.js';
import { loadConfigFile } from '../../../src/config/load.js';

describe('parseDuration', () => {
  it.each([
    ['1s', 1000],
    ['30s', 30_000],
    ['1m0s', 60_000],
    ['500ms', 500],
    ['1h2m3.5s', 3_723_500],
    ['0', 0],
  ])('%s = %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms));
  it.each(['', '1', '1x', 's', '1s2'])('rejects %p', (text) => expect(() => parseDuration(text)).toThrow());
});

describe('parseConfig', () => {
  it('fills kube-proxy defaults', () => {
    const c = defaultConfig();
    expect(c.mode).toBe('iptables');
    expect(c.masqueradeBit).toBe(14);
    expect(c.masqueradeAll).toBe(false);
    expect(c.clusterCIDRs).toEqual([]);
    expect(c.nodePortAddresses).toEqual([]);
    expect(c.iptables.localhostNodePorts).toBe(true);
    expect(c.iptables.minSyncPeriod).toBe(1000);
    expect(c.iptables.syncPeriod).toBe(30_000);
    expect(c.ipvs.scheduler).toBe('rr');
    expect(c.ipvs.strictARP).toBe(false);
    expect(c.metricsBindAddress).toBe('127.0.0.1:10249');
    expect(c.healthzBindAddress).toBe('0.0.0.0:10256');
  });

  it('names an unknown key, nested too', () => {
    expect(() => parseConfig({ nodename: 'x' })).toThrow(/nodename: unknown key/);
    expect(() => parseConfig({ iptables: { minSyncPeriods: '1s' } })).toThrow(/iptables\.minSyncPeriods: unknown key/);
  });

  it('names the field of a bad value', () => {
    const bad = (raw: unknown, re: RegExp) => {
      try {
        parseConfig(raw, 'cfg.yaml');
        throw new Error('expected failure');
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        expect((e as Error).message).toMatch(re);
      }
    };
    bad({ mode: 'nftables' }, /cfg\.yaml: .*mode:/);
    bad({ clusterCIDRs: ['10.0.0.0/33'] }, /clusterCIDRs\.0: not a CIDR/);
    bad({ nodeIPs: ['10.0.0.256'] }, /nodeIPs\.0: not an IP address/);
    bad({ masqueradeBit: 32 }, /masqueradeBit/);
    bad({ iptables: { syncPeriod: '10 minutes' } }, /iptables\.syncPeriod: invalid duration/);
    bad({ nodePortAddresses: ['primary', '10.0.0.0/8'] }, /nodePortAddresses: "primary" cannot be combined/);
  });

  it('accepts the primary keyword and CIDR lists', () => {
    expect(parseConfig({ nodePortAddresses: ['primary'] }).nodePortAddresses).toEqual(['primary']);
    expect(parseConfig({ nodePortAddresses: ['10.0.0.0/8', 'fd00::/64'] }).nodePortAddresses).toHaveLength(2);
  });
});

describe('loadConfigFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pw-config-'));
  it('reads YAML and JSON', async () => {
    writeFileSync(join(dir, 'a.yaml'), 'nodeName: n1\niptables:\n  syncPeriod: 1m0s\n');
    writeFileSync(join(dir, 'b.json'), '{"mode": "ipvs", "ipvs": {"strictARP": true}}');
    expect((await loadConfigFile(join(dir, 'a.yaml'))).iptables.syncPeriod).toBe(60_000);
    const b = await loadConfigFile(join(dir, 'b.json'));
    expect(b.mode).toBe('ipvs');
    expect(b.ipvs.strictARP).toBe(true);
  });
  it('reports a missing file and bad syntax with the path', async () => {
    await expect(loadConfigFile(join(dir, 'nope.yaml'))).rejects.toThrow(/nope\.yaml: .*cannot read file/);
    writeFileSync(join(dir, 'bad.yaml'), 'mode: [unclosed');
    await expect(loadConfigFile(join(dir, 'bad.yaml'))).rejects.toThrow(/bad\.yaml: .*not valid YAML/);
  });
  it('no file means defaults', async () => {
    expect(await loadConfigFile(undefined)).toEqual(defaultConfig());
  });
});
