// Builders for ClusterState pieces used by the render tests.
import {
  emptyClusterState,
  servicePortId,
  type ClusterState,
  type Endpoint,
  type ServicePort,
} from '../../../src/model/cluster-state.js';
import { compareIPs } from '../../../src/model/ip.js';
import type { IptablesRenderOptions } from '../../../src/render/iptables/index.js';

export function ep(ip: string, port: number, extra: Partial<Endpoint> = {}): Endpoint {
  return {
    ip,
    port,
    family: ip.includes(':') ? 'IPv6' : 'IPv4',
    ready: true,
    serving: true,
    terminating: false,
    ...extra,
  };
}

export function svcPort(
  namespace: string,
  name: string,
  portName: string,
  extra: Partial<ServicePort> = {},
): ServicePort {
  const sp: ServicePort = {
    id: servicePortId(namespace, name, portName),
    namespace,
    serviceName: name,
    portName,
    protocol: 'TCP',
    type: 'ClusterIP',
    port: 80,
    nodePort: 0,
    healthCheckNodePort: 0,
    clusterIPs: [],
    externalIPs: [],
    loadBalancerIngress: [],
    loadBalancerSourceRanges: [],
    externalTrafficPolicy: 'Cluster',
    internalTrafficPolicy: 'Cluster',
    sessionAffinity: { type: 'None' },
    ipFamilies: ['IPv4'],
    endpoints: [],
    ...extra,
  };
  sp.endpoints = [...sp.endpoints].sort(
    (a, b) =>
      (a.family === b.family ? 0 : a.family === 'IPv4' ? -1 : 1) || compareIPs(a.ip, b.ip) || a.port - b.port,
  );
  return sp;
}

export function stateOf(...ports: ServicePort[]): ClusterState {
  const state = emptyClusterState();
  state.servicePorts = [...ports].sort((a, b) =>
    a.id < b.id ? -1 : a.id > b.id ? 1 : a.protocol < b.protocol ? -1 : a.protocol > b.protocol ? 1 : 0,
  );
  return state;
}

export function options(extra: Partial<IptablesRenderOptions> = {}): IptablesRenderOptions {
  return {
    family: 'IPv4',
    nodeName: 'test-node',
    nodeIPs: ['192.168.0.2'],
    clusterCIDRs: ['10.0.0.0/8'],
    masqueradeAll: false,
    masqueradeBit: 14,
    nodePortAddresses: [],
    localhostNodePorts: true,
    randomFully: false,
    largeClusterEndpointThreshold: 1000,
    ...extra,
  };
}

/** table → chain → rule lines, from a restore payload (declaration order ignored, rule order kept). */
export function parsePayload(text: string): Map<string, Map<string, string[]>> {
  const tables = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line === 'COMMIT' || line.startsWith('#')) continue;
    if (line.startsWith('*')) {
      current = new Map();
      tables.set(line.slice(1), current);
    } else if (line.startsWith(':')) {
      const name = line.slice(1).split(' ')[0] ?? '';
      if (!current?.has(name)) current?.set(name, []);
    } else {
      const m = /^-[AI] (\S+)/.exec(line);
      if (!m?.[1] || !current) throw new Error(`unexpected line ${line}`);
      const rules = current.get(m[1]) ?? [];
      rules.push(line);
      current.set(m[1], rules);
    }
  }
  return tables;
}

/** Plain-object form of parsePayload for toEqual comparisons. */
export function payloadObject(text: string): Record<string, Record<string, string[]>> {
  const out: Record<string, Record<string, string[]>> = {};
  for (const [t, chains] of parsePayload(text)) {
    out[t] = {};
    for (const [c, rules] of [...chains].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) out[t][c] = rules;
  }
  return out;
}
