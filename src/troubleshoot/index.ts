// Troubleshooting: parse iptables dumps, walk packets through them, explain the result.
export {
  parseIptablesDump,
  tokenizeRuleLine,
  ruleText,
  IptablesParseError,
  BUILTIN_CHAINS,
  type IptablesDump,
  type DumpTable,
  type DumpChain,
  type DumpRule,
  type RuleMatch,
  type RuleTarget,
} from './iptables-dump.js';
export {
  walkPacket,
  PacketWalkError,
  compareEndpoints,
  ipvsDecision,
  type IpvsDecision,
  type IpvsRealServerChoice,
  type TracedPacket,
  type WalkOptions,
  type PacketOutcome,
  type WalkBranch,
  type PathStep,
  type Verdict,
} from './packet-walker.js';
export {
  traceServicePacket,
  formatTrace,
  chainServices,
  serviceOfComment,
  type TraceResult,
  type TraceRules,
  type FormatTraceContext,
} from './trace.js';
