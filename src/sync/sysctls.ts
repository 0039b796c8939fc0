// Kernel settings the iptables rules need, and a journal of the ones portway changed so that
// `portway cleanup` puts back exactly those (and nothing else).
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Sysctl } from '../dataplane/interfaces.js';
import type { IPFamily } from '../model/cluster-state.js';

export interface WantedSysctl {
  key: string;
  value: string;
  why: string;
}

/** Pure: the settings for the families being programmed. */
export function planSysctls(families: readonly IPFamily[], localhostNodePorts: boolean): WantedSysctl[] {
  const out: WantedSysctl[] = [];
  if (families.includes('IPv4')) {
    out.push({ key: 'net/ipv4/ip_forward', value: '1', why: 'service traffic to other nodes’ pods is forwarded' });
    if (localhostNodePorts) {
      out.push({
        key: 'net/ipv4/conf/all/route_localnet',
        value: '1',
        why: 'localhostNodePorts: NodePorts on 127.0.0.1 are DNATed off the host',
      });
    }
  }
  if (families.includes('IPv6')) {
    out.push({ key: 'net/ipv6/conf/all/forwarding', value: '1', why: 'service traffic to other nodes’ pods is forwarded' });
  }
  return out;
}

export interface SysctlChange {
  key: string;
  /** Value before portway set it. */
  from: string;
  to: string;
}

/** A list portway keeps across restarts of the agent (and reads back in `portway cleanup`). */
export interface Journal<T> {
  load(): Promise<T[]>;
  save(items: T[]): Promise<void>;
  clear(): Promise<void>;
}

/**
 * A JSON-array file journal under /run: forgotten on reboot, as are the sysctls and chains it records.
 * `isItem` drops entries of the wrong shape (a hand-edited or older file) instead of trusting them.
 */
export class JsonFileJournal<T> implements Journal<T> {
  constructor(
    readonly path: string,
    private readonly isItem: (x: unknown) => x is T,
    private readonly what: string,
  ) {}

  async load(): Promise<T[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const parsed: unknown = JSON.parse(text);
    if (!Array.isArray(parsed)) throw new Error(`${this.path}: expected a JSON array of ${this.what}`);
    return parsed.filter(this.isItem);
  }

  async save(items: T[]): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    await writeFile(this.path, JSON.stringify(items, null, 2) + '\n');
  }

  async clear(): Promise<void> {
    await rm(this.path, { force: true });
  }
}

export class MemoryJournal<T> implements Journal<T> {
  items: T[] = [];
  async load(): Promise<T[]> {
    return [...this.items];
  }
  async save(items: T[]): Promise<void> {
    this.items = [...items];
  }
  async clear(): Promise<void> {
    this.items = [];
  }
}

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null;

/** Where portway remembers the original value of each sysctl it changed. */
export type SysctlJournal = Journal<SysctlChange>;

const isSysctlChange = (c: unknown): c is SysctlChange =>
  isRecord(c) && typeof c.key === 'string' && typeof c.from === 'string' && typeof c.to === 'string';

export class FileSysctlJournal extends JsonFileJournal<SysctlChange> {
  constructor(path: string) {
    super(path, isSysctlChange, 'sysctl changes');
  }
}

export class MemorySysctlJournal extends MemoryJournal<SysctlChange> {}

/**
 * Set each wanted sysctl that differs; returns what was changed. The first original value of a key
 * is kept in the journal across restarts (a restarted agent sees "1", but the node's value was "0").
 */
export async function applySysctls(sysctl: Sysctl, wanted: readonly WantedSysctl[], journal: SysctlJournal): Promise<SysctlChange[]> {
  const changed: SysctlChange[] = [];
  const recorded = await journal.load();
  for (const w of wanted) {
    const current = await sysctl.get(w.key);
    if (current === null) throw new Error(`sysctl ${w.key} does not exist on this kernel (needed: ${w.why})`);
    if (current.trim() === w.value) continue;
    await sysctl.set(w.key, w.value);
    changed.push({ key: w.key, from: current.trim(), to: w.value });
    if (!recorded.some((r) => r.key === w.key)) recorded.push({ key: w.key, from: current.trim(), to: w.value });
  }
  if (changed.length > 0) await journal.save(recorded);
  return changed;
}

/** Put back what the journal says portway changed, when the value is still the one portway set. */
export async function revertSysctls(sysctl: Sysctl, journal: SysctlJournal): Promise<SysctlChange[]> {
  const reverted: SysctlChange[] = [];
  for (const c of await journal.load()) {
    const current = await sysctl.get(c.key);
    if (current === null || current.trim() !== c.to) continue; // someone else changed it since: theirs now
    await sysctl.set(c.key, c.from);
    reverted.push({ key: c.key, from: c.to, to: c.from });
  }
  await journal.clear();
  return reverted;
}

// ── chains shared with kubelet that portway created ─────────────────────────────────────────────

/** A shared chain (KUBE-FIREWALL) that did not exist before portway wrote it: cleanup may remove it. */
export interface CreatedChain {
  family: IPFamily;
  table: string;
  chain: string;
}

/** Remembers which shared chains portway created, so cleanup removes those and leaves kubelet's alone. */
export type CreatedChainsJournal = Journal<CreatedChain>;

const isCreatedChain = (c: unknown): c is CreatedChain =>
  isRecord(c) && (c.family === 'IPv4' || c.family === 'IPv6') && typeof c.table === 'string' && typeof c.chain === 'string';

export class FileCreatedChainsJournal extends JsonFileJournal<CreatedChain> {
  constructor(path: string) {
    super(path, isCreatedChain, 'chains');
  }
}

export class MemoryCreatedChainsJournal extends MemoryJournal<CreatedChain> {}
