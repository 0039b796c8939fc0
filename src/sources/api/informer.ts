// One kind's list+watch loop (a reflector with its store).
//
// Why not client-node's makeInformer/ListWatch: on any error other than 410 it stops for good
// (the caller must notice and restart it, with no backoff), it does not ask for bookmarks, it
// gives no way to know when the connection was lost, and its list function returns objects
// deserialised into V1* classes (Dates instead of strings) which the shared normaliser does not
// expect. Nor client-node's Watch: it sends no User-Agent of ours and opens a new connection per
// watch through its own fetch agent. This loop adds: relist on 410, bookmarks, capped exponential
// backoff, a connected/disconnected-since status, raw objects, and client-go's list semantics:
// lists are served from the API server's watch cache (resourceVersion "0" at first, then "not older
// than" the version last seen) and only when that version is gone (410) is a consistent read from
// etcd made, paginated (limit 500) as client-go's pager does.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../../observe/logger.js';
import { requestApiServer, streamApiServer } from './api-request.js';

export interface WatchedResource {
  kind: string;
  apiVersion: string;
  /** Cluster-wide collection path, e.g. /api/v1/services. */
  path: string;
  /**
   * A missing API (CRD not installed: 404) counts as an empty, synced list; retried in the background —
   * or, with 'not-retried', never asked again by this process (another product's CRDs, such as MetalLB's:
   * most clusters never have them, and polling for them on every node would be a steady cost).
   */
  optional?: boolean | 'not-retried';
  labelSelector?: string;
  fieldSelector?: string;
}

export interface InformerStatus {
  kind: string;
  synced: boolean;
  connected: boolean;
  /** Milliseconds since the epoch (injected clock) when the connection was lost; undefined when connected. */
  disconnectedSince?: number;
  lastError?: string;
  resourceVersion: string;
  lists: number;
  watches: number;
}

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

export interface InformerDeps {
  kubeConfig: KubeConfig;
  logger: Logger;
  now?: () => number;
  backoff?: Partial<BackoffOptions>;
  /** Timeout of one list request. */
  listTimeoutMs?: number;
  /** Page size of consistent lists (client-go's pager: 500). */
  listPageSize?: number;
  /** Server-side watch timeout asked for; default random 300–600 s, as client-go's reflector. */
  watchTimeoutSeconds?: number;
  /** A watch the server has not ended this long after its timeoutSeconds is presumed dead and aborted. */
  watchStallGraceMs?: number;
}

export type KubeObject = {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
} & Record<string, unknown>;

/** An HTTP error from the API server, with its status code. */
export class ApiRequestError extends Error {
  constructor(
    message: string,
    readonly statusCode: number,
  ) {
    super(message);
    this.name = 'ApiRequestError';
  }
}

/** kube's reflector backs off 800 ms → 30 s; the same bounds by default. */
export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 800, maxMs: 30_000 };

/** Delay before retry number `attempt` (1-based): doubling from initial, capped. Pure. */
export function backoffDelay(attempt: number, opts: BackoffOptions): number {
  return Math.min(opts.maxMs, opts.initialMs * 2 ** Math.max(0, attempt - 1));
}

/** Remove anything that looks like a credential from a message before it is logged. */
export function redact(text: string): string {
  return text
    .replace(/(authorization["']?\s*[:=]\s*["']?)(bearer|basic)\s+[^\s"',}]+/gi, '$1$2 [redacted]')
    .replace(/\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi, '$1 [redacted]')
    .replace(/([?&](access_token|token)=)[^&\s]+/gi, '$1[redacted]');
}

type WatchOutcome = 'closed' | 'expired';

/**
 * One change to the store, as a client-go informer hands it to its handlers: an add (no previous), an
 * update (both; a relist updates every object still listed, changed or not) or a delete (no current).
 */
export interface InformerEvent {
  previous?: KubeObject;
  current?: KubeObject;
}

export class ResourceInformer {
  private readonly store = new Map<string, KubeObject>();
  private readonly listeners: Array<() => void> = [];
  private readonly eventListeners: Array<(event: InformerEvent) => void> = [];
  private readonly now: () => number;
  private readonly backoff: BackoffOptions;
  private running = false;
  private abortWatch?: () => void;
  private wakeSleep?: () => void;
  private loop?: Promise<void>;
  private state: InformerStatus;

  constructor(
    readonly resource: WatchedResource,
    private readonly deps: InformerDeps,
  ) {
    this.now = deps.now ?? Date.now;
    this.backoff = { ...DEFAULT_BACKOFF, ...deps.backoff };
    this.state = {
      kind: resource.kind,
      synced: false,
      connected: false,
      resourceVersion: '',
      lists: 0,
      watches: 0,
    };
  }

  /** Called after every change to the store (and after each relist). */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** Called synchronously for every add/update/delete of an object (before the onChange notification). */
  onObjectEvent(listener: (event: InformerEvent) => void): void {
    this.eventListeners.push(listener);
  }

  private objectEvent(previous: KubeObject | undefined, current: KubeObject | undefined): void {
    for (const l of this.eventListeners)
      l({ ...(previous ? { previous } : {}), ...(current ? { current } : {}) });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.abortWatch?.();
    this.wakeSleep?.();
    await this.loop;
  }

  get synced(): boolean {
    return this.state.synced;
  }

  status(): InformerStatus {
    return { ...this.state };
  }

  /** The current objects, each stamped with kind/apiVersion (list items come without them). */
  objects(): KubeObject[] {
    return [...this.store.values()];
  }

  private emit(): void {
    for (const l of this.listeners) l();
  }

  private emitQueued = false;

  /** Events arrive in bursts (one network chunk holds many lines): notify once per burst. */
  private emitSoon(): void {
    if (this.emitQueued) return;
    this.emitQueued = true;
    queueMicrotask(() => {
      this.emitQueued = false;
      this.emit();
    });
  }

  private markConnected(): void {
    if (!this.state.connected) {
      if (this.state.disconnectedSince !== undefined) {
        this.deps.logger.info(
          { kind: this.resource.kind, disconnectedForMs: this.now() - this.state.disconnectedSince },
          'API connection restored',
        );
      }
      this.state.connected = true;
      this.state.disconnectedSince = undefined;
    }
  }

  private markDisconnected(err: unknown): void {
    const message = redact(errorMessage(err));
    this.state.lastError = message;
    if (this.state.connected || this.state.disconnectedSince === undefined) {
      this.state.connected = false;
      this.state.disconnectedSince = this.now();
      this.deps.logger.warn(
        { kind: this.resource.kind, error: message },
        'API connection lost; keeping last known state',
      );
    } else {
      this.deps.logger.debug({ kind: this.resource.kind, error: message }, 'API still unreachable');
    }
  }

  private async run(): Promise<void> {
    let needList = true;
    let failures = 0;
    while (this.running) {
      try {
        if (needList) {
          await this.list();
          needList = false;
        }
        const started = this.now();
        const outcome = await this.watchOnce();
        if (!this.running) break;
        if (outcome === 'expired') {
          this.deps.logger.info(
            { kind: this.resource.kind },
            'watch resourceVersion expired (410); relisting',
          );
          needList = true;
          failures = 0;
          continue;
        }
        // A watch the server ended normally is resumed at once; one that ends as soon as it
        // starts is treated like a failure, so a misbehaving server cannot make us spin.
        failures = this.now() - started < 1000 ? failures + 1 : 0;
        if (failures > 0) await this.sleep(backoffDelay(failures, this.backoff));
      } catch (err) {
        if (!this.running) break;
        if (err instanceof ApiRequestError && err.statusCode === 410) {
          // The version we asked to be not older than is gone: the next list is a consistent read.
          if (needList) this.listVersionUnavailable = true;
          needList = true;
          continue;
        }
        if (err instanceof ApiRequestError && err.statusCode === 404 && this.resource.optional && needList) {
          this.markMissingApi();
          if (this.resource.optional === 'not-retried') {
            this.markConnected(); // the server answered: nothing is wrong with the connection
            break;
          }
        } else {
          this.markDisconnected(err);
        }
        failures += 1;
        await this.sleep(backoffDelay(failures, this.backoff));
      }
    }
  }

  /** An optional API that is not served (CRD not installed) is an empty list, retried slowly. */
  private markMissingApi(): void {
    if (this.resource.optional === 'not-retried') {
      this.deps.logger.info(
        { kind: this.resource.kind, path: this.resource.path },
        'API not served (CRD not installed); not watched (restart the agent after installing it)',
      );
    } else if (!this.state.synced) {
      this.deps.logger.warn(
        { kind: this.resource.kind, path: this.resource.path },
        'API not served (CRD not installed?); treating as empty and retrying',
      );
    }
    const changed = !this.state.synced || this.store.size > 0;
    if (this.eventListeners.length > 0) for (const o of this.store.values()) this.objectEvent(o, undefined);
    this.store.clear();
    this.state.synced = true;
    if (changed) this.emit();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wakeSleep = done;
    });
  }

  private keyOf(obj: KubeObject): string {
    return `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
  }

  private stamp(obj: KubeObject): KubeObject {
    return { ...withoutManagedFields(obj), kind: this.resource.kind, apiVersion: this.resource.apiVersion };
  }

  /**
   * The resourceVersion to list at, as client-go's reflector picks it: "0" (any version the watch
   * cache holds) the first time, then the version last synced (the cache serves it once it is that
   * fresh, so a relist never goes back in time), and "" (a consistent read from etcd) only when that
   * version is no longer available.
   */
  private listResourceVersion(): string {
    if (this.listVersionUnavailable) return '';
    return this.state.resourceVersion === '' ? '0' : this.state.resourceVersion;
  }

  private listVersionUnavailable = false;

  private async list(): Promise<void> {
    const resourceVersion = this.listResourceVersion();
    const items: KubeObject[] = [];
    let listVersion = '';
    let continueToken = '';
    do {
      const query = new URLSearchParams();
      if (this.resource.labelSelector) query.set('labelSelector', this.resource.labelSelector);
      if (this.resource.fieldSelector) query.set('fieldSelector', this.resource.fieldSelector);
      if (resourceVersion !== '') query.set('resourceVersion', resourceVersion);
      // Only a consistent read is paginated: the watch cache serves a versioned list whole anyway.
      else query.set('limit', String(this.deps.listPageSize ?? 500));
      if (continueToken !== '') query.set('continue', continueToken);
      const body = (await this.getJson(`${this.resource.path}?${query.toString()}`)) as {
        items?: KubeObject[] | null;
        metadata?: { resourceVersion?: string; continue?: string };
      };
      for (const item of body.items ?? []) items.push(item);
      listVersion = body.metadata?.resourceVersion ?? '';
      continueToken = body.metadata?.continue ?? '';
    } while (continueToken !== '');
    this.listVersionUnavailable = false;
    const before = this.eventListeners.length > 0 ? new Map(this.store) : new Map<string, KubeObject>();
    this.store.clear();
    for (const item of items) {
      const key = this.keyOf(item);
      const stamped = this.stamp(item);
      this.store.set(key, stamped);
      if (this.eventListeners.length > 0) {
        this.objectEvent(before.get(key), stamped);
        before.delete(key);
      }
    }
    // As client-go's Replace: what the list no longer holds was deleted.
    if (this.eventListeners.length > 0) for (const o of before.values()) this.objectEvent(o, undefined);
    this.state.resourceVersion = listVersion;
    this.state.lists += 1;
    this.state.synced = true;
    this.markConnected();
    this.emit();
  }

  /** GET a path with the kubeconfig's TLS and credentials; the raw JSON body. */
  private async getJson(path: string): Promise<unknown> {
    const res = await requestApiServer(this.deps.kubeConfig, {
      method: 'GET',
      path,
      headers: { Accept: 'application/json' },
      timeoutMs: this.deps.listTimeoutMs ?? 60_000,
      label: 'list',
    });
    if (res.status !== 200)
      throw new ApiRequestError(`list ${res.pathname}: HTTP ${res.status} ${statusReason(res)}`, res.status);
    try {
      return JSON.parse(res.text);
    } catch (e) {
      throw new Error(`list ${res.pathname}: invalid JSON: ${(e as Error).message}`);
    }
  }

  /** Watch from the current resourceVersion until the server ends the stream. */
  private watchOnce(): Promise<WatchOutcome> {
    return new Promise<WatchOutcome>((resolve, reject) => {
      let expired = false;
      let finished = false;
      let stalled = false;
      let watchdog: NodeJS.Timeout | undefined;
      const timeoutSeconds = this.deps.watchTimeoutSeconds ?? Math.round(300 + Math.random() * 300);
      const finish = (err: unknown): void => {
        if (finished) return;
        finished = true;
        clearTimeout(watchdog);
        this.abortWatch = undefined;
        if (!this.running) resolve('closed');
        else if (expired) resolve('expired');
        else if (stalled)
          reject(
            new Error(
              `watch ${this.resource.path}: server did not end it ${timeoutSeconds} s after it began; presumed dead`,
            ),
          );
        else if (err) reject(err);
        else resolve('closed');
      };
      const params: Record<string, string> = {
        allowWatchBookmarks: 'true',
        resourceVersion: this.state.resourceVersion,
        // The server ends the watch after this; if it does not (a silently dead peer), the
        // watchdog below does, so a half-open connection cannot freeze the state forever.
        timeoutSeconds: String(timeoutSeconds),
      };
      if (this.resource.labelSelector) params.labelSelector = this.resource.labelSelector;
      if (this.resource.fieldSelector) params.fieldSelector = this.resource.fieldSelector;
      const onEvent = (type: string, obj: KubeObject): void => {
        if (type === 'ERROR') {
          const status = obj as { code?: number; message?: string };
          if (status.code === 410) expired = true;
          else
            this.deps.logger.warn(
              { kind: this.resource.kind, code: status.code, error: status.message },
              'watch error event',
            );
          return;
        }
        const rv = obj?.metadata?.resourceVersion;
        if (type === 'ADDED' || type === 'MODIFIED') {
          const key = this.keyOf(obj);
          const previous = this.store.get(key);
          const stamped = this.stamp(obj);
          this.store.set(key, stamped);
          this.objectEvent(previous, stamped);
          this.emitSoon();
        } else if (type === 'DELETED') {
          const key = this.keyOf(obj);
          const known = this.store.has(key);
          this.store.delete(key);
          // The deleted object's final state, as the informer's delete handler receives it.
          if (known) this.objectEvent(this.stamp(obj), undefined);
          this.emitSoon();
        } else if (type !== 'BOOKMARK') {
          return;
        }
        if (rv) this.state.resourceVersion = rv;
      };
      const onLine = (line: string): void => {
        let event: { type?: unknown; object?: unknown };
        try {
          event = JSON.parse(line) as { type?: unknown; object?: unknown };
        } catch (e) {
          // A torn or garbled stream: end this watch; the loop resumes from the last version seen.
          finish(new Error(`watch ${this.resource.path}: invalid JSON event: ${(e as Error).message}`));
          stream?.abort();
          return;
        }
        if (typeof event.type === 'string' && typeof event.object === 'object' && event.object !== null)
          onEvent(event.type, event.object as KubeObject);
      };
      let stream: { abort(): void } | undefined;
      streamApiServer(
        this.deps.kubeConfig,
        {
          path: `${this.resource.path}?watch=true&${new URLSearchParams(params).toString()}`,
          headers: { Accept: 'application/json' },
          label: 'watch',
        },
        { onLine, onEnd: finish },
      )
        .then((res) => {
          if (!('abort' in res)) {
            finish(
              new ApiRequestError(
                `watch ${this.resource.path}: HTTP ${res.status} ${statusReason(res)}`,
                res.status,
              ),
            );
            return;
          }
          stream = res;
          if (finished) {
            res.abort();
            return;
          }
          this.state.watches += 1;
          this.markConnected();
          this.abortWatch = () => res.abort();
          watchdog = setTimeout(
            () => {
              stalled = true;
              res.abort({ dropConnection: true });
            },
            timeoutSeconds * 1000 + (this.deps.watchStallGraceMs ?? 30_000),
          );
          if (!this.running) res.abort();
        })
        .catch(finish);
    });
  }
}

/**
 * The object without metadata.managedFields, as it is stored on arrival. The server-side-apply
 * bookkeeping is often the largest part of an object (a controller-managed EndpointSlice carries one
 * entry per manager, listing every field it owns) and nothing in portway reads it: kept, it would
 * be held for every object of the cluster for the life of the agent. Nothing else is dropped (any
 * other field may be read: annotations, labels, status).
 */
export function withoutManagedFields(obj: KubeObject): KubeObject {
  const metadata = obj.metadata as (Record<string, unknown> & { managedFields?: unknown }) | undefined;
  if (metadata === undefined || metadata === null || !('managedFields' in metadata)) return obj;
  const { managedFields: _dropped, ...rest } = metadata;
  return { ...obj, metadata: rest as KubeObject['metadata'] };
}

/** The message of a Kubernetes Status body, else the HTTP reason phrase. */
function statusReason(res: { statusMessage: string; text: string }): string {
  try {
    return (JSON.parse(res.text) as { message?: string }).message ?? res.statusMessage;
  } catch {
    return res.statusMessage; // not a Status object
  }
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'object' && err !== null && 'message' in err)
    return String((err as { message: unknown }).message);
  return String(err);
}
