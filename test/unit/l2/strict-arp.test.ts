import { afterEach, describe, expect, test } from '@jest/globals';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig } from '../../../src/config/config.js';
import { FakeSysctl, FileSysctl } from '../../../src/dataplane/sysctl.js';
import { ARP_ANNOUNCE, ARP_IGNORE, ensureStrictArp, strictArpWanted } from '../../../src/l2/strict-arp.js';
import { UnavailableJournal } from '../../../src/sync/journal.js';
import {
  applySysctls,
  MemorySysctlJournal,
  revertSysctls,
  type SysctlChange,
} from '../../../src/sync/sysctls.js';

const roots: string[] = [];
async function sysctlRoot(values: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'portway-sysctl-'));
  roots.push(root);
  for (const [key, value] of Object.entries(values)) {
    await mkdir(join(root, key, '..'), { recursive: true });
    await writeFile(join(root, key), `${value}\n`);
  }
  return root;
}
afterEach(async () => {
  for (const r of roots.splice(0)) await rm(r, { recursive: true, force: true });
});

describe('strictArpWanted', () => {
  test('ipvs mode or ipvs.strictARP', () => {
    const c = defaultConfig();
    expect(strictArpWanted(c)).toBe(false);
    expect(strictArpWanted({ ...c, mode: 'ipvs' })).toBe(true);
    expect(strictArpWanted({ ...c, ipvs: { ...c.ipvs, strictARP: true } })).toBe(true);
  });
});

describe('ensureStrictArp over a sysctl root', () => {
  test('sets arp_ignore=1 and arp_announce=2 when they differ, and verifies them', async () => {
    const root = await sysctlRoot({ [ARP_IGNORE]: '0', [ARP_ANNOUNCE]: '0' });
    const result = await ensureStrictArp(new FileSysctl(root));
    expect(result.problems).toEqual([]);
    expect(result.changed).toEqual([
      { key: ARP_IGNORE, from: '0', to: '1' },
      { key: ARP_ANNOUNCE, from: '0', to: '2' },
    ]);
    expect((await readFile(join(root, ARP_IGNORE), 'utf8')).trim()).toBe('1');
    expect((await readFile(join(root, ARP_ANNOUNCE), 'utf8')).trim()).toBe('2');
  });

  test('already right: nothing written', async () => {
    const sysctl = new FakeSysctl({ [ARP_IGNORE]: '1', [ARP_ANNOUNCE]: '2' });
    expect(await ensureStrictArp(sysctl)).toEqual({ changed: [], problems: [] });
    expect(sysctl.writes).toEqual([]);
  });

  test('a key that cannot be set is reported with its value and the error', async () => {
    const result = await ensureStrictArp(new FakeSysctl({ [ARP_IGNORE]: '0' })); // no arp_announce: cannot be set
    expect(result.changed).toEqual([{ key: ARP_IGNORE, from: '0', to: '1' }]);
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0]).toMatch(
      /^net\/ipv4\/conf\/all\/arp_announce is missing, strictARP needs 2 \(setting it failed: /,
    );
  });

  test('a write that does not stick (read back differs) is reported', async () => {
    const sysctl = new FakeSysctl({ [ARP_IGNORE]: '0', [ARP_ANNOUNCE]: '2' });
    sysctl.set = async () => undefined; // accepted but ignored, like a read-only /proc/sys
    const result = await ensureStrictArp(sysctl);
    expect(result.problems).toEqual(['net/ipv4/conf/all/arp_ignore is 0, strictARP needs 1']);
  });
});

describe('ensureStrictArp with a journal (cleanup restores the previous values)', () => {
  test('records the values found before setting, and revertSysctls puts them back', async () => {
    const sysctl = new FakeSysctl({ [ARP_IGNORE]: '0', [ARP_ANNOUNCE]: '1' });
    const journal = new MemorySysctlJournal();
    const result = await ensureStrictArp(sysctl, journal);
    expect(result.problems).toEqual([]);
    expect(journal.items).toEqual([
      { key: ARP_IGNORE, from: '0', to: '1' },
      { key: ARP_ANNOUNCE, from: '1', to: '2' },
    ]);
    // A restarted agent finds 1/2 already: the first originals stay recorded.
    expect(await ensureStrictArp(sysctl, journal)).toEqual({ changed: [], problems: [] });
    expect(journal.items).toHaveLength(2);
    expect(await revertSysctls(sysctl, journal)).toEqual([
      { key: ARP_IGNORE, from: '1', to: '0' },
      { key: ARP_ANNOUNCE, from: '2', to: '1' },
    ]);
    expect([await sysctl.get(ARP_IGNORE), await sysctl.get(ARP_ANNOUNCE)]).toEqual(['0', '1']);
  });

  test('a journal that cannot be written: nothing is set, and the problem says why', async () => {
    const sysctl = new FakeSysctl({ [ARP_IGNORE]: '0', [ARP_ANNOUNCE]: '0' });
    const result = await ensureStrictArp(
      sysctl,
      new UnavailableJournal<SysctlChange>('read-only file system'),
    );
    expect(result.changed).toEqual([]);
    expect(result.problems).toEqual([
      expect.stringMatching(/^not changing .*arp_ignore.*read-only file system/),
    ]);
    expect(sysctl.writes).toEqual([]);
  });

  test('strictARP and the syncer writing one journal at once lose no key', async () => {
    // A journal whose load and save yield, as a file journal's do: unserialised, both would load [] and
    // the second save would drop the first's keys.
    class SlowJournal extends MemorySysctlJournal {
      override async load(): Promise<SysctlChange[]> {
        await new Promise((r) => setTimeout(r, 5));
        return super.load();
      }
      override async save(items: SysctlChange[]): Promise<void> {
        await new Promise((r) => setTimeout(r, 5));
        return super.save(items);
      }
    }
    const journal = new SlowJournal();
    const sysctl = new FakeSysctl({ [ARP_IGNORE]: '0', [ARP_ANNOUNCE]: '0', 'net/ipv4/ip_forward': '0' });
    await Promise.all([
      ensureStrictArp(sysctl, journal),
      applySysctls(sysctl, [{ key: 'net/ipv4/ip_forward', value: '1', why: 'test' }], journal),
    ]);
    expect(journal.items.map((c) => c.key).sort()).toEqual([ARP_ANNOUNCE, ARP_IGNORE, 'net/ipv4/ip_forward']);
  });
});
