// Pure text handling for iptables-save / iptables-restore: tokenising rule specs the way
// iptables-restore does, parsing restore payloads into numbered operations, parsing save dumps,
// and writing tokens back in iptables-save's quoting. No I/O.
import type { IPFamily } from '../model/cluster-state.js';

/** Thrown by the parsers: carries the 1-based payload line. */
export class IptablesParseError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
    this.name = 'IptablesParseError';
  }
}

/**
 * Split a rule line into arguments as iptables-restore does: whitespace separates, single or
 * double quotes group (the quotes are removed), a backslash escapes a quote inside quotes.
 */
export function splitRuleSpec(text: string): string[] {
  // Scans char codes and appends whole runs (slices), not one character at a time: a full sync splits
  // every line of a 400k-line iptables-save dump, where the per-character version cost seconds.
  const tokens: string[] = [];
  const n = text.length;
  let i = 0;
  while (i < n) {
    while (i < n && isSpaceCode(text.charCodeAt(i))) i++;
    if (i >= n) break;
    let current = '';
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === DOUBLE_QUOTE || c === SINGLE_QUOTE) {
        i++;
        let start = i;
        for (;;) {
          if (i >= n) throw new Error(`unterminated ${String.fromCharCode(c)} quote in "${text}"`);
          const d = text.charCodeAt(i);
          if (d === BACKSLASH && i + 1 < n && (text.charCodeAt(i + 1) === c || text.charCodeAt(i + 1) === BACKSLASH)) {
            current += text.slice(start, i) + text[i + 1];
            i += 2;
            start = i;
          } else if (d === c) {
            current += text.slice(start, i);
            i++;
            break;
          } else {
            i++;
          }
        }
        continue;
      }
      if (isSpaceCode(c)) break;
      const start = i;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d === DOUBLE_QUOTE || d === SINGLE_QUOTE || isSpaceCode(d)) break;
        i++;
      }
      current += text.slice(start, i);
    }
    tokens.push(current);
  }
  return tokens;
}

const DOUBLE_QUOTE = 34;
const SINGLE_QUOTE = 39;
const BACKSLASH = 92;

/** What /\s/ matches, for one UTF-16 code unit; ASCII answered without the regular expression. */
function isSpaceCode(c: number): boolean {
  if (c === 32 || (c >= 9 && c <= 13)) return true;
  return c > 127 && /\s/.test(String.fromCharCode(c));
}

/** One argument as iptables-save prints it: bare when only [A-Za-z0-9_-], else double-quoted. */
export function quoteToken(token: string): string {
  if (/^[A-Za-z0-9_-]+$/.test(token)) return token;
  return `"${token.replace(/(["\\])/g, '\\$1')}"`;
}

/** Arguments joined back into one line that splitRuleSpec reads identically. */
export function joinRuleSpec(tokens: readonly string[]): string {
  return tokens.map((t) => (/^[^\s"'\\]+$/.test(t) ? t : quoteToken(t))).join(' ');
}

// ── restore payloads ────────────────────────────────────────────────────────────────────────────

export type RestoreOp =
  | { kind: 'table'; line: number; table: string }
  | { kind: 'chain'; line: number; chain: string; policy: string }
  | { kind: 'append'; line: number; chain: string; spec: string[] }
  | { kind: 'insert'; line: number; chain: string; position: number; spec: string[] }
  | { kind: 'delete'; line: number; chain: string; spec: string[] }
  | { kind: 'deleteNumber'; line: number; chain: string; position: number }
  | { kind: 'newChain'; line: number; chain: string }
  | { kind: 'flush'; line: number; chain: string | null }
  | { kind: 'deleteChain'; line: number; chain: string | null }
  | { kind: 'list'; line: number }
  | { kind: 'commit'; line: number };

/** Parse an iptables-restore payload into numbered operations (syntax only; no semantics). */
export function parseRestorePayload(payload: string): RestoreOp[] {
  const ops: RestoreOp[] = [];
  const lines = payload.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    const text = (lines[i] ?? '').trim();
    if (text === '' || text.startsWith('#')) continue;
    if (text.startsWith('*')) {
      ops.push({ kind: 'table', line, table: text.slice(1).trim() });
      continue;
    }
    if (text === 'COMMIT') {
      ops.push({ kind: 'commit', line });
      continue;
    }
    if (text.startsWith(':')) {
      const m = /^:(\S+)\s+(\S+)(\s+\[\d+:\d+\])?$/.exec(text);
      if (!m?.[1] || !m[2]) throw new IptablesParseError(line, `bad chain declaration "${text}"`);
      ops.push({ kind: 'chain', line, chain: m[1], policy: m[2] });
      continue;
    }
    let tokens: string[];
    try {
      tokens = splitRuleSpec(text);
    } catch (err) {
      throw new IptablesParseError(line, (err as Error).message);
    }
    const [flag, chain, ...rest] = tokens;
    switch (flag) {
      case '-A':
      case '--append':
        if (!chain) throw new IptablesParseError(line, '-A needs a chain');
        ops.push({ kind: 'append', line, chain, spec: rest });
        break;
      case '-I':
      case '--insert': {
        if (!chain) throw new IptablesParseError(line, '-I needs a chain');
        const hasPos = rest[0] !== undefined && /^\d+$/.test(rest[0]);
        ops.push({ kind: 'insert', line, chain, position: hasPos ? Number(rest[0]) : 1, spec: hasPos ? rest.slice(1) : rest });
        break;
      }
      case '-D':
      case '--delete':
        if (!chain) throw new IptablesParseError(line, '-D needs a chain');
        if (rest.length === 1 && /^\d+$/.test(rest[0] ?? '')) {
          ops.push({ kind: 'deleteNumber', line, chain, position: Number(rest[0]) });
        } else {
          ops.push({ kind: 'delete', line, chain, spec: rest });
        }
        break;
      case '-N':
      case '--new-chain':
        if (!chain || rest.length) throw new IptablesParseError(line, '-N takes exactly one chain');
        ops.push({ kind: 'newChain', line, chain });
        break;
      case '-F':
      case '--flush':
        ops.push({ kind: 'flush', line, chain: chain ?? null });
        break;
      case '-X':
      case '--delete-chain':
        ops.push({ kind: 'deleteChain', line, chain: chain ?? null });
        break;
      case '-S':
      case '--list-rules':
        ops.push({ kind: 'list', line });
        break;
      default:
        throw new IptablesParseError(line, `unsupported command "${text}"`);
    }
  }
  return ops;
}

/**
 * Insert a no-op "-S" after every table header. iptables-nft-restore then loads its cache once up
 * front instead of revalidating per chain, which turns super-quadratic loads of big payloads into
 * linear ones (DESIGN §5). Returns the new payload and a map from new line numbers to original ones.
 */
export function addListFirst(payload: string): { payload: string; originalLine: (line: number) => number } {
  // Slices around each header, not a split into lines: payloads reach tens of MB.
  const parts: string[] = [];
  const headerEnds: number[] = []; // offsets in `payload` just after each header line's "\n" (or its end)
  let from = 0;
  for (const m of payload.matchAll(TABLE_HEADER)) {
    const end = m.index + m[0].length;
    parts.push(payload.slice(from, end), '\n-S');
    from = end;
    headerEnds.push(end);
  }
  parts.push(payload.slice(from));
  let inserted: number[] | null = null; // 1-based line numbers (in the output) of the "-S" lines
  return {
    payload: parts.join(''),
    originalLine: (line) => {
      inserted ??= headerEnds.map((end, i) => countLines(payload, end) + i + 1);
      return line - inserted.filter((n) => n <= line).length;
    },
  };
}

/** A table header line ("*nat"), without its newline. */
const TABLE_HEADER = /^[ \t]*\*[^\n]*/gm;

/** How many lines `text` has up to `offset` (the line `offset` is on, 1-based). */
function countLines(text: string, offset: number): number {
  let n = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/** Built-in chains of each table, in the order iptables-save prints them. */
export const BUILTIN_CHAINS: Readonly<Record<string, readonly string[]>> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  raw: ['PREROUTING', 'OUTPUT'],
  security: ['INPUT', 'FORWARD', 'OUTPUT'],
};

// ── save dumps ──────────────────────────────────────────────────────────────────────────────────

export interface SavedChain {
  name: string;
  /** Policy of a built-in chain ("ACCEPT"), or null for a user chain ("-"). */
  policy: string | null;
}

export interface SavedRule {
  chain: string;
  /** Arguments after "-A CHAIN". */
  spec: string[];
  /** The line as printed (without "-A CHAIN "). */
  text: string;
}

export interface SavedTable {
  name: string;
  chains: SavedChain[];
  rules: SavedRule[];
}

/** Parse iptables-save output (one or more tables); comments and counters are dropped. */
export function parseIptablesSave(text: string): Map<string, SavedTable> {
  const tables = new Map<string, SavedTable>();
  let current: SavedTable | null = null;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('*')) {
      current = { name: line.slice(1), chains: [], rules: [] };
      tables.set(current.name, current);
    } else if (line === 'COMMIT') {
      current = null;
    } else if (current === null) {
      throw new IptablesParseError(i + 1, `"${line}" outside a table`);
    } else if (line.startsWith(':')) {
      const m = /^:(\S+)\s+(\S+)/.exec(line);
      if (!m?.[1] || !m[2]) throw new IptablesParseError(i + 1, `bad chain line "${line}"`);
      current.chains.push({ name: m[1], policy: m[2] === '-' ? null : m[2] });
    } else if (line.startsWith('-A ')) {
      const tokens = splitRuleSpec(line);
      const chain = tokens[1];
      if (!chain) throw new IptablesParseError(i + 1, `bad rule line "${line}"`);
      current.rules.push({ chain, spec: tokens.slice(2), text: line.slice(3 + chain.length).trim() });
    } else {
      throw new IptablesParseError(i + 1, `unexpected line "${line}"`);
    }
  }
  return tables;
}

/** Names of the chains in one table of a save dump (what kube-proxy reads to find stale chains). */
export function savedChainNames(text: string, table: string): string[] {
  return parseIptablesSave(text)
    .get(table)
    ?.chains.map((c) => c.name) ?? [];
}

// ── canonical rule form ─────────────────────────────────────────────────────────────────────────

const BASE_MATCH_ORDER = ['-s', '-d', '-i', '-o', '-p'] as const;
const BASE_ALIASES: Record<string, (typeof BASE_MATCH_ORDER)[number]> = {
  '-s': '-s',
  '--source': '-s',
  '--src': '-s',
  '-d': '-d',
  '--destination': '-d',
  '--dst': '-d',
  '-i': '-i',
  '--in-interface': '-i',
  '-o': '-o',
  '--out-interface': '-o',
  '-p': '-p',
  '--protocol': '-p',
};
const PORT_PROTOCOLS = new Set(['tcp', 'udp', 'sctp']);
const PROTO_OPTIONS = new Set(['--dport', '--sport', '--destination-port', '--source-port', '--tcp-flags', '--syn']);

/**
 * Rewrite a rule spec into the form iptables-save prints it, for the parts portway's rules use:
 * base matches first in the order -s -d -i -o -p, addresses with a prefix length, the match a
 * port option implies ("-p tcp --dport 80" → "-p tcp -m tcp --dport 80"), statistic probability
 * with 11 decimals, MARK --or-mark/--xor-mark as --set-xmark. Other tokens keep their order.
 * Two specs are the same rule when their canonical forms are equal (how -C and -D match).
 */
export function canonicalRuleSpec(spec: readonly string[], family: IPFamily): string[] {
  const base = new Map<string, string[]>();
  const rest: string[][] = []; // groups: ["-m", name, opts…] / ["-j", target, opts…] / loose options
  let protocol: string | null = null;
  let i = 0;
  let group: string[] | null = null;
  const explicitMatches = new Set<string>();
  while (i < spec.length) {
    const tok = spec[i] as string;
    const negated = tok === '!' && spec[i + 1] !== undefined && BASE_ALIASES[spec[i + 1] as string] !== undefined;
    const flag = negated ? (spec[i + 1] as string) : tok;
    const baseKey = BASE_ALIASES[flag];
    if (baseKey !== undefined && (negated || tok === flag)) {
      let value = spec[i + (negated ? 2 : 1)] ?? '';
      if (baseKey === '-s' || baseKey === '-d') value = withPrefix(value, family);
      if (baseKey === '-p') {
        value = value.toLowerCase();
        protocol = value;
      }
      base.set(baseKey, negated ? ['!', baseKey, value] : [baseKey, value]);
      i += negated ? 3 : 2;
      continue;
    }
    if (tok === '-m' || tok === '--match' || tok === '-j' || tok === '--jump' || tok === '-g' || tok === '--goto') {
      const short = tok === '--match' ? '-m' : tok === '--jump' ? '-j' : tok === '--goto' ? '-g' : tok;
      const name = spec[i + 1] ?? '';
      if (short === '-m') explicitMatches.add(name);
      group = [short, name];
      rest.push(group);
      i += 2;
      continue;
    }
    // An option of a match: if it belongs to the protocol's implicit match, open that match.
    const optName = tok === '!' ? spec[i + 1] : tok;
    if (
      optName !== undefined &&
      PROTO_OPTIONS.has(optName) &&
      protocol !== null &&
      PORT_PROTOCOLS.has(protocol) &&
      !explicitMatches.has(protocol) &&
      (group === null || group[0] !== '-m' || !['multiport', protocol].includes(group[1] ?? ''))
    ) {
      group = ['-m', protocol];
      explicitMatches.add(protocol);
      rest.push(group);
    }
    if (group === null) {
      group = [];
      rest.push(group);
    }
    group.push(tok);
    i++;
  }
  const out: string[] = [];
  for (const key of BASE_MATCH_ORDER) out.push(...(base.get(key) ?? []));
  for (const g of rest) out.push(...canonicalGroup(g, family));
  return out;
}

/** "0x004000/0x004000" → "0x4000/0x4000": a mark as save prints it (kube-proxy's ipvs mode writes Go's %#08x). */
function canonicalMark(value: string): string {
  return value
    .split('/')
    .map((part) => (/^0x[0-9a-f]+$/i.test(part) ? `0x${BigInt(part).toString(16)}` : part))
    .join('/');
}

function canonicalGroup(group: string[], family: IPFamily): string[] {
  if (group[0] === '-m' && group[1] === 'mark') return group.map((t, idx) => (group[idx - 1] === '--mark' ? canonicalMark(t) : t));
  if (group[0] === '-m' && group[1] === 'statistic') {
    // The kernel keeps the probability as a 31-bit fraction; save prints that fraction.
    return group.map((t, idx) =>
      group[idx - 1] === '--probability' && /^[0-9.]+$/.test(t)
        ? (Math.round(Number(t) * 0x80000000) / 0x80000000).toFixed(11)
        : t,
    );
  }
  if (group[0] === '-m' && group[1] === 'recent') return canonicalRecent(group, family);
  if (group[0] === '-m' && group[1] === 'ipvs') return canonicalIpvsMatch(group, family);
  if (group[0] === '-j' && group[1] === 'REJECT' && !group.includes('--reject-with')) {
    // REJECT's default reply, which save prints.
    return [...group, '--reject-with', family === 'IPv4' ? 'icmp-port-unreachable' : 'icmp6-port-unreachable'];
  }
  if (group[0] === '-j' && group[1] === 'MARK') {
    const out: string[] = ['-j', 'MARK'];
    for (let i = 2; i < group.length; i++) {
      const t = group[i] as string;
      const v = group[i + 1] ?? '';
      if (t === '--or-mark') {
        out.push('--set-xmark', canonicalMark(`${v}/${v}`));
        i++;
      } else if (t === '--xor-mark') {
        out.push('--set-xmark', canonicalMark(`${v}/0x0`));
        i++;
      } else if (t === '--set-mark') {
        out.push('--set-xmark', canonicalMark(v.includes('/') ? v : `${v}/0xffffffff`));
        i++;
      } else if (t === '--set-xmark') {
        out.push(t, canonicalMark(v));
        i++;
      } else out.push(t);
    }
    return out;
  }
  return group;
}

const IPVS_PROTOCOL_NUMBERS: Record<string, string> = { tcp: '6', udp: '17', sctp: '132' };

/**
 * "-m ipvs" as save prints it (libxt_ipvs): --ipvs, --vproto as a number, --vaddr with its prefix
 * length, --vport, --vdir, --vmethod, --vportctl, in that order, each with its "!" in front.
 */
function canonicalIpvsMatch(group: string[], family: IPFamily): string[] {
  const ORDER = ['--ipvs', '--vproto', '--vaddr', '--vport', '--vdir', '--vmethod', '--vportctl'];
  const options = new Map<string, string[]>();
  for (let i = 2; i < group.length; i++) {
    const negated = group[i] === '!';
    const name = group[negated ? ++i : i] as string;
    if (!ORDER.includes(name)) return group; // something we do not model: leave it as written
    if (name === '--ipvs') {
      options.set(name, negated ? ['!', name] : [name]);
      continue;
    }
    let value = group[++i] ?? '';
    if (name === '--vproto') value = IPVS_PROTOCOL_NUMBERS[value.toLowerCase()] ?? value;
    if (name === '--vaddr') value = withPrefix(value, family);
    options.set(name, negated ? ['!', name, value] : [name, value]);
  }
  return ['-m', 'ipvs', ...ORDER.flatMap((name) => options.get(name) ?? [])];
}

/** "-m recent" as save prints it: command, --seconds, --reap, --name, --mask, --rsource/--rdest. */
function canonicalRecent(group: string[], family: IPFamily): string[] {
  const commands: string[] = [];
  const opts = new Map<string, string>();
  let reap = false;
  let side = '--rsource';
  for (let i = 2; i < group.length; i++) {
    const t = group[i] as string;
    if (['--set', '--rcheck', '--update', '--remove'].includes(t)) commands.push(t);
    else if (t === '--reap') reap = true;
    else if (t === '--rsource' || t === '--rdest') side = t;
    else if (['--seconds', '--hitcount', '--name', '--mask'].includes(t)) {
      opts.set(t, group[i + 1] ?? '');
      i++;
    } else if (t === '--rttl') commands.push(t);
    else return group; // something we do not model: leave it as written
  }
  const out = ['-m', 'recent', ...commands];
  if (opts.has('--seconds')) out.push('--seconds', opts.get('--seconds') as string);
  if (opts.has('--hitcount')) out.push('--hitcount', opts.get('--hitcount') as string);
  if (reap) out.push('--reap');
  out.push('--name', opts.get('--name') ?? 'DEFAULT');
  out.push('--mask', opts.get('--mask') ?? (family === 'IPv4' ? '255.255.255.255' : 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'));
  out.push(side);
  return out;
}

function withPrefix(value: string, family: IPFamily): string {
  return value
    .split(',')
    .map((v) => (v.includes('/') ? v : `${v}/${family === 'IPv4' ? 32 : 128}`))
    .join(',');
}

/** A rule line as iptables-save prints it: "-A CHAIN" + canonical tokens in save quoting. */
export function formatSavedRule(chain: string, canonicalSpec: readonly string[]): string {
  // iptables-save quotes free-text values (comments) unless they are plain words; other
  // arguments (addresses, ports, marks) are printed bare.
  const printed = canonicalSpec.map((t, i) =>
    canonicalSpec[i - 1] === '--comment' || /[\s"'\\]/.test(t) || t === '' ? quoteToken(t) : t,
  );
  return ['-A', chain, ...printed].join(' ');
}
