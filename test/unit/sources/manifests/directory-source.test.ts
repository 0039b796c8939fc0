import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
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

  function source(onChange: (s: ManifestSnapshot) => void = () => undefined, watcher?: DirectoryWatcherFactory) {
    const logger = new RecordingLogger();
    const clock = new ManualClock();
    const src = new ManifestDirectorySource({ dir, logger, clock, onChange, debounceMs: 100, ...(watcher ? { watcher } : {}) });
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

  it('an object with a bad field is reported (file, object, field) and skipped; the others stay; fixing restores it', async () => {
    await writeFile(join(dir, 'a.yaml'), svc('alpha', '10.96.0.10'));
    await writeFile(join(dir, 'b.yaml'), svc('beta', '10.96.0.11'));
    const { src, logger } = source();
    await src.load();
    await writeFile(join(dir, 'b.yaml'), svc('beta', '10.96.0.11', 70000));
    const bad = await src.load();
    expect(serviceNames(bad)).toEqual(['alpha']);
    expect(bad.problems).toHaveLength(1);
    expect(bad.problems[0]).toMatchObject({ source: join(dir, 'b.yaml'), kind: 'Service', object: 'demo/beta' });
    expect(bad.problems[0]?.field).toMatch(/^spec\.ports\[0\]\.port$/);
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
    expect(logger.records.some((r) => r.level === 'info' && r.message === 'manifest problem resolved')).toBe(true);
  });

  it('a file that stops parsing keeps its last good version until fixed; a deleted file drops its objects', async () => {
    await writeFile(join(dir, 'a.yaml'), svc('alpha', '10.96.0.10'));
    await writeFile(join(dir, 'b.yaml'), svc('beta', '10.96.0.11'));
    const { src, logger } = source();
    await src.load();
    await writeFile(join(dir, 'b.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: { name: beta\n  namespace: [oops\n');
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
});
