// Cluster mode's source: informers for every kind portway consumes, turned into ClusterState by the
// same normalisation the manifest source uses (source 'api'). Nothing is emitted until every
// informer has its initial list; after that each burst of changes yields one new snapshot. While
// the API is unreachable the last state is kept and the outage is visible in connection().
import type { KubeConfig } from '@kubernetes/client-node';
import type { ClusterState, InputProblem } from '../../model/cluster-state.js';
import { silentLogger, type Logger } from '../../observe/logger.js';
import { apiServerUrl } from './kube-config.js';
import {
  ResourceInformer,
  type BackoffOptions,
  type InformerStatus,
  type WatchedResource,
} from './informer.js';

/** The model's normaliser (src/model/normalise.ts buildClusterState), injected. */
export type Normaliser = (objects: Array<{ source: string; object: unknown }>) => {
  state: ClusterState;
  problems: InputProblem[];
};

export interface ApiSnapshot {
  state: ClusterState;
  problems: InputProblem[];
}

/**
 * What portway watches. No label selectors: kube-proxy filters headless and service-proxy-name
 * Services at the informer, but the normaliser already drops their proxy rules while the address
 * allocator and Ingress checks still need to see every Service — one place decides.
 */
export const WATCHED_RESOURCES: readonly WatchedResource[] = [
  { kind: 'Service', apiVersion: 'v1', path: '/api/v1/services' },
  {
    kind: 'EndpointSlice',
    apiVersion: 'discovery.k8s.io/v1',
    path: '/apis/discovery.k8s.io/v1/endpointslices',
  },
  { kind: 'Node', apiVersion: 'v1', path: '/api/v1/nodes' },
  { kind: 'Namespace', apiVersion: 'v1', path: '/api/v1/namespaces' },
  { kind: 'Ingress', apiVersion: 'networking.k8s.io/v1', path: '/apis/networking.k8s.io/v1/ingresses' },
  {
    kind: 'IPAddressPool',
    apiVersion: 'portway.io/v1alpha1',
    path: '/apis/portway.io/v1alpha1/ipaddresspools',
    optional: true,
  },
  {
    kind: 'L2Advertisement',
    apiVersion: 'portway.io/v1alpha1',
    path: '/apis/portway.io/v1alpha1/l2advertisements',
    optional: true,
  },
];

export interface ApiSourceOptions {
  kubeConfig: KubeConfig;
  normalise: Normaliser;
  logger?: Logger;
  /** Clock for "disconnected since" (ms since the epoch). */
  now?: () => number;
  backoff?: Partial<BackoffOptions>;
  resources?: readonly WatchedResource[];
  /** Informer watch timing (see InformerDeps); defaults as client-go's reflector. */
  watchTimeoutSeconds?: number;
  watchStallGraceMs?: number;
}

export interface ApiConnectionStatus {
  /** True when every informer's last list/watch attempt reached the server. */
  connected: boolean;
  /** Earliest moment (ms, injected clock) an informer lost the connection; undefined when connected. */
  disconnectedSince?: number;
  synced: boolean;
  informers: InformerStatus[];
}

export class ApiSource {
  private readonly informers: ResourceInformer[];
  private readonly logger: Logger;
  private readonly listeners: Array<(snapshot: ApiSnapshot) => void> = [];
  private snapshot?: ApiSnapshot;
  private knownProblems = new Set<string>();
  private invalidTotal = 0;
  private recomputeQueued = false;
  private running = false;
  private firstSnapshot?: { resolve: () => void; reject: (e: Error) => void };

  constructor(private readonly opts: ApiSourceOptions) {
    this.logger = opts.logger ?? silentLogger;
    this.informers = (opts.resources ?? WATCHED_RESOURCES).map(
      (resource) =>
        new ResourceInformer(resource, {
          kubeConfig: opts.kubeConfig,
          logger: this.logger,
          now: opts.now,
          backoff: opts.backoff,
          watchTimeoutSeconds: opts.watchTimeoutSeconds,
          watchStallGraceMs: opts.watchStallGraceMs,
        }),
    );
  }

  /** Called with every new snapshot (the first one once all informers have listed). */
  onChange(listener: (snapshot: ApiSnapshot) => void): void {
    this.listeners.push(listener);
  }

  /** Start the informers; resolves when the first complete snapshot has been emitted. */
  start(): Promise<void> {
    if (this.running)
      return this.snapshot ? Promise.resolve() : Promise.reject(new Error('ApiSource already starting'));
    this.running = true;
    const first = new Promise<void>((resolve, reject) => {
      this.firstSnapshot = { resolve, reject };
    });
    for (const informer of this.informers) {
      informer.onChange(() => this.requestRecompute());
      informer.start();
    }
    this.logger.info(
      { server: apiServerUrl(this.opts.kubeConfig), kinds: this.informers.map((i) => i.resource.kind) },
      'starting API informers',
    );
    return first;
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.informers.map((i) => i.stop()));
    this.firstSnapshot?.reject(new Error('ApiSource stopped before its initial sync'));
    this.firstSnapshot = undefined;
  }

  /** The last snapshot; before the initial sync, an error (callers should await start()). */
  current(): ApiSnapshot {
    if (!this.snapshot) throw new Error('ApiSource: no state yet (initial list not complete)');
    return this.snapshot;
  }

  /**
   * The raw objects of one kind as last seen (kind/apiVersion stamped), e.g. this node's Node for
   * ProxyHealth.syncNode, which needs fields ClusterState does not carry (taints, deletion).
   */
  rawObjects(kind: string): ReadonlyArray<Record<string, unknown>> {
    return this.informers.find((i) => i.resource.kind === kind)?.objects() ?? [];
  }

  get synced(): boolean {
    return this.informers.every((i) => i.synced);
  }

  /** Objects that failed validation, counted once per distinct problem each time it appears. */
  get invalidObjectsTotal(): number {
    return this.invalidTotal;
  }

  connection(): ApiConnectionStatus {
    const informers = this.informers.map((i) => i.status());
    const since = informers
      .map((s) => s.disconnectedSince)
      .filter((t): t is number => t !== undefined)
      .sort((a, b) => a - b)[0];
    return {
      connected: informers.every((s) => s.connected),
      disconnectedSince: since,
      synced: informers.every((s) => s.synced),
      informers,
    };
  }

  private requestRecompute(): void {
    if (this.recomputeQueued || !this.running || !this.synced) return;
    this.recomputeQueued = true;
    // One snapshot per burst: events that arrive in the same turn of the event loop coalesce.
    setImmediate(() => {
      this.recomputeQueued = false;
      if (this.running) this.recompute();
    });
  }

  private recompute(): void {
    const objects = this.informers.flatMap((i) =>
      i
        .objects()
        .sort((a, b) => objectKey(a).localeCompare(objectKey(b)))
        .map((object) => ({ source: 'api', object })),
    );
    const { state, problems } = this.opts.normalise(objects);
    this.noteProblems(problems);
    this.snapshot = { state, problems };
    if (this.firstSnapshot) {
      this.logger.info(
        {
          services: state.services.length,
          servicePorts: state.servicePorts.length,
          nodes: state.nodes.length,
          problems: problems.length,
        },
        'initial API sync complete',
      );
      this.firstSnapshot.resolve();
      this.firstSnapshot = undefined;
    }
    for (const l of this.listeners) l(this.snapshot);
  }

  /** Log and count problems not seen in the previous snapshot (an unchanged bad object is not re-logged). */
  private noteProblems(problems: InputProblem[]): void {
    const now = new Set<string>();
    for (const p of problems) {
      const key = `${p.kind}|${p.object}|${p.field}|${p.message}`;
      now.add(key);
      if (this.knownProblems.has(key)) continue;
      this.invalidTotal += 1;
      this.logger.warn(
        { kind: p.kind, object: p.object, field: p.field, error: p.message },
        `skipping invalid ${p.kind} ${p.object || '(unnamed)'}: ${p.field}: ${p.message}`,
      );
    }
    this.knownProblems = now;
  }
}

function objectKey(obj: { metadata?: { namespace?: string; name?: string } }): string {
  return `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
}
