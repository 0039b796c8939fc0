import { describe, expect, it } from '@jest/globals';
import { chooseSource } from '../../../src/sync/agent-source.js';
import { chooseNodeName, healthCheckListenAddresses } from '../../../src/cli/commands/run.js';

const inPod = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };
const tokenAt = (root: string) => (p: string) => p === `${root}/token`;

describe('chooseSource', () => {
  it('--manifests alone is manifest mode', () => {
    expect(chooseSource({ manifests: '/m' }, inPod, '/sa', tokenAt('/sa'))).toEqual({
      kind: 'manifests',
      dir: '/m',
    });
  });

  it('--kubeconfig and/or --master is cluster mode', () => {
    expect(chooseSource({ kubeconfig: '/k' }, {}, '/sa', () => false)).toEqual({
      kind: 'api',
      kubeconfig: '/k',
      inCluster: false,
    });
    expect(chooseSource({ master: 'https://x:6443' }, {}, '/sa', () => false)).toEqual({
      kind: 'api',
      master: 'https://x:6443',
      inCluster: false,
    });
    expect(chooseSource({ kubeconfig: '/k', master: 'https://x' }, {}, '/sa', () => false)).toMatchObject({
      kind: 'api',
      kubeconfig: '/k',
      master: 'https://x',
    });
  });

  it('neither: in-cluster only with the environment and the token both present', () => {
    expect(chooseSource({}, inPod, '/sa', tokenAt('/sa'))).toEqual({ kind: 'api', inCluster: true });
    expect(() => chooseSource({}, inPod, '/sa', () => false)).toThrow(
      /no source: give --manifests DIR, or --kubeconfig FILE/,
    );
    expect(() => chooseSource({}, {}, '/sa', tokenAt('/sa'))).toThrow(/no source/);
  });

  it('two sources are refused', () => {
    expect(() => chooseSource({ manifests: '/m', master: 'https://x' }, {}, '/sa', () => false)).toThrow(
      /--manifests cannot be combined with --kubeconfig\/--master/,
    );
  });
});

describe('chooseNodeName', () => {
  it('config, else $NODE_NAME, else the host name', () => {
    expect(chooseNodeName('cfg', { NODE_NAME: 'env' }, 'host')).toBe('cfg');
    expect(chooseNodeName('', { NODE_NAME: 'env' }, 'host')).toBe('env');
    expect(chooseNodeName('', { NODE_NAME: ' ' }, 'host')).toBe('host');
    expect(chooseNodeName('', {}, 'host')).toBe('host');
  });
});

describe('healthCheckListenAddresses', () => {
  const ips = ['192.168.1.5', '10.0.0.5', 'fd00::5'];
  it('[] = every address; "primary" = first of each family; CIDRs filter the node addresses', () => {
    expect(healthCheckListenAddresses([], ips)).toEqual([]);
    expect(healthCheckListenAddresses(['primary'], ips)).toEqual(['192.168.1.5', 'fd00::5']);
    expect(healthCheckListenAddresses(['10.0.0.0/8'], ips)).toEqual(['10.0.0.5']);
  });
});
