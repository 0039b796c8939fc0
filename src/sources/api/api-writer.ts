// Writes to the Kubernetes API (cluster mode): a small JSON client with the kubeconfig's TLS and credentials,
// used by the Lease election and the LoadBalancer status writer. It returns every HTTP answer (status code
// and parsed body) rather than throwing on 4xx, because callers branch on 404/409; only transport failures
// (refused, reset, timeout) throw.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

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
  /** Value of the User-Agent header. */
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
    const server = this.opts.kubeConfig.getCurrentCluster()?.server;
    if (!server) throw new Error('kubeconfig has no current cluster');
    const url = new URL(server.replace(/\/$/, '') + path);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = {
      Accept: 'application/json',
      'User-Agent': this.opts.userAgent ?? 'portway',
    };
    if (payload !== undefined) {
      headers['Content-Type'] = contentType ?? 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(payload));
    }
    const reqOpts: RequestOptions = { method, headers };
    await this.opts.kubeConfig.applyToHTTPSOptions(reqOpts);
    const timeoutMs = this.opts.timeoutMs ?? 10_000;
    const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
    return new Promise<ApiResponse>((resolve, reject) => {
      const req = send(url, reqOpts, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = text === '' ? undefined : (JSON.parse(text) as unknown);
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      });
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${url.pathname}: timed out after ${timeoutMs} ms`)));
      req.on('error', (e) => reject(new Error(`${method} ${url.pathname}: ${e.message}`)));
      req.end(payload);
    });
  }
}
