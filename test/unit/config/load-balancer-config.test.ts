import { describe, expect, test } from '@jest/globals';
import { defaultConfig, parseConfig } from '../../../src/config/config.js';

describe('loadBalancer configuration', () => {
  test('defaults', () => {
    expect(defaultConfig().loadBalancer).toEqual({
      enabled: true,
      layer2: true,
      loadBalancerClass: 'portway.io/lb',
      memberPort: 7473,
      memberBindAddress: '',
      memberProbeInterval: 300,
      memberProbeTimeout: 1000,
      memberDownAfter: 1000,
      startupHold: 1500,
    });
  });

  test('durations and keys are checked, naming the key', () => {
    expect(
      parseConfig({ loadBalancer: { memberDownAfter: '2s', memberPort: 9000 } }).loadBalancer,
    ).toMatchObject({
      memberDownAfter: 2000,
      memberPort: 9000,
    });
    expect(() => parseConfig({ loadBalancer: { memberPort: 0 } })).toThrow(/loadBalancer\.memberPort/);
    expect(() => parseConfig({ loadBalancer: { memberBindAddress: 'nope' } })).toThrow(
      /loadBalancer\.memberBindAddress/,
    );
    expect(() => parseConfig({ loadBalancer: { interfaces: ['eth0'] } })).toThrow(
      /loadBalancer\.interfaces: unknown key/,
    );
  });
});

describe('loadBalancer.excludeInterfaces', () => {
  test('is unset by default (the speaker then uses MetalLB’s shipped list) and takes regexps', () => {
    expect(parseConfig({}).loadBalancer.excludeInterfaces).toBeUndefined();
    expect(
      parseConfig({ loadBalancer: { excludeInterfaces: ['^eth1$', 'vlan.*'] } }).loadBalancer
        .excludeInterfaces,
    ).toEqual(['^eth1$', 'vlan.*']);
  });

  test('rejects a pattern that is not a regular expression, naming the key and its index', () => {
    expect(() => parseConfig({ loadBalancer: { excludeInterfaces: ['^ok$', 'bad('] } })).toThrow(
      /loadBalancer\.excludeInterfaces\.1: not a valid regular expression/,
    );
  });
});
