// Where the API client's address and credentials come from, with kube-proxy's precedence
// (clientcmd.BuildConfigFromFlags): --kubeconfig file, --master overriding its server; neither
// given = the in-cluster service account (token file + CA mounted into the pod).
import { existsSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

export interface ApiConnectionOptions {
  /** Path of a kubeconfig file (--kubeconfig). */
  kubeconfig?: string;
  /** API server URL overriding the kubeconfig's server (--master). */
  master?: string;
  /** Root of the service-account mount, for tests (default /var/run/secrets/kubernetes.io/serviceaccount). */
  serviceAccountRoot?: string;
  env?: NodeJS.ProcessEnv;
}

export class ApiConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ApiConfigError';
  }
}

const SERVICE_ACCOUNT_ROOT = '/var/run/secrets/kubernetes.io/serviceaccount';

export function loadKubeConfig(opts: ApiConnectionOptions = {}): KubeConfig {
  const kc = new KubeConfig();
  const env = opts.env ?? process.env;
  if (opts.kubeconfig) {
    if (!existsSync(opts.kubeconfig))
      throw new ApiConfigError(`--kubeconfig: file not found: ${opts.kubeconfig}`);
    try {
      kc.loadFromFile(opts.kubeconfig);
    } catch (e) {
      // Only the first line: YAML errors quote the offending lines, which may hold a token.
      const firstLine = (e as Error).message.split('\n')[0] ?? '';
      throw new ApiConfigError(`--kubeconfig ${opts.kubeconfig}: cannot load: ${firstLine}`);
    }
    if (!kc.getCurrentCluster())
      throw new ApiConfigError(`--kubeconfig ${opts.kubeconfig}: no current context/cluster`);
    if (opts.master) overrideServer(kc, opts.master);
    return kc;
  }
  if (opts.master) {
    validateServerUrl(opts.master);
    kc.loadFromOptions({
      clusters: [{ name: 'master', server: opts.master, skipTLSVerify: false }],
      users: [{ name: 'anonymous' }],
      contexts: [{ name: 'master', cluster: 'master', user: 'anonymous' }],
      currentContext: 'master',
    });
    return kc;
  }
  const root = opts.serviceAccountRoot ?? SERVICE_ACCOUNT_ROOT;
  if (!env.KUBERNETES_SERVICE_HOST || !env.KUBERNETES_SERVICE_PORT) {
    throw new ApiConfigError(
      'no --kubeconfig or --master given and not running in a cluster (KUBERNETES_SERVICE_HOST/PORT unset)',
    );
  }
  if (!existsSync(`${root}/token`))
    throw new ApiConfigError(`in-cluster config: service account token not found at ${root}/token`);
  // As client-node's loadFromCluster, but with the mount root injectable. The token file is read on
  // each request (tokenFile auth provider), so rotated service-account tokens are picked up.
  const host = env.KUBERNETES_SERVICE_HOST;
  kc.loadFromClusterAndUser(
    {
      name: 'inCluster',
      server: `https://${isIPv6(host) ? `[${host}]` : host}:${env.KUBERNETES_SERVICE_PORT}`,
      caFile: `${root}/ca.crt`,
      skipTLSVerify: false,
    },
    { name: 'inClusterUser', authProvider: { name: 'tokenFile', config: { tokenFile: `${root}/token` } } },
  );
  return kc;
}

function validateServerUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ApiConfigError(`--master: not a URL: "${url}"`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new ApiConfigError(`--master: expected an http(s) URL, got "${url}"`);
  }
}

function overrideServer(kc: KubeConfig, master: string): void {
  validateServerUrl(master);
  const current = kc.getCurrentCluster();
  if (!current) return;
  // Cluster objects are read-only in client-node's typings; replace the entry.
  kc.clusters = kc.clusters.map((c) => (c.name === current.name ? { ...c, server: master } : c));
}

/** The API server URL the config points at, without any user:password part (safe to log). */
export function apiServerUrl(kc: KubeConfig): string {
  const server = kc.getCurrentCluster()?.server ?? '';
  try {
    const url = new URL(server);
    url.username = '';
    url.password = '';
    return url.toString().replace(/\/$/, '');
  } catch {
    return '';
  }
}
