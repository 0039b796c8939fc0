// A directory of manifests as the agent's source of truth: read through the model loader, watched,
// and turned into a ClusterState on every change.
// Bad input never takes the node's rules down:
//  - an object with a bad field is reported (file, object, field) and skipped; every other object stays;
//  - a file that cannot be parsed at all (YAML syntax error, unreadable: e.g. an editor half-way
//    through writing it) keeps the objects of its last good version until it parses again;
//  - fixing the file brings the skipped objects back on the next reload.
import { watch as chokidarWatch } from 'chokidar';
import { buildClusterState, formatProblem, loadManifestFiles } from '../../model/index.js';
import type { ClusterState, InputProblem } from '../../model/cluster-state.js';
import type { SourcedObject } from '../../model/load.js';
import type { Logger } from '../../observe/logger.js';
import type { Clock, TimerHandle } from '../../sync/clock.js';

export interface ManifestSnapshot {
  state: ClusterState;
  /** Every problem of this reload (file-level and object-level). */
  problems: InputProblem[];
  /** Files that failed to parse and are represented by their last good version. */
  keptFiles: string[];
  /** Number of manifest objects read. */
  objectCount: number;
}

/** Something that calls back on file-system changes under a directory. */
export type DirectoryWatcherFactory = (dir: string, onEvent: (path: string) => void) => { close(): Promise<void> };

export const chokidarWatcher: DirectoryWatcherFactory = (dir, onEvent) => {
  const w = chokidarWatch(dir, { ignoreInitial: true, persistent: true });
  w.on('all', (_event, path) => onEvent(path));
  w.on('error', () => undefined); // a vanished directory is reported by the next reload
  return { close: () => w.close() };
};

export interface ManifestDirectorySourceOptions {
  dir: string;
  logger: Logger;
  clock: Clock;
  /** Called after each reload that follows a file-system change (not for the initial load). */
  onChange: (snapshot: ManifestSnapshot) => void;
  /** Changes within this window are read in one reload (editors write files in several steps). Default 200 ms. */
  debounceMs?: number;
  watcher?: DirectoryWatcherFactory;
}

/** A file-level problem: the loader could not read or parse the file (no object to blame). */
const isFileProblem = (p: InputProblem): boolean => p.kind === '' && p.object === '';

export class ManifestDirectorySource {
  private readonly lastGoodByFile = new Map<string, SourcedObject[]>();
  private reported = new Set<string>();
  private watcher: { close(): Promise<void> } | null = null;
  private debounce: TimerHandle | null = null;
  private reloading: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly opts: ManifestDirectorySourceOptions) {}

  /** Read the directory now and return the snapshot (also used by --once). */
  async load(): Promise<ManifestSnapshot> {
    const loaded = await loadManifestFiles([this.opts.dir]);
    const byFile = new Map<string, SourcedObject[]>();
    for (const o of loaded.objects) {
      const list = byFile.get(o.source) ?? [];
      list.push(o);
      byFile.set(o.source, list);
    }
    const brokenFiles = new Set(loaded.problems.filter(isFileProblem).map((p) => p.source));
    // The directory itself unreadable (e.g. being replaced): every file keeps its last good version.
    if (brokenFiles.has(this.opts.dir)) for (const f of this.lastGoodByFile.keys()) brokenFiles.add(f);
    const keptFiles: string[] = [];
    const objects: SourcedObject[] = [];
    const seenFiles = new Set<string>([...byFile.keys(), ...[...brokenFiles].filter((f) => f !== this.opts.dir)]);
    const next = new Map<string, SourcedObject[]>();
    for (const file of [...seenFiles].sort()) {
      const lastGood = this.lastGoodByFile.get(file);
      if (brokenFiles.has(file) && lastGood !== undefined) {
        keptFiles.push(file);
        objects.push(...lastGood);
        next.set(file, lastGood);
      } else {
        const current = byFile.get(file) ?? [];
        objects.push(...current);
        if (!brokenFiles.has(file)) next.set(file, current);
      }
    }
    // Files that disappeared are forgotten: deleting a file deletes its objects.
    this.lastGoodByFile.clear();
    for (const [k, v] of next) this.lastGoodByFile.set(k, v);

    const built = buildClusterState(objects);
    const problems = [...loaded.problems, ...built.problems];
    this.report(problems, keptFiles);
    return { state: built.state, problems, keptFiles, objectCount: objects.length };
  }

  /** Load once, then watch; onChange is called after every later change. */
  async start(): Promise<ManifestSnapshot> {
    const first = await this.load();
    const factory = this.opts.watcher ?? chokidarWatcher;
    this.watcher = factory(this.opts.dir, () => this.changed());
    return first;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.debounce) this.opts.clock.clearTimeout(this.debounce);
    this.debounce = null;
    await this.watcher?.close();
    this.watcher = null;
    await this.reloading;
  }

  private changed(): void {
    if (this.stopped) return;
    if (this.debounce) this.opts.clock.clearTimeout(this.debounce);
    this.debounce = this.opts.clock.setTimeout(() => {
      this.debounce = null;
      // Reloads run one after another; a change during a reload schedules another.
      this.reloading = this.reloading.then(() => this.reloadAndNotify());
    }, this.opts.debounceMs ?? 200);
  }

  private async reloadAndNotify(): Promise<void> {
    if (this.stopped) return;
    try {
      const snapshot = await this.load();
      if (!this.stopped) this.opts.onChange(snapshot);
    } catch (err) {
      this.opts.logger.error({ dir: this.opts.dir, err: (err as Error).message }, 'reading the manifest directory failed');
    }
  }

  /** Log each problem once while it lasts (a reload of an unchanged bad file is not news). */
  private report(problems: InputProblem[], keptFiles: string[]): void {
    const now = new Set<string>();
    for (const p of problems) {
      const text = formatProblem(p);
      now.add(text);
      if (this.reported.has(text)) continue;
      const kept = isFileProblem(p) && keptFiles.includes(p.source);
      this.opts.logger.warn(
        { file: p.source, kind: p.kind, object: p.object, field: p.field, problem: p.message },
        kept ? `${text} (keeping the last good version of the file)` : `${text} (skipped)`,
      );
    }
    for (const text of this.reported) {
      if (!now.has(text)) this.opts.logger.info({ problem: text }, 'manifest problem resolved');
    }
    this.reported = now;
  }
}
