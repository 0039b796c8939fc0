import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeNetnsIdentity, parseMarker } from '../../../src/dataplane/netns-identity.js';
import { FakeSysctl } from '../../../src/dataplane/sysctl.js';
import { RecordingLogger } from '../../../src/observe/logger.js';
import { NetnsState } from '../../../src/sync/netns-state.js';
import { applySysctls, planSysctls } from '../../../src/sync/sysctls.js';

describe('NetnsState', () => {
  let stateDir: string;
  beforeEach(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'portway-netns-state-'));
  });
  afterEach(async () => {
    await rm(stateDir, { recursive: true, force: true });
  });

  it('marks an unmarked namespace once and keys its directory by inode and marker', async () => {
    const identity = new FakeNetnsIdentity({ inode: '4026532240' });
    const logger = new RecordingLogger();
    const first = await NetnsState.open({ stateDir, identity, logger });
    expect(identity.marker).toMatch(/^[0-9a-f]{24}$/);
    expect(first.dir).toBe(join(stateDir, `netns-4026532240-${identity.marker}`));
    const again = await NetnsState.open({ stateDir, identity, logger });
    expect(again.dir).toBe(first.dir);
    expect(logger.records.filter((r) => r.message.startsWith('marked this network namespace'))).toHaveLength(
      1,
    );
  });

  it('removes, unread, what a dead namespace with the same inode left (marked or from before markers); other inodes stay', async () => {
    for (const d of ['netns-4026532240', 'netns-4026532240-0123abcd', 'netns-4026532241-0123abcd']) {
      await mkdir(join(stateDir, d));
      await writeFile(
        join(stateDir, d, 'sysctl-changes.json'),
        '[{"key":"net/ipv4/ip_forward","from":"0","to":"1"}]',
      );
    }
    const identity = new FakeNetnsIdentity({ inode: '4026532240' });
    const logger = new RecordingLogger();
    expect(await NetnsState.find({ stateDir, identity, logger })).toBeNull();
    expect(await readdir(stateDir)).toEqual(['netns-4026532241-0123abcd']);
    expect(logger.records.filter((r) => r.level === 'warn')).toHaveLength(2);
  });

  it('a namespace that cannot be marked records nothing, so nothing is changed', async () => {
    const identity = new FakeNetnsIdentity();
    identity.writeMarker = async () => {
      throw new Error('ip link property add dev lo altname …: Operation not permitted');
    };
    const logger = new RecordingLogger();
    const state = await NetnsState.open({ stateDir, identity, logger });
    expect(state.dir).toBeNull();
    expect(logger.records.at(-1)?.level).toBe('error');
    const sysctl = new FakeSysctl({ 'net/ipv4/ip_forward': '0' });
    await expect(applySysctls(sysctl, planSysctls(['IPv4'], false), state.sysctlJournal)).rejects.toThrow(
      /cannot record state for this network namespace: ip link property add .*Operation not permitted/,
    );
    expect(sysctl.writes).toEqual([]);
  });

  it('remove() forgets the directory and the marker', async () => {
    const identity = new FakeNetnsIdentity();
    const state = await NetnsState.open({ stateDir, identity, logger: new RecordingLogger() });
    await state.sysctlJournal.save([{ key: 'net/ipv4/ip_forward', from: '0', to: '1' }]);
    await state.remove();
    expect(await readdir(stateDir)).toEqual([]);
    expect(identity.marker).toBeNull();
  });
});

describe('parseMarker', () => {
  it('reads the marker from lo’s altnames, else from its ifalias, and ignores anything else', () => {
    expect(parseMarker('[{"ifname":"lo","altnames":["x","portway-state-ab12"]}]')).toBe('ab12');
    expect(parseMarker('[{"ifname":"lo","ifalias":"portway-state-cd34"}]')).toBe('cd34');
    expect(parseMarker('[{"ifname":"lo","ifalias":"uplink to core"}]')).toBeNull();
    expect(parseMarker('[{"ifname":"lo"}]')).toBeNull();
  });
});
