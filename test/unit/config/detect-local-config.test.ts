// detectLocalMode / detectLocal: kube-proxy's names, kube-proxy's rules, errors naming the key.
import {
  defaultConfig,
  detectLocalIssues,
  interfaceNameProblem,
  parseConfig,
} from '../../../src/config/config.js';
import { configErrorOf } from './config-error.js';

describe('detectLocalMode configuration', () => {
  it('defaults to ClusterCIDR with empty detectLocal settings (kube-proxy on Linux)', () => {
    const c = defaultConfig();
    expect(c.detectLocalMode).toBe('ClusterCIDR');
    expect(c.detectLocal).toEqual({ bridgeInterface: '', interfaceNamePrefix: '' });
  });

  it('accepts each of kube-proxy modes with what it needs', () => {
    expect(parseConfig({ detectLocalMode: 'NodeCIDR' }).detectLocalMode).toBe('NodeCIDR');
    const bridge = parseConfig({
      detectLocalMode: 'BridgeInterface',
      detectLocal: { bridgeInterface: 'cbr0' },
    });
    expect(bridge.detectLocal.bridgeInterface).toBe('cbr0');
    const prefix = parseConfig({
      detectLocalMode: 'InterfaceNamePrefix',
      detectLocal: { interfaceNamePrefix: 'veth' },
    });
    expect(prefix.detectLocal.interfaceNamePrefix).toBe('veth');
    // ClusterCIDR without CIDRs is valid: no detector (kube-proxy logs and carries on).
    expect(parseConfig({ detectLocalMode: 'ClusterCIDR' }).clusterCIDRs).toEqual([]);
  });

  it('rejects an unknown mode, naming the key and the choices', () => {
    expect(configErrorOf({ detectLocalMode: 'PodCIDR' })).toMatch(
      /cfg\.yaml: .*detectLocalMode: .*'ClusterCIDR' \| 'NodeCIDR' \| 'BridgeInterface' \| 'InterfaceNamePrefix'/,
    );
    expect(configErrorOf({ detectLocalMode: 'clustercidr' })).toMatch(/detectLocalMode/);
  });

  it('requires the interface of the chosen interface mode', () => {
    expect(configErrorOf({ detectLocalMode: 'BridgeInterface' })).toMatch(
      /detectLocal\.bridgeInterface: must be set when detectLocalMode is BridgeInterface/,
    );
    expect(
      configErrorOf({ detectLocalMode: 'InterfaceNamePrefix', detectLocal: { bridgeInterface: 'br0' } }),
    ).toMatch(/detectLocal\.interfaceNamePrefix: must be set when detectLocalMode is InterfaceNamePrefix/);
  });

  it('ignores the settings of modes not chosen, as kube-proxy does', () => {
    const c = parseConfig({ detectLocalMode: 'NodeCIDR', detectLocal: { bridgeInterface: '' } });
    expect(c.detectLocalMode).toBe('NodeCIDR');
  });

  it('names unknown keys under detectLocal (clusterCIDRs stays a top-level key)', () => {
    expect(configErrorOf({ detectLocal: { clusterCIDRs: ['10.0.0.0/8'] } })).toMatch(
      /detectLocal\.clusterCIDRs: unknown key/,
    );
    expect(configErrorOf({ detectLocal: { bridge: 'br0' } })).toMatch(/detectLocal\.bridge: unknown key/);
  });

  it.each([
    ['BridgeInterface', 'bridgeInterface', 'br+', /ends in "\+", which iptables reads as a name prefix/],
    ['InterfaceNamePrefix', 'interfaceNamePrefix', 'veth+', /give the prefix alone/],
    ['BridgeInterface', 'bridgeInterface', 'br 0', /space/],
    ['BridgeInterface', 'bridgeInterface', 'br/0', /not allowed/],
    ['BridgeInterface', 'bridgeInterface', 'a"b', /not allowed/],
    ['BridgeInterface', 'bridgeInterface', '-br0', /must not start/],
    ['BridgeInterface', 'bridgeInterface', 'abcdefghijklmnop', /longer than 15 bytes/],
    ['InterfaceNamePrefix', 'interfaceNamePrefix', 'abcdefghijklmno', /longer than 14 bytes/],
  ])('%s rejects %s %p', (mode, key, value, message) => {
    const text = configErrorOf({ detectLocalMode: mode, detectLocal: { [key]: value } });
    expect(text).toMatch(new RegExp(`detectLocal\\.${key}: `));
    expect(text).toMatch(message);
  });

  it('takes names at the kernel limit', () => {
    expect(interfaceNameProblem('abcdefghijklmno', 'name')).toBeNull();
    expect(interfaceNameProblem('abcdefghijklmn', 'prefix')).toBeNull();
    expect(interfaceNameProblem('eth0.100', 'name')).toBeNull();
    expect(interfaceNameProblem('lxc', 'prefix')).toBeNull();
  });

  it('detectLocalIssues checks a hand-built config the same way', () => {
    const config = { ...defaultConfig(), detectLocalMode: 'BridgeInterface' as const };
    expect(detectLocalIssues(config)).toEqual([
      { path: 'detectLocal.bridgeInterface', message: 'must be set when detectLocalMode is BridgeInterface' },
    ]);
    expect(detectLocalIssues(defaultConfig())).toEqual([]);
  });
});
