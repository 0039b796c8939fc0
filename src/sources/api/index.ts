// Cluster mode's source, wired with the shared normaliser and kube-proxy's config precedence.
import type { KubeConfig } from '@kubernetes/client-node';
import { ClusterStateBuilder } from '../../model/incremental.js';
import type { Logger } from '../../observe/logger.js';
import { ApiSource, watchedResources, type WatchedResourcesOptions } from './api-source.js';
import type { BackoffOptions } from './informer.js';
import { loadKubeConfig, type ApiConnectionOptions } from './kube-config.js';

export { ApiSource, KUBE_PROXY_LABEL_SELECTOR, WATCHED_RESOURCES, watchedResources } from './api-source.js';
export type {
  ApiConnectionStatus,
  ApiSnapshot,
  ApiSourceOptions,
  IncrementalNormaliser,
  WatchedResourcesOptions,
  Normaliser,
} from './api-source.js';
export { ApiConfigError, apiServerUrl, loadKubeConfig } from './kube-config.js';
export type { ApiConnectionOptions } from './kube-config.js';
export type { InformerStatus } from './informer.js';

export interface CreateApiSourceOptions extends ApiConnectionOptions, WatchedResourcesOptions {
  /** A configuration already loaded (shared with the status writer: one connection); else loaded here. */
  kubeConfig?: KubeConfig;
  logger?: Logger;
  now?: () => number;
  backoff?: Partial<BackoffOptions>;
}

/**
 * `portway run --kubeconfig FILE [--master URL]` (or in-cluster): an ApiSource that produces
 * ClusterState exactly as the manifest source does. Throws ApiConfigError for a bad config;
 * starts nothing until start().
 */
export function createApiSource(opts: CreateApiSourceOptions = {}): ApiSource {
  return new ApiSource({
    kubeConfig: opts.kubeConfig ?? loadKubeConfig(opts),
    // Incremental: each change costs milliseconds, not a full normalisation (same result as buildClusterState).
    // keepLastGood: an update that fails validation keeps the object's last good version (reported).
    normalise: new ClusterStateBuilder({ keepLastGood: true }),
    logger: opts.logger,
    now: opts.now,
    backoff: opts.backoff,
    resources: watchedResources({ ...(opts.onlyNode ? { onlyNode: opts.onlyNode } : {}) }),
  });
}
