import { afterEach, describe, expect, test } from '@jest/globals';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig } from '../../../src/config/config.js';
import { FakeSysctl, FileSysctl } from '../../../src/dataplane/sysctl.js';
import { ARP_ANNOUNCE, ARP_IGNORE, ensureStrictArp, strictArpWanted } from '../../../src/l2/strict-arp.js';

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
