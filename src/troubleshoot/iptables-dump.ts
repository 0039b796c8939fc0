// Parse iptables-save / iptables-restore text into tables → chains → rules, each rule with its
// matches and target decoded. Pure: used by the packet walker (`portway trace`) and by tests that
// check behaviour rather than text. Only the vocabulary kube-proxy's rules use is understood; any
// other match module is an error naming the line, so a trace never silently ignores a condition.
import { BUILTIN_CHAINS } from '../dataplane/iptables-text.js';
import { parseCIDR, type ParsedCIDR } from '../model/ip.js';

export { BUILTIN_CHAINS } from '../dataplane/iptables-text.js';

export interface PortRange {
  from: number;
  to: number;
}

export type RuleMatch =
  | { kind: 'source' | 'destination'; negated: boolean; cidr: ParsedCIDR }
  | { kind: 'protocol'; negated: boolean; protocol: string }
  | { kind: 'inInterface' | 'outInterface'; negated: boolean; name: string }
  | { kind: 'comment'; text: string }
  | { kind: 'port'; which: 'dport' | 'sport' | 'either'; negated: boolean; ranges: PortRange[] }
  | { kind: 'addrtype'; which: 'src' | 'dst'; negated: boolean; types: string[] }
  | { kind: 'mark'; negated: boolean; value: number; mask: number }
  | { kind: 'ctstate'; negated: boolean; states: string[] }
  | { kind: 'statistic'; negated: boolean; probability: number; text: string }
  | {
      kind: 'recent';
      negated: boolean;
      name: string;
      mode: 'rcheck' | 'update' | 'set' | 'remove';
      seconds?: number;
      reap: boolean;
      mask?: string;
      side: 'rsource' | 'rdest';
    }
  | { kind: 'set'; negated: boolean; name: string; flags: Array<'src' | 'dst'> }
  /** -m physdev: the packet came in (isIn) / goes out (isOut) through a bridge port, or is bridged. */
  | { kind: 'physdev'; negated: boolean; which: 'isIn' | 'isOut' | 'isBridged' }
  /** -m ipvs (ipvs mode's KUBE-IPVS-OUT-FILTER): a packet IPVS processed, for this virtual server. */
  | { kind: 'ipvs'; negated: boolean; option: 'ipvs' }
  | { kind: 'ipvs'; negated: boolean; option: 'vaddr'; cidr: ParsedCIDR }
  | { kind: 'ipvs'; negated: boolean; option: 'vproto'; protocol: string }
  | { kind: 'ipvs'; negated: boolean; option: 'vport'; port: number };

export type MarkOperation = 'or' | 'xor' | 'and' | 'set-xmark' | 'set-mark';

export type RuleTarget =
  | { kind: 'jump' | 'goto'; chain: string }
  | { kind: 'ACCEPT' | 'DROP' | 'RETURN' }
  | { kind: 'REJECT'; rejectWith?: string }
  | { kind: 'DNAT'; toDestination: string; random: boolean; persistent: boolean }
  | { kind: 'SNAT'; toSource: string; randomFully: boolean; random: boolean; persistent: boolean }
  | { kind: 'MASQUERADE'; randomFully: boolean; random: boolean; toPorts?: string }
  | { kind: 'MARK'; operation: MarkOperation; value: number; mask: number }
  | { kind: 'LOG'; prefix?: string; level?: string };

export interface DumpRule {
  table: string;
  chain: string;
  /** 0-based position in the chain. */
  index: number;
  /** The rule spec after "-A CHAIN " as written. */
  spec: string;
  /** 1-based line in the parsed text (0 for rules built programmatically). */
  line: number;
  matches: RuleMatch[];
  /** null: a rule with no target (it only counts packets). */
  target: RuleTarget | null;
  /** The text of the first -m comment, if any. */
  comment?: string;
}

export interface DumpChain {
  name: string;
  /** Built-in chains have a policy; user chains have none. */
  policy: 'ACCEPT' | 'DROP' | null;
  rules: DumpRule[];
}

export interface DumpTable {
  name: string;
  /** In declaration order. */
  chains: Map<string, DumpChain>;
}

export interface IptablesDump {
  tables: Map<string, DumpTable>;
}

export class IptablesParseError extends Error {
  constructor(
    readonly line: number,
    readonly lineText: string,
    readonly reason: string,
  ) {
    super(`iptables dump line ${line}: ${reason}: ${lineText}`);
    this.name = 'IptablesParseError';
  }
}

/**
 * Split a rule line into arguments the way iptables-restore does: whitespace separates, double
 * quotes group (`--comment "a b"`), a backslash escapes a quote inside quotes.
 */
export function tokenizeRuleLine(text: string): string[] {
  if (!text.includes('"')) return text.split(/[ \t]+/).filter((t) => t !== '');
  const tokens: string[] = [];
  let current = '';
  let inToken = false;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (quoted) {
      if (ch === '\\' && (text[i + 1] === '"' || text[i + 1] === '\\')) {
        current += text[i + 1];
        i++;
      } else if (ch === '"') {
        quoted = false;
      } else {
        current += ch;
      }
    } else if (ch === '"') {
      quoted = true;
      inToken = true;
    } else if (ch === ' ' || ch === '\t') {
      if (inToken) tokens.push(current);
      current = '';
      inToken = false;
    } else {
      current += ch;
      inToken = true;
    }
  }
  if (quoted) throw new Error('unterminated double quote');
  if (inToken) tokens.push(current);
  return tokens;
}

/** Parse a whole iptables-save / iptables-restore text (any number of tables). */
export function parseIptablesDump(text: string): IptablesDump {
  const dump: IptablesDump = { tables: new Map() };
  let table: DumpTable | null = null;
  let tableLine = 0;
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const lineNo = n + 1;
    const raw = (lines[n] as string).trim();
    if (raw === '' || raw.startsWith('#')) continue;
    const fail = (reason: string): never => {
      throw new IptablesParseError(lineNo, raw, reason);
    };
    if (raw.startsWith('*')) {
      if (table !== null)
        fail(`table "${table.name}" (line ${tableLine}) has no COMMIT before the next table`);
      const name = raw.slice(1).trim();
      if (BUILTIN_CHAINS[name] === undefined) fail(`unknown table "${name}"`);
      table = dump.tables.get(name) ?? { name, chains: new Map() };
      dump.tables.set(name, table);
      tableLine = lineNo;
      continue;
    }
    if (table === null) return fail('line outside a table (missing "*table")');
    if (raw === 'COMMIT') {
      table = null;
      continue;
    }
    if (raw.startsWith(':')) {
      const m = /^:(\S+)\s+(\S+)(?:\s+\[\d+:\d+\])?$/.exec(raw);
      if (!m) return fail('malformed chain declaration (expected ":NAME POLICY [packets:bytes]")');
      declareChain(table, m[1] as string, m[2] as string, fail);
      continue;
    }
    let tokens: string[];
    try {
      tokens = tokenizeRuleLine(raw);
    } catch (e) {
      return fail((e as Error).message);
    }
    applyCommand(table, tokens, raw, lineNo, fail);
  }
  if (table !== null) throw new IptablesParseError(tableLine, `*${table.name}`, 'table has no COMMIT');
  validateJumps(dump);
  return dump;
}

function declareChain(table: DumpTable, name: string, policyText: string, fail: (r: string) => never): void {
  const builtin = BUILTIN_CHAINS[table.name]?.includes(name) ?? false;
  let policy: DumpChain['policy'] = null;
  if (builtin) {
    // kube-proxy's test payloads declare built-ins with "-"; iptables-save writes a real policy.
    if (policyText === 'ACCEPT' || policyText === '-') policy = 'ACCEPT';
    else if (policyText === 'DROP') policy = 'DROP';
    else fail(`invalid policy "${policyText}" for built-in chain ${name}`);
  } else if (policyText !== '-') {
    fail(`user chain ${name} cannot have a policy ("${policyText}")`);
  }
  const existing = table.chains.get(name);
  // Declaring a chain in a restore payload flushes it.
  if (existing) existing.rules = [];
  else table.chains.set(name, { name, policy, rules: [] });
}

/** The chain a rule names, created on demand for built-ins (iptables-save omits nothing, restore payloads may). */
function chainFor(table: DumpTable, name: string, fail: (r: string) => never): DumpChain {
  const chain = table.chains.get(name);
  if (chain) return chain;
  if (BUILTIN_CHAINS[table.name]?.includes(name)) {
    const created: DumpChain = { name, policy: 'ACCEPT', rules: [] };
    table.chains.set(name, created);
    return created;
  }
  return fail(`chain ${name} is not declared in table ${table.name}`);
}

function applyCommand(
  table: DumpTable,
  tokens: string[],
  raw: string,
  lineNo: number,
  fail: (r: string) => never,
): void {
  const [command, chainName, ...rest] = tokens;
  switch (command) {
    case '-S': // a no-op list command (makes iptables-nft-restore fast on big payloads)
      return;
    case '-N':
      if (chainName === undefined) fail('-N needs a chain name');
      declareChain(table, chainName as string, '-', fail);
      return;
    case '-X': {
      if (chainName === undefined) fail('-X needs a chain name');
      table.chains.delete(chainName as string);
      return;
    }
    case '-F': {
      if (chainName === undefined) {
        for (const c of table.chains.values()) c.rules = [];
      } else {
        chainFor(table, chainName, fail).rules = [];
      }
      return;
    }
    case '-A':
    case '-I': {
      if (chainName === undefined) return fail(`${command} needs a chain name`);
      const chain = chainFor(table, chainName, fail);
      let specTokens = rest;
      let position = command === '-A' ? chain.rules.length : 0;
      if (command === '-I' && rest[0] !== undefined && /^\d+$/.test(rest[0])) {
        position = Number(rest[0]) - 1;
        specTokens = rest.slice(1);
        if (position < 0 || position > chain.rules.length) fail(`insert position ${rest[0]} is out of range`);
      }
      const specStart = raw.indexOf(chainName, command.length) + chainName.length;
      let spec = raw.slice(specStart).trim();
      if (specTokens !== rest) spec = spec.slice((rest[0] as string).length).trim();
      const rule = parseRuleSpec(specTokens, fail);
      const parsed: DumpRule = {
        table: table.name,
        chain: chainName,
        index: position,
        spec,
        line: lineNo,
        ...rule,
      };
      if (position === chain.rules.length) {
        chain.rules.push(parsed);
      } else {
        // Only an insert renumbers the chain (appends stay linear on big payloads).
        chain.rules.splice(position, 0, parsed);
        chain.rules.forEach((r, i) => (r.index = i));
      }
      return;
    }
    default:
      return fail(`unsupported command "${command ?? ''}"`);
  }
}

const MODULES = new Set([
  'comment',
  'tcp',
  'udp',
  'sctp',
  'multiport',
  'addrtype',
  'mark',
  'conntrack',
  'state',
  'statistic',
  'recent',
  'set',
  'physdev',
  'ipvs',
]);

/** Options each match module takes, so an option can be attributed to a module loaded earlier in the rule. */
const MODULE_OPTIONS: Record<string, readonly string[]> = {
  comment: ['--comment'],
  tcp: ['--dport', '--destination-port', '--sport', '--source-port'],
  udp: ['--dport', '--destination-port', '--sport', '--source-port'],
  sctp: ['--dport', '--destination-port', '--sport', '--source-port'],
  multiport: ['--dports', '--destination-ports', '--sports', '--source-ports', '--ports'],
  addrtype: ['--src-type', '--dst-type', '--limit-iface-in', '--limit-iface-out'],
  mark: ['--mark'],
  conntrack: ['--ctstate'],
  state: ['--state'],
  statistic: ['--mode', '--probability', '--every', '--packet'],
  recent: [
    '--name',
    '--rcheck',
    '--update',
    '--set',
    '--remove',
    '--seconds',
    '--reap',
    '--mask',
    '--rsource',
    '--rdest',
    '--hitcount',
    '--rttl',
  ],
  set: ['--match-set'],
  physdev: ['--physdev-is-in', '--physdev-is-out', '--physdev-is-bridged'],
  ipvs: ['--ipvs', '--vaddr', '--vproto', '--vport'],
};

const TARGET_OPTIONS: Record<string, readonly string[]> = {
  REJECT: ['--reject-with'],
  DNAT: ['--to-destination', '--random', '--persistent'],
  SNAT: ['--to-source', '--random', '--random-fully', '--persistent'],
  MASQUERADE: ['--to-ports', '--random', '--random-fully'],
  MARK: ['--set-xmark', '--set-mark', '--or-mark', '--xor-mark', '--and-mark'],
  LOG: [
    '--log-prefix',
    '--log-level',
    '--log-uid',
    '--log-ip-options',
    '--log-tcp-options',
    '--log-tcp-sequence',
  ],
};
const FLAG_OPTIONS = new Set([
  '--physdev-is-in',
  '--physdev-is-out',
  '--physdev-is-bridged',
  '--ipvs',
  '--rcheck',
  '--update',
  '--set',
  '--remove',
  '--reap',
  '--rsource',
  '--rdest',
  '--rttl',
  '--random',
  '--random-fully',
  '--persistent',
  '--limit-iface-in',
  '--limit-iface-out',
  '--log-uid',
  '--log-ip-options',
  '--log-tcp-options',
  '--log-tcp-sequence',
]);

interface ParsedSpec {
  matches: RuleMatch[];
  target: RuleTarget | null;
  comment?: string;
}

interface RecentDraft {
  negated: boolean;
  name: string;
  mode?: 'rcheck' | 'update' | 'set' | 'remove';
  seconds?: number;
  reap: boolean;
  mask?: string;
  side: 'rsource' | 'rdest';
}

/** Parse the arguments of one rule (everything after "-A CHAIN"). */
export function parseRuleSpec(tokens: string[], fail: (reason: string) => never): ParsedSpec {
  const matches: RuleMatch[] = [];
  const modules: string[] = [];
  let protocol: string | undefined;
  let targetName: string | undefined;
  let targetKind: 'jump' | 'goto' = 'jump';
  const targetOpts = new Map<string, string | true>();
  let comment: string | undefined;
  let statisticDraft: { mode?: string; probability?: string; every?: string; negated: boolean } | undefined;
  let recentDraft: RecentDraft | undefined;
  let negateNext = false;

  const takeValue = (i: number, option: string): string => {
    const v = tokens[i + 1];
    if (v === undefined) return fail(`option ${option} needs a value`);
    return v;
  };

  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i] as string;
    if (tok === '!') {
      negateNext = true;
      continue;
    }
    const negated = negateNext;
    negateNext = false;
    switch (tok) {
      case '-s':
      case '--source':
      case '-d':
      case '--destination': {
        const value = takeValue(i++, tok);
        const cidr = cachedCIDR(value);
        if (cidr === null) fail(`invalid address "${value}" for ${tok}`);
        matches.push({
          kind: tok === '-s' || tok === '--source' ? 'source' : 'destination',
          negated,
          cidr: cidr as ParsedCIDR,
        });
        continue;
      }
      case '-p':
      case '--protocol':
        protocol = takeValue(i++, tok).toLowerCase();
        matches.push({ kind: 'protocol', negated, protocol });
        continue;
      case '-i':
      case '--in-interface':
      case '-o':
      case '--out-interface':
        matches.push({
          kind: tok === '-i' || tok === '--in-interface' ? 'inInterface' : 'outInterface',
          negated,
          name: takeValue(i++, tok),
        });
        continue;
      case '-m':
      case '--match': {
        const mod = takeValue(i++, tok);
        if (!MODULES.has(mod)) fail(`unknown match module "${mod}"`);
        modules.push(mod);
        if (mod === 'recent') {
          recentDraft = { negated: false, name: 'DEFAULT', reap: false, side: 'rsource' };
        }
        continue;
      }
      case '-j':
      case '--jump':
      case '-g':
      case '--goto':
        if (targetName !== undefined) fail('rule has more than one target');
        targetName = takeValue(i++, tok);
        targetKind = tok === '-g' || tok === '--goto' ? 'goto' : 'jump';
        continue;
      default:
        break;
    }
    if (!tok.startsWith('--')) fail(`unexpected argument "${tok}"`);

    // Target options (after -j X) take precedence over match options of the same name (--set).
    if (targetName !== undefined && TARGET_OPTIONS[targetName]?.includes(tok)) {
      if (negated) fail(`option ${tok} of target ${targetName} cannot be negated`);
      targetOpts.set(tok, FLAG_OPTIONS.has(tok) ? true : takeValue(i++, tok));
      continue;
    }
    const owner = [...modules].reverse().find((m) => MODULE_OPTIONS[m]?.includes(tok));
    // "-p tcp --dport 80" loads the protocol's match implicitly.
    const implicit =
      owner === undefined && protocol !== undefined && MODULE_OPTIONS[protocol]?.includes(tok)
        ? protocol
        : undefined;
    const module = owner ?? implicit;
    if (module === undefined)
      fail(`option ${tok} does not belong to any match module or target in this rule`);

    switch (module) {
      case 'comment': {
        // kube-proxy's own test payloads sometimes leave multi-word comments unquoted: take words
        // up to the next option so such dumps still parse.
        let text = takeValue(i++, tok);
        while (
          tokens[i + 1] !== undefined &&
          !(tokens[i + 1] as string).startsWith('-') &&
          tokens[i + 1] !== '!'
        ) {
          text += ' ' + (tokens[i + 1] as string);
          i++;
        }
        comment ??= text;
        matches.push({ kind: 'comment', text });
        break;
      }
      case 'tcp':
      case 'udp':
      case 'sctp': {
        const value = takeValue(i++, tok);
        const which = tok === '--dport' || tok === '--destination-port' ? 'dport' : 'sport';
        matches.push({ kind: 'port', which, negated, ranges: [parsePortRange(value, ':', fail)] });
        break;
      }
      case 'multiport': {
        const value = takeValue(i++, tok);
        const which =
          tok === '--ports'
            ? 'either'
            : tok === '--dports' || tok === '--destination-ports'
              ? 'dport'
              : 'sport';
        const ranges = value.split(',').map((p) => parsePortRange(p, ':', fail));
        matches.push({ kind: 'port', which, negated, ranges });
        break;
      }
      case 'addrtype': {
        if (tok === '--limit-iface-in' || tok === '--limit-iface-out') break;
        const value = takeValue(i++, tok);
        matches.push({
          kind: 'addrtype',
          which: tok === '--src-type' ? 'src' : 'dst',
          negated,
          types: value.split(','),
        });
        break;
      }
      case 'mark': {
        const value = takeValue(i++, tok);
        const [v, m] = parseValueMask(value, fail);
        matches.push({ kind: 'mark', negated, value: v, mask: m });
        break;
      }
      case 'conntrack':
      case 'state': {
        const value = takeValue(i++, tok);
        matches.push({ kind: 'ctstate', negated, states: value.toUpperCase().split(',') });
        break;
      }
      case 'statistic': {
        statisticDraft ??= { negated: false };
        const value = takeValue(i++, tok);
        if (tok === '--mode') statisticDraft.mode = value;
        else if (tok === '--probability') {
          statisticDraft.probability = value;
          statisticDraft.negated = negated;
        } else if (tok === '--every') {
          statisticDraft.every = value;
          statisticDraft.negated = negated;
        }
        break;
      }
      case 'recent': {
        const draft = recentDraft as RecentDraft;
        switch (tok) {
          case '--rcheck':
          case '--update':
          case '--set':
          case '--remove':
            if (draft.mode !== undefined) fail(`-m recent has both --${draft.mode} and ${tok}`);
            draft.mode = tok.slice(2) as RecentDraft['mode'];
            draft.negated = negated;
            break;
          case '--name':
            draft.name = takeValue(i++, tok);
            break;
          case '--seconds': {
            const value = takeValue(i++, tok);
            if (!/^\d+$/.test(value)) fail(`invalid --seconds "${value}"`);
            draft.seconds = Number(value);
            break;
          }
          case '--mask':
            draft.mask = takeValue(i++, tok);
            break;
          case '--reap':
            draft.reap = true;
            break;
          case '--rsource':
          case '--rdest':
            draft.side = tok.slice(2) as 'rsource' | 'rdest';
            break;
          default:
            fail(`option ${tok} of -m recent is not supported`);
        }
        break;
      }
      case 'physdev':
        matches.push({
          kind: 'physdev',
          negated,
          which: tok === '--physdev-is-in' ? 'isIn' : tok === '--physdev-is-out' ? 'isOut' : 'isBridged',
        });
        break;
      case 'ipvs': {
        if (tok === '--ipvs') {
          matches.push({ kind: 'ipvs', negated, option: 'ipvs' });
          break;
        }
        const value = takeValue(i++, tok);
        if (tok === '--vaddr') {
          const cidr = cachedCIDR(value);
          if (cidr === null) fail(`invalid address "${value}" for --vaddr`);
          matches.push({ kind: 'ipvs', negated, option: 'vaddr', cidr: cidr as ParsedCIDR });
        } else if (tok === '--vproto') {
          matches.push({ kind: 'ipvs', negated, option: 'vproto', protocol: value.toLowerCase() });
        } else {
          if (!/^\d+$/.test(value) || Number(value) > 65535) fail(`invalid --vport "${value}"`);
          matches.push({ kind: 'ipvs', negated, option: 'vport', port: Number(value) });
        }
        break;
      }
      case 'set': {
        const name = takeValue(i++, tok);
        const flagsText = takeValue(i++, tok);
        const flags = flagsText.split(',');
        if (flags.some((f) => f !== 'src' && f !== 'dst')) fail(`invalid --match-set flags "${flagsText}"`);
        matches.push({ kind: 'set', negated, name, flags: flags as Array<'src' | 'dst'> });
        break;
      }
      default:
        fail(`option ${tok} is not supported`);
    }
  }
  if (negateNext) fail('"!" at the end of the rule');

  if (statisticDraft !== undefined) {
    const d = statisticDraft;
    if (d.mode === 'random') {
      const p = Number(d.probability);
      if (d.probability === undefined || !Number.isFinite(p) || p < 0 || p > 1) {
        fail(`-m statistic --mode random needs --probability between 0 and 1 (got "${d.probability ?? ''}")`);
      }
      matches.push({ kind: 'statistic', negated: d.negated, probability: p, text: d.probability as string });
    } else if (d.mode === 'nth') {
      // Over many packets "every n" matches 1/n of them: the walker treats it as that probability.
      const every = Number(d.every);
      if (!Number.isInteger(every) || every < 1) fail(`-m statistic --mode nth needs --every ≥ 1`);
      matches.push({ kind: 'statistic', negated: d.negated, probability: 1 / every, text: `1/${every}` });
    } else {
      fail(`-m statistic needs --mode random or nth (got "${d.mode ?? ''}")`);
    }
  }
  if (recentDraft !== undefined) {
    const d = recentDraft;
    if (d.mode === undefined) fail('-m recent needs one of --rcheck, --update, --set, --remove');
    const recent: RuleMatch = {
      kind: 'recent',
      negated: d.negated,
      name: d.name,
      mode: d.mode as 'set',
      reap: d.reap,
      side: d.side,
    };
    if (d.seconds !== undefined) recent.seconds = d.seconds;
    if (d.mask !== undefined) recent.mask = d.mask;
    matches.push(recent);
  }

  const target = targetName === undefined ? null : buildTarget(targetName, targetKind, targetOpts, fail);
  const result: ParsedSpec = { matches, target };
  if (comment !== undefined) result.comment = comment;
  return result;
}

// Big payloads repeat the same few addresses (pod CIDR, loopback) thousands of times.
const cidrCache = new Map<string, ParsedCIDR | null>();
function cachedCIDR(text: string): ParsedCIDR | null {
  let parsed = cidrCache.get(text);
  if (parsed === undefined) {
    parsed = parseCIDR(text);
    if (cidrCache.size > 10_000) cidrCache.clear();
    cidrCache.set(text, parsed);
  }
  return parsed;
}

function buildTarget(
  name: string,
  kind: 'jump' | 'goto',
  opts: Map<string, string | true>,
  fail: (r: string) => never,
): RuleTarget {
  const str = (k: string): string | undefined => {
    const v = opts.get(k);
    return typeof v === 'string' ? v : undefined;
  };
  if (kind === 'goto') return { kind: 'goto', chain: name };
  switch (name) {
    case 'ACCEPT':
    case 'DROP':
    case 'RETURN':
      return { kind: name };
    case 'REJECT': {
      const t: RuleTarget = { kind: 'REJECT' };
      const w = str('--reject-with');
      if (w !== undefined) t.rejectWith = w;
      return t;
    }
    case 'DNAT': {
      const to = str('--to-destination');
      if (to === undefined) return fail('DNAT needs --to-destination');
      return {
        kind: 'DNAT',
        toDestination: to,
        random: opts.has('--random'),
        persistent: opts.has('--persistent'),
      };
    }
    case 'SNAT': {
      const to = str('--to-source');
      if (to === undefined) return fail('SNAT needs --to-source');
      return {
        kind: 'SNAT',
        toSource: to,
        random: opts.has('--random'),
        randomFully: opts.has('--random-fully'),
        persistent: opts.has('--persistent'),
      };
    }
    case 'MASQUERADE': {
      const t: RuleTarget = {
        kind: 'MASQUERADE',
        random: opts.has('--random'),
        randomFully: opts.has('--random-fully'),
      };
      const ports = str('--to-ports');
      if (ports !== undefined) t.toPorts = ports;
      return t;
    }
    case 'MARK': {
      const ops: Array<[string, MarkOperation]> = [
        ['--set-xmark', 'set-xmark'],
        ['--set-mark', 'set-mark'],
        ['--or-mark', 'or'],
        ['--xor-mark', 'xor'],
        ['--and-mark', 'and'],
      ];
      const present = ops.filter(([o]) => opts.has(o));
      if (present.length !== 1)
        return fail('MARK needs exactly one of --set-xmark, --set-mark, --or-mark, --xor-mark, --and-mark');
      const [option, operation] = present[0] as [string, MarkOperation];
      const text = str(option) as string;
      if (operation === 'or' || operation === 'xor' || operation === 'and') {
        if (text.includes('/')) fail(`${option} takes a value without a mask`);
        return { kind: 'MARK', operation, value: parseNumber(text, fail), mask: 0xffffffff };
      }
      const [value, mask] = parseValueMask(text, fail);
      return { kind: 'MARK', operation, value, mask };
    }
    case 'LOG': {
      const t: RuleTarget = { kind: 'LOG' };
      const prefix = str('--log-prefix');
      const level = str('--log-level');
      if (prefix !== undefined) t.prefix = prefix;
      if (level !== undefined) t.level = level;
      return t;
    }
    default:
      if (!/^[A-Za-z0-9_.-]+$/.test(name)) return fail(`invalid target "${name}"`);
      if (KNOWN_UNSUPPORTED_TARGETS.has(name)) return fail(`target ${name} is not supported`);
      return { kind: 'jump', chain: name };
  }
}

const KNOWN_UNSUPPORTED_TARGETS = new Set([
  'CONNMARK',
  'NOTRACK',
  'CT',
  'TPROXY',
  'REDIRECT',
  'NFQUEUE',
  'QUEUE',
  'TRACE',
  'NFLOG',
  'TCPMSS',
  'CHECKSUM',
]);

function parseNumber(text: string, fail: (r: string) => never): number {
  const n = text.startsWith('0x') || text.startsWith('0X') ? parseInt(text.slice(2), 16) : Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff || !/^(0[xX][0-9a-fA-F]+|\d+)$/.test(text)) {
    return fail(`invalid number "${text}"`);
  }
  return n;
}

function parseValueMask(text: string, fail: (r: string) => never): [number, number] {
  const [v, m, extra] = text.split('/');
  if (extra !== undefined) return fail(`invalid value/mask "${text}"`);
  return [parseNumber(v as string, fail), m === undefined ? 0xffffffff : parseNumber(m, fail)];
}

function parsePortRange(text: string, sep: string, fail: (r: string) => never): PortRange {
  const [a, b, extra] = text.split(sep);
  const valid = (s: string | undefined): s is string =>
    s !== undefined && /^\d{1,5}$/.test(s) && Number(s) <= 65535;
  if (extra !== undefined || !valid(a) || (b !== undefined && !valid(b)))
    return fail(`invalid port "${text}"`);
  return { from: Number(a), to: Number(b ?? a) };
}

/** iptables-restore refuses a jump to a chain that is not declared: so does this parser. */
function validateJumps(dump: IptablesDump): void {
  for (const table of dump.tables.values()) {
    for (const chain of table.chains.values()) {
      for (const rule of chain.rules) {
        const t = rule.target;
        if (t === null || (t.kind !== 'jump' && t.kind !== 'goto')) continue;
        if (!table.chains.has(t.chain)) {
          throw new IptablesParseError(
            rule.line,
            `-A ${chain.name} ${rule.spec}`,
            `jump to undeclared chain ${t.chain} in table ${table.name}`,
          );
        }
      }
    }
  }
}

/** The rule as "-A CHAIN spec", for explanations. */
export function ruleText(rule: DumpRule): string {
  return `-A ${rule.chain} ${rule.spec}`;
}
