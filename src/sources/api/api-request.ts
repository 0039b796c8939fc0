// One HTTP request to the API server the kubeconfig points at, with its TLS and credentials: the
// plumbing the informers' LIST and the writer's calls share. It answers whatever the status; what a
// status means is the caller's business. Only transport failures and the timeout reject.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

export interface ApiRequest {
  method: string;
  /** Path and query below the server URL, e.g. "/api/v1/services?limit=500". */
  path: string;
  headers: Record<string, string>;
  /** Request body, sent as is. */
  payload?: string;
  timeoutMs: number;
  /** First word of error messages ("GET", "list"), followed by the URL's path. */
  label: string;
}

export interface ApiRawResponse {
  status: number;
  statusMessage: string;
  /** The body, decoded as UTF-8. */
  text: string;
  /** The URL's path, for messages. */
  pathname: string;
}

export async function requestApiServer(kubeConfig: KubeConfig, request: ApiRequest): Promise<ApiRawResponse> {
  const server = kubeConfig.getCurrentCluster()?.server;
  if (!server) throw new Error('kubeconfig has no current cluster');
  const url = new URL(server.replace(/\/$/, '') + request.path);
  const reqOpts: RequestOptions = { method: request.method, headers: request.headers };
  await kubeConfig.applyToHTTPSOptions(reqOpts);
  const { timeoutMs, label } = request;
  const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
  return new Promise<ApiRawResponse>((resolve, reject) => {
    const req = send(url, reqOpts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        resolve({
          status: res.statusCode ?? 0,
          statusMessage: res.statusMessage ?? '',
          text: Buffer.concat(chunks).toString('utf8'),
          pathname: url.pathname,
        });
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${label} ${url.pathname}: timed out after ${timeoutMs} ms`)));
    req.on('error', (e) => reject(new Error(`${label} ${url.pathname}: ${e.message}`)));
    req.end(request.payload);
  });
}
