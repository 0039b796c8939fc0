// The agent's source of cluster state, one shape for both modes: a watched directory of manifests or
// the API (informers). `portway run` takes exactly one; which one is decided here from the flags and
// the environment, with kube-proxy's precedence (--kubeconfig/--master, else the in-cluster service
// account when running in a pod).
import { existsSync } from 'node:fs';
import type { ClusterState } from '../model/cluster-state.js';
import type { Logger } from '../observe/logger.js';
import type { ApiSourceView } from '../observe/metrics.js';
import type { ApiSource } from '../sources/api/api-source.js';
import { ManifestDirectorySource } from '../sources/manifests/directory-source.js';
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
}

export class ManifestAgentSource implements AgentSource {
  readonly kind = 'manifests';
  readonly description: Record<string, unknown>;
  private readonly source: ManifestDirectorySource;
  private readonly listeners: Array<(state: ClusterState) => void> = [];
  private readonly differ = new StateChangeDiffer();
  private events: ChangeEvent[] = [];

  constructor(opts: { dir: string; logger: Logger; clock: Clock }) {
    this.description = { manifests: opts.dir };
    this.source = new ManifestDirectorySource({
      dir: opts.dir,
      logger: opts.logger,
      clock: opts.clock,
      onChange: (snap) => {
        this.noteReload(snap.state);
        for (const l of this.listeners) l(snap.state);
      },
    });
  }

  async start(): Promise<ClusterState> {
    const state = (await this.source.start()).state;
    this.noteReload(state);
    return state;
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

  async loadOnce(): Promise<ClusterState> {
    return (await this.source.load()).state;
  }

  stop(): Promise<void> {
    return this.source.stop();
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
