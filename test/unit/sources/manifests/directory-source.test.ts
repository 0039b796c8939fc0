import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdir, mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RecordingLogger } from '../../../../src/observe/logger.js';
import {
  ManifestDirectorySource,
  type DirectoryWatcherFactory,
  type ManifestSnapshot,
} from '../../../../src/sources/manifests/directory-source.js';
import { ManualClock, SystemClock } from '../../../../src/sync/clock.js';
import { eventually } from '../../../fixtures/polling.js';

const svc = (name: string, ip: string, port: number | string = 80) => `
apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: demo }
spec:
  clusterIP: ${ip}
  ports: [{ name: http, port: ${port} }]
`;

const serviceNames = (s: ManifestSnapshot) => s.state.services.map((x) => x.name);

describe('ManifestDirectorySource', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portway-manifests-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function source(
    onChange: (s: ManifestSnapshot) => void = () => undefined,
    watcher?: DirectoryWatcherFactory,
  ) {
    const logger = new RecordingLogger();
    const clock = new ManualClock();
    const src = new ManifestDirectorySource({
      dir,
      logger,
      clock,
      onChange,
      debounceMs: 100,
      ...(watcher ? { watcher } : {}),
    });
    return { src, logger, clock };
  }

  it('reads every manifest of the directory into one state', async () => {
    await writeFile(join(dir, 'a.yaml'), svc('alpha', '10.96.0.10'));
    await writeFile(join(dir, 'b.yaml'), svc('beta', '10.96.0.11'));
    const { src } = source();
    const snap = await src.load();
    expect(serviceNames(snap)).toEqual(['alpha', 'beta']);
    expect(snap.problems).toEqual([]);
  });

  it('a new object with a bad field is reported (file, object, field) and skipped; the others stay; fixing adds it', async () => {
    await writeFile(join(dir, 'a.yaml'), svc('alpha', '10.96.0.10'));
    await writeFile(join(dir, 'b.yaml'), svc('beta', '10.96.0.11', 70000));
    const { src, logger } = source();
    const bad = await src.load();
    expect(serviceNames(bad)).toEqual(['alpha']);
    expect(bad.problems).toHaveLength(1);
    expect(bad.problems[0]).toMatchObject({
      source: join(dir, 'b.yaml'),
      kind: 'Service',
      object: 'demo/beta',
    });
    expect(bad.problems[0]?.field).toMatch(/^spec\.ports\[0\]\.port$/);
    expect(bad.problems[0]?.kept).toBeUndefined();
    const warn = logger.records.filter((r) => r.level === 'warn');
    expect(warn).toHaveLength(1);
    expect(warn[0]?.message).toMatch(/b\.yaml: Service demo\/beta: spec\.ports\[0\]\.port: .*\(skipped\)/);
    // reloading the same bad file does not log again
    await src.load();
    expect(logger.records.filter((r) => r.level === 'warn')).toHaveLength(1);
    await writeFile(join(dir, 'b.yaml'), svc('beta', '10.96.0.11', 8080));
    const fixed = await src.load();
    expect(serviceNames(fixed)).toEqual(['alpha', 'beta']);
    expect(fixed.state.servicePorts.find((p) => p.serviceName === 'beta')?.port).toBe(8080);
    expect(logger.records.some((r) => r.level === 'info' && r.message === 'manifest problem resolved')).toBe(
      true,
    );
  });

  it('an existing object edited into an invalid version keeps its last good version, reported, as a syntax error would', async () => {
    await writeFile(join(dir, 'a.yaml'), svc('alpha', '10.96.0.10'));
    await writeFile(join(dir, 'b.yaml'), svc('beta', '10.96.0.11', 8080));
    const { src, logger } = source();
    await src.load();
    for (const port of [0, 70000, '"http"']) {
      await writeFile(join(dir, 'b.yaml'), svc('beta', '10.96.0.11', port));
      const bad = await src.load();
      expect(serviceNames(bad)).toEqual(['alpha', 'beta']);
      expect(bad.state.servicePorts.find((p) => p.serviceName === 'beta')?.port).toBe(8080);
      expect(bad.problems).toHaveLength(1);
      expect(bad.problems[0]).toMatchObject({
        kind: 'Service',
        object: 'demo/beta',
        field: 'spec.ports[0].port',
        kept: true,
      });
    }
    expect(logger.records.filter((r) => r.level === 'warn').at(-1)?.message).toMatch(
      /b\.yaml: Service demo\/beta: spec\.ports\[0\]\.port: .*\(keeping the last good version of the object\)/,
    );
    // An error found after the schema (two ports with one name) is kept the same way.
    await writeFile(
      join(dir, 'b.yaml'),
      svc('beta', '10.96.0.11', 8080).replace(
        'ports: [{ name: http, port: 8080 }]',
        'ports: [{ name: http, port: 1 }, { name: http, port: 2 }]',
      ),
    );
    const dup = await src.load();
    expect(dup.state.servicePorts.find((p) => p.serviceName === 'beta')?.port).toBe(8080);
    expect(dup.problems[0]).toMatchObject({ field: 'spec.ports[1].name', kept: true });
    // Fixed: the new version; deleted: gone (deleting is not invalid).
    await writeFile(join(dir, 'b.yaml'), svc('beta', '10.96.0.11', 9090));
    const fixed = await src.load();
    expect(fixed.state.servicePorts.find((p) => p.serviceName === 'beta')?.port).toBe(9090);
    expect(fixed.problems).toEqual([]);
    await unlink(join(dir, 'b.yaml'));
    expect(serviceNames(await src.load())).toEqual(['alpha']);
  });

  it('a file that stops parsing keeps its last good version until fixed; a deleted file drops its objects', async () => {
    await writeFile(join(dir, 'a.yaml'), svc('alpha', '10.96.0.10'));
    await writeFile(join(dir, 'b.yaml'), svc('beta', '10.96.0.11'));
    const { src, logger } = source();
    await src.load();
    await writeFile(
      join(dir, 'b.yaml'),
      'apiVersion: v1\nkind: Service\nmetadata: { name: beta\n  namespace: [oops\n',
    );
    const broken = await src.load();
    expect(serviceNames(broken)).toEqual(['alpha', 'beta']);
    expect(broken.keptFiles).toEqual([join(dir, 'b.yaml')]);
    expect(broken.problems[0]?.message).toMatch(/YAML syntax error/);
    expect(logger.records.find((r) => r.level === 'warn')?.message).toMatch(/keeping the last good version/);
    await unlink(join(dir, 'b.yaml'));
    expect(serviceNames(await src.load())).toEqual(['alpha']);
  });

  it('a file that never parsed contributes nothing', async () => {
    await writeFile(join(dir, 'a.yaml'), ': : :\n  - [');
    const { src } = source();
    const snap = await src.load();
    expect(snap.state.services).toEqual([]);
    expect(snap.keptFiles).toEqual([]);
    expect(snap.problems).toHaveLength(1);
  });

  it('coalesces a burst of file events into one reload after the debounce window', async () => {
    await writeFile(join(dir, 'a.yaml'), svc('alpha', '10.96.0.10'));
    let fire: (path: string) => void = () => undefined;
    let closed = false;
    const fakeWatcher: DirectoryWatcherFactory = (_d, onEvent) => {
      fire = onEvent;
      return { close: async () => void (closed = true) };
    };
    const snapshots: ManifestSnapshot[] = [];
    const { src, clock } = source((s) => snapshots.push(s), fakeWatcher);
    const first = await src.start();
    expect(serviceNames(first)).toEqual(['alpha']);
    await writeFile(join(dir, 'b.yaml'), svc('beta', '10.96.0.11'));
    fire(join(dir, 'b.yaml'));
    await clock.advance(50);
    fire(join(dir, 'b.yaml'));
    await clock.advance(99);
    expect(snapshots).toHaveLength(0);
    await clock.advance(1);
    // The reload reads files for real: wait for it with the usual deadline (a fixed 500 ms was short on a loaded CI box).
    await eventually('the debounced reload', () => snapshots.length > 0);
    expect(snapshots.map(serviceNames)).toEqual([['alpha', 'beta']]);
    await src.stop();
    expect(closed).toBe(true);
  });

  it('watches the directory for real (chokidar)', async () => {
    await writeFile(join(dir, 'a.yaml'), svc('alpha', '10.96.0.10'));
    const snapshots: ManifestSnapshot[] = [];
    const src = new ManifestDirectorySource({
      dir,
      logger: new RecordingLogger(),
      clock: new SystemClock(),
      debounceMs: 50,
      onChange: (s) => snapshots.push(s),
    });
    // No settling sleep: start() resolves only once chokidar is ready, so a write right after it is seen.
    await src.start();
    await writeFile(join(dir, 'b.yaml'), svc('beta', '10.96.0.11'));
    await eventually('beta seen', () => snapshots.some((s) => serviceNames(s).includes('beta')));
    await src.stop();
    expect(serviceNames(snapshots.at(-1)!)).toEqual(['alpha', 'beta']);
  });

  it('a second write to a file within chokidar’s 50 ms change throttle is still read', async () => {
    await writeFile(join(dir, 'a.yaml'), svc('alpha', '10.96.0.10', 81));
    const snapshots: ManifestSnapshot[] = [];
    const src = new ManifestDirectorySource({
      dir,
      logger: new RecordingLogger(),
      clock: new SystemClock(),
      onChange: (s) => snapshots.push(s),
    });
    await src.start();
    const port = () => snapshots.at(-1)?.state.servicePorts[0]?.port;
    try {
      for (const [first, second] of [
        [82, 83],
        [84, 85],
        [86, 87],
      ]) {
        // Renamed in, as tools that write atomically do; the second write 30 ms after the first is
        // after the default debounce's reload began and inside the watcher's throttle window.
        await writeFile(join(dir, 'staged'), svc('alpha', '10.96.0.10', first));
        await rename(join(dir, 'staged'), join(dir, 'a.yaml'));
        await new Promise((r) => setTimeout(r, 30));
        await writeFile(join(dir, 'staged'), svc('alpha', '10.96.0.10', second));
        await rename(join(dir, 'staged'), join(dir, 'a.yaml'));
        await eventually(`port ${second} read`, () => port() === second, 3000);
      }
    } finally {
      await src.stop();
    }
  });

  it('a missing root is a sourceError; a root that is recreated is watched again (a new watcher) and read in full', async () => {
    const root = join(dir, 'm');
    const watchers: Array<{ fire: (path: string) => void; closed: boolean }> = [];
    const watcher: DirectoryWatcherFactory = (_d, onEvent) => {
      const w = { fire: onEvent, closed: false };
      watchers.push(w);
      return { close: async () => void (w.closed = true) };
    };
    const clock = new ManualClock();
    const snapshots: ManifestSnapshot[] = [];
    const logger = new RecordingLogger();
    const src = new ManifestDirectorySource({
      dir: root,
      logger,
      clock,
      onChange: (s) => snapshots.push(s),
      watcher,
      rootCheckMs: 1000,
    });
    const first = await src.start();
    expect(first.sourceError).toMatch(/cannot read: ENOENT/);
    expect(first.rootIdentity).toBe('');
    expect(watchers).toHaveLength(0); // nothing to watch yet: polled

    await mkdir(root);
    await writeFile(join(root, 'a.yaml'), svc('alpha', '10.96.0.10'));
    await clock.advance(1000);
    await eventually('the appeared root read', () => snapshots.length === 1);
    expect(serviceNames(snapshots[0]!)).toEqual(['alpha']);
    expect(snapshots[0]!.sourceError).toBeUndefined();
    expect(watchers).toHaveLength(1);
    const identity = snapshots[0]!.rootIdentity;

    // rm -rf; mkdir; write: the old watcher is on a deleted inode and would never report again.
    await rm(root, { recursive: true });
    await mkdir(root);
    await writeFile(join(root, 'b.yaml'), svc('beta', '10.96.0.11'));
    await clock.advance(1000);
    await eventually('the recreated root read', () => snapshots.length === 2);
    expect(serviceNames(snapshots[1]!)).toEqual(['beta']);
    expect(snapshots[1]!.rootIdentity).not.toBe(identity);
    expect(watchers).toHaveLength(2);
    expect(watchers[0]!.closed).toBe(true);
    expect(logger.records.some((r) => /replaced or appeared; watching it again/.test(r.message))).toBe(true);

    // Events from the new watcher reload as before.
    await writeFile(join(root, 'c.yaml'), svc('gamma', '10.96.0.12'));
    watchers[1]!.fire(join(root, 'c.yaml'));
    await clock.advance(100);
    await eventually('the change seen by the new watcher', () => snapshots.length === 3);
    expect(serviceNames(snapshots[2]!)).toEqual(['beta', 'gamma']);
    await src.stop();
    expect(watchers[1]!.closed).toBe(true);
  });

  it('a change the watcher never reports (a file replaced twice by rename) is found by the periodic rescan', async () => {
    const root = join(dir, 'm');
    await mkdir(root);
    await writeFile(join(root, 'a.yaml'), svc('alpha', '10.96.0.10'));
    const silent: DirectoryWatcherFactory = () => ({ close: async () => undefined });
    const clock = new ManualClock();
    const snapshots: ManifestSnapshot[] = [];
    const logger = new RecordingLogger();
    const src = new ManifestDirectorySource({
      dir: root,
      logger,
      clock,
      onChange: (s) => snapshots.push(s),
      watcher: silent,
      rootCheckMs: 1000,
    });
    expect(serviceNames(await src.start())).toEqual(['alpha']);
    await writeFile(join(root, 'staged'), svc('beta', '10.96.0.11'));
    await rename(join(root, 'staged'), join(root, 'a.yaml'));
    expect(snapshots).toHaveLength(0);
    // Root checks run one after another (each schedules the next when it ends): advance the clock until
    // the fifth one, which compares every file's signature, has read the change.
    await eventually('the unreported change read', async () => {
      await clock.advance(1000);
      return snapshots.length === 1;
    });
    expect(serviceNames(snapshots[0]!)).toEqual(['beta']);
    expect(logger.records.some((r) => /the watcher did not report/.test(r.message))).toBe(true);
    await src.stop();
  });

  it('a root that vanishes keeps every file at its last good version and says so', async () => {
    const root = join(dir, 'm');
    await mkdir(root);
    await writeFile(join(root, 'a.yaml'), svc('alpha', '10.96.0.10'));
    const src = new ManifestDirectorySource({
      dir: root,
      logger: new RecordingLogger(),
      clock: new ManualClock(),
      onChange: () => undefined,
    });
    await src.load();
    await rm(root, { recursive: true });
    const gone = await src.load();
    expect(gone.sourceError).toMatch(/cannot read: ENOENT/);
    expect(serviceNames(gone)).toEqual(['alpha']);
  });

  it('a root that is a file is read as the one manifest', async () => {
    const file = join(dir, 'all.yml');
    await writeFile(file, svc('alpha', '10.96.0.10'));
    const src = new ManifestDirectorySource({
      dir: file,
      logger: new RecordingLogger(),
      clock: new ManualClock(),
      onChange: () => undefined,
    });
    const snap = await src.load();
    expect(serviceNames(snap)).toEqual(['alpha']);
    expect(snap.sourceError).toBeUndefined();
  });
});
