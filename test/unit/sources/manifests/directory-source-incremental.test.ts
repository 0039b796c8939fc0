// The directory source reads only what changed: cached parses per file, a state builder fed with the
// objects that differ. Whatever it skips, its snapshot must equal a full normalisation of the
// objects the files contribute — checked here over random sequences of file edits.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { mkdir, mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildClusterState, loadManifestFiles } from '../../../../src/model/index.js';
import { compareSourcedObjects } from '../../../../src/model/incremental.js';
import { RecordingLogger } from '../../../../src/observe/logger.js';
import {
  DEFAULT_DEBOUNCE_MS,
  ManifestDirectorySource,
  type DirectoryWatcherFactory,
  type ManifestSnapshot,
} from '../../../../src/sources/manifests/directory-source.js';
import { ManualClock } from '../../../../src/sync/clock.js';
import { eventually } from '../../../fixtures/polling.js';

const svc = (name: string, ip: string, port: number | string = 80) => `apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: demo }
spec:
  clusterIP: ${ip}
  ports: [{ name: http, port: ${port} }]
`;

const slice = (svcName: string, ips: string[]) => `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: ${svcName}-x, namespace: demo, labels: { kubernetes.io/service-name: ${svcName} } }
addressType: IPv4
ports: [{ name: http, port: 8080 }]
endpoints:
${ips.map((ip) => `  - { addresses: [${ip}], conditions: { ready: true } }`).join('\n')}
`;

describe('ManifestDirectorySource, incremental', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portway-manifests-inc-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function watched() {
    let fire: (path: string) => void = () => undefined;
    const watcher: DirectoryWatcherFactory = (_d, onEvent) => {
      fire = onEvent;
      return { close: async () => undefined };
    };
    const clock = new ManualClock();
    const snapshots: ManifestSnapshot[] = [];
    const src = new ManifestDirectorySource({
      dir,
      logger: new RecordingLogger(),
      clock,
      onChange: (s) => snapshots.push(s),
      watcher,
    });
    /** Report `path` changed, let the debounce pass and wait for the reload. */
    const event = async (path: string): Promise<ManifestSnapshot> => {
      const before = snapshots.length;
      fire(path);
      await clock.advance(DEFAULT_DEBOUNCE_MS);
      // The reload reads files for real: the usual deadline, not a fixed 1 s (short under CI load).
      await eventually('the reload after the event', () => snapshots.length > before);
      return snapshots.at(-1)!;
    };
    return { src, event, snapshots };
  }

  it('debounces for a few tens of milliseconds by default', () => {
    expect(DEFAULT_DEBOUNCE_MS).toBeLessThanOrEqual(50);
  });

  it('a watched change re-reads and re-parses only the changed file; other service ports keep their identity', async () => {
    await writeFile(join(dir, 'a.yaml'), svc('alpha', '10.96.0.10') + '---\n' + slice('alpha', ['10.0.0.1']));
    await writeFile(join(dir, 'b.yaml'), svc('beta', '10.96.0.11') + '---\n' + slice('beta', ['10.0.0.2']));
    const { src, event } = watched();
    const first = await src.start();
    expect(src.lastReloadStats).toMatchObject({ files: 2, filesRead: 2, filesParsed: 2, fullBuild: true });

    // Written elsewhere and renamed in, as kubectl-style tools and the benchmark do.
    await writeFile(join(dir, 'staged'), svc('beta', '10.96.0.11') + '---\n' + slice('beta', ['10.0.0.2', '10.0.0.3']));
    await rename(join(dir, 'staged'), join(dir, 'b.yaml'));
    const next = await event(join(dir, 'b.yaml'));
    expect(src.lastReloadStats).toMatchObject({ files: 2, filesRead: 1, filesParsed: 1, fullBuild: false });
    // Only the slice differs: the Service object is reused, the slice is upserted.
    expect(src.lastReloadStats?.objectsUpserted).toBe(1);
    const port = (s: ManifestSnapshot, name: string) => s.state.servicePorts.find((p) => p.serviceName === name);
    expect(port(next, 'alpha')).toBe(port(first, 'alpha'));
    expect(port(next, 'beta')?.endpoints.map((e) => e.ip)).toEqual(['10.0.0.2', '10.0.0.3']);
    await src.stop();
  });

  it('a file named by the watcher is read even when its stat signature did not change; the same text is not parsed again', async () => {
    await writeFile(join(dir, 'a.yaml'), svc('alpha', '10.96.0.10'));
    const { src, event } = watched();
    await src.start();
    await event(join(dir, 'a.yaml'));
    expect(src.lastReloadStats).toMatchObject({ filesRead: 1, filesParsed: 0, objectsUpserted: 0, objectsRemoved: 0 });
    await event(join(dir, 'elsewhere.txt'));
    expect(src.lastReloadStats).toMatchObject({ filesRead: 0, filesParsed: 0 });
    await src.stop();
  });

  it('an explicit load reads every file (a same-size rewrite within one timestamp tick is not missed)', async () => {
    await writeFile(join(dir, 'a.yaml'), svc('alpha', '10.96.0.10', 81));
    const { src } = watched();
    await src.load();
    await writeFile(join(dir, 'a.yaml'), svc('alpha', '10.96.0.10', 82));
    const snap = await src.load();
    expect(snap.state.servicePorts[0]?.port).toBe(82);
  });

  it('a deleted file and a new directory of files are noticed without events for them', async () => {
    await writeFile(join(dir, 'a.yaml'), svc('alpha', '10.96.0.10'));
    await writeFile(join(dir, 'b.yaml'), svc('beta', '10.96.0.11'));
    const { src, event } = watched();
    await src.start();
    await unlink(join(dir, 'b.yaml'));
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'sub', 'c.yaml'), svc('gamma', '10.96.0.12'));
    const snap = await event(dir);
    expect(snap.state.services.map((s) => s.name)).toEqual(['alpha', 'gamma']);
    expect(src.lastReloadStats).toMatchObject({ files: 2, filesRead: 1, objectsRemoved: 1, objectsUpserted: 1 });
    await src.stop();
  });

  it('an object moving from one file to another stays, and duplicates across files are reported like a full load', async () => {
    await writeFile(join(dir, 'a.yaml'), svc('alpha', '10.96.0.10'));
    await writeFile(join(dir, 'b.yaml'), svc('beta', '10.96.0.11'));
    const { src, event } = watched();
    await src.start();
    await writeFile(join(dir, 'a.yaml'), '');
    await writeFile(join(dir, 'c.yaml'), svc('alpha', '10.96.0.10'));
    await event(join(dir, 'a.yaml'));
    expect((await src.load()).state.services.map((s) => s.name)).toEqual(['alpha', 'beta']);

    await writeFile(join(dir, 'd.yaml'), svc('beta', '10.96.0.99'));
    const dup = await event(join(dir, 'd.yaml'));
    const reference = await loadManifestFiles([dir]);
    expect(dup.problems).toEqual([...reference.problems, ...buildClusterState(reference.objects).problems]);
    expect(dup.problems.some((p) => /duplicate/i.test(p.message))).toBe(true);
    expect(dup.state.servicePorts.find((p) => p.serviceName === 'beta')?.clusterIPs).toEqual(['10.96.0.11']);
    await unlink(join(dir, 'd.yaml'));
    const healed = await event(join(dir, 'd.yaml'));
    expect(healed.problems).toEqual([]);
    expect(healed.state.services.map((s) => s.name)).toEqual(['alpha', 'beta']);
  });

  it('equals a full normalisation of the files after any sequence of edits (property)', async () => {
    const names = ['a.yaml', 'b.yaml', 'c.yaml', 'sub/d.yaml'];
    const services = ['s1', 's2', 's3', 's4'];
    const doc = fc.oneof(
      fc.record({ kind: fc.constant('svc'), name: fc.constantFrom(...services), port: fc.constantFrom(80, 81, 70000) }),
      fc.record({
        kind: fc.constant('slice'),
        name: fc.constantFrom(...services),
        ips: fc.subarray(['10.0.0.1', '10.0.0.2', '10.0.0.3'], { minLength: 1 }),
      }),
      fc.record({ kind: fc.constant('broken') }),
    );
    const edit = fc.record({
      file: fc.constantFrom(...names),
      action: fc.constantFrom('write', 'write', 'write', 'delete'),
      docs: fc.array(doc, { maxLength: 3 }),
    });
    const textOf = (docs: Array<{ kind: string; name?: string; port?: number; ips?: string[] }>): string =>
      docs
        .map((d, i) =>
          d.kind === 'svc'
            ? svc(d.name!, `10.96.0.${services.indexOf(d.name!) + 10}`, d.port)
            : d.kind === 'slice'
              ? slice(d.name!, d.ips!)
              : `kind: Service\nmetadata: { name: [oops${i}\n`,
        )
        .join('---\n');

    await fc.assert(
      fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 6 }), async (edits) => {
        await rm(dir, { recursive: true, force: true });
        await mkdir(join(dir, 'sub'), { recursive: true });
        const { src, event } = watched();
        await src.start();
        for (const e of edits) {
          const path = join(dir, e.file);
          if (e.action === 'delete') await rm(path, { force: true });
          else await writeFile(path, textOf(e.docs));
          const snap = await event(path);
          // The objects the source says it uses, normalised from scratch in the builder's order.
          const reference = await loadManifestFiles([dir]);
          // Nothing held at an older version: no file (syntax error) and no object (invalid edit).
          const nothingKept = snap.keptFiles.length === 0 && !snap.problems.some((p) => p.kept);
          if (nothingKept) {
            const objects = [...reference.objects].sort(compareSourcedObjects);
            const built = buildClusterState(objects);
            expect(snap.state).toEqual(built.state);
            expect(snap.problems).toEqual([...reference.problems, ...built.problems]);
          }
          // A fresh source over the same files agrees when nothing is held at an older version.
          if (nothingKept) {
            const fresh = new ManifestDirectorySource({
              dir,
              logger: new RecordingLogger(),
              clock: new ManualClock(),
              onChange: () => undefined,
            });
            const again = await fresh.load();
            expect(snap.state).toEqual(again.state);
            expect(snap.problems).toEqual(again.problems);
          }
        }
        await src.stop();
      }),
      { numRuns: 25 },
    );
  });
});
