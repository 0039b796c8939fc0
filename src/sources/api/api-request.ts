// HTTP to the API server the kubeconfig points at, with its TLS and credentials: the plumbing the
// informers' lists and watches and the writer's calls share. A request answers whatever the status; what
// a status means is the caller's business. Only transport failures and the timeout reject.
//
// Two habits of client-go that matter at thousands of nodes live here:
// - every request says who it is: User-Agent `portway/<version> (<os>/<arch>)` (client-go's
//   `<binary>/<version> (<GOOS>/<GOARCH>)`), so the API server's audit log and priority-and-fairness can
//   tell portway from other clients;
// - connections are kept alive and shared. client-node's applyToHTTPSOptions makes a new https.Agent
//   (keep-alive off) for every request, so each list, each Lease read every 2 s and each status patch
//   was a new TCP connection and TLS handshake. One keep-alive agent per process serves them all instead
//   (an agent pools by host, port and TLS options, so different servers or credentials never share a
//   socket). Over HTTP/1.1 an open watch holds its connection alone, so the informers' watches still take
//   one each; see the README ("API citizenship") for why not HTTP/2.
import { readFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest, type RequestOptions } from 'node:https';
import { StringDecoder } from 'node:string_decoder';
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

const packageVersion = (
  JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** Go's names for Node's process.arch, as client-go's User-Agent carries GOARCH. */
const GO_ARCH: Record<string, string> = {
  x64: 'amd64',
  ia32: '386',
  arm64: 'arm64',
  arm: 'arm',
  ppc64: 'ppc64le',
  s390x: 's390x',
};

/** `portway/<version> (<os>/<arch>)`, on every request. */
export const USER_AGENT = `portway/${packageVersion} (${process.platform}/${GO_ARCH[process.arch] ?? process.arch})`;

// lifo: the most recently used idle socket is reused, so idle ones beyond the need time out on the server.
const sharedHttpsAgent = new HttpsAgent({ keepAlive: true, scheduling: 'lifo' });
const sharedHttpAgent = new HttpAgent({ keepAlive: true, scheduling: 'lifo' });

interface PreparedRequest {
  url: URL;
  options: RequestOptions;
  send: typeof httpsRequest;
}

async function prepare(
  kubeConfig: KubeConfig,
  request: Omit<ApiRequest, 'payload' | 'timeoutMs'>,
): Promise<PreparedRequest> {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster?.server) throw new Error('kubeconfig has no current cluster');
  const url = new URL(cluster.server.replace(/\/$/, '') + request.path);
  const options: RequestOptions = {
    method: request.method,
    headers: { 'User-Agent': USER_AGENT, ...request.headers },
  };
  // Credentials (a token file is re-read here, so rotated tokens are picked up) and TLS options.
  await kubeConfig.applyToHTTPSOptions(options);
  const plain = url.protocol === 'http:';
  // A proxy needs client-node's proxy agent; anything else goes through the shared keep-alive agent.
  if (!cluster.proxyUrl) options.agent = plain ? sharedHttpAgent : sharedHttpsAgent;
  return { url, options, send: plain ? httpRequest : httpsRequest };
}

export async function requestApiServer(kubeConfig: KubeConfig, request: ApiRequest): Promise<ApiRawResponse> {
  const { url, options, send } = await prepare(kubeConfig, request);
  const { timeoutMs, label } = request;
  return new Promise<ApiRawResponse>((resolve, reject) => {
    const req = send(url, options, (res) => {
      readText(res).then(
        (text) =>
          resolve({
            status: res.statusCode ?? 0,
            statusMessage: res.statusMessage ?? '',
            text,
            pathname: url.pathname,
          }),
        reject,
      );
    });
    req.setTimeout(timeoutMs, () =>
      req.destroy(new Error(`${label} ${url.pathname}: timed out after ${timeoutMs} ms`)),
    );
    req.on('error', (e) => reject(new Error(`${label} ${url.pathname}: ${e.message}`)));
    req.end(request.payload);
  });
}

export interface ApiStreamHandlers {
  /** One line of the body (a watch event), without its newline. */
  onLine(line: string): void;
  /** The stream ended: cleanly (no error), cut, or aborted. Called once. */
  onEnd(err?: Error): void;
}

export type ApiStreamResponse =
  /** 200: lines follow through the handlers until onEnd; abort() ends it. */
  | { status: 200; abort(): void }
  /** Any other status: the whole body, and no handler is called. */
  | { status: number; statusMessage: string; text: string };

/**
 * A streamed GET (a watch): resolves when the response starts. Rejects only on a transport failure
 * before it does; one later is reported through onEnd.
 */
export async function streamApiServer(
  kubeConfig: KubeConfig,
  request: Omit<ApiRequest, 'payload' | 'timeoutMs' | 'method'>,
  handlers: ApiStreamHandlers,
): Promise<ApiStreamResponse> {
  const { url, options, send } = await prepare(kubeConfig, { ...request, method: 'GET' });
  return new Promise<ApiStreamResponse>((resolve, reject) => {
    let started = false;
    let ended = false;
    const end = (err?: Error): void => {
      if (ended) return;
      ended = true;
      handlers.onEnd(err);
    };
    const req = send(url, options, (res) => {
      started = true;
      if (res.statusCode !== 200) {
        readText(res).then(
          (text) => resolve({ status: res.statusCode ?? 0, statusMessage: res.statusMessage ?? '', text }),
          reject,
        );
        return;
      }
      const decoder = new StringDecoder('utf8');
      let buffered = '';
      res.on('data', (chunk: Buffer) => {
        buffered += decoder.write(chunk);
        let newline: number;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line !== '' && !ended) handlers.onLine(line);
        }
      });
      res.on('end', () => end());
      res.on('error', (e) => end(new Error(`${request.label} ${url.pathname}: ${e.message}`)));
      res.on('close', () =>
        end(res.complete ? undefined : new Error(`${request.label} ${url.pathname}: connection closed`)),
      );
      resolve({
        status: 200,
        abort: () => {
          end(new Error(`${request.label} ${url.pathname}: aborted`));
          req.destroy();
        },
      });
    });
    req.on('error', (e) => {
      const err = new Error(`${request.label} ${url.pathname}: ${e.message}`);
      if (started) end(err);
      else reject(err);
    });
    req.end();
  });
}

function readText(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('error', reject);
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}
