// strictARP, as kube-proxy's ipvs mode does it: with service addresses on kube-ipvs0, every node would
// answer ARP for them (arp_ignore=0 answers for any local address on any interface), and layer2
// announcement needs exactly one answer. arp_ignore=1 answers only for addresses of the receiving
// interface; arp_announce=2 picks the best local source address for ARP requests.
import type { Config } from '../config/config.js';
import type { Sysctl } from '../dataplane/interfaces.js';
import { recordSysctlOriginals, type SysctlJournal } from '../sync/sysctls.js';

export const ARP_IGNORE = 'net/ipv4/conf/all/arp_ignore';
export const ARP_ANNOUNCE = 'net/ipv4/conf/all/arp_announce';
const WANTED: Array<[string, string]> = [
  [ARP_IGNORE, '1'],
  [ARP_ANNOUNCE, '2'],
];

/** strictARP is needed in ipvs mode (addresses on kube-ipvs0) or when the configuration asks for it. */
export function strictArpWanted(config: Pick<Config, 'mode' | 'ipvs'>): boolean {
  return config.mode === 'ipvs' || config.ipvs.strictARP;
}

export interface StrictArpResult {
  /** Keys written (their value was different). */
  changed: Array<{ key: string; from: string | null; to: string }>;
  /** Keys still wrong after trying: each names the key, the value read and why. */
  problems: string[];
}

/**
 * Set arp_ignore=1 and arp_announce=2 where they differ, then read them back. Never throws. With a
 * journal, the values found are recorded before anything is set (so `portway cleanup` puts them back);
 * when they cannot be recorded nothing is set and that is the problem reported.
 */
export async function ensureStrictArp(sysctl: Sysctl, journal?: SysctlJournal): Promise<StrictArpResult> {
  const result: StrictArpResult = { changed: [], problems: [] };
  const toSet: Array<{ key: string; before: string | null; want: string }> = [];
  for (const [key, want] of WANTED) {
    try {
      const before = await sysctl.get(key);
      if (before?.trim() !== want) toSet.push({ key, before: before?.trim() ?? null, want });
    } catch (e) {
      result.problems.push(`${key}: cannot read: ${(e as Error).message}`);
    }
  }
  const recordable = toSet.flatMap(({ key, before, want }) =>
    before === null ? [] : [{ key, from: before, to: want }],
  );
  if (journal && recordable.length > 0) {
    try {
      await recordSysctlOriginals(journal, recordable);
    } catch (e) {
      result.problems.push((e as Error).message);
      return result;
    }
  }
  for (const { key, before, want } of toSet) {
    let writeError = '';
    try {
      await sysctl.set(key, want);
      result.changed.push({ key, from: before, to: want });
    } catch (e) {
      writeError = (e as Error).message;
    }
    let after: string | null = null;
    try {
      after = (await sysctl.get(key))?.trim() ?? null;
    } catch {
      // reported below as still wrong
    }
    if (after !== want) {
      result.problems.push(
        `${key} is ${after ?? 'missing'}, strictARP needs ${want}` +
          (writeError ? ` (setting it failed: ${writeError})` : ''),
      );
    }
  }
  return result;
}
