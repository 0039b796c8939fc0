import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, defaultConfig, parseConfig, parseDuration } from '../../../src/config/config.js';
import { loadConfigFile, MAX_CONFIG_BYTES } from '../../../src/config/load.js';
import { configErrorOf } from './config-error.js';

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
    expect(() => parseConfig({ iptables: { minSyncPeriods: '1s' } })).toThrow(
      /iptables\.minSyncPeriods: unknown key/,
    );
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
    bad({ mode: 'userspace' }, /cfg\.yaml: .*mode:/);
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
  it('refuses a file larger than the cap after reading no more than the cap', async () => {
    writeFileSync(join(dir, 'huge.yaml'), `nodeName: n1\n#${'x'.repeat(MAX_CONFIG_BYTES)}\n`);
    await expect(loadConfigFile(join(dir, 'huge.yaml'))).rejects.toThrow(
      /huge\.yaml: .*larger than 1048576 bytes/,
    );
    writeFileSync(join(dir, 'just.yaml'), `nodeName: n1\n#${'x'.repeat(MAX_CONFIG_BYTES - 20)}\n`);
    expect((await loadConfigFile(join(dir, 'just.yaml'))).nodeName).toBe('n1');
  });
  it('stops reading an endless device at the cap', async () => {
    await expect(loadConfigFile('/dev/zero')).rejects.toThrow(/\/dev\/zero: .*larger than/);
  });
});

describe('durations are bounded (issue 9)', () => {
  it.each([
    [
      { iptables: { syncPeriod: '99999999999h' } },
      /iptables\.syncPeriod: duration "99999999999h" is out of range/,
    ],
    [{ iptables: { syncPeriod: 1e308 } }, /iptables\.syncPeriod: duration 1e\+308 is out of range/],
    [{ iptables: { syncPeriod: '597h' } }, /iptables\.syncPeriod: .*out of range/], // 2^31 ms is 596.5 h
    [{ iptables: { minSyncPeriod: -1 } }, /iptables\.minSyncPeriod: .*out of range/],
    [{ ipvs: { syncPeriod: '1000000h' } }, /ipvs\.syncPeriod: .*out of range/],
    [{ loadBalancer: { memberDownAfter: '9999999h' } }, /loadBalancer\.memberDownAfter: .*out of range/],
    [{ loadBalancer: { startupHold: Infinity } }, /loadBalancer\.startupHold: .*out of range/],
  ])('%j', (raw, re) => expect(configErrorOf(raw)).toMatch(re));

  it('accepts the longest timer Node can hold', () => {
    expect(parseConfig({ iptables: { syncPeriod: '596h' } }).iptables.syncPeriod).toBe(596 * 3_600_000);
    expect(parseConfig({ iptables: { syncPeriod: 2147483.647 } }).iptables.syncPeriod).toBe(2 ** 31 - 1);
  });

  it('syncPeriod must be positive and not below minSyncPeriod, as kube-proxy validates', () => {
    expect(configErrorOf({ iptables: { syncPeriod: '0s' } })).toMatch(
      /iptables\.syncPeriod: must be greater than 0/,
    );
    expect(configErrorOf({ mode: 'ipvs', ipvs: { syncPeriod: 0 } })).toMatch(
      /ipvs\.syncPeriod: must be greater than 0/,
    );
    expect(configErrorOf({ mode: 'ipvs', ipvs: { minSyncPeriod: '1m', syncPeriod: '30s' } })).toMatch(
      /ipvs\.syncPeriod: must be greater than or equal to minSyncPeriod/,
    );
    // As kube-proxy: the ipvs periods are checked in ipvs mode only.
    expect(parseConfig({ ipvs: { syncPeriod: 0 } }).ipvs.syncPeriod).toBe(0);
    expect(configErrorOf({ iptables: { minSyncPeriod: '10s', syncPeriod: '5s' } })).toMatch(
      /iptables\.syncPeriod: must be greater than or equal to minSyncPeriod/,
    );
    expect(parseConfig({ iptables: { minSyncPeriod: '0s', syncPeriod: '1s' } }).iptables.minSyncPeriod).toBe(
      0,
    );
    expect(parseConfig({ iptables: { minSyncPeriod: '5s', syncPeriod: '5s' } }).iptables.syncPeriod).toBe(
      5000,
    );
  });

  it('member probe durations must be positive', () => {
    for (const key of ['memberProbeInterval', 'memberProbeTimeout', 'memberDownAfter']) {
      expect(configErrorOf({ loadBalancer: { [key]: '0s' } })).toMatch(
        new RegExp(`loadBalancer\\.${key}: must be greater than 0`),
      );
    }
    expect(parseConfig({ loadBalancer: { startupHold: '0s' } }).loadBalancer.startupHold).toBe(0);
  });
});

describe('bind addresses are IP:port (issue 9)', () => {
  it.each([
    ['127.0.0.1:99999', /metricsBindAddress: port 99999 is out of range/],
    ['127.0.0.1:000000080', /metricsBindAddress: port 000000080 is out of range/],
    ['localhost:10249', /metricsBindAddress: "localhost" is not an IP address/],
    ['999.0.0.1:10249', /metricsBindAddress: "999\.0\.0\.1" is not an IP address/],
    ['::1:10249', /metricsBindAddress: expected host:port/],
    ['[127.0.0.1]:10249', /metricsBindAddress: "127\.0\.0\.1" in brackets is not an IPv6 address/],
    ['[::1]', /metricsBindAddress: expected host:port/],
    ['10249', /metricsBindAddress: expected host:port/],
  ])('rejects %p', (address, re) => expect(configErrorOf({ metricsBindAddress: address })).toMatch(re));

  it('names healthzBindAddress too', () => {
    expect(configErrorOf({ healthzBindAddress: '0.0.0.0:65536' })).toMatch(/healthzBindAddress: port 65536/);
  });

  it.each(['127.0.0.1:10249', '0.0.0.0:0', '[::1]:65535', '[::]:10256', ':10256'])(
    'accepts %p',
    (address) => {
      expect(parseConfig({ metricsBindAddress: address }).metricsBindAddress).toBe(address);
    },
  );
});

describe('clusterCIDRs: one per family (issue 9)', () => {
  it('rejects two IPv4 CIDRs, naming the key', () => {
    expect(configErrorOf({ clusterCIDRs: ['10.0.0.0/8', '11.0.0.0/8'] })).toMatch(
      /cfg\.yaml: invalid configuration: clusterCIDRs: at most one CIDR per family/,
    );
    expect(configErrorOf({ clusterCIDRs: ['fd00::/64', 'fd01::/64'] })).toMatch(/clusterCIDRs: at most one/);
    expect(configErrorOf({ clusterCIDRs: ['10.0.0.0/8', 'fd00::/64', '11.0.0.0/8'] })).toMatch(
      /clusterCIDRs/,
    );
  });
  it('accepts one, or one of each family; other detect modes do not use them', () => {
    expect(parseConfig({ clusterCIDRs: ['10.0.0.0/8', 'fd00::/64'] }).clusterCIDRs).toHaveLength(2);
    expect(
      parseConfig({
        clusterCIDRs: ['10.0.0.0/8', '11.0.0.0/8'],
        detectLocalMode: 'BridgeInterface',
        detectLocal: { bridgeInterface: 'cbr0' },
      }).clusterCIDRs,
    ).toHaveLength(2);
  });
});
