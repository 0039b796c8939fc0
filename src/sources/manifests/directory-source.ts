// A directory of manifests as the agent's source of truth: read through the model loader, watched,
// and turned into a ClusterState on every change.
// Bad input never takes the node's rules down:
//  - an object with a bad field is reported (file, object, field) and skipped; every other object stays;
//  - a file that cannot be parsed at all (YAML syntax error, unreadable: e.g. an editor half-way
//    through writing it) keeps the objects of its last good version until it parses again;
//  - fixing the file brings the skipped objects back on the next reload.
//
// Incremental: at 10k Services a reload of every file costs ~10 s (YAML parsing and normalising 20k
// objects), so each file's parse is cached by its stat signature (inode, size, mtime, ctime) and the
// hash of its text; a reload re-reads only files whose signature changed or that the watcher named,
// re-parses only those whose text changed, and feeds a ClusterStateBuilder the objects that actually
// differ (unchanged objects keep their identity, so the builder and the renderer skip them). The
// result equals buildClusterState over all objects in the builder's order (compareSourcedObjects).
//
// The root (a directory, or a single file) is checked on a timer as well as watched: a watcher stays on
// the inode it was set up on, so a directory that is removed and made again (`rm -rf m; mkdir m; cp …`)
// or a file renamed over would never be read again. When the root's identity (device, inode) changes,
// the watcher is set up afresh and everything is read again. A root that cannot be read is reported in
// the snapshot (sourceError); deciding what that means for the node is the caller's job.
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { watch as chokidarWatch } from 'chokidar';
import { buildClusterState, formatProblem, parseManifestText } from '../../model/index.js';
import type { ClusterState, InputProblem } from '../../model/cluster-state.js';
import {
  ClusterStateBuilder,
  compareSourcedObjects,
  kindOf,
  metadataField,
  sourcedObjectKey,
} from '../../model/incremental.js';
import type { SourcedObject } from '../../model/load.js';
import { sameData } from '../../model/same-data.js';
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
  /**
   * Set when the root itself (the directory or file given) cannot be read: missing, not readable, or
   * neither a directory nor a file. Every file then keeps its last good version (none at start).
   */
  sourceError?: string;
  /** The root's identity when it was read ("device:inode:birth time"); '' when it could not be read. */
  rootIdentity: string;
}

/** What one reload did, for benchmarks and tests (the snapshot says what the state is). */
export interface ManifestReloadStats {
  /** Manifest files listed. */
  files: number;
  /** Files whose text was read (signature changed, named by the watcher, or an explicit load). */
  filesRead: number;
  /** Files whose text changed and was parsed again. */
  filesParsed: number;
  /** Objects upserted into / removed from the state builder. */
  objectsUpserted: number;
  objectsRemoved: number;
  /** The state was built from scratch (first load, or duplicate object keys across files). */
  fullBuild: boolean;
}

/**
 * Something that calls back on file-system changes under a directory. `ready` (when given) resolves
 * once every change from then on is reported: chokidar sets its watches up asynchronously.
 */
export type DirectoryWatcherFactory = (
  dir: string,
  onEvent: (path: string) => void,
) => { close(): Promise<void>; ready?: Promise<void> };

export const chokidarWatcher: DirectoryWatcherFactory = (dir, onEvent) => {
  const w = chokidarWatch(dir, { ignoreInitial: true, persistent: true });
  const ready = new Promise<void>((resolve) => w.once('ready', () => resolve()));
  w.on('all', (_event, path) => onEvent(path));
  w.on('error', () => undefined); // a vanished directory is reported by the next reload
  return { close: () => w.close(), ready };
};

export interface ManifestDirectorySourceOptions {
  dir: string;
  logger: Logger;
  clock: Clock;
  /** Called after each reload that follows a file-system change (not for the initial load). */
  onChange: (snapshot: ManifestSnapshot) => void;
  /**
   * Changes within this window are read in one reload (editors write files in several steps).
   * Default 20 ms: bursts of syncs are coalesced downstream anyway (the runner's minSyncPeriod).
   */
  debounceMs?: number;
  watcher?: DirectoryWatcherFactory;
  /** How often the root's identity is checked (a recreated or vanished root is watched again). Default 1 s. */
  rootCheckMs?: number;
}

export const DEFAULT_DEBOUNCE_MS = 20;
/**
 * chokidar reports at most one 'change' per file per 50 ms, on the leading edge: a second write to a
 * file within that window is never reported. So files a reload read because the watcher named them are
 * stat'ed again once the window is over, and read again if they changed since.
 */
export const WATCHER_CHANGE_THROTTLE_MS = 50;
export const DEFAULT_ROOT_CHECK_MS = 1000;
/** Every this many root checks (5 s by default), every file's signature is compared too (see rescanForMissedChanges). */
const RESCAN_EVERY_ROOT_CHECKS = 5;

/** What a file's stat says about its content: any change of it means the file must be read again. */
function signatureOf(info: {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}): string {
  return `${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}:${info.ctimeMs}`;
}

/**
 * "device:inode:birth time" of a path: ext4 hands a removed directory's inode number straight to the
 * next mkdir, so the birth time (statx) tells the two apart. '' when it cannot be read.
 */
async function identityOf(path: string): Promise<string> {
  try {
    return identityOfStat(await stat(path));
  } catch {
    return '';
  }
}

function identityOfStat(info: { dev: number; ino: number; birthtimeMs: number }): string {
  return `${info.dev}:${info.ino}:${info.birthtimeMs}`;
}

/** A file-level problem: the loader could not read or parse the file (no object to blame). */
const isFileProblem = (p: InputProblem): boolean => p.kind === '' && p.object === '';

const MANIFEST_EXTENSIONS = ['.yaml', '.yml', '.json'];

function fileProblem(source: string, message: string): InputProblem {
  return { source, kind: '', object: '', field: '', message };
}

/** Code-point order, as the model loader sorts (the same on every machine). */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** One manifest file as last read. */
interface FileRecord {
  /** inode, size, mtime and ctime: a change of any means the file must be read again. */
  signature: string;
  /** sha256 of the text: a file rewritten with the same text is not parsed again. */
  textHash: string;
  /** Objects of the current text (all documents that parsed). */
  objects: SourcedObject[];
  /** File-level problems of the current text (syntax errors, unreadable). */
  problems: InputProblem[];
}

interface ListedFile {
  path: string;
  signature: string;
}

export class ManifestDirectorySource {
  private readonly lastGoodByFile = new Map<string, SourcedObject[]>();
  private readonly files = new Map<string, FileRecord>();
  /** Objects each file contributes to the state (current or last good version). */
  private effectiveByFile = new Map<string, SourcedObject[]>();
  /** How many effective objects share a builder key; any count above 1 means duplicates. */
  private readonly keyCounts = new Map<string, number>();
  private duplicateKeys = 0;
  /** The incremental state; null until built, and while duplicate keys force full builds. */
  private builder: ClusterStateBuilder | null = null;
  /** Paths the watcher named since the last reload: read again even if their signature matches. */
  private readonly dirtyPaths = new Set<string>();
  /** Files the last reloads read on the watcher's word: checked again after its throttle window. */
  private readonly toVerify = new Set<string>();
  private verify: TimerHandle | null = null;
  private reported = new Set<string>();
  private watcher: { close(): Promise<void> } | null = null;
  /** Identity of the root the watcher was set up on ('' = none: the root could not be read). */
  private watchedRoot = '';
  private rootCheck: TimerHandle | null = null;
  private rootChecks = 0;
  private debounce: TimerHandle | null = null;
  private reloading: Promise<void> = Promise.resolve();
  private stopped = false;
  /** The initial load has begun: changes from now on need a reload. */
  private watching = false;
  private lastStats: ManifestReloadStats | null = null;

  constructor(private readonly opts: ManifestDirectorySourceOptions) {}

  /** What the last reload did (null before the first). */
  get lastReloadStats(): ManifestReloadStats | null {
    return this.lastStats;
  }

  /**
   * Read the directory now and return the snapshot (also used by --once). Every file's text is read
   * (a write within the file system's timestamp granularity leaves the signature as it was); only
   * files whose text changed are parsed again.
   */
  async load(): Promise<ManifestSnapshot> {
    return this.reload(true);
  }

  /**
   * Watch, then load once; onChange is called after every later change. The watcher must be ready
   * before the directory is read: a file written between the read and the watches being set up
   * would otherwise go unseen until its next change. Events during the load reload after it.
   */
  async start(): Promise<ManifestSnapshot> {
    await this.watchRoot(await identityOf(this.opts.dir));
    this.watching = true;
    const first = this.load();
    this.reloading = first.then(
      () => undefined,
      () => undefined,
    );
    this.scheduleRootCheck();
    return first; // never rejects: an unreadable directory is a problem in the snapshot
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.debounce) this.opts.clock.clearTimeout(this.debounce);
    this.debounce = null;
    if (this.verify) this.opts.clock.clearTimeout(this.verify);
    this.verify = null;
    if (this.rootCheck) this.opts.clock.clearTimeout(this.rootCheck);
    this.rootCheck = null;
    await this.reloading;
    await this.watcher?.close();
    this.watcher = null;
  }

  /** (Re)place the watcher on the root as it is now; none while the root cannot be read. */
  private async watchRoot(identity: string): Promise<void> {
    const old = this.watcher;
    this.watcher = null;
    await old?.close();
    this.watchedRoot = identity;
    if (identity === '' || this.stopped) return; // a missing root is polled by the root check
    const factory = this.opts.watcher ?? chokidarWatcher;
    const watcher = factory(this.opts.dir, (path) => this.changed(path));
    this.watcher = watcher;
    await watcher.ready;
  }

  /** The next root check in `delayMs` (default: the check period), replacing a pending one. */
  private scheduleRootCheck(delayMs = this.opts.rootCheckMs ?? DEFAULT_ROOT_CHECK_MS): void {
    if (this.stopped) return;
    if (this.rootCheck) this.opts.clock.clearTimeout(this.rootCheck);
    this.rootCheck = this.opts.clock.setTimeout(() => {
      this.rootCheck = null;
      // In the reload queue: a check never runs beside a reload.
      this.reloading = this.reloading
        .then(() => this.checkRoot())
        .catch((err: unknown) =>
          this.opts.logger.error(
            { dir: this.opts.dir, err: (err as Error).message },
            'watching the manifest source failed',
          ),
        )
        .finally(() => this.scheduleRootCheck());
    }, delayMs);
  }

  /** A root that appeared, vanished or was replaced is watched again and read in full. */
  private async checkRoot(): Promise<void> {
    if (this.stopped) return;
    const identity = await identityOf(this.opts.dir);
    if (identity === this.watchedRoot) {
      if (identity !== '' && ++this.rootChecks % RESCAN_EVERY_ROOT_CHECKS === 0)
        await this.rescanForMissedChanges();
      return;
    }
    this.opts.logger.warn(
      { dir: this.opts.dir, before: this.watchedRoot || 'unreadable', now: identity || 'unreadable' },
      identity === ''
        ? 'the manifest source vanished or became unreadable; polling until it is back'
        : 'the manifest source was replaced or appeared; watching it again and reading everything',
    );
    await this.watchRoot(identity);
    if (this.stopped) return;
    await this.reloadAndNotify(true);
  }

  /**
   * Every fifth root check: the watcher's word is not trusted either. chokidar can lose a file replaced by rename twice in a
   * few milliseconds (seen in the traffic e2e: neither write was ever reported, so the agent kept the old
   * rules until the file's next change). Each root check therefore also compares every file's stat
   * signature with the one last read and reloads what differs — a readdir and a stat per file every 5 s.
   */
  private async rescanForMissedChanges(): Promise<void> {
    const listing = await this.listFiles();
    if (listing.rootError !== undefined || listing.rootIdentity !== this.watchedRoot) return;
    const listed = new Set<string>();
    for (const f of listing.files) {
      listed.add(f.path);
      if (this.files.get(f.path)?.signature !== f.signature) this.dirtyPaths.add(f.path);
    }
    for (const path of this.files.keys()) if (!listed.has(path)) this.dirtyPaths.add(path);
    if (this.dirtyPaths.size === 0 || this.stopped) return;
    this.opts.logger.info(
      { dir: this.opts.dir, files: this.dirtyPaths.size },
      'manifest changes the watcher did not report; reading them',
    );
    await this.reloadAndNotify();
  }

  /** `fromWatcher` false: found by verification, which joins a pending reload rather than postponing it. */
  private changed(path: string, fromWatcher = true): void {
    // Before the initial load begins its read, the load itself sees the change.
    if (this.stopped || !this.watching) return;
    // The root itself removed or replaced: the watcher is on a dead inode; check it now.
    if (path === this.opts.dir && this.rootCheck) this.scheduleRootCheck(0);
    this.dirtyPaths.add(path);
    if (this.debounce && !fromWatcher) return;
    if (this.debounce) this.opts.clock.clearTimeout(this.debounce);
    this.debounce = this.opts.clock.setTimeout(() => {
      this.debounce = null;
      // Reloads run one after another; a change during a reload schedules another.
      this.reloading = this.reloading.then(() => this.reloadAndNotify());
    }, this.opts.debounceMs ?? DEFAULT_DEBOUNCE_MS);
  }

  private async reloadAndNotify(readAll = false): Promise<void> {
    if (this.stopped) return;
    const named = [...this.dirtyPaths];
    try {
      const snapshot = await this.reload(readAll);
      if (!this.stopped) this.opts.onChange(snapshot);
    } catch (err) {
      this.opts.logger.error(
        { dir: this.opts.dir, err: (err as Error).message },
        'reading the manifest directory failed',
      );
    }
    this.verifyLater(named);
  }

  /** After the watcher's throttle window, files read on its word are checked for writes it did not report. */
  private verifyLater(paths: string[]): void {
    if (this.stopped || paths.length === 0) return;
    for (const p of paths) this.toVerify.add(p);
    if (this.verify) return;
    this.verify = this.opts.clock.setTimeout(() => {
      this.verify = null;
      const check = [...this.toVerify];
      this.toVerify.clear();
      void Promise.all(
        check.map(async (path) => {
          const known = this.files.get(path)?.signature;
          if (known === undefined) return; // not a manifest file (or gone: its unlink is reported)
          let now = '';
          try {
            now = signatureOf(await stat(path));
          } catch {
            // removed since: read again below
          }
          if (now !== known) this.changed(path, false);
        }),
      );
    }, WATCHER_CHANGE_THROTTLE_MS + 10);
  }

  private async reload(readAll: boolean): Promise<ManifestSnapshot> {
    const dirty = new Set(this.dirtyPaths);
    this.dirtyPaths.clear();
    const stats: ManifestReloadStats = {
      files: 0,
      filesRead: 0,
      filesParsed: 0,
      objectsUpserted: 0,
      objectsRemoved: 0,
      fullBuild: false,
    };
    const listing = await this.listFiles();
    stats.files = listing.files.length;
    // The root vanished or was replaced under the watcher: check it now rather than at the next period.
    if (listing.rootIdentity !== this.watchedRoot && this.rootCheck) this.scheduleRootCheck(0);
    const listingProblems = [...listing.problems];

    // Read what may have changed; the rest keeps its cached parse.
    const current = new Map<string, FileRecord>();
    await Promise.all(
      listing.files.map(async (f) => {
        const cached = this.files.get(f.path);
        if (cached && !readAll && cached.signature === f.signature && !dirty.has(f.path)) {
          current.set(f.path, cached);
          return;
        }
        stats.filesRead++;
        let text: string;
        try {
          text = await readFile(f.path, 'utf8');
        } catch (e) {
          current.set(f.path, {
            signature: '',
            textHash: '',
            objects: [],
            problems: [fileProblem(f.path, `cannot read: ${(e as Error).message}`)],
          });
          return;
        }
        const textHash = createHash('sha256').update(text).digest('base64');
        if (cached && cached.textHash === textHash) {
          current.set(
            f.path,
            cached.signature === f.signature ? cached : { ...cached, signature: f.signature },
          );
          return;
        }
        stats.filesParsed++;
        const parsed = parseManifestText(text, f.path);
        current.set(f.path, {
          signature: f.signature,
          textHash,
          objects: this.reuseUnchanged(cached?.objects ?? [], parsed.objects),
          problems: parsed.problems,
        });
      }),
    );
    this.files.clear();
    for (const f of listing.files) this.files.set(f.path, current.get(f.path)!);

    // Which version of each file counts: a file that does not parse keeps its last good version.
    const brokenFiles = new Set(listingProblems.filter(isFileProblem).map((p) => p.source));
    for (const [path, record] of current) if (record.problems.some(isFileProblem)) brokenFiles.add(path);
    // The root itself unreadable (e.g. being replaced): every file keeps its last good version.
    if (listing.rootError !== undefined) for (const f of this.lastGoodByFile.keys()) brokenFiles.add(f);
    const keptFiles: string[] = [];
    const seenFiles = new Set<string>([
      ...current.keys(),
      ...[...brokenFiles].filter((f) => this.lastGoodByFile.has(f)),
    ]);
    const nextGood = new Map<string, SourcedObject[]>();
    const nextEffective = new Map<string, SourcedObject[]>();
    for (const file of [...seenFiles].sort(compareText)) {
      const lastGood = this.lastGoodByFile.get(file);
      if (brokenFiles.has(file) && lastGood !== undefined) {
        keptFiles.push(file);
        nextEffective.set(file, lastGood);
        nextGood.set(file, lastGood);
      } else {
        const objects = current.get(file)?.objects ?? [];
        nextEffective.set(file, objects);
        if (!brokenFiles.has(file)) nextGood.set(file, objects);
      }
    }
    // Files that disappeared are forgotten: deleting a file deletes its objects.
    this.lastGoodByFile.clear();
    for (const [k, v] of nextGood) this.lastGoodByFile.set(k, v);

    const built = this.buildState(nextEffective, stats);
    const fileProblems = [
      ...listingProblems,
      ...[...current.keys()].sort(compareText).flatMap((f) => current.get(f)!.problems),
    ];
    const problems = [...fileProblems, ...built.problems];
    this.report(problems, keptFiles);
    this.lastStats = stats;
    let objectCount = 0;
    for (const objects of nextEffective.values()) objectCount += objects.length;
    return {
      state: built.state,
      problems,
      keptFiles,
      objectCount,
      rootIdentity: listing.rootIdentity,
      ...(listing.rootError !== undefined ? { sourceError: listing.rootError } : {}),
    };
  }

  /**
   * Objects of a re-parsed file that equal the previous version's (same key, document and content)
   * are the previous objects: the builder then skips them by identity.
   */
  private reuseUnchanged(before: SourcedObject[], after: SourcedObject[]): SourcedObject[] {
    if (before.length === 0) return after;
    const byKey = new Map<string, SourcedObject>();
    for (const o of before) byKey.set(sourcedObjectKey(o.object), o);
    return after.map((o) => {
      const old = byKey.get(sourcedObjectKey(o.object));
      return old && old.document === o.document && old.source === o.source && sameData(old.object, o.object)
        ? old
        : o;
    });
  }

  /** Apply the files' changed objects to the builder, or build afresh when it cannot be used. */
  private buildState(
    nextEffective: Map<string, SourcedObject[]>,
    stats: ManifestReloadStats,
  ): { state: ClusterState; problems: InputProblem[] } {
    const previous = this.effectiveByFile;
    this.effectiveByFile = nextEffective;
    const changedFiles = new Set<string>();
    for (const [file, objects] of nextEffective) if (previous.get(file) !== objects) changedFiles.add(file);
    for (const file of previous.keys()) if (!nextEffective.has(file)) changedFiles.add(file);

    const removed: SourcedObject[] = [];
    const upserted: SourcedObject[] = [];
    for (const file of changedFiles) {
      const before = previous.get(file) ?? [];
      const after = nextEffective.get(file) ?? [];
      const afterSet = new Set(after);
      const beforeSet = new Set(before);
      for (const o of before) if (!afterSet.has(o)) removed.push(o);
      for (const o of after) if (!beforeSet.has(o)) upserted.push(o);
    }
    for (const o of removed) this.countKey(sourcedObjectKey(o.object), -1);
    for (const o of upserted) this.countKey(sourcedObjectKey(o.object), +1);

    if (this.duplicateKeys > 0) {
      // Two objects under one (kind, namespace, name): the builder holds one per key, but the
      // problem "duplicate of …" must still be reported, so build from all objects (a rare mistake).
      this.builder = null;
      stats.fullBuild = true;
      return buildClusterState([...nextEffective.values()].flat().sort(compareSourcedObjects));
    }
    if (this.builder === null) {
      // An object edited into an invalid version keeps its last good one, as a file that stops parsing does.
      this.builder = new ClusterStateBuilder({ keepLastGood: true });
      for (const objects of nextEffective.values()) for (const o of objects) this.builder.upsert(o);
      stats.fullBuild = true;
      stats.objectsUpserted = this.builder.size;
      return this.builder.build();
    }
    // Removals first: an object moving from one file to another is removed, then added.
    const upsertedKeys = new Set(upserted.map((o) => sourcedObjectKey(o.object)));
    for (const o of removed) {
      if (upsertedKeys.has(sourcedObjectKey(o.object))) continue; // replaced below
      this.builder.remove(
        kindOf(o.object),
        metadataField(o.object, 'namespace'),
        metadataField(o.object, 'name'),
      );
      stats.objectsRemoved++;
    }
    for (const o of upserted) this.builder.upsert(o);
    stats.objectsUpserted = upserted.length;
    return this.builder.build();
  }

  private countKey(key: string, delta: number): void {
    const before = this.keyCounts.get(key) ?? 0;
    const after = before + delta;
    if (after <= 0) this.keyCounts.delete(key);
    else this.keyCounts.set(key, after);
    if (before <= 1 && after > 1) this.duplicateKeys++;
    if (before > 1 && after <= 1) this.duplicateKeys--;
  }

  /**
   * Manifest files under the directory, recursively (as the model loader lists them: *.yaml, *.yml,
   * *.json; entries starting with "." skipped — a mounted ConfigMap holds every file twice), with
   * their stat signatures. stat follows symlinks, as `kubectl apply -f dir` does. A root that is a
   * file is the one file listed, whatever its name.
   */
  private async listFiles(): Promise<{
    files: ListedFile[];
    problems: InputProblem[];
    rootIdentity: string;
    rootError?: string;
  }> {
    const files: ListedFile[] = [];
    const problems: InputProblem[] = [];
    const root = this.opts.dir;
    let rootInfo;
    try {
      rootInfo = await stat(root);
    } catch (e) {
      const rootError = `cannot read: ${(e as Error).message}`;
      problems.push(fileProblem(root, rootError));
      return { files, problems, rootIdentity: '', rootError };
    }
    const rootIdentity = identityOfStat(rootInfo);
    if (rootInfo.isFile()) {
      files.push({ path: root, signature: signatureOf(rootInfo) });
      return { files, problems, rootIdentity };
    }
    if (!rootInfo.isDirectory()) {
      const rootError = 'neither a directory nor a file';
      problems.push(fileProblem(root, rootError));
      return { files, problems, rootIdentity, rootError };
    }
    let rootError: string | undefined;
    const walk = async (dir: string): Promise<void> => {
      let names: string[];
      try {
        names = (await readdir(dir)).sort(compareText);
      } catch (e) {
        const message = `cannot read directory: ${(e as Error).message}`;
        if (dir === root) rootError = message;
        problems.push(fileProblem(dir, message));
        return;
      }
      const entries = await Promise.all(
        names
          .filter((name) => !name.startsWith('.'))
          .map(async (name) => {
            const path = join(dir, name);
            try {
              return { name, path, info: await stat(path), error: null };
            } catch (e) {
              return { name, path, info: null, error: e as Error };
            }
          }),
      );
      for (const { name, path, info, error } of entries) {
        if (info === null) {
          problems.push(fileProblem(path, `cannot read: ${error?.message ?? 'stat failed'}`));
        } else if (info.isDirectory()) {
          await walk(path);
        } else if (info.isFile() && MANIFEST_EXTENSIONS.some((ext) => name.toLowerCase().endsWith(ext))) {
          files.push({ path, signature: signatureOf(info) });
        }
      }
    };
    await walk(root);
    return { files, problems, rootIdentity, ...(rootError !== undefined ? { rootError } : {}) };
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
        kept
          ? `${text} (keeping the last good version of the file)`
          : p.kept
            ? `${text} (keeping the last good version of the object)`
            : `${text} (skipped)`,
      );
    }
    for (const text of this.reported) {
      if (!now.has(text)) this.opts.logger.info({ problem: text }, 'manifest problem resolved');
    }
    this.reported = now;
  }
}
