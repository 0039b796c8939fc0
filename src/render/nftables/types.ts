// What renderNftables produces for nftables mode: the structured desired state of one IP family, one
// table of portway's own (`ip portway` / `ip6 portway`, see docs/adr/0007-nftables-mode.md). The
// `nft -f` text is a serialisation of it (serialize.ts); the update planner (src/plan/nftables-plan.ts),
// diff and tests consume this structure, never re-parse text they produced themselves.
import type { IPFamily } from '../../model/cluster-state.js';

/** portway's table, in family `ip` (IPv4) and `ip6` (IPv6). Never kube-proxy's `kube-proxy` table. */
export const NFT_TABLE = 'portway';

export type NftFamily = 'ip' | 'ip6';

/** Why a chain or set exists: lets diff and tests say "this belongs to Service ns/name:port". */
export type NftRole =
  | 'static' // fixed names: hooks, dispatch maps, check chains, masquerading
  | 'service' // svc-*: cluster-policy endpoints of a service port
  | 'local' // svl-*: local-policy endpoints (externalTrafficPolicy/internalTrafficPolicy Local)
  | 'external' // ext-*: traffic to node ports, external IPs and LB IPs
  | 'firewall' // fw-*: loadBalancerSourceRanges
  | 'endpoints' // eps-*/epl-*: the interval map from the numgen space to endpoints
  | 'allowedSources' // src-*: the sources a firewall chain lets through
  | 'endpoint' // ep-*: one endpoint of a ClientIP-affinity service port
  | 'affinity'; // aff-*: the clients an affinity endpoint has seen recently

export interface NftHook {
  type: 'filter' | 'nat';
  hook: 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting';
  /** As nft takes it: "-101" (numeric: the named ones are refused on some hooks). */
  priority: string;
}

export interface NftChain {
  name: string;
  role: NftRole;
  /** ServicePort.id + '/' + protocol ("ns/svc:http/tcp") for per-service chains. */
  owner?: string;
  /** Base chains only. */
  hook?: NftHook;
  /** Rule bodies as `add rule <family> portway <chain> …` takes them. */
  rules: string[];
}

/** One element: the key as nft writes it, and the value of a map ("10.244.1.1 . 8080", "goto svc-…"). */
export interface NftElement {
  key: string;
  value?: string;
  /** Elements of the static sets: the one service port that asked for it (absent when shared). */
  owner?: string;
}

/**
 * One element command of an element-only update, structured: what the planner emits next to its
 * `nft -f` text, and what the netlink client sends (src/dataplane/nft-netlink/elements.ts turns it
 * into kernel elements). The role and whether the set maps to verdicts decide the element layout.
 */
export interface ElementCommand {
  op: 'add' | 'delete';
  set: string;
  role: NftRole;
  verdicts: boolean;
  elements: readonly NftElement[];
}

export interface NftSet {
  name: string;
  kind: 'set' | 'map';
  role: NftRole;
  owner?: string;
  /** The declaration's type clause: "type ipv4_addr . inet_proto . inet_service : verdict", "typeof …". */
  type: string;
  /** "interval", "dynamic", "timeout" (in that order when present). */
  flags: string[];
  /** Seconds (affinity sets); absent = no default timeout. */
  timeoutSeconds?: number;
  /** Merge overlapping intervals on insertion (source ranges may overlap). */
  autoMerge?: boolean;
  /** Sorted by key (interval maps: by range start). */
  elements: NftElement[];
}

export interface NftRuleSet {
  family: IPFamily;
  nftFamily: NftFamily;
  table: typeof NFT_TABLE;
  /** Static chains first (hooks, then dispatch and checks), then per-service ones in service order. */
  chains: NftChain[];
  /** Static sets and maps first, then per-service ones in service order. */
  sets: NftSet[];
}
