// The ipvs block of the configuration: kube-proxy's KubeProxyIPVSConfiguration keys, plus the scheduler
// flags, each checked where it is read and turned into the ipvs renderer's options.
import { describe, expect, it } from '@jest/globals';
import { parseConfig } from '../../../src/config/config.js';
import { ipvsRenderOptionsFromConfig } from '../../../src/render/ipvs/index.js';

describe('ipvs configuration', () => {
  it('defaults as kube-proxy: rr, no flags, no timeouts, no excluded CIDRs', () => {
    expect(parseConfig({}).ipvs).toMatchObject({
      scheduler: 'rr',
      schedulerFlags: [],
      strictARP: false,
      tcpTimeout: 0,
      tcpFinTimeout: 0,
      udpTimeout: 0,
      excludeCIDRs: [],
      gracefulTerminationTimeout: 900_000,
    });
  });

  it('gracefulTerminationTimeout: a duration; a bad one is named', () => {
    expect(parseConfig({ ipvs: { gracefulTerminationTimeout: '30s' } }).ipvs.gracefulTerminationTimeout).toBe(30_000);
    expect(() => parseConfig({ ipvs: { gracefulTerminationTimeout: 'soon' } })).toThrow(/ipvs\.gracefulTerminationTimeout/);
  });

  it('turns the keys into render options (timeouts in seconds, no localhost NodePorts in ipvs mode)', () => {
    const config = parseConfig({
      nodeName: 'node-a',
      ipvs: {
        scheduler: 'mh',
        schedulerFlags: ['mh-fallback'],
        strictARP: true,
        tcpTimeout: '15m',
        tcpFinTimeout: '2m',
        udpTimeout: '5m',
      },
    });
    const opts = ipvsRenderOptionsFromConfig(config, 'IPv4', ['10.0.0.2', 'fd00::2'], {
      kernelVersion: '5.4.0',
    });
    expect(opts).toMatchObject({
      family: 'IPv4',
      nodeIPs: ['10.0.0.2'],
      localhostNodePorts: false,
      scheduler: 'mh',
      schedulerFlags: ['mh-fallback'],
      strictARP: true,
      timeouts: { tcpSeconds: 900, tcpFinSeconds: 120, udpSeconds: 300 },
      kernelVersion: '5.4.0',
    });
  });

  it.each([
    [{ scheduler: 'fastest' }, 'ipvs.scheduler'],
    [
      { scheduler: 'rr', schedulerFlags: ['sh-port'] },
      'ipvs.schedulerFlags.0: "sh-port" is a flag of the sh scheduler, not of rr',
    ],
    [{ schedulerFlags: ['flag-9'] }, 'ipvs.schedulerFlags.0'],
    [{ excludeCIDRs: ['10.0.0.0/33'] }, 'ipvs.excludeCIDRs.0'],
    [{ tcpTimeout: 'soon' }, 'ipvs.tcpTimeout'],
    [{ sheduler: 'rr' }, 'sheduler'],
  ])('rejects %j naming the key', (ipvs, message) => {
    expect(() => parseConfig({ ipvs })).toThrow(message);
  });
});
