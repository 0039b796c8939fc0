// route_localnet follows the rules: set exactly when NodePorts are accepted on 127.0.0.1.
import { describe, expect, test } from '@jest/globals';
import { defaultConfig, parseConfig } from '../../../src/config/config.js';
import { acceptsLocalhostNodePorts } from '../../../src/proxy/index.js';
import { renderOptionsFromConfig } from '../../../src/render/iptables/index.js';

const accepts = (config: object, family: 'IPv4' | 'IPv6' = 'IPv4') =>
  acceptsLocalhostNodePorts(
    renderOptionsFromConfig({ ...parseConfig(config), nodeName: 'node-a' }, family, [
      '192.168.50.2',
      'fd00::2',
    ]),
  );

describe('acceptsLocalhostNodePorts (kube-proxy: localhostNodePorts and nodePortAddresses overlapping 127.0.0.0/8)', () => {
  test('every address (empty nodePortAddresses) and a list with loopback: yes', () => {
    expect(defaultConfig().iptables.localhostNodePorts).toBe(true);
    expect(accepts({})).toBe(true);
    expect(accepts({ nodePortAddresses: ['192.168.50.0/24', '127.0.0.0/8'] })).toBe(true);
  });

  test('a list without loopback, [primary], or localhostNodePorts off: no', () => {
    expect(accepts({ nodePortAddresses: ['192.168.50.0/24'] })).toBe(false);
    expect(accepts({ nodePortAddresses: ['primary'] })).toBe(false);
    expect(accepts({ iptables: { localhostNodePorts: false } })).toBe(false);
  });

  test('never for IPv6', () => {
    expect(accepts({}, 'IPv6')).toBe(false);
  });
});
