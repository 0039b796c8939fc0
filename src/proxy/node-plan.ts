// The node-level half of the proxy plan: facts every Service port's rules share (which addresses take
// NodePorts, how pod traffic is recognised, the primary address, the zone), and the entry point that
// plans every Service port of a ClusterState for one family.
import type { ClusterState } from '../model/cluster-state.js';
import { checkedIP } from './input-checks.js';
import { localTrafficDetectorOf, nodeZoneOf, type LocalTrafficDetector } from './local-traffic.js';
import { resolveNodePortAddresses, type NodePortAddressing } from './node-ports.js';
import type { ProxyOptions } from './options.js';
import { planServicePort, type ServicePortPlan } from './service-port.js';

export interface NodePlan {
  family: ProxyOptions['family'];
  nodePorts: NodePortAddressing;
  detector: LocalTrafficDetector;
  /** kube-proxy's nodeIP of the family (allowed through source ranges when a range holds it). */
  primaryNodeIP: string | undefined;
  /** topology.kubernetes.io/zone of this node ('' when unknown). */
  nodeZone: string;
}

/** The node-level decisions of one family. Throws RenderInputError on unusable options. */
export function planNode(state: ClusterState, opts: ProxyOptions): NodePlan {
  const nodePorts = resolveNodePortAddresses(opts);
  const primaryNodeIP = opts.nodeIPs[0];
  if (primaryNodeIP !== undefined) checkedIP(primaryNodeIP, opts.family, 'options', 'nodeIPs[0]');
  const detector = localTrafficDetectorOf(state, opts);
  return {
    family: opts.family,
    nodePorts,
    detector,
    primaryNodeIP,
    nodeZone: nodeZoneOf(state, opts.nodeName),
  };
}

export interface ProxyPlan {
  node: NodePlan;
  /** One plan per service port with a cluster IP of the family, in the state's order. */
  servicePorts: ServicePortPlan[];
}

/** Everything this node must do for one family, mode-neutral. Pure. */
export function planServicePorts(state: ClusterState, opts: ProxyOptions): ProxyPlan {
  const node = planNode(state, opts);
  const ctx = { family: opts.family, nodeName: opts.nodeName, nodeZone: node.nodeZone };
  const servicePorts: ServicePortPlan[] = [];
  for (const sp of state.servicePorts) {
    const plan = planServicePort(sp, ctx);
    if (plan !== null) servicePorts.push(plan);
  }
  return { node, servicePorts };
}
