// Writes to the Kubernetes API (cluster mode): a small JSON client with the kubeconfig's TLS and credentials,
// used by the Lease election and the LoadBalancer status writer. It returns every HTTP answer (status code
// and parsed body) rather than throwing on 4xx, because callers branch on 404/409; only transport failures
// (refused, reset, timeout) throw.
import type { KubeConfig } from '@kubernetes/client-node';
import { requestApiServer } from './api-request.js';

export interface ApiResponse {
  status: number;
  /** Parsed JSON body; undefined when empty or not JSON. */
  body: unknown;
}

export type PatchType = 'merge' | 'json' | 'strategic';

/** What the election and the status writer need from the API (a fake or a counting wrapper in tests). */
export interface KubeWriteClient {
  get(path: string): Promise<ApiResponse>;
  create(path: string, body: unknown): Promise<ApiResponse>;
  update(path: string, body: unknown): Promise<ApiResponse>;
  patch(path: string, body: unknown, type?: PatchType): Promise<ApiResponse>;
}

const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  strategic: 'application/strategic-merge-patch+json',
};

/** The message of a Kubernetes Status body, else the HTTP status. */
export function apiErrorMessage(res: ApiResponse): string {
  const message = (res.body as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? `HTTP ${res.status}: ${message}` : `HTTP ${res.status}`;
}

export interface KubeApiWriterOptions {
  kubeConfig: KubeConfig;
  /** Limit of one request (default 10 s: a hung request must not hold the Lease renewal forever). */
  timeoutMs?: number;
  /** Value of the User-Agent header (default portway/<version> (<os>/<arch>), as every request). */
  userAgent?: string;
}

export class KubeApiWriter implements KubeWriteClient {
  constructor(private readonly opts: KubeApiWriterOptions) {}

  get(path: string): Promise<ApiResponse> {
    return this.send('GET', path);
  }

  create(path: string, body: unknown): Promise<ApiResponse> {
    return this.send('POST', path, body, 'application/json');
  }

  update(path: string, body: unknown): Promise<ApiResponse> {
    return this.send('PUT', path, body, 'application/json');
  }

  patch(path: string, body: unknown, type: PatchType = 'merge'): Promise<ApiResponse> {
    return this.send('PATCH', path, body, PATCH_CONTENT_TYPE[type]);
  }

  private async send(method: string, path: string, body?: unknown, contentType?: string): Promise<ApiResponse> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (this.opts.userAgent !== undefined) headers['User-Agent'] = this.opts.userAgent;
    if (payload !== undefined) {
      headers['Content-Type'] = contentType ?? 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(payload));
    }
    const res = await requestApiServer(this.opts.kubeConfig, {
      method,
      path,
      headers,
      ...(payload !== undefined ? { payload } : {}),
      timeoutMs: this.opts.timeoutMs ?? 10_000,
      label: method,
    });
    let parsed: unknown;
    try {
      parsed = res.text === '' ? undefined : (JSON.parse(res.text) as unknown);
    } catch {
      parsed = undefined;
    }
    return { status: res.status, body: parsed };
  }
}
