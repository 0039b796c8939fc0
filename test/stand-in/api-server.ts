// A stand-in for kube-apiserver, for tests and demos (there is no real API server on these machines).
// It speaks the parts of the Kubernetes REST protocol portway uses, over HTTPS (HTTP/2 when the client
// offers it in ALPN, as kube-apiserver; HTTP/1.1 otherwise) with a bearer token:
// list (cluster-wide and per namespace), watch (chunked JSON events from a resourceVersion, with
// bookmarks and 410 Gone for versions older than the retained history), get/create/update/patch/
// delete, and the /status subresource. Test controls can drop every open watch, forget history
// (so reconnecting clients must relist) and stop/restart the server on the same port.
//
// What it does not do (on purpose): admission, defaulting, validation beyond metadata.name,
// strategic-merge semantics (a strategic merge patch is applied as a JSON merge patch), discovery.
import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  createSecureServer,
  type Http2SecureServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
} from 'node:http2';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { standInCertificates, type StandInCertificates } from './certs.js';
import {
  applyJsonPatch,
  applyMergePatch,
  parseFieldSelector,
  parseLabelSelector,
  PatchError,
  SelectorError,
  type ObjectMatcher,
} from './selectors.js';

type Request = IncomingMessage | Http2ServerRequest;
type Response = ServerResponse | Http2ServerResponse;

export interface ResourceType {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
  /** Has a /status subresource: the main resource ignores status, /status changes only status. */
  hasStatus: boolean;
}

export const STAND_IN_RESOURCES: readonly ResourceType[] = [
  { group: '', version: 'v1', plural: 'services', kind: 'Service', namespaced: true, hasStatus: true },
  { group: '', version: 'v1', plural: 'nodes', kind: 'Node', namespaced: false, hasStatus: true },
  { group: '', version: 'v1', plural: 'namespaces', kind: 'Namespace', namespaced: false, hasStatus: true },
  { group: '', version: 'v1', plural: 'events', kind: 'Event', namespaced: true, hasStatus: false },
  {
    group: 'discovery.k8s.io',
    version: 'v1',
    plural: 'endpointslices',
    kind: 'EndpointSlice',
    namespaced: true,
    hasStatus: false,
  },
  {
    group: 'networking.k8s.io',
    version: 'v1',
    plural: 'ingresses',
    kind: 'Ingress',
    namespaced: true,
    hasStatus: true,
  },
  {
    group: 'networking.k8s.io',
    version: 'v1',
    plural: 'ingressclasses',
    kind: 'IngressClass',
    namespaced: false,
    hasStatus: false,
  },
  {
    group: 'coordination.k8s.io',
    version: 'v1',
    plural: 'leases',
    kind: 'Lease',
    namespaced: true,
    hasStatus: false,
  },
  {
    group: 'portway.io',
    version: 'v1alpha1',
    plural: 'ipaddresspools',
    kind: 'IPAddressPool',
    namespaced: true,
    hasStatus: true,
  },
  {
    group: 'portway.io',
    version: 'v1alpha1',
    plural: 'l2advertisements',
    kind: 'L2Advertisement',
    namespaced: true,
    hasStatus: true,
  },
];

export const apiVersionOf = (t: ResourceType): string =>
  t.group === '' ? t.version : `${t.group}/${t.version}`;

export type KubeObject = Record<string, unknown> & {
  metadata: Record<string, unknown> & { name: string; namespace?: string; resourceVersion?: string };
};

type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

interface StoredEvent {
  rv: number;
  type: WatchEventType;
  resource: ResourceType;
  object: KubeObject;
  /** The object before a MODIFIED/DELETED, to turn selector changes into ADDED/DELETED per watcher. */
  previous?: KubeObject;
}

interface OpenWatch {
  resource: ResourceType;
  namespace?: string;
  matches: ObjectMatcher;
  bookmarks: boolean;
  res: Response;
  timer?: NodeJS.Timeout;
}

export interface StandInOptions {
  /** Bearer token clients must present; random when not given. */
  token?: string;
  /** How many change events are retained for watches; older resourceVersions get 410 Gone. */
  historyLimit?: number;
  /** Period of BOOKMARK events for watches that asked for them (0 = only on sendBookmarks()). */
  bookmarkIntervalMs?: number;
  /**
   * false: as kube-apiserver --watch-cache=false, every list is read from etcd, and one at a version
   * older than the retained history is 410 Expired (the case client-go's pager falls back from).
   */
  watchCache?: boolean;
  /**
   * false: HTTP/1.1 only, as a server behind an HTTP/1.1 proxy: it refuses h2 in ALPN; 'no-alpn': it
   * negotiates no protocol at all (the handshake succeeds, h2 then fails).
   */
  http2?: boolean | 'no-alpn';
  /** Custom resources served beside STAND_IN_RESOURCES, as if their CRDs were installed (e.g. MetalLB's). */
  extraResources?: readonly ResourceType[];
}

/** MetalLB's layer2 resources (metallb.io/v1beta1), for a stand-in with MetalLB's CRDs installed. */
export const METALLB_RESOURCES: readonly ResourceType[] = [
  ...(
    [
      ['v1beta1', 'ipaddresspools', 'IPAddressPool'],
      ['v1beta1', 'l2advertisements', 'L2Advertisement'],
      ['v1beta2', 'bgppeers', 'BGPPeer'],
    ] as const
  ).map(([version, plural, kind]) => ({
    group: 'metallb.io',
    version,
    plural,
    kind,
    namespaced: true,
    hasStatus: true,
  })),
];

export interface RequestRecord {
  method: string;
  path: string;
  query: Record<string, string>;
  status: number;
  /** The User-Agent header ('' when absent). */
  userAgent: string;
}

/** What clients cost the server, for API-citizenship checks and `npm run bench:api`. */
export interface TrafficStats {
  requests: number;
  /** TCP connections accepted (each one a TLS handshake). */
  connections: number;
  /** Bytes on the wire (TLS records, HTTP headers and bodies), both directions, closed and open sockets. */
  bytesReceived: number;
  bytesSent: number;
  /** Lists served from the watch cache (resourceVersion "0" or a version to be not older than). */
  cachedLists: number;
  /** Lists that, on a real server, are a quorum read from etcd (no resourceVersion): one per page. */
  consistentListPages: number;
  /** GETs of one object without a resourceVersion (etcd) and with one (the watch cache). */
  consistentGets: number;
  cachedGets: number;
  watches: number;
}

/** A page a paginated list has not handed out yet, under its continue token. */
interface PendingPages {
  items: unknown[];
  resourceVersion: string;
}

export class StandInApiServer {
  readonly token: string;
  /** The resource types served: the built-in set and the options' extraResources. */
  private readonly resources: readonly ResourceType[];
  private historyLimit: number;
  private readonly bookmarkIntervalMs: number;
  private readonly watchCache: boolean;
  private readonly http2: boolean | 'no-alpn';
  private certs?: StandInCertificates;
  private server?: Http2SecureServer | HttpsServer;
  private listenPort = 0;
  private readonly objects = new Map<ResourceType, Map<string, KubeObject>>();
  private history: StoredEvent[] = [];
  /** Watches from a resourceVersion below this one cannot be served any more (410 Gone). */
  private compactedRv = 0;
  private rv = 1000;
  private readonly watches = new Set<OpenWatch>();
  private readonly sockets = new Set<Socket>();
  private frozen = false;
  private bookmarkTimer?: NodeJS.Timeout;
  /** Every request served, for assertions (e.g. "the client relisted"). */
  readonly requests: RequestRecord[] = [];
  private traffic = emptyTraffic();
  /** Bytes of sockets already closed; open ones are read live from `sockets`. */
  private closedBytes = { received: 0, sent: 0 };
  private readonly continuations = new Map<string, PendingPages>();

  constructor(options: StandInOptions = {}) {
    this.token = options.token ?? randomBytes(16).toString('hex');
    this.resources = [...STAND_IN_RESOURCES, ...(options.extraResources ?? [])];
    this.historyLimit = options.historyLimit ?? 10_000;
    this.bookmarkIntervalMs = options.bookmarkIntervalMs ?? 0;
    this.watchCache = options.watchCache ?? true;
    this.http2 = options.http2 ?? true;
    for (const t of this.resources) this.objects.set(t, new Map());
  }

  // ── lifecycle ──────────────────────────────────────────────────────────────────────────────

  /** Listen on 127.0.0.1 (a random port the first time, the same port after a stop()). */
  async start(): Promise<void> {
    if (this.server) return;
    this.certs ??= await standInCertificates();
    const tls = { key: this.certs.serverKey, cert: this.certs.serverCert };
    const handler = (req: Request, res: Response) => this.handle(req, res);
    const server =
      this.http2 === true
        ? createSecureServer({ ...tls, allowHTTP1: true }, handler)
        : createHttpsServer(this.http2 === 'no-alpn' ? { ...tls, ALPNProtocols: [] } : tls, handler);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.listenPort, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.listenPort = (server.address() as AddressInfo).port;
    // Raw TCP sockets, tracked so stop() can cut every one (closeAllConnections misses those
    // still in the TLS handshake, and a client reconnecting in a tight loop always has one).
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      this.traffic.connections += 1;
      socket.on('close', () => {
        this.sockets.delete(socket);
        this.closedBytes.received += socket.bytesRead;
        this.closedBytes.sent += socket.bytesWritten;
      });
    });
    this.server = server;
    if (this.bookmarkIntervalMs > 0) {
      this.bookmarkTimer = setInterval(() => this.sendBookmarks(), this.bookmarkIntervalMs);
    }
  }

  /** Stop serving: open watches and connections are cut. The stored objects are kept (like etcd). */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    clearInterval(this.bookmarkTimer);
    this.dropWatches({ abrupt: true });
    this.continuations.clear();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    await closed;
  }

  /** stop() then start() on the same port. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  get port(): number {
    return this.listenPort;
  }

  get url(): string {
    return `https://127.0.0.1:${this.listenPort}`;
  }

  get caCert(): string {
    if (!this.certs) throw new Error('stand-in API server: start() it before reading caCert');
    return this.certs.caCert;
  }

  /** A kubeconfig (YAML) that points a client at this server with its CA and token. */
  kubeconfig(): string {
    return renderKubeconfig({ server: this.url, caCert: this.caCert, token: this.token });
  }

  get currentResourceVersion(): string {
    return String(this.rv);
  }

  get openWatchCount(): number {
    return this.watches.size;
  }

  // ── test controls ──────────────────────────────────────────────────────────────────────────

  /** End every open watch: cleanly (as a server-side watch timeout does) or by cutting the socket. */
  dropWatches(opts: { abrupt?: boolean } = {}): void {
    for (const w of [...this.watches]) this.closeWatch(w, opts.abrupt ?? false);
  }

  /**
   * Stop ending watches at their timeoutSeconds and stop sending anything on open ones: what a
   * client sees from a peer that died without closing the connection.
   */
  freezeWatches(frozen = true): void {
    this.frozen = frozen;
  }

  /** Forget all retained history: any watch from an older resourceVersion gets 410 Gone. */
  expireHistory(): void {
    this.history = [];
    this.compactedRv = this.rv;
    // Continue tokens name a version etcd compacted away too.
    this.continuations.clear();
  }

  /** Requests, connections and bytes since start (or the last resetTraffic()). */
  trafficStats(): TrafficStats {
    let received = this.closedBytes.received;
    let sent = this.closedBytes.sent;
    for (const socket of this.sockets) {
      received += socket.bytesRead;
      sent += socket.bytesWritten;
    }
    return { ...this.traffic, bytesReceived: received, bytesSent: sent };
  }

  /** Start counting from zero (open connections' bytes so far are not counted again). */
  resetTraffic(): void {
    this.traffic = emptyTraffic();
    let received = 0;
    let sent = 0;
    for (const socket of this.sockets) {
      received += socket.bytesRead;
      sent += socket.bytesWritten;
    }
    this.closedBytes = { received: -received, sent: -sent };
  }

  setHistoryLimit(limit: number): void {
    this.historyLimit = limit;
    this.trimHistory();
  }

  /** Send a BOOKMARK (current resourceVersion) to every watch that allowed bookmarks. */
  sendBookmarks(): void {
    for (const w of this.watches) if (w.bookmarks) this.writeBookmark(w);
  }

  // ── direct store access (no HTTP, no auth; status kept as given) ───────────────────────────

  /** Create or replace an object as given (status included). Returns the stored copy. */
  put(object: Record<string, unknown>): KubeObject {
    const obj = structuredClone(object) as KubeObject;
    const resource = this.resourceForObject(obj);
    const key = this.keyOf(resource, obj.metadata.namespace, obj.metadata.name);
    const previous = this.objects.get(resource)!.get(key);
    if (previous) {
      obj.metadata.uid ??= previous.metadata.uid;
      obj.metadata.creationTimestamp ??= previous.metadata.creationTimestamp;
      return this.commit(resource, 'MODIFIED', obj, previous);
    }
    return this.commit(resource, 'ADDED', this.prepareNew(resource, obj), undefined);
  }

  /** Delete an object; false when it did not exist. */
  remove(kind: string, namespace: string | undefined, name: string): boolean {
    const resource = this.resourceForKind(kind);
    const key = this.keyOf(resource, namespace, name);
    const previous = this.objects.get(resource)!.get(key);
    if (!previous) return false;
    this.commit(resource, 'DELETED', structuredClone(previous), previous);
    return true;
  }

  get(kind: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const resource = this.resourceForKind(kind);
    const obj = this.objects.get(resource)!.get(this.keyOf(resource, namespace, name));
    return obj ? structuredClone(obj) : undefined;
  }

  list(kind: string): KubeObject[] {
    return [...this.objects.get(this.resourceForKind(kind))!.values()].map((o) => structuredClone(o));
  }

  // ── store internals ────────────────────────────────────────────────────────────────────────

  private resourceForKind(kind: string): ResourceType {
    const t = this.resources.find((r) => r.kind === kind);
    if (!t) throw new Error(`stand-in API server: unknown kind "${kind}"`);
    return t;
  }

  private resourceForObject(object: Record<string, unknown>): ResourceType {
    const kind = object.kind;
    const apiVersion = object.apiVersion;
    const t = this.resources.find(
      (r) => r.kind === kind && (apiVersion === undefined || apiVersionOf(r) === apiVersion),
    );
    if (!t)
      throw new Error(`stand-in API server: unknown kind/apiVersion ${String(apiVersion)}/${String(kind)}`);
    const meta = object.metadata as Record<string, unknown> | undefined;
    if (typeof meta?.name !== 'string' || meta.name === '')
      throw new Error(`stand-in API server: ${t.kind} without metadata.name`);
    if (t.namespaced && typeof meta.namespace !== 'string') meta.namespace = 'default';
    return t;
  }

  private keyOf(t: ResourceType, namespace: string | undefined, name: string): string {
    return t.namespaced ? `${namespace ?? 'default'}/${name}` : name;
  }

  private prepareNew(t: ResourceType, obj: KubeObject): KubeObject {
    obj.apiVersion = apiVersionOf(t);
    obj.kind = t.kind;
    obj.metadata.uid ??= randomUUID();
    obj.metadata.creationTimestamp ??= new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    obj.metadata.generation ??= 1;
    if (!t.namespaced) delete obj.metadata.namespace;
    return obj;
  }

  /** Store a change under a new global resourceVersion and fan it out to the matching watches. */
  private commit(
    t: ResourceType,
    type: WatchEventType,
    obj: KubeObject,
    previous: KubeObject | undefined,
  ): KubeObject {
    this.rv += 1;
    obj.apiVersion = apiVersionOf(t);
    obj.kind = t.kind;
    obj.metadata.resourceVersion = String(this.rv);
    const store = this.objects.get(t)!;
    const key = this.keyOf(t, obj.metadata.namespace, obj.metadata.name);
    if (type === 'DELETED') store.delete(key);
    else store.set(key, obj);
    const event: StoredEvent = { rv: this.rv, type, resource: t, object: structuredClone(obj), previous };
    this.history.push(event);
    this.trimHistory();
    for (const w of this.watches) this.deliver(w, event);
    return structuredClone(obj);
  }

  private trimHistory(): void {
    while (this.history.length > this.historyLimit) {
      const dropped = this.history.shift()!;
      this.compactedRv = dropped.rv;
    }
  }

  // ── HTTP ───────────────────────────────────────────────────────────────────────────────────

  private handle(req: Request, res: Response): void {
    const url = new URL(req.url ?? '/', 'https://stand-in');
    const query = Object.fromEntries(url.searchParams.entries());
    const record: RequestRecord = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query,
      status: 0,
      userAgent: req.headers['user-agent'] ?? '',
    };
    this.requests.push(record);
    this.traffic.requests += 1;
    const send = (status: number, body: unknown): void => {
      record.status = status;
      const text = JSON.stringify(body);
      res.writeHead(status, {
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(text),
      });
      res.end(text);
    };
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      send(401, statusBody(401, 'Unauthorized', 'Unauthorized'));
      return;
    }
    if (url.pathname === '/version') {
      send(200, { major: '1', minor: '31', gitVersion: 'v1.31.0-portway-stand-in' });
      return;
    }
    const route = parseRoute(url.pathname, this.resources);
    if (!route) {
      send(
        404,
        statusBody(404, 'NotFound', `the server could not find the requested resource (${url.pathname})`),
      );
      return;
    }
    readBody(req)
      .then((body) => {
        if (route.name === undefined) {
          if (req.method === 'GET' && query.watch === 'true') {
            record.status = 200;
            this.traffic.watches += 1;
            this.startWatch(route, query, res);
          } else if (req.method === 'GET') send(...this.listObjects(route, query));
          else if (req.method === 'POST') send(...this.createObject(route, body));
          else send(405, statusBody(405, 'MethodNotAllowed', `${req.method} not allowed on a collection`));
        } else if (req.method === 'GET') {
          if (query.resourceVersion) this.traffic.cachedGets += 1;
          else this.traffic.consistentGets += 1;
          send(...this.getObject(route));
        } else if (req.method === 'PUT') send(...this.updateObject(route, body));
        else if (req.method === 'PATCH')
          send(...this.patchObject(route, body, req.headers['content-type'] ?? ''));
        else if (req.method === 'DELETE') send(...this.deleteObject(route));
        else send(405, statusBody(405, 'MethodNotAllowed', `${req.method} not allowed`));
      })
      .catch((e: unknown) => {
        if (e instanceof SelectorError || e instanceof PatchError || e instanceof SyntaxError) {
          send(400, statusBody(400, 'BadRequest', (e as Error).message));
        } else {
          send(500, statusBody(500, 'InternalError', (e as Error).message));
        }
      });
  }

  private matcherFor(query: Record<string, string>): ObjectMatcher {
    const label = query.labelSelector ? parseLabelSelector(query.labelSelector) : () => true;
    const field = query.fieldSelector ? parseFieldSelector(query.fieldSelector) : () => true;
    return (o) => label(o) && field(o);
  }

  private visible(route: Route, obj: KubeObject): boolean {
    return route.namespace === undefined || obj.metadata.namespace === route.namespace;
  }

  /**
   * A list, with the real server's resourceVersion semantics as far as cost goes: "0" or a version
   * (not older than) is served whole from the watch cache, `limit` ignored, as kube-apiserver's cache
   * does; no resourceVersion is a consistent read from etcd, paginated by `limit`/`continue` (the pages
   * are a snapshot of the first page's version; a token outlives neither expireHistory() nor a restart
   * of the server, and is then 410 Expired).
   */
  private listObjects(route: Route, query: Record<string, string>): [number, unknown] {
    const listKind = { kind: `${route.resource.kind}List`, apiVersion: apiVersionOf(route.resource) };
    if (query.continue) {
      const pending = this.continuations.get(query.continue);
      if (!pending)
        return [
          410,
          statusBody(
            410,
            'Expired',
            'The provided continue parameter is too old to display a consistent list result.',
          ),
        ];
      this.continuations.delete(query.continue);
      this.traffic.consistentListPages += 1;
      return [200, this.page(listKind, pending.items, pending.resourceVersion, Number(query.limit ?? 0))];
    }
    const versioned = query.resourceVersion !== undefined && query.resourceVersion !== '';
    const fromCache = versioned && this.watchCache;
    if (
      !this.watchCache &&
      versioned &&
      query.resourceVersion !== '0' &&
      Number(query.resourceVersion) < this.compactedRv
    )
      return [
        410,
        statusBody(
          410,
          'Expired',
          `too old resource version: ${query.resourceVersion} (${this.compactedRv})`,
        ),
      ];
    if (fromCache) this.traffic.cachedLists += 1;
    else this.traffic.consistentListPages += 1;
    const matches = this.matcherFor(query);
    const items = [...this.objects.get(route.resource)!.values()]
      .filter((o) => this.visible(route, o) && matches(o))
      .sort((a, b) =>
        this.keyOf(route.resource, a.metadata.namespace, a.metadata.name) <
        this.keyOf(route.resource, b.metadata.namespace, b.metadata.name)
          ? -1
          : 1,
      )
      // The real server leaves kind/apiVersion out of list items; clients must not rely on them.
      .map(({ kind: _k, apiVersion: _a, ...rest }) => rest);
    return [200, this.page(listKind, items, String(this.rv), fromCache ? 0 : Number(query.limit ?? 0))];
  }

  /** The first `limit` items (all when 0), and a continue token for the rest. */
  private page(
    listKind: { kind: string; apiVersion: string },
    items: unknown[],
    resourceVersion: string,
    limit: number,
  ): unknown {
    const metadata: Record<string, unknown> = { resourceVersion };
    if (limit > 0 && items.length > limit) {
      const token = randomBytes(12).toString('hex');
      this.continuations.set(token, { items: items.slice(limit), resourceVersion });
      metadata.continue = token;
      metadata.remainingItemCount = items.length - limit;
      items = items.slice(0, limit);
    }
    return { ...listKind, metadata, items };
  }

  private getObject(route: Route): [number, unknown] {
    const obj = this.objects
      .get(route.resource)!
      .get(this.keyOf(route.resource, route.namespace, route.name!));
    if (!obj) return notFound(route);
    return [200, obj];
  }

  private createObject(route: Route, body: unknown): [number, unknown] {
    const t = route.resource;
    const obj = structuredClone(body) as KubeObject;
    if (
      obj === null ||
      typeof obj !== 'object' ||
      typeof obj.metadata !== 'object' ||
      obj.metadata === null
    ) {
      return [400, statusBody(400, 'BadRequest', `${t.kind}: metadata is required`)];
    }
    if (!obj.metadata.name && typeof obj.metadata.generateName === 'string') {
      obj.metadata.name = `${obj.metadata.generateName}${randomBytes(3).toString('hex').slice(0, 5)}`;
    }
    if (typeof obj.metadata.name !== 'string' || obj.metadata.name === '') {
      return [422, statusBody(422, 'Invalid', `${t.kind} "": metadata.name: Required value`)];
    }
    if (t.namespaced) {
      if (route.namespace === undefined)
        return [405, statusBody(405, 'MethodNotAllowed', `create ${t.plural} needs a namespace`)];
      if (obj.metadata.namespace !== undefined && obj.metadata.namespace !== route.namespace) {
        return [
          400,
          statusBody(
            400,
            'BadRequest',
            'the namespace of the object does not match the namespace on the request',
          ),
        ];
      }
      obj.metadata.namespace = route.namespace;
    }
    const key = this.keyOf(t, obj.metadata.namespace, obj.metadata.name);
    if (this.objects.get(t)!.has(key)) {
      return [409, statusBody(409, 'AlreadyExists', `${t.plural} "${obj.metadata.name}" already exists`)];
    }
    delete obj.metadata.resourceVersion;
    delete obj.metadata.uid;
    if (t.hasStatus) delete obj.status;
    return [201, this.commit(t, 'ADDED', this.prepareNew(t, obj), undefined)];
  }

  /** Apply a new version of an object through the main resource or its /status subresource. */
  private replace(route: Route, previous: KubeObject, next: KubeObject): [number, unknown] {
    const t = route.resource;
    if (
      next === null ||
      typeof next !== 'object' ||
      typeof next.metadata !== 'object' ||
      next.metadata === null
    ) {
      return [400, statusBody(400, 'BadRequest', `${t.kind}: metadata is required`)];
    }
    if (next.metadata.name !== undefined && next.metadata.name !== route.name) {
      return [
        400,
        statusBody(400, 'BadRequest', 'the name of the object does not match the name on the URL'),
      ];
    }
    const wanted = next.metadata.resourceVersion;
    if (wanted !== undefined && wanted !== '' && wanted !== previous.metadata.resourceVersion) {
      return [
        409,
        statusBody(
          409,
          'Conflict',
          `Operation cannot be fulfilled on ${t.plural} "${route.name}": the object has been modified; please apply your changes to the latest version and try again`,
        ),
      ];
    }
    let stored: KubeObject;
    if (route.subresource === 'status') {
      stored = structuredClone(previous);
      if (next.status === undefined) delete stored.status;
      else stored.status = structuredClone(next.status);
    } else {
      stored = structuredClone(next);
      stored.metadata = {
        ...structuredClone(next.metadata),
        uid: previous.metadata.uid,
        creationTimestamp: previous.metadata.creationTimestamp,
        name: previous.metadata.name,
      };
      if (t.namespaced) stored.metadata.namespace = previous.metadata.namespace;
      if (t.hasStatus) {
        if (previous.status === undefined) delete stored.status;
        else stored.status = structuredClone(previous.status);
      }
      if (JSON.stringify(stored.spec) !== JSON.stringify(previous.spec)) {
        stored.metadata.generation = Number(previous.metadata.generation ?? 1) + 1;
      }
    }
    return [200, this.commit(t, 'MODIFIED', stored, previous)];
  }

  private updateObject(route: Route, body: unknown): [number, unknown] {
    const previous = this.objects
      .get(route.resource)!
      .get(this.keyOf(route.resource, route.namespace, route.name!));
    if (!previous) return notFound(route);
    return this.replace(route, previous, body as KubeObject);
  }

  private patchObject(route: Route, body: unknown, contentType: string): [number, unknown] {
    const previous = this.objects
      .get(route.resource)!
      .get(this.keyOf(route.resource, route.namespace, route.name!));
    if (!previous) return notFound(route);
    let next: unknown;
    if (contentType.startsWith('application/json-patch+json')) next = applyJsonPatch(previous, body);
    else if (
      contentType.startsWith('application/merge-patch+json') ||
      contentType.startsWith('application/strategic-merge-patch+json')
    ) {
      next = applyMergePatch(structuredClone(previous), body);
    } else {
      return [
        415,
        statusBody(
          415,
          'UnsupportedMediaType',
          `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got "${contentType}")`,
        ),
      ];
    }
    const nextObj = next as KubeObject;
    // A patch is always applied to the latest version unless it names one itself.
    const patchMeta = (body as { metadata?: { resourceVersion?: string } } | null)?.metadata;
    if (!Array.isArray(body) && patchMeta?.resourceVersion === undefined && nextObj?.metadata) {
      nextObj.metadata.resourceVersion = previous.metadata.resourceVersion;
    }
    return this.replace(route, previous, nextObj);
  }

  private deleteObject(route: Route): [number, unknown] {
    const previous = this.objects
      .get(route.resource)!
      .get(this.keyOf(route.resource, route.namespace, route.name!));
    if (!previous) return notFound(route);
    return [200, this.commit(route.resource, 'DELETED', structuredClone(previous), previous)];
  }

  // ── watch ──────────────────────────────────────────────────────────────────────────────────

  private startWatch(route: Route, query: Record<string, string>, res: Response): void {
    const watch: OpenWatch = {
      resource: route.resource,
      namespace: route.namespace,
      matches: this.matcherFor(query),
      bookmarks: query.allowWatchBookmarks === 'true',
      res,
    };
    // HTTP/2 frames the stream itself (and forbids the header).
    res.writeHead(
      200,
      'stream' in res
        ? { 'Content-Type': 'application/json' }
        : { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' },
    );
    // Send the headers now (HTTP/2's compat response sends them with writeHead).
    if (!('stream' in res)) res.flushHeaders();
    const from = query.resourceVersion ?? '';
    if (from !== '' && from !== '0' && !/^\d+$/.test(from)) {
      this.writeEvent(res, 'ERROR', statusBody(400, 'BadRequest', `invalid resource version "${from}"`));
      res.end();
      return;
    }
    if (from !== '' && from !== '0' && Number(from) < this.compactedRv) {
      // What the real server does for a watch that starts before its watch cache's window.
      this.writeEvent(
        res,
        'ERROR',
        statusBody(410, 'Expired', `too old resource version: ${from} (${this.compactedRv})`),
      );
      res.end();
      return;
    }
    if (from === '' || from === '0') {
      // "Start at most recent": synthetic ADDED events for the current objects.
      for (const obj of this.objects.get(route.resource)!.values()) {
        if (this.visible(route, obj) && watch.matches(obj)) this.writeEvent(res, 'ADDED', obj);
      }
    } else {
      for (const event of this.history) if (event.rv > Number(from)) this.deliver(watch, event);
    }
    this.watches.add(watch);
    const timeout = Number(query.timeoutSeconds ?? 0);
    if (timeout > 0) {
      watch.timer = setTimeout(() => {
        if (!this.frozen) this.closeWatch(watch, false);
      }, timeout * 1000);
    }
    res.on('close', () => {
      clearTimeout(watch.timer);
      this.watches.delete(watch);
    });
  }

  /** Send one stored event to one watch, translated through its selectors as the real server does. */
  private deliver(w: OpenWatch, event: StoredEvent): void {
    if (w.resource !== event.resource) return;
    if (w.namespace !== undefined && event.object.metadata.namespace !== w.namespace) return;
    const now = w.matches(event.object);
    const before = event.previous !== undefined && w.matches(event.previous);
    if (event.type === 'ADDED') {
      if (now) this.writeEvent(w.res, 'ADDED', event.object);
    } else if (event.type === 'DELETED') {
      if (before) this.writeEvent(w.res, 'DELETED', event.object);
    } else if (now && before) this.writeEvent(w.res, 'MODIFIED', event.object);
    else if (now) this.writeEvent(w.res, 'ADDED', event.object);
    else if (before) this.writeEvent(w.res, 'DELETED', event.object);
  }

  private writeBookmark(w: OpenWatch): void {
    this.writeEvent(w.res, 'BOOKMARK', {
      kind: w.resource.kind,
      apiVersion: apiVersionOf(w.resource),
      metadata: { resourceVersion: String(this.rv) },
    });
  }

  private writeEvent(res: Response, type: string, object: unknown): void {
    if (this.frozen) return;
    if (!res.writableEnded && !res.destroyed)
      (res as ServerResponse).write(`${JSON.stringify({ type, object })}\n`);
  }

  private closeWatch(w: OpenWatch, abrupt: boolean): void {
    this.watches.delete(w);
    clearTimeout(w.timer);
    if (abrupt) w.res.destroy();
    else w.res.end();
  }
}

// ── routing ──────────────────────────────────────────────────────────────────────────────────

interface Route {
  resource: ResourceType;
  namespace?: string;
  name?: string;
  subresource?: 'status';
}

function parseRoute(pathname: string, resources: readonly ResourceType[]): Route | null {
  const segs = pathname
    .split('/')
    .filter((s) => s !== '')
    .map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (segs[0] === 'api' && segs.length >= 2) {
    group = '';
    version = segs[1]!;
    rest = segs.slice(2);
  } else if (segs[0] === 'apis' && segs.length >= 3) {
    group = segs[1]!;
    version = segs[2]!;
    rest = segs.slice(3);
  } else return null;
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3 && rest[2] !== 'status') {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const [plural, name, sub, ...extra] = rest;
  if (plural === undefined || extra.length > 0 || (sub !== undefined && sub !== 'status')) return null;
  const resource = resources.find(
    (r) => r.group === group && r.version === version && r.plural === plural,
  );
  if (!resource) return null;
  if (namespace !== undefined && !resource.namespaced) return null;
  if (sub === 'status' && !resource.hasStatus) return null;
  return { resource, namespace, name, subresource: sub === 'status' ? 'status' : undefined };
}

function emptyTraffic(): Omit<TrafficStats, 'bytesReceived' | 'bytesSent'> {
  return {
    requests: 0,
    connections: 0,
    cachedLists: 0,
    consistentListPages: 0,
    consistentGets: 0,
    cachedGets: 0,
    watches: 0,
  };
}

function statusBody(code: number, reason: string, message: string): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

function notFound(route: Route): [number, unknown] {
  const group = route.resource.group === '' ? '' : `.${route.resource.group}`;
  return [404, statusBody(404, 'NotFound', `${route.resource.plural}${group} "${route.name}" not found`)];
}

async function readBody(req: Request): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  if (chunks.length === 0) return undefined;
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
}

// ── kubeconfig ───────────────────────────────────────────────────────────────────────────────

export interface KubeconfigParts {
  server: string;
  caCert: string;
  token: string;
  /** Context/cluster/user name. */
  name?: string;
}

/** A kubeconfig document (YAML is a superset of JSON, so it is written as JSON). */
export function renderKubeconfig(parts: KubeconfigParts): string {
  const name = parts.name ?? 'portway-stand-in';
  return `${JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name,
          cluster: {
            server: parts.server,
            'certificate-authority-data': Buffer.from(parts.caCert).toString('base64'),
          },
        },
      ],
      users: [{ name, user: { token: parts.token } }],
      contexts: [{ name, context: { cluster: name, user: name } }],
      'current-context': name,
    },
    null,
    2,
  )}\n`;
}

/** Write the stand-in's kubeconfig to a file (mode 0600: it holds a token). */
export async function writeKubeconfig(server: StandInApiServer, path: string): Promise<void> {
  const { writeFile } = await import('node:fs/promises');
  await writeFile(path, server.kubeconfig(), { mode: 0o600 });
}
