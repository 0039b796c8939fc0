// What render() produces for iptables mode: the structured desired state of one IP family.
// The restore payload is a serialisation of it (serializeRuleSet); plan/diff, trace and the
// dataplane all consume this structure, never re-parse text they produced themselves.
import type { IPFamily } from '../model/cluster-state.js';

export type TableName = 'filter' | 'nat';

/** Why a chain exists: lets diff/trace/doctor say "this chain belongs to Service ns/name:port". */
export type ChainRole =
  | 'static' // KUBE-SERVICES, KUBE-MARK-MASQ, KUBE-POSTROUTING, … (portway-owned, fixed names)
  | 'service' // KUBE-SVC-*, KUBE-SVL-*
  | 'external' // KUBE-EXT-*
  | 'firewall' // KUBE-FW-*
  | 'endpoint'; // KUBE-SEP-*

export interface RenderedChain {
  name: string;
  role: ChainRole;
  /** ServicePort.id + '/' + protocol lower-case (e.g. "ns/svc:http/tcp") for per-service chains. */
  owner?: string;
  /** Full rule lines as iptables-restore takes them, each starting with "-A <name> ". */
  rules: string[];
  /**
   * Optional: the same rules as one restore text, every line ending in "\n" (exactly
   * `rules.map((r) => r + '\n').join('')`). renderIptables keeps each chain's rules this way (a
   * non-enumerable property, so JSON output and equality checks see only `rules`) and makes `rules`
   * from it on first read, its entries pointing into the text: a rule's characters are stored once
   * and a serializer can write the text whole. Absent on chains built elsewhere. A consumer that
   * changes `rules` should drop it (serializeRuleSet never trusts a text that disagrees with `rules`).
   */
  text?: string;
}

/** A jump from a built-in chain (PREROUTING, OUTPUT, …) into a portway chain; ensured idempotently. */
export interface BuiltinJump {
  table: TableName;
  chain: 'PREROUTING' | 'INPUT' | 'FORWARD' | 'OUTPUT' | 'POSTROUTING';
  /** The rule spec after "-A <chain> ", e.g. '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES'. */
  spec: string;
  /** Insert at the top (kube-proxy prepends most jumps) rather than append. */
  position: 'prepend' | 'append';
}

export interface RenderedTable {
  name: TableName;
  /** In declaration order: the order kube-proxy writes them (static chains first). */
  chains: RenderedChain[];
}

export interface IptablesRuleSet {
  family: IPFamily;
  tables: RenderedTable[];
  builtinJumps: BuiltinJump[];
}
