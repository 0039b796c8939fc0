// Inputs of the ipvs renderer besides the ClusterState: the proxy options of the family plus what only
// ipvs mode uses. Capabilities (the kernel version) are detected by the caller: render reads no kernel.
import type { Config, IpvsSchedulerFlag } from '../../config/config.js';
import type { IPFamily } from '../../model/cluster-state.js';
import { proxyOptionsFromConfig, type ProxyOptions } from '../../proxy/options.js';
import type { IpvsScheduler, IpvsTimeouts } from './types.js';

export interface IpvsRenderOptions extends ProxyOptions {
  masqueradeAll: boolean;
  masqueradeBit: number;
  /** iptables supports MASQUERADE --random-fully (detected capability). */
  randomFully: boolean;
  scheduler: IpvsScheduler;
  /** Extra scheduler flags (ipvs.schedulerFlags); mh always gets mh-port, as kube-proxy sets it. */
  schedulerFlags: IpvsSchedulerFlag[];
  strictARP: boolean;
  /** Seconds; all 0 = leave the kernel's timeouts alone. */
  timeouts: IpvsTimeouts;
  /**
   * The running kernel's version ("5.4", "6.1.0-13-amd64"), which decides conn_reuse_mode as
   * kube-proxy does; undefined = unknown (left alone, as on a kernel with the fix).
   */
  kernelVersion?: string;
}

/** Options for one family from the agent configuration and the node addresses of that family. */
export function ipvsRenderOptionsFromConfig(
  config: Config,
  family: IPFamily,
  nodeIPs: string[],
  capabilities: { kernelVersion?: string } = {},
): IpvsRenderOptions {
  const seconds = (ms: number): number => Math.floor(ms / 1000);
  return {
    ...proxyOptionsFromConfig(config, family, nodeIPs),
    // ipvs mode never accepts NodePorts on loopback addresses (kube-proxy skips them).
    localhostNodePorts: false,
    masqueradeAll: config.masqueradeAll,
    masqueradeBit: config.masqueradeBit,
    randomFully: config.iptables.masqueradeRandomFully,
    scheduler: config.ipvs.scheduler,
    schedulerFlags: [...config.ipvs.schedulerFlags],
    strictARP: config.ipvs.strictARP,
    timeouts: {
      tcpSeconds: seconds(config.ipvs.tcpTimeout),
      tcpFinSeconds: seconds(config.ipvs.tcpFinTimeout),
      udpSeconds: seconds(config.ipvs.udpTimeout),
    },
    ...(capabilities.kernelVersion !== undefined ? { kernelVersion: capabilities.kernelVersion } : {}),
  };
}
