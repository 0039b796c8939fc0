// ipvs mode: render (pure) and serialise (pure) the virtual servers, ipsets and iptables rules of one IP family.
export {
  renderIpvs,
  KUBE_IPVS_FILTER,
  KUBE_IPVS_OUT_FILTER,
  KUBE_LOAD_BALANCER_CHAIN,
  KUBE_NODE_PORT,
  KUBE_SOURCE_RANGES_FIREWALL,
} from './render.js';
export { ipvsRenderOptionsFromConfig, type IpvsRenderOptions } from './options.js';
export {
  allIpsetNames,
  ipsetName,
  IPSET_DEFINITIONS,
  type IpsetDefinition,
  type IpsetKey,
} from './ipsets.js';
export {
  ipsetCreateLine,
  ipvsHostPort,
  ipvsServiceArgs,
  serializeIpsets,
  serializeIpvs,
  serializeIpvsIptables,
} from './serialize.js';
export {
  IpvsadmParseError,
  parseIpvsadmRules,
  splitHostPort,
  type ParsedIpvsTable,
  type ParsedRealServer,
  type ParsedVirtualServer,
} from './ipvsadm-text.js';
export * from './types.js';
