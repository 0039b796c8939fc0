// Kernel settings the iptables rules need, and a journal of the ones portway changed so that
// `portway cleanup` puts back exactly those (and nothing else).
import type { Sysctl } from '../dataplane/interfaces.js';
import type { IPFamily } from '../model/cluster-state.js';
import type { Logger } from '../observe/logger.js';
import { JsonFileJournal, MemoryJournal, type Journal } from './journal.js';

export type { Journal } from './journal.js';

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

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null;

/** Where portway remembers the original value of each sysctl it changed. */
export type SysctlJournal = Journal<SysctlChange>;

const isSysctlChange = (c: unknown): c is SysctlChange =>
  isRecord(c) && typeof c.key === 'string' && typeof c.from === 'string' && typeof c.to === 'string';

export class FileSysctlJournal extends JsonFileJournal<SysctlChange> {
  constructor(path: string, logger?: Logger) {
    super(path, isSysctlChange, 'sysctl changes', logger);
  }
}

export class MemorySysctlJournal extends MemoryJournal<SysctlChange> {}

/**
 * Set each wanted sysctl that differs; returns what was changed. Record first, then change: the
 * original value of every key about to change is journalled before any is set, so a journal that
 * cannot be written (a full or read-only state directory) means nothing is changed, and the error
 * says so. The first original value of a key is kept across restarts (a restarted agent sees "1",
 * but the node's value was "0").
 */
export async function applySysctls(sysctl: Sysctl, wanted: readonly WantedSysctl[], journal: SysctlJournal): Promise<SysctlChange[]> {
  const toChange: SysctlChange[] = [];
  for (const w of wanted) {
    const current = await sysctl.get(w.key);
    if (current === null) throw new Error(`sysctl ${w.key} does not exist on this kernel (needed: ${w.why})`);
    if (current.trim() !== w.value) toChange.push({ key: w.key, from: current.trim(), to: w.value });
  }
  if (toChange.length === 0) return [];
  await recordSysctlOriginals(journal, toChange);
  for (const c of toChange) await sysctl.set(c.key, c.to);
  return toChange;
}

/** Journal writes in flight, per journal: two writers (the syncer's sysctls, strictARP) must not interleave. */
const journalWrites = new WeakMap<SysctlJournal, Promise<unknown>>();

/**
 * Record the original value of each key about to change, unless the journal already holds one (the
 * first original is kept across restarts). Throws — and the caller must then change nothing — when the
 * journal cannot be written. Writes to one journal are serialised: a load-then-save of the syncer and
 * one of strictARP running at once would otherwise lose one side's keys.
 */
export function recordSysctlOriginals(journal: SysctlJournal, changes: readonly SysctlChange[]): Promise<void> {
  const previous = journalWrites.get(journal) ?? Promise.resolve();
  const write = previous
    .catch(() => undefined)
    .then(async () => {
      const recorded = await journal.load();
      const fresh = changes.filter((c) => !recorded.some((r) => r.key === c.key));
      if (fresh.length === 0) return;
      try {
        await journal.save([...recorded, ...fresh]);
      } catch (err) {
        throw new Error(
          `not changing ${changes.map((c) => `${c.key} (${c.from} → ${c.to})`).join(', ')}: ` +
            `cannot record the current values first, so cleanup could not restore them: ${(err as Error).message}`,
          { cause: err },
        );
      }
    });
  journalWrites.set(journal, write);
  return write;
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

// ── chains shared with kubelet ─────────────────────────────────────────────────────────────────

/**
 * A shared chain (kubelet's KUBE-FIREWALL) as it was before portway first wrote it, so that cleanup
 * puts back exactly that: deletes a chain portway created, or restores the rules and built-in jumps of
 * one that was there (portway's full syncs rewrite its rules with kube-proxy's).
 */
export interface SharedChainRecord {
  family: IPFamily;
  table: string;
  chain: string;
  existedBefore: boolean;
  /** Its rule lines as iptables-save printed them before ("-A KUBE-FIREWALL …"); [] when it did not exist. */
  rules: string[];
  /** Built-in chains' rules that jumped to it before ("-A INPUT -j KUBE-FIREWALL"). */
  jumps: string[];
}

/** Remembers shared chains as they were before portway touched them. */
export type SharedChainsJournal = Journal<SharedChainRecord>;

const isStringArray = (x: unknown): x is string[] => Array.isArray(x) && x.every((l) => typeof l === 'string');

const isSharedChainRecord = (c: unknown): c is SharedChainRecord =>
  isRecord(c) &&
  (c.family === 'IPv4' || c.family === 'IPv6') &&
  typeof c.table === 'string' &&
  typeof c.chain === 'string' &&
  typeof c.existedBefore === 'boolean' &&
  isStringArray(c.rules) &&
  isStringArray(c.jumps);

export class FileSharedChainsJournal extends JsonFileJournal<SharedChainRecord> {
  constructor(path: string, logger?: Logger) {
    super(path, isSharedChainRecord, 'shared chains', logger);
  }
}

export class MemorySharedChainsJournal extends MemoryJournal<SharedChainRecord> {}
