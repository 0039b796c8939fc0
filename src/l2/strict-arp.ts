// strictARP, as kube-proxy's ipvs mode does it: with service addresses on kube-ipvs0, every node would
// answer ARP for them (arp_ignore=0 answers for any local address on any interface), and layer2
// announcement needs exactly one answer. arp_ignore=1 answers only for addresses of the receiving
// interface; arp_announce=2 picks the best local source address for ARP requests.
import type { Config } from '../config/config.js';
import type { Sysctl } from '../dataplane/interfaces.js';

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

/** Set arp_ignore=1 and arp_announce=2 where they differ, then read them back. Never throws. */
export async function ensureStrictArp(sysctl: Sysctl): Promise<StrictArpResult> {
  const result: StrictArpResult = { changed: [], problems: [] };
  for (const [key, want] of WANTED) {
    let before: string | null;
    try {
      before = await sysctl.get(key);
    } catch (e) {
      result.problems.push(`${key}: cannot read: ${(e as Error).message}`);
      continue;
    }
    if (before === want) continue;
    let writeError = '';
    try {
      await sysctl.set(key, want);
      result.changed.push({ key, from: before, to: want });
    } catch (e) {
      writeError = (e as Error).message;
    }
    let after: string | null = null;
    try {
      after = await sysctl.get(key);
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
