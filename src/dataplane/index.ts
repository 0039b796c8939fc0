// One place to build every executor for a node (or a network namespace), real or fake.
import type { IPFamily } from '../model/cluster-state.js';
import { FakeConntrack, RealConntrack } from './conntrack.js';
import { runnerFor, type CommandRunner } from './exec.js';
import { FakeIptables } from './fake-iptables.js';
import type { Conntrack, Iptables, IptablesBackend, IpLinks, Ipset, Ipvs, Sysctl } from './interfaces.js';
import { FakeIpLinks, RealIpLinks } from './ip.js';
import { createIptables, detectIptablesBackend } from './iptables.js';
import { FakeIpset, RealIpset } from './ipset.js';
import { FakeIpvs, RealIpvs } from './ipvs.js';
import { FakeSysctl, createSysctl } from './sysctl.js';
import { FakeNetnsIdentity, RealNetnsIdentity, type NetnsIdentity } from './netns-identity.js';

export interface Dataplane {
  /** One executor per configured family. */
  iptables: Partial<Record<IPFamily, Iptables>>;
  ipset: Ipset;
  /** ipvs mode's virtual-server table (ipvsadm). */
  ipvs: Ipvs;
  sysctl: Sysctl;
  conntrack: Conntrack;
  ip: IpLinks;
  /** Which network namespace the executors act on (portway's state is keyed by it). */
  netns: NetnsIdentity;
}

export interface DataplaneOptions {
  families: IPFamily[];
  /** Everything runs inside this network namespace. */
  netns?: string;
  /** Detected once (and shared by both families) when not given. */
  backend?: IptablesBackend;
  /** Root of /proc/sys when not in a netns. */
  procSysRoot?: string;
  runner?: CommandRunner;
}

export async function createDataplane(opts: DataplaneOptions): Promise<Dataplane> {
  const runner = runnerFor(opts);
  const backend = opts.backend ?? (await detectIptablesBackend(runner)).backend;
  const iptables: Partial<Record<IPFamily, Iptables>> = {};
  for (const family of opts.families) iptables[family] = await createIptables({ family, backend, runner });
  return {
    iptables,
    ipset: new RealIpset({ runner }),
    ipvs: new RealIpvs({ runner }),
    sysctl: opts.netns !== undefined || opts.runner ? createSysctl({ runner }) : createSysctl({ ...(opts.procSysRoot ? { root: opts.procSysRoot } : {}) }),
    conntrack: new RealConntrack({ runner }),
    ip: new RealIpLinks({ runner }),
    netns: new RealNetnsIdentity({ runner }),
  };
}

export interface FakeDataplane extends Dataplane {
  iptables: Partial<Record<IPFamily, FakeIptables>>;
  ipset: FakeIpset;
  ipvs: FakeIpvs;
  sysctl: FakeSysctl;
  conntrack: FakeConntrack;
  ip: FakeIpLinks;
  netns: FakeNetnsIdentity;
}

/** Validating fakes for every executor, for sync tests without a kernel. */
export function createFakeDataplane(opts: { families?: IPFamily[]; sysctls?: Record<string, string>; links?: Record<string, string[]> } = {}): FakeDataplane {
  const iptables: Partial<Record<IPFamily, FakeIptables>> = {};
  for (const family of opts.families ?? ['IPv4']) iptables[family] = new FakeIptables({ family });
  return {
    iptables,
    ipset: new FakeIpset(),
    ipvs: new FakeIpvs(),
    sysctl: new FakeSysctl(opts.sysctls ?? { 'net/ipv4/ip_forward': '0', 'net/ipv4/conf/all/route_localnet': '0' }),
    conntrack: new FakeConntrack(),
    ip: new FakeIpLinks(opts.links ?? { lo: ['127.0.0.1/8'] }),
    netns: new FakeNetnsIdentity(),
  };
}

export * from './exec.js';
export * from './interfaces.js';
export * from './iptables.js';
export * from './iptables-text.js';
export * from './fake-iptables.js';
export * from './ipset.js';
export * from './ipvs.js';
export * from './sysctl.js';
export * from './conntrack.js';
export * from './ip.js';
export * from './netns-identity.js';
export * from './ipvs-live.js';
