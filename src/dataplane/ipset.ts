// ipset executor (ipset save / restore -exist / destroy) and a stateful validating fake.
import { isIPv4, isIPv6 } from 'node:net';
import { canonicalIP, parseCIDR } from '../model/ip.js';
import { CommandError, type CommandRunner, type ExecutorRunOptions, RestoreError, runChecked, runnerFor } from './exec.js';
import type { Ipset, IpsetEntrySet } from './interfaces.js';
import { splitRuleSpec } from './iptables-text.js';

export interface IpsetOptions extends ExecutorRunOptions {
  timeoutMs?: number;
}

export class RealIpset implements Ipset {
  private readonly runner: CommandRunner;
  private readonly timeoutMs: number;

  constructor(opts: IpsetOptions = {}) {
    this.runner = runnerFor(opts);
    this.timeoutMs = opts.timeoutMs ?? 120_000;
  }

  async list(): Promise<IpsetEntrySet[]> {
    const res = await runChecked(this.runner, 'ipset', ['save'], { timeoutMs: this.timeoutMs });
    return parseIpsetSave(res.stdout);
  }

  async restore(payload: string): Promise<void> {
    const args = ['restore', '-exist'];
    const res = await this.runner.run('ipset', args, { input: payload, timeoutMs: this.timeoutMs });
    if (res.exitCode !== 0) {
      throw new RestoreError({ command: 'ipset', args, exitCode: res.exitCode, stderr: res.stderr, durationMs: res.durationMs, payload });
    }
  }

  /** Destroying a set that does not exist is a no-op; a set still used by a rule is an error. */
  async destroy(name: string): Promise<void> {
    const res = await this.runner.run('ipset', ['destroy', name], { timeoutMs: this.timeoutMs });
    if (res.exitCode === 0 || /does not exist/.test(res.stderr)) return;
    throw new CommandError({ command: 'ipset', args: ['destroy', name], ...res });
  }
}

export function createIpset(opts: IpsetOptions = {}): Ipset {
  return new RealIpset(opts);
}

/** Parse `ipset save` output. Entries keep ipset's printed form; an entry comment common to all becomes `comment`. */
export function parseIpsetSave(text: string): IpsetEntrySet[] {
  const sets = new Map<string, IpsetEntrySet & { comments: Set<string> }>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const tokens = splitRuleSpec(line);
    const [verb, name, value] = tokens;
    if (verb === 'create' && name && value) {
      const famIdx = tokens.indexOf('family');
      const family = tokens[famIdx + 1] === 'inet6' ? 'inet6' : 'inet';
      sets.set(name, { name, type: value, family: famIdx < 0 ? 'inet' : family, entries: [], comments: new Set() });
    } else if (verb === 'add' && name && value) {
      const set = sets.get(name);
      if (!set) throw new Error(`ipset save: entry for unknown set ${name}: "${line}"`);
      set.entries.push(value);
      const c = tokens.indexOf('comment');
      if (c >= 0) set.comments.add(tokens[c + 1] ?? '');
    }
  }
  return [...sets.values()].map(({ comments, ...s }) => {
    const [only] = comments;
    return comments.size === 1 && only !== undefined ? { ...s, comment: only } : s;
  });
}

// ── fake ────────────────────────────────────────────────────────────────────────────────────────

interface FakeSet {
  type: string;
  family: 'inet' | 'inet6';
  entries: Map<string, string | undefined>; // canonical entry → comment
  comments: boolean;
}

/**
 * In-memory ipset: applies restore payloads line by line like `ipset restore -exist` (lines
 * before a failing one stay applied, as with the real tool), normalises entries to ipset's printed
 * form and rejects entries that do not fit the set type or family.
 */
export class FakeIpset implements Ipset {
  readonly calls: Array<{ op: 'list' } | { op: 'restore'; payload: string } | { op: 'destroy'; name: string }> = [];
  private readonly sets = new Map<string, FakeSet>();
  private readonly inUse = new Set<string>();
  /** Called after every line a restore applied: tests watch what the kernel would show in between. */
  afterEachLine: ((fake: FakeIpset) => void) | undefined = undefined;

  /** Pretend a kernel rule (iptables -m set) references the set, so destroy fails like the real one. */
  markInUse(name: string, used = true): void {
    if (used) this.inUse.add(name);
    else this.inUse.delete(name);
  }

  setNames(): string[] {
    return [...this.sets.keys()].sort();
  }

  entriesOf(name: string): string[] {
    return [...(this.sets.get(name)?.entries.keys() ?? [])].sort();
  }

  async list(): Promise<IpsetEntrySet[]> {
    this.calls.push({ op: 'list' });
    return [...this.sets.entries()].map(([name, s]) => {
      const comments = new Set(s.entries.values());
      const [only] = comments;
      return {
        name,
        type: s.type,
        family: s.family,
        entries: [...s.entries.keys()],
        ...(s.comments && comments.size === 1 && only !== undefined ? { comment: only } : {}),
      };
    });
  }

  async restore(payload: string): Promise<void> {
    this.calls.push({ op: 'restore', payload });
    const lines = payload.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = (lines[i] ?? '').trim();
      if (!line || line.startsWith('#')) continue;
      try {
        this.applyLine(splitRuleSpec(line));
        this.afterEachLine?.(this);
      } catch (err) {
        throw new RestoreError({
          command: 'ipset',
          args: ['restore', '-exist'],
          exitCode: 1,
          stderr: `ipset (fake): Error in line ${i + 1}: ${(err as Error).message}\n`,
          durationMs: 0,
          payload,
          line: i + 1,
        });
      }
    }
  }

  async destroy(name: string): Promise<void> {
    this.calls.push({ op: 'destroy', name });
    if (!this.sets.has(name)) return;
    if (this.inUse.has(name)) {
      throw new CommandError({
        command: 'ipset',
        args: ['destroy', name],
        exitCode: 1,
        stderr: 'ipset (fake): Set cannot be destroyed: it is in use by a kernel component\n',
        durationMs: 0,
      });
    }
    this.sets.delete(name);
  }

  private need(name: string | undefined): FakeSet {
    const s = name === undefined ? undefined : this.sets.get(name);
    if (!s) throw new Error(`The set with the given name does not exist: ${name ?? '(none)'}`);
    return s;
  }

  private applyLine(tokens: string[]): void {
    const [verb, name, arg, ...rest] = tokens;
    switch (verb) {
      case 'create': {
        if (!name || !arg) throw new Error('create needs a name and a type');
        if (name.length > 31) throw new Error(`set name too long: ${name}`);
        if (!SET_TYPES.has(arg)) throw new Error(`Kernel error received: set type not supported: ${arg}`);
        const famIdx = rest.indexOf('family');
        const family = famIdx >= 0 ? rest[famIdx + 1] : 'inet';
        if (family !== 'inet' && family !== 'inet6') throw new Error(`unknown family ${family ?? ''}`);
        const existing = this.sets.get(name);
        if (existing) {
          if (existing.type !== arg || existing.family !== family) {
            throw new Error(`Set cannot be created: set with the same name already exists (type ${existing.type})`);
          }
          return; // -exist
        }
        this.sets.set(name, { type: arg, family, entries: new Map(), comments: rest.includes('comment') });
        return;
      }
      case 'add':
      case 'del': {
        const set = this.need(name);
        if (!arg) throw new Error(`${verb} needs an entry`);
        const entry = canonicalIpsetEntry(set.type, set.family, arg);
        if (verb === 'add') {
          const c = rest.indexOf('comment');
          if (c >= 0 && !set.comments) throw new Error('Comment support is not enabled for this set');
          set.entries.set(entry, c >= 0 ? rest[c + 1] : undefined); // -exist: re-adding is fine
        } else set.entries.delete(entry);
        return;
      }
      case 'flush':
        if (name === undefined) for (const s of this.sets.values()) s.entries.clear();
        else this.need(name).entries.clear();
        return;
      case 'destroy':
        if (name === undefined) {
          for (const n of [...this.sets.keys()]) if (!this.inUse.has(n)) this.sets.delete(n);
        } else {
          this.need(name);
          if (this.inUse.has(name)) throw new Error('Set cannot be destroyed: it is in use by a kernel component');
          this.sets.delete(name);
        }
        return;
      case 'swap': {
        const a = this.need(name);
        const b = this.need(arg);
        if (a.type !== b.type || a.family !== b.family) throw new Error('The sets cannot be swapped: their type does not match');
        this.sets.set(name as string, b);
        this.sets.set(arg as string, a);
        return;
      }
      case 'rename': {
        const a = this.need(name);
        if (!arg || this.sets.has(arg)) throw new Error(`Set cannot be renamed: a set with the new name already exists`);
        this.sets.delete(name as string);
        this.sets.set(arg, a);
        return;
      }
      default:
        throw new Error(`unknown command ${verb ?? ''}`);
    }
  }
}

const SET_TYPES = new Set(['hash:ip', 'hash:ip,port', 'hash:ip,port,ip', 'hash:ip,port,net', 'hash:net', 'bitmap:port']);

/**
 * An entry in ipset's printed form ("10.0.0.1,tcp:80"), or an error naming what does not fit.
 * Exported so render/plan code can compare desired entries with `ipset save` output.
 */
export function canonicalIpsetEntry(type: string, family: 'inet' | 'inet6', entry: string): string {
  const parts = entry.split(',');
  const ip = (text: string | undefined): string => {
    const c = text === undefined ? null : canonicalIP(text);
    if (c === null || (family === 'inet' ? !isIPv4(c) : !isIPv6(c))) {
      throw new Error(`Syntax error: '${text ?? ''}' is not a valid ${family === 'inet' ? 'IPv4' : 'IPv6'} address`);
    }
    return c;
  };
  const net = (text: string | undefined): string => {
    const p = text === undefined ? null : parseCIDR(text);
    const bits = family === 'inet' ? 32 : 128;
    if (p === null || p.family !== (family === 'inet' ? 'IPv4' : 'IPv6') || p.prefix === 0) {
      throw new Error(`Syntax error: '${text ?? ''}' is not a valid ${family} network`);
    }
    return p.prefix === bits ? (p.text.split('/')[0] as string) : p.text;
  };
  const port = (text: string | undefined): string => {
    const m = /^(?:(tcp|udp|sctp|udplite):)?(\d+)$/.exec(text ?? '');
    if (!m?.[2] || Number(m[2]) > 65535) throw new Error(`Syntax error: '${text ?? ''}' is not a valid proto:port`);
    return `${m[1] ?? 'tcp'}:${Number(m[2])}`;
  };
  const want = (n: number) => {
    if (parts.length !== n) throw new Error(`Syntax error: '${entry}' does not fit a ${type} set`);
  };
  switch (type) {
    case 'hash:ip':
      want(1);
      return ip(parts[0]);
    case 'hash:net':
      want(1);
      return net(parts[0]);
    case 'hash:ip,port':
      want(2);
      return `${ip(parts[0])},${port(parts[1])}`;
    case 'hash:ip,port,ip':
      want(3);
      return `${ip(parts[0])},${port(parts[1])},${ip(parts[2])}`;
    case 'hash:ip,port,net':
      want(3);
      return `${ip(parts[0])},${port(parts[1])},${net(parts[2])}`;
    case 'bitmap:port': {
      want(1);
      const p = Number(parts[0]);
      if (!/^\d+$/.test(parts[0] ?? '') || p > 65535) throw new Error(`Syntax error: '${entry}' is not a port`);
      return String(p);
    }
    default:
      throw new Error(`set type not supported: ${type}`);
  }
}
