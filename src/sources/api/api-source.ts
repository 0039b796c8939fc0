// Cluster mode's source: informers for every kind portway consumes, turned into ClusterState by the
// same normalisation the manifest source uses (source 'api'). Nothing is emitted until every
// informer has its initial list; after that each burst of changes yields one new snapshot. While
// the API is unreachable the last state is kept and the outage is visible in connection().
import type { KubeConfig } from '@kubernetes/client-node';
import type { ClusterState, InputProblem } from '../../model/cluster-state.js';
import { METALLB_GROUP } from '../../model/k8s-schemas.js';
import { LABEL_HEADLESS, LABEL_SERVICE_PROXY_NAME } from '../../model/normalise.js';
import { silentLogger, type Logger } from '../../observe/logger.js';
import { apiServerUrl } from './kube-config.js';
import {
  ResourceInformer,
  type BackoffOptions,
  type InformerEvent,
  type InformerStatus,
  type KubeObject,
  type WatchedResource,
} from './informer.js';

/** The model's normaliser (src/model/normalise.ts buildClusterState), injected. */
export type Normaliser = (objects: Array<{ source: string; object: unknown }>) => {
  state: ClusterState;
  problems: InputProblem[];
};

/**
 * An incremental normaliser (src/model/incremental.ts ClusterStateBuilder): told only which objects
 * changed, it turns one change into a new state in milliseconds where a full normalisation of a
 * big cluster costs hundreds — what keeps network programming latency low at 50 changes/s.
 */
export interface IncrementalNormaliser {
  upsert(object: { source: string; object: unknown }): void;
  remove(kind: string, namespace: string, name: string): unknown;
  build(): { state: ClusterState; problems: InputProblem[] };
}

export interface ApiSnapshot {
  state: ClusterState;
  problems: InputProblem[];
}

/**
 * The label selector kube-proxy's informers use for Services and EndpointSlices (another proxy's
 * objects, and the slices of headless Services, which no proxy programs).
 */
export const KUBE_PROXY_LABEL_SELECTOR = `!${LABEL_SERVICE_PROXY_NAME},!${LABEL_HEADLESS}`;

export interface WatchedResourcesOptions {
  /**
   * Watch only this Node (field selector metadata.name=<node>) instead of all. Only when nothing needs
   * the other nodes: layer2 owner election ranks every ready, eligible node, so an agent that announces
   * must see them all; its own Node (zone, podCIDRs, deletion) is all the rest of portway reads.
   */
  onlyNode?: string;
}

/**
 * What portway watches, filtered at the server as far as portway's needs allow:
 * - EndpointSlices with kube-proxy's selector: the normaliser drops these slices anyway, so the state is
 *   the same and the headless slices (often the bulk: StatefulSets) never cross the wire;
 * - Services unfiltered: the label `service.kubernetes.io/headless` is set on slices, not on Services,
 *   and a Service another proxy programs (service-proxy-name) still gets its LoadBalancer address from
 *   portway's allocator, as from MetalLB, and still counts as an Ingress backend. The normaliser gives it
 *   no proxy rules, as kube-proxy;
 * - Nodes: all, or one (see onlyNode).
 */
export function watchedResources(opts: WatchedResourcesOptions = {}): WatchedResource[] {
  return [
    { kind: 'Service', apiVersion: 'v1', path: '/api/v1/services' },
    {
      kind: 'EndpointSlice',
      apiVersion: 'discovery.k8s.io/v1',
      path: '/apis/discovery.k8s.io/v1/endpointslices',
      labelSelector: KUBE_PROXY_LABEL_SELECTOR,
    },
    {
      kind: 'Node',
      apiVersion: 'v1',
      path: '/api/v1/nodes',
      ...(opts.onlyNode ? { fieldSelector: `metadata.name=${opts.onlyNode}` } : {}),
    },
    { kind: 'Namespace', apiVersion: 'v1', path: '/api/v1/namespaces' },
    { kind: 'Ingress', apiVersion: 'networking.k8s.io/v1', path: '/apis/networking.k8s.io/v1/ingresses' },
    {
      kind: 'IngressClass',
      apiVersion: 'networking.k8s.io/v1',
      path: '/apis/networking.k8s.io/v1/ingressclasses',
    },
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
    ...METALLB_RESOURCES,
  ];
}

/**
 * MetalLB's objects, read where its CRDs are installed (asked once at start; a cluster without MetalLB
 * costs one 404 per kind, never a poll): its pools and advertisements as portway's own, and the kinds of
 * features portway lacks (BGP, BFD, communities), only so that each such object is reported by name.
 */
export const METALLB_RESOURCES: readonly WatchedResource[] = (
  [
    ['IPAddressPool', 'v1beta1', 'ipaddresspools'],
    ['L2Advertisement', 'v1beta1', 'l2advertisements'],
    ['BGPPeer', 'v1beta2', 'bgppeers'],
    ['BGPAdvertisement', 'v1beta1', 'bgpadvertisements'],
    ['BFDProfile', 'v1beta1', 'bfdprofiles'],
    ['Community', 'v1beta1', 'communities'],
  ] as const
).map(([kind, version, plural]) => ({
  kind,
  apiVersion: `${METALLB_GROUP}/${version}`,
  path: `/apis/${METALLB_GROUP}/${version}/${plural}`,
  optional: 'not-retried' as const,
}));

/** Every kind, all Nodes. */
export const WATCHED_RESOURCES: readonly WatchedResource[] = watchedResources();

export interface ApiSourceOptions {
  kubeConfig: KubeConfig;
  /** A function given every object on each change, or an incremental normaliser given the changes. */
  normalise: Normaliser | IncrementalNormaliser;
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
  /** Per informer, the objects last handed to an incremental normaliser. */
  private readonly fed = new Map<
    ResourceInformer,
    { byKey: Map<string, KubeObject>; objects: Set<KubeObject> }
  >();

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

  /**
   * Called synchronously for every add/update/delete an informer applies (a relist updates every
   * listed object), with the object's kind: client-go's event-handler view, for change counting.
   */
  onObjectEvent(listener: (kind: string, event: InformerEvent) => void): void {
    for (const informer of this.informers) informer.onObjectEvent((e) => listener(informer.resource.kind, e));
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
    const normalise = this.opts.normalise;
    const { state, problems } =
      typeof normalise === 'function' ? normalise(this.allObjects()) : this.feedChanges(normalise);
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

  private allObjects(): Array<{ source: string; object: unknown }> {
    return this.informers.flatMap((i) =>
      i
        .objects()
        .sort((a, b) => objectKey(a).localeCompare(objectKey(b)))
        .map((object) => ({ source: 'api', object })),
    );
  }

  /**
   * Hand the incremental normaliser what changed since the last call. Informer objects are replaced,
   * never mutated, so identity tells what changed: an O(n) pass of set lookups (~1 ms for 20k
   * objects) instead of O(n) normalisation. A relist hands out new copies of unchanged objects; an
   * equal (uid, resourceVersion) says the content is the same, so they are not parsed again.
   */
  private feedChanges(normaliser: IncrementalNormaliser): { state: ClusterState; problems: InputProblem[] } {
    for (const informer of this.informers) {
      let fed = this.fed.get(informer);
      if (!fed) this.fed.set(informer, (fed = { byKey: new Map(), objects: new Set() }));
      const current = informer.objects();
      const changed: KubeObject[] = [];
      for (const object of current) if (!fed.objects.has(object)) changed.push(object);
      if (changed.length === 0 && current.length === fed.objects.size) continue;
      for (const object of changed) {
        const key = objectKey(object);
        const previous = fed.byKey.get(key);
        if (previous) fed.objects.delete(previous);
        fed.byKey.set(key, object);
        fed.objects.add(object);
        if (previous && sameVersion(previous, object)) continue;
        normaliser.upsert({ source: 'api', object });
      }
      if (fed.objects.size > current.length) {
        const present = new Set(current);
        for (const [key, object] of fed.byKey) {
          if (present.has(object)) continue;
          fed.byKey.delete(key);
          fed.objects.delete(object);
          normaliser.remove(
            stringOr(object.kind),
            stringOr(object.metadata?.namespace),
            stringOr(object.metadata?.name),
          );
        }
      }
    }
    return normaliser.build();
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
        {
          kind: p.kind,
          object: p.object,
          field: p.field,
          error: p.message,
          ...(p.kept ? { kept: true } : {}),
        },
        `${p.kept ? 'keeping the last good version of' : 'skipping'} invalid ${p.kind} ${p.object || '(unnamed)'}: ${p.field === '' ? '' : `${p.field}: `}${p.message}`,
      );
    }
    this.knownProblems = now;
  }
}

function objectKey(obj: { metadata?: { namespace?: string; name?: string } }): string {
  return `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
}

const stringOr = (value: unknown): string => (typeof value === 'string' ? value : '');

/** Two copies of one object version: same uid and resourceVersion (as the API server guarantees). */
function sameVersion(a: KubeObject, b: KubeObject): boolean {
  const ra = a.metadata?.resourceVersion;
  const ua = (a.metadata as { uid?: unknown } | undefined)?.uid;
  const ub = (b.metadata as { uid?: unknown } | undefined)?.uid;
  return typeof ra === 'string' && ra !== '' && ra === b.metadata?.resourceVersion && ua === ub;
}
