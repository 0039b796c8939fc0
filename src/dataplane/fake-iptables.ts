// A stateful, validating stand-in for iptables (DESIGN §4.1): it keeps an in-memory dump per
// table, applies restore payloads with --noflush semantics, and rejects what the real tool
// rejects, so sync logic can be tested across several syncs without a kernel. The e2e test
// test/e2e/dataplane/fake-vs-real.test.ts runs the same payloads through the real tool.
import type { IPFamily } from '../model/cluster-state.js';
import type { TableName } from '../render/types.js';
import { CommandError, RestoreError } from './exec.js';
import { restoreTextOf, type Iptables, type IptablesBackend, type RestoreOptions, type RestoreText } from './interfaces.js';
import {
  BUILTIN_CHAINS,
  canonicalRuleSpec,
  formatSavedRule,
  IptablesParseError,
  parseIptablesSave,
  parseRestorePayload,
  splitRuleSpec,
  type RestoreOp,
} from './iptables-text.js';

export { BUILTIN_CHAINS } from './iptables-text.js';

/** Longest chain name the kernel takes (XT_EXTENSION_MAXNAMELEN - 1). */
export const MAX_CHAIN_NAME_LENGTH = 28;

/** Targets that are extensions, not chains; the value lists the tables that allow it (null = all). */
const KNOWN_TARGETS: Record<string, readonly string[] | null> = {
  ACCEPT: null,
  DROP: ['filter', 'mangle', 'raw', 'security'],
  RETURN: null,
  REJECT: ['filter', 'mangle', 'raw', 'security'],
  DNAT: ['nat'],
  SNAT: ['nat'],
  MASQUERADE: ['nat'],
  REDIRECT: ['nat'],
  MARK: null,
  CONNMARK: null,
  LOG: null,
  NFLOG: null,
  NOTRACK: ['raw'],
  CT: ['raw'],
  TRACE: ['raw'],
  TPROXY: ['mangle'],
  QUEUE: null,
  NFQUEUE: null,
};

/** Match extensions portway (and kube-proxy) use; anything else is rejected as "Couldn't load match". */
const KNOWN_MATCHES = new Set([
  'addrtype',
  'comment',
  'conntrack',
  'state',
  'tcp',
  'udp',
  'sctp',
  'icmp',
  'icmp6',
  'multiport',
  'statistic',
  'recent',
  'mark',
  'connmark',
  'set',
  'physdev',
  'limit',
  'iprange',
  'socket',
  'pkttype',
  'owner',
  'nfacct',
]);

const BASE_FLAGS = new Set([
  '-s',
  '--source',
  '--src',
  '-d',
  '--destination',
  '--dst',
  '-i',
  '--in-interface',
  '-o',
  '--out-interface',
  '-p',
  '--protocol',
]);
const PORT_OPTIONS = new Set(['--dport', '--sport', '--destination-port', '--source-port']);

interface FakeChain {
  builtin: boolean;
  policy: string | null;
  /** Canonical specs (tokens after "-A CHAIN"). */
  rules: string[][];
}

type FakeTable = Map<string, FakeChain>;

/** What one call did, for assertions ("the second sync restored only KUBE-SVC-…"). */
export type FakeIptablesCall =
  | { op: 'save'; table: TableName }
  | { op: 'restore'; payload: string; opts: RestoreOptions }
  | { op: 'checkRule' | 'deleteRule'; table: TableName; chain: string; spec: string[] }
  | { op: 'insertRule'; table: TableName; chain: string; spec: string[]; position: 'prepend' | 'append' };

export interface FakeIptablesOptions {
  family?: IPFamily;
  backend?: IptablesBackend;
  /** iptables-save text to start from (e.g. what kube-proxy left on a node). */
  initialDump?: string;
}

type FakeOp = FakeIptablesCall['op'];

export class FakeIptables implements Iptables {
  readonly family: IPFamily;
  readonly backend: IptablesBackend;
  readonly calls: FakeIptablesCall[] = [];
  private tables = new Map<string, FakeTable>();
  private readonly injected = new Map<FakeOp, Error[]>();

  constructor(opts: FakeIptablesOptions = {}) {
    this.family = opts.family ?? 'IPv4';
    this.backend = opts.backend ?? 'nft';
    if (opts.initialDump !== undefined) this.load(opts.initialDump);
  }

  /** Make the next call of `op` fail with `error` (once per injection, in order). */
  injectFailure(op: FakeOp, error: Error): void {
    const list = this.injected.get(op) ?? [];
    list.push(error);
    this.injected.set(op, list);
  }

  /** Replace the state of the tables in `dump` with it (as `iptables-restore` without --noflush would). */
  load(dump: string): void {
    for (const saved of parseIptablesSave(dump).values()) {
      const table = this.freshTable(saved.name);
      for (const c of saved.chains) {
        const existing = table.get(c.name);
        if (existing) existing.policy = c.policy;
        else table.set(c.name, { builtin: false, policy: null, rules: [] });
      }
      for (const r of saved.rules) {
        const chain = table.get(r.chain);
        if (!chain) throw new Error(`fake iptables dump: rule in undeclared chain ${r.chain}`);
        chain.rules.push(canonicalRuleSpec(r.spec, this.family));
      }
      this.tables.set(saved.name, sortTable(saved.name, table));
    }
  }

  async save(table: TableName): Promise<string> {
    this.calls.push({ op: 'save', table });
    this.throwInjected('save');
    return this.dumpTable(table);
  }

  /** Every table that was ever touched, as iptables-save prints them. */
  dump(): string {
    return [...this.tables.keys()].map((t) => this.dumpTable(t)).join('');
  }

  /** Chain names of a table: built-ins in kernel order, then user chains sorted. */
  chainNames(table: string): string[] {
    return [...this.table(table).keys()];
  }

  /** Rules of one chain as iptables-save prints them ("-A CHAIN …"). */
  rulesOf(table: string, chain: string): string[] {
    return this.table(table).get(chain)?.rules.map((r) => formatSavedRule(chain, r)) ?? [];
  }

  /** Recorded and applied as one restore of head + rest, once rest resolves (a rejection applies nothing). */
  async restoreStreamed(head: RestoreText, rest: Promise<string>, opts: RestoreOptions): Promise<void> {
    await this.restore(restoreTextOf(head) + (await rest), opts);
  }

  async restore(payload: string, opts: RestoreOptions): Promise<void> {
    this.calls.push({ op: 'restore', payload, opts });
    this.throwInjected('restore');
    let ops: RestoreOp[];
    try {
      ops = parseRestorePayload(payload);
    } catch (err) {
      if (err instanceof IptablesParseError) throw this.restoreError(payload, err.line, err.message, 2);
      throw err;
    }
    // Work on a copy: the real restore commits nothing when any line fails.
    const work = new Map<string, FakeTable>();
    for (const [name, t] of this.tables) work.set(name, cloneTable(t));
    let current: { name: string; table: FakeTable } | null = null;
    const fail = (line: number, message: string, exitCode = 1): never => {
      throw this.restoreError(payload, line, message, exitCode);
    };
    for (const op of ops) {
      if (op.kind === 'table') {
        if (current !== null) fail(op.line, `COMMIT expected before table ${op.table}`);
        if (BUILTIN_CHAINS[op.table] === undefined) fail(op.line, `table '${op.table}' does not exist`);
        const table = opts.noflush ? (work.get(op.table) ?? this.freshTable(op.table)) : this.freshTable(op.table);
        work.set(op.table, table);
        current = { name: op.table, table };
        continue;
      }
      if (current === null) {
        fail(op.line, 'no table specified');
        return;
      }
      const { name: tableName, table } = current;
      switch (op.kind) {
        case 'commit':
          current = null;
          break;
        case 'list':
          break;
        case 'chain': {
          checkChainName(op.chain, op.line, fail);
          const existing = table.get(op.chain);
          if (existing?.builtin) {
            // A built-in chain's declaration only sets its policy; its rules survive --noflush.
            if (op.policy !== '-') existing.policy = op.policy;
          } else if (existing) {
            existing.rules = [];
          } else {
            if (op.policy !== '-') fail(op.line, `can't set policy \`${op.policy}' on user-defined chain ${op.chain}`);
            table.set(op.chain, { builtin: false, policy: null, rules: [] });
          }
          break;
        }
        case 'newChain':
          checkChainName(op.chain, op.line, fail);
          if (table.has(op.chain)) fail(op.line, `Chain already exists: ${op.chain}`);
          table.set(op.chain, { builtin: false, policy: null, rules: [] });
          break;
        case 'append':
        case 'insert': {
          const chain = table.get(op.chain) ?? fail(op.line, `No chain/target/match by that name: ${op.chain}`);
          const spec = this.validateSpec(tableName, table, op.spec, (m) => fail(op.line, m, 2));
          if (op.kind === 'append') chain.rules.push(spec);
          else {
            if (op.position < 1 || op.position > chain.rules.length + 1) fail(op.line, 'Index of insertion too big');
            chain.rules.splice(op.position - 1, 0, spec);
          }
          break;
        }
        case 'delete': {
          const chain = table.get(op.chain) ?? fail(op.line, `No chain/target/match by that name: ${op.chain}`);
          const spec = canonicalRuleSpec(op.spec, this.family);
          const idx = chain.rules.findIndex((r) => sameTokens(r, spec));
          if (idx < 0) fail(op.line, 'Bad rule (does a matching rule exist in that chain?)');
          chain.rules.splice(idx, 1);
          break;
        }
        case 'deleteNumber': {
          const chain = table.get(op.chain) ?? fail(op.line, `No chain/target/match by that name: ${op.chain}`);
          if (op.position < 1 || op.position > chain.rules.length) fail(op.line, 'Index of deletion too big');
          chain.rules.splice(op.position - 1, 1);
          break;
        }
        case 'flush':
          if (op.chain === null) for (const c of table.values()) c.rules = [];
          else (table.get(op.chain) ?? fail(op.line, `No chain/target/match by that name: ${op.chain}`)).rules = [];
          break;
        case 'deleteChain': {
          const names = op.chain === null ? [...table.keys()].filter((n) => !table.get(n)?.builtin) : [op.chain];
          for (const name of names) {
            const chain = table.get(name) ?? fail(op.line, `No chain/target/match by that name: ${name}`);
            if (chain.builtin) fail(op.line, `CHAIN_DEL failed (Device or resource busy): chain ${name}`, 4);
            if (chain.rules.length > 0) fail(op.line, `CHAIN_DEL failed (Device or resource busy): chain ${name}`, 4);
            const referrer = referrerOf(table, name);
            if (referrer !== null) {
              fail(op.line, `CHAIN_DEL failed (Device or resource busy): chain ${name} (referenced from ${referrer})`, 4);
            }
            table.delete(name);
          }
          break;
        }
      }
    }
    if (current !== null) fail(payload.split('\n').length, 'COMMIT expected');
    for (const [name, t] of work) this.tables.set(name, sortTable(name, t));
  }

  async checkRule(table: TableName, chain: string, spec: string[]): Promise<boolean> {
    this.calls.push({ op: 'checkRule', table, chain, spec });
    this.throwInjected('checkRule');
    return this.findRule(table, chain, spec) !== null;
  }

  async insertRule(table: TableName, chain: string, spec: string[], position: 'prepend' | 'append'): Promise<void> {
    this.calls.push({ op: 'insertRule', table, chain, spec, position });
    this.throwInjected('insertRule');
    const t = this.table(table);
    const args = ['-w', '5', '-t', table, position === 'prepend' ? '-I' : '-A', chain, ...spec];
    const failWith = (message: string, exitCode: number): never => {
      throw new CommandError({ command: this.binary(), args, exitCode, stderr: `iptables (fake): ${message}\n`, durationMs: 0 });
    };
    const c = t.get(chain) ?? failWith('No chain/target/match by that name.', 1);
    const canonical = this.validateSpec(table, t, spec, (m) => failWith(m, 2));
    if (position === 'prepend') c.rules.unshift(canonical);
    else c.rules.push(canonical);
  }

  async deleteRule(table: TableName, chain: string, spec: string[]): Promise<boolean> {
    this.calls.push({ op: 'deleteRule', table, chain, spec });
    this.throwInjected('deleteRule');
    const found = this.findRule(table, chain, spec);
    if (found === null) return false;
    found.rules.splice(found.index, 1);
    return true;
  }

  /** Restores since construction (or since `calls` was last cleared). */
  restores(): Array<{ payload: string; opts: RestoreOptions }> {
    return this.calls.flatMap((c) => (c.op === 'restore' ? [{ payload: c.payload, opts: c.opts }] : []));
  }

  // ── internals ──

  /** The first rule of the chain equal to `spec` in canonical form (how -C and -D match), if any. */
  private findRule(table: TableName, chain: string, spec: string[]): { rules: string[][]; index: number } | null {
    const c = this.table(table).get(chain);
    if (!c) return null;
    const want = canonicalRuleSpec(spec, this.family);
    const index = c.rules.findIndex((r) => sameTokens(r, want));
    return index < 0 ? null : { rules: c.rules, index };
  }

  private binary(): string {
    return `${this.family === 'IPv4' ? 'iptables' : 'ip6tables'}-${this.backend}`;
  }

  private restoreError(payload: string, line: number, message: string, exitCode: number): RestoreError {
    return new RestoreError({
      command: `${this.binary()}-restore`,
      args: ['-w', '5', '--noflush'],
      exitCode,
      stderr: `iptables-restore (fake): line ${line} failed: ${message}\n`,
      durationMs: 0,
      payload,
      line,
    });
  }

  private throwInjected(op: FakeOp): void {
    const err = this.injected.get(op)?.shift();
    if (err) throw err;
  }

  private freshTable(name: string): FakeTable {
    const table: FakeTable = new Map();
    for (const c of BUILTIN_CHAINS[name] ?? []) table.set(c, { builtin: true, policy: 'ACCEPT', rules: [] });
    return table;
  }

  private table(name: string): FakeTable {
    let t = this.tables.get(name);
    if (!t) {
      if (BUILTIN_CHAINS[name] === undefined) throw new Error(`fake iptables: no table ${name}`);
      t = this.freshTable(name);
      this.tables.set(name, t);
    }
    return t;
  }

  private dumpTable(name: string): string {
    const table = this.table(name);
    const lines = [`# Generated by portway FakeIptables (${this.backend})`, `*${name}`];
    for (const [chain, c] of table) lines.push(`:${chain} ${c.builtin ? (c.policy ?? 'ACCEPT') : '-'} [0:0]`);
    for (const [chain, c] of table) for (const r of c.rules) lines.push(formatSavedRule(chain, r));
    lines.push('COMMIT', '# Completed', '');
    return lines.join('\n');
  }

  /** Validate a rule spec the way the tool would, and return its canonical form. */
  private validateSpec(tableName: string, table: FakeTable, spec: string[], fail: (m: string) => never): string[] {
    let protocol: string | null = null;
    const loaded = new Set<string>();
    let sawTarget = false;
    for (let i = 0; i < spec.length; i++) {
      const tok = spec[i] as string;
      if (tok === '!') continue;
      if (BASE_FLAGS.has(tok)) {
        const value = spec[i + 1];
        if (value === undefined) fail(`option "${tok}" requires an argument`);
        if (tok === '-p' || tok === '--protocol') protocol = (value as string).toLowerCase();
        i++;
        continue;
      }
      if (tok === '-m' || tok === '--match') {
        const name = spec[i + 1] ?? fail('-m requires a match name');
        if (!KNOWN_MATCHES.has(name)) fail(`Couldn't load match \`${name}':No such file or directory`);
        if (['tcp', 'udp', 'sctp'].includes(name) && protocol !== null && protocol !== name) {
          fail(`${name} match requires -p ${name}`);
        }
        loaded.add(name);
        i++;
        continue;
      }
      if (tok === '-j' || tok === '--jump' || tok === '-g' || tok === '--goto') {
        if (sawTarget) fail('multiple targets');
        sawTarget = true;
        const target = spec[i + 1] ?? fail(`${tok} requires a target`);
        const known = KNOWN_TARGETS[target];
        if (known !== undefined && (tok === '-j' || tok === '--jump')) {
          if (known !== null && !known.includes(tableName)) {
            fail(`The "${tableName}" table is not intended for ${target}: RULE_APPEND failed (Invalid argument)`);
          }
          loaded.add(`target:${target}`);
        } else {
          const chain = table.get(target);
          if (!chain || chain.builtin) fail(`Chain '${target}' does not exist`);
        }
        i++;
        continue;
      }
      if (PORT_OPTIONS.has(tok)) {
        const implicit = protocol !== null && ['tcp', 'udp', 'sctp'].includes(protocol);
        if (!implicit && !['tcp', 'udp', 'sctp'].some((m) => loaded.has(m))) fail(`unknown option "${tok}"`);
        i++;
        continue;
      }
      if (tok.startsWith('--')) {
        if (loaded.size === 0 && !['tcp', 'udp', 'sctp'].includes(protocol ?? '')) fail(`unknown option "${tok}"`);
        continue; // an option of a loaded match or target; its value is skipped as a plain token
      }
      if (tok.startsWith('-') && !/^-\d/.test(tok)) fail(`unknown option "${tok}"`);
    }
    return canonicalRuleSpec(spec, this.family);
  }
}

function checkChainName(name: string, line: number, fail: (line: number, m: string) => never): void {
  if (name.length > MAX_CHAIN_NAME_LENGTH) {
    fail(line, `chain name \`${name}' too long (must be under ${MAX_CHAIN_NAME_LENGTH + 1} chars)`);
  }
  if (name.startsWith('-') || name === '!') fail(line, `invalid chain name \`${name}'`);
}

function referrerOf(table: FakeTable, target: string): string | null {
  for (const [name, c] of table) {
    for (const r of c.rules) {
      for (let i = 0; i < r.length - 1; i++) {
        if ((r[i] === '-j' || r[i] === '-g') && r[i + 1] === target) return name;
      }
    }
  }
  return null;
}

function sameTokens(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((t, i) => t === b[i]);
}

function cloneTable(t: FakeTable): FakeTable {
  const out: FakeTable = new Map();
  for (const [n, c] of t) out.set(n, { builtin: c.builtin, policy: c.policy, rules: c.rules.map((r) => [...r]) });
  return out;
}

/** Built-ins in kernel order, then user chains by name, as iptables-save lists them. */
function sortTable(name: string, t: FakeTable): FakeTable {
  const out: FakeTable = new Map();
  for (const b of BUILTIN_CHAINS[name] ?? []) {
    const c = t.get(b);
    if (c) out.set(b, c);
  }
  for (const n of [...t.keys()].filter((k) => !t.get(k)?.builtin).sort()) out.set(n, t.get(n) as FakeChain);
  return out;
}

/** Tokens of a BuiltinJump.spec-style string, for callers holding rule text. */
export function specTokens(spec: string): string[] {
  return splitRuleSpec(spec);
}
