// iptables mode: render (pure) and serialise (pure) the rules of one IP family.
export {
  acceptsLocalhostNodePorts,
  renderIptables,
  formatProbability,
  IptablesRenderCache,
  localTrafficDetectorOf,
  type LocalTrafficDetector,
} from './render.js';
export {
  KUBE_EXTERNAL_SERVICES,
  KUBE_FIREWALL,
  KUBE_FORWARD,
  KUBE_MARK_MASQ,
  KUBE_NODEPORTS,
  KUBE_POSTROUTING,
  KUBE_PROXY_FIREWALL,
  KUBE_SERVICES,
} from './render.js';
export {
  renderOptionsFromConfig,
  LARGE_CLUSTER_ENDPOINT_THRESHOLD,
  type IptablesRenderOptions,
} from './options.js';
export {
  serializeRuleSet,
  serializeRuleSetChunks,
  writeRuleSet,
  type SerializeOptions,
} from './serialize.js';
export { RenderInputError, commentToken } from './tokens.js';
