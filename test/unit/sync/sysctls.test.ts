import { describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeSysctl } from '../../../src/dataplane/sysctl.js';
import { RecordingLogger } from '../../../src/observe/logger.js';
import {
  applySysctls,
  FileSysctlJournal,
  MemorySysctlJournal,
  planSysctls,
} from '../../../src/sync/sysctls.js';

class UnwritableJournal extends MemorySysctlJournal {
  override async save(): Promise<void> {
    throw new Error('cannot write /run/portway/x.json (EROFS): read-only file system');
  }
}

describe('applySysctls: record first, then change', () => {
  const wanted = planSysctls(['IPv4'], true);

  it('changes nothing when the journal cannot be written, and says which settings and why', async () => {
    const sysctl = new FakeSysctl({ 'net/ipv4/ip_forward': '0', 'net/ipv4/conf/all/route_localnet': '0' });
    await expect(applySysctls(sysctl, wanted, new UnwritableJournal())).rejects.toThrow(
      /not changing net\/ipv4\/ip_forward \(0 → 1\), net\/ipv4\/conf\/all\/route_localnet \(0 → 1\): cannot record .*EROFS/,
    );
    expect(sysctl.writes).toEqual([]);
  });

  it('does not need to write when every key to change is already recorded (a restart onto a full disk)', async () => {
    const sysctl = new FakeSysctl({ 'net/ipv4/ip_forward': '0', 'net/ipv4/conf/all/route_localnet': '1' });
    const journal = new UnwritableJournal();
    journal.items = [{ key: 'net/ipv4/ip_forward', from: '0', to: '1' }];
    expect(await applySysctls(sysctl, wanted, journal)).toEqual([
      { key: 'net/ipv4/ip_forward', from: '0', to: '1' },
    ]);
    expect(await sysctl.get('net/ipv4/ip_forward')).toBe('1');
  });

  it('keeps the first original value across restarts', async () => {
    const sysctl = new FakeSysctl({ 'net/ipv4/ip_forward': '1', 'net/ipv4/conf/all/route_localnet': '0' });
    const journal = new MemorySysctlJournal();
    journal.items = [{ key: 'net/ipv4/ip_forward', from: '0', to: '1' }];
    await applySysctls(sysctl, wanted, journal);
    expect(journal.items).toEqual([
      { key: 'net/ipv4/ip_forward', from: '0', to: '1' },
      { key: 'net/ipv4/conf/all/route_localnet', from: '0', to: '1' },
    ]);
  });
});

describe('JsonFileJournal on disk', () => {
  it('an empty, truncated or non-array file reads as empty with one warning, and the next save replaces it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portway-journal-'));
    try {
      const path = join(dir, 'sysctl-changes.json');
      const logger = new RecordingLogger();
      const journal = new FileSysctlJournal(path, logger);
      for (const bad of ['', '[{"key": "net/ipv4/ip_forward", "fr', '{"key": 1}']) {
        await writeFile(path, bad);
        expect(await journal.load()).toEqual([]);
        expect(await journal.load()).toEqual([]); // the same content is reported once
      }
      const warnings = logger.records.filter((r) => r.level === 'warn');
      expect(warnings).toHaveLength(3);
      expect(warnings[0]?.fields).toEqual({ path, problem: 'the file is empty' });
      await journal.save([{ key: 'net/ipv4/ip_forward', from: '0', to: '1' }]);
      expect(await journal.load()).toEqual([{ key: 'net/ipv4/ip_forward', from: '0', to: '1' }]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
