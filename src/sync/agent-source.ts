// The agent's source of cluster state, one shape for both modes: a watched directory of manifests or
// the API (informers). `portway run` takes exactly one; which one is decided here from the flags and
// the environment, with kube-proxy's precedence (--kubeconfig/--master, else the in-cluster service
// account when running in a pod).
import { existsSync } from 'node:fs';
import type { ClusterState } from '../model/cluster-state.js';
import type { Logger } from '../observe/logger.js';
import type { ApiSourceView } from '../observe/metrics.js';
import type { ApiSource } from '../sources/api/api-source.js';
import { ManifestDirectorySource, type ManifestSnapshot } from '../sources/manifests/directory-source.js';
import {
  changeEventFromRaw,
  StateChangeDiffer,
  type ChangeEvent,
  type RawObject,
} from './agent-change-tracker.js';
import type { Clock } from './clock.js';

export const SERVICE_ACCOUNT_ROOT = '/var/run/secrets/kubernetes.io/serviceaccount';

export type SourceChoice =
  | { kind: 'manifests'; dir: string }
  | { kind: 'api'; kubeconfig?: string; master?: string; inCluster: boolean };

export class SourceChoiceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SourceChoiceError';
  }
}

/**
 * Exactly one source: --manifests, or the API (--kubeconfig and/or --master; neither = in-cluster,
 * when the service-account token is mounted and KUBERNETES_SERVICE_HOST/PORT are set).
 */
export function chooseSource(
  flags: { manifests?: string; kubeconfig?: string; master?: string },
  env: NodeJS.ProcessEnv,
  serviceAccountRoot = SERVICE_ACCOUNT_ROOT,
  fileExists: (path: string) => boolean = existsSync,
): SourceChoice {
  const api = flags.kubeconfig !== undefined || flags.master !== undefined;
  if (flags.manifests !== undefined && api) {
    throw new SourceChoiceError(
      '--manifests cannot be combined with --kubeconfig/--master: give exactly one source (a directory or the API)',
    );
  }
  if (flags.manifests !== undefined) {
    if (flags.manifests === '') throw new SourceChoiceError('--manifests: empty directory name');
    return { kind: 'manifests', dir: flags.manifests };
  }
  if (api) {
    return {
      kind: 'api',
      ...(flags.kubeconfig !== undefined ? { kubeconfig: flags.kubeconfig } : {}),
      ...(flags.master !== undefined ? { master: flags.master } : {}),
      inCluster: false,
    };
  }
  if (
    env.KUBERNETES_SERVICE_HOST &&
    env.KUBERNETES_SERVICE_PORT &&
    fileExists(`${serviceAccountRoot}/token`)
  ) {
    return { kind: 'api', inCluster: true };
  }
  throw new SourceChoiceError(
    'no source: give --manifests DIR, or --kubeconfig FILE and/or --master URL ' +
      `(in a pod, the service account at ${serviceAccountRoot} is used when neither is given)`,
  );
}

/** What runAgent needs from a source, whichever it is. */
export interface AgentSource {
  readonly kind: 'manifests' | 'api';
  /** For the start-up line: where the state comes from. */
  readonly description: Record<string, unknown>;
  /** Load (manifests) or list every watched kind (API); resolves with the first complete state. */
  start(): Promise<ClusterState>;
  /** Read once without watching (--once). */
  loadOnce(): Promise<ClusterState>;
  stop(): Promise<void>;
  /** Every later state. */
  onChange(listener: (state: ClusterState) => void): void;
  /** Raw objects of a kind as last seen; [] when the source keeps none (manifests). */
  rawObjects(kind: string): ReadonlyArray<Record<string, unknown>>;
  /**
   * The Service and endpoint events seen since the last call, oldest first (kube-proxy's change
   * metrics): informer events for the API, what each reload changed for manifests.
   */
  takeChangeEvents(): ChangeEvent[];
  /** The API connection, for metrics; undefined for manifests. */
  readonly apiView?: ApiSourceView & { connection(): { connected: boolean; disconnectedSince?: number } };
  /**
   * Why the source's content cannot be believed right now (its root is missing, or it is empty where
   * emptiness is not known to be meant), or undefined. While set, nothing is synced from it and health
   * says 503.
   */
  readonly problem: string | undefined;
}

/** The source cannot be believed (see AgentSource.problem): `run --once` exits 2 and changes nothing. */
export class SourceUnusableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SourceUnusableError';
  }
}

/**
 * Whether a manifest snapshot can be believed, and if not why. An unreadable root never is. A snapshot
 * without a single Service would remove every Service rule of the node, so it is believed only when the
 * emptiness is positively known: the operator said so (--allow-empty), or the same root (same inode),
 * believed on the previous read, has been emptied while watched. At start, or when the root comes back
 * after being missing or is replaced, an empty source is much more likely a wrong path, a volume not
 * mounted yet or a directory being filled than a wish to remove every Service.
 */
export function manifestSnapshotProblem(
  snapshot: Pick<ManifestSnapshot, 'sourceError' | 'rootIdentity' | 'objectCount'> & {
    state: Pick<ClusterState, 'services'>;
  },
  opts: { path: string; allowEmpty: boolean; lastBelievedRoot: string | undefined },
): string | undefined {
  if (snapshot.sourceError !== undefined) return `${opts.path}: ${snapshot.sourceError}`;
  if (snapshot.state.services.length > 0 || opts.allowEmpty) return undefined;
  if (opts.lastBelievedRoot !== undefined && opts.lastBelievedRoot === snapshot.rootIdentity)
    return undefined;
  return (
    `${opts.path}: no Service in it (${snapshot.objectCount} object(s) read); an empty source would remove ` +
    `every Service rule of this node, so it is not believed ${opts.lastBelievedRoot === undefined ? 'at start' : 'after the source was missing or replaced'}` +
    ' (pass --allow-empty to mean it)'
  );
}

export class ManifestAgentSource implements AgentSource {
  readonly kind = 'manifests';
  readonly description: Record<string, unknown>;
  private readonly source: ManifestDirectorySource;
  private readonly listeners: Array<(state: ClusterState) => void> = [];
  private readonly differ = new StateChangeDiffer();
  private events: ChangeEvent[] = [];
  private currentProblem: string | undefined;
  /** Root identity of the last snapshot believed; undefined before the first and after an unusable one. */
  private lastBelievedRoot: string | undefined;
  /** start() waiting for the first snapshot that can be believed. */
  private waitingStart: { resolve: (s: ClusterState) => void; reject: (e: Error) => void } | null = null;

  constructor(
    private readonly opts: {
      dir: string;
      logger: Logger;
      clock: Clock;
      allowEmpty?: boolean;
      rootCheckMs?: number;
    },
  ) {
    this.description = { manifests: opts.dir };
    this.source = new ManifestDirectorySource({
      dir: opts.dir,
      logger: opts.logger,
      clock: opts.clock,
      ...(opts.rootCheckMs !== undefined ? { rootCheckMs: opts.rootCheckMs } : {}),
      onChange: (snap) => this.received(snap),
    });
  }

  get problem(): string | undefined {
    return this.currentProblem;
  }

  /**
   * Resolves with the first state that can be believed: while the root is missing or empty at start,
   * it waits (health says why) and nothing is synced.
   */
  async start(): Promise<ClusterState> {
    const first = await this.source.start();
    if (this.judge(first)) {
      this.noteReload(first.state);
      return first.state;
    }
    return new Promise<ClusterState>((resolve, reject) => {
      this.waitingStart = { resolve, reject };
    });
  }

  private received(snap: ManifestSnapshot): void {
    if (!this.judge(snap)) return; // the last believed state stays in force
    this.noteReload(snap.state);
    if (this.waitingStart) {
      const waiting = this.waitingStart;
      this.waitingStart = null;
      waiting.resolve(snap.state);
      return;
    }
    for (const l of this.listeners) l(snap.state);
  }

  /** Whether the snapshot can be believed; logs when that changes (with the reason). */
  private judge(snap: ManifestSnapshot): boolean {
    const problem = manifestSnapshotProblem(snap, {
      path: this.opts.dir,
      allowEmpty: this.opts.allowEmpty ?? false,
      lastBelievedRoot: this.lastBelievedRoot,
    });
    if (problem !== undefined) {
      if (problem !== this.currentProblem) {
        this.opts.logger.error(
          { manifests: this.opts.dir, problem },
          'the manifest source cannot be believed: not syncing from it, the rules stay as they are (not ready)',
        );
      }
      this.currentProblem = problem;
      this.lastBelievedRoot = undefined;
      return false;
    }
    if (this.currentProblem !== undefined) {
      this.opts.logger.info(
        { manifests: this.opts.dir, services: snap.state.services.length, objects: snap.objectCount },
        'the manifest source is usable again',
      );
    }
    this.currentProblem = undefined;
    this.lastBelievedRoot = snap.rootIdentity;
    return true;
  }

  /** A reload is the manifest source's event: what it changed (see StateChangeDiffer). */
  private noteReload(state: ClusterState): void {
    for (const e of this.differ.diff(state)) this.events.push(e);
  }

  takeChangeEvents(): ChangeEvent[] {
    const out = this.events;
    this.events = [];
    return out;
  }

  /** One read; throws SourceUnusableError when it cannot be believed (there is no later read to wait for). */
  async loadOnce(): Promise<ClusterState> {
    const snap = await this.source.load();
    const problem = manifestSnapshotProblem(snap, {
      path: this.opts.dir,
      allowEmpty: this.opts.allowEmpty ?? false,
      lastBelievedRoot: undefined,
    });
    if (problem !== undefined) throw new SourceUnusableError(problem);
    return snap.state;
  }

  async stop(): Promise<void> {
    await this.source.stop();
    const waiting = this.waitingStart;
    this.waitingStart = null;
    waiting?.reject(new Error('stopped before the manifest source could be believed'));
  }

  onChange(listener: (state: ClusterState) => void): void {
    this.listeners.push(listener);
  }

  rawObjects(): ReadonlyArray<Record<string, unknown>> {
    return [];
  }
}

export class ApiAgentSource implements AgentSource {
  readonly kind = 'api';
  readonly description: Record<string, unknown>;
  /** A completed list is believed, empty or not; before it, start() has not resolved and nothing syncs. */
  readonly problem = undefined;
  private events: ChangeEvent[] = [];

  constructor(
    private readonly source: ApiSource,
    choice: Extract<SourceChoice, { kind: 'api' }>,
    server: string,
  ) {
    this.description = {
      api: server,
      ...(choice.kubeconfig !== undefined ? { kubeconfig: choice.kubeconfig } : {}),
      ...(choice.inCluster ? { inCluster: true } : {}),
    };
    // From before start(): the initial list's adds are events too (kube-proxy counts them).
    // Only the change-relevant parts are kept (proxy views), not the objects.
    source.onObjectEvent((kind, event) => {
      if (kind !== 'Service' && kind !== 'EndpointSlice') return;
      const e = changeEventFromRaw({
        kind,
        ...(event.previous ? { previous: event.previous as RawObject } : {}),
        ...(event.current ? { current: event.current as RawObject } : {}),
      });
      if (e !== undefined) this.events.push(e);
    });
  }

  takeChangeEvents(): ChangeEvent[] {
    const out = this.events;
    this.events = [];
    return out;
  }

  get apiView(): ApiSource {
    return this.source;
  }

  /** Resolves once every informer has listed: nothing is synced from a partial picture. */
  async start(): Promise<ClusterState> {
    await this.source.start();
    return this.source.current().state;
  }

  async loadOnce(): Promise<ClusterState> {
    try {
      return await this.start();
    } finally {
      await this.source.stop();
    }
  }

  stop(): Promise<void> {
    return this.source.stop();
  }

  onChange(listener: (state: ClusterState) => void): void {
    this.source.onChange((snap) => listener(snap.state));
  }

  rawObjects(kind: string): ReadonlyArray<Record<string, unknown>> {
    return this.source.rawObjects(kind);
  }
}
