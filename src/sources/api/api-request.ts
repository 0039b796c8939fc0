// HTTP to the API server the kubeconfig points at, with its TLS and credentials: the plumbing the
// informers' lists and watches and the writer's calls share. A request answers whatever the status; what
// a status means is the caller's business. Only transport failures and the timeout reject.
//
// Three habits of client-go that matter at thousands of nodes live here:
// - every request says who it is: User-Agent `portway/<version> (<os>/<arch>)` (client-go's
//   `<binary>/<version> (<GOOS>/<GOARCH>)`), so the API server's audit log and priority-and-fairness can
//   tell portway from other clients;
// - HTTP/2: every request and every watch of one client configuration (one KubeConfig object) shares one
//   TLS connection, as client-go's do — instead of one connection per watched kind, and (with client-node's
//   applyToHTTPSOptions, which makes a new https.Agent per request) a new TCP connection and TLS handshake
//   for every list, every Lease read every 2 s and every status patch. A server that refuses h2 in ALPN
//   (a proxy in front of it, say) gets HTTP/1.1 through one keep-alive agent per configuration instead,
//   where an open watch holds a connection alone; so does a kubeconfig with a proxy-url (client-node's
//   proxy agents speak HTTP/1.1 only);
// - a connection that stops answering is dropped: a request that times out closes the shared HTTP/2
//   connection (its watches reconnect), and a GOAWAY (kube-apiserver's --goaway-chance, to rebalance
//   clients over servers) sends new requests to a new connection while the old one drains.
import { readFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest, STATUS_CODES } from 'node:http';
import {
  connect as connectHttp2,
  constants as http2Constants,
  type ClientHttp2Session,
  type OutgoingHttpHeaders,
} from 'node:http2';
import { Agent as HttpsAgent, request as httpsRequest, type RequestOptions } from 'node:https';
import type { Readable } from 'node:stream';
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

/** The connections of one client configuration. */
interface Connections {
  /** The shared HTTP/2 session, while it is usable. */
  session?: Promise<ClientHttp2Session>;
  /** The server refused h2 in ALPN: HTTP/1.1 from now on. */
  http1Only: boolean;
  https: HttpsAgent;
  http: HttpAgent;
  /** HTTP/2 streams open on the session (it keeps the process alive only while there are some). */
  openStreams: number;
}

const connectionsByConfig = new WeakMap<KubeConfig, Connections>();

function connectionsOf(kubeConfig: KubeConfig): Connections {
  let c = connectionsByConfig.get(kubeConfig);
  if (!c) {
    c = {
      http1Only: false,
      // lifo: the most recently used idle socket is reused, so idle ones beyond the need time out.
      https: new HttpsAgent({ keepAlive: true, scheduling: 'lifo' }),
      http: new HttpAgent({ keepAlive: true, scheduling: 'lifo' }),
      openStreams: 0,
    };
    connectionsByConfig.set(kubeConfig, c);
  }
  return c;
}

/** Which protocol the requests of this configuration use now (tests, diagnostics). */
export function apiProtocolOf(kubeConfig: KubeConfig): 'h2' | 'http/1.1' | 'unknown' {
  const c = connectionsByConfig.get(kubeConfig);
  if (!c) return 'unknown';
  return c.http1Only ? 'http/1.1' : c.session ? 'h2' : 'unknown';
}

/** A response whose body has not been read yet, whichever protocol carried it. */
interface OpenResponse {
  status: number;
  statusMessage: string;
  body: Readable;
  /** Stop: the body ends with an error (or just closes). */
  abort(): void;
}

interface Prepared {
  url: URL;
  options: RequestOptions;
  connections: Connections;
  /** HTTP/2 unless the server refused it, the URL is plain http or a proxy is configured. */
  tryHttp2: boolean;
}

async function prepare(
  kubeConfig: KubeConfig,
  method: string,
  request: { path: string; headers: Record<string, string> },
): Promise<Prepared> {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster?.server) throw new Error('kubeconfig has no current cluster');
  const url = new URL(cluster.server.replace(/\/$/, '') + request.path);
  const options: RequestOptions = { method, headers: { 'User-Agent': USER_AGENT, ...request.headers } };
  // Credentials (a token file is re-read here, so rotated tokens are picked up) and TLS options.
  await kubeConfig.applyToHTTPSOptions(options);
  const connections = connectionsOf(kubeConfig);
  const plain = url.protocol === 'http:';
  // A proxy needs client-node's proxy agent; anything else shares the configuration's connections.
  if (!cluster.proxyUrl) options.agent = plain ? connections.http : connections.https;
  return { url, options, connections, tryHttp2: !plain && !cluster.proxyUrl && !connections.http1Only };
}

const NO_H2 = 'PORTWAY_NO_HTTP2';

/** The shared session, opened on first use; undefined when the server refuses h2. */
async function http2Session(p: Prepared): Promise<ClientHttp2Session | undefined> {
  const c = p.connections;
  if (!c.session) {
    const o = p.options;
    const opening = new Promise<ClientHttp2Session>((resolve, reject) => {
      const session = connectHttp2(p.url.origin, {
        ca: o.ca,
        cert: o.cert,
        key: o.key,
        pfx: o.pfx,
        passphrase: o.passphrase,
        ...(o.rejectUnauthorized !== undefined ? { rejectUnauthorized: o.rejectUnauthorized } : {}),
        ...(o.servername ? { servername: o.servername } : {}),
      });
      const forget = (): void => {
        if (c.session === opening) c.session = undefined;
      };
      session.once('connect', (_session: ClientHttp2Session, socket: { alpnProtocol?: string | false }) => {
        if (socket.alpnProtocol !== 'h2') {
          // A server without ALPN completes the handshake, then cannot speak h2.
          session.destroy();
          reject(Object.assign(new Error('the server did not agree to HTTP/2'), { code: NO_H2 }));
          return;
        }
        session.off('error', reject);
        session.on('error', forget);
        // Idle, it must not keep the process alive (streams ref it while open).
        if (c.openStreams === 0) session.unref();
        resolve(session);
      });
      session.once('error', reject);
      session.once('error', forget);
      // A GOAWAY lets streams in flight finish; new requests go to a new connection.
      session.on('goaway', forget);
      session.on('close', forget);
    });
    c.session = opening;
  }
  const opening = c.session;
  try {
    return await opening;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL' || code === NO_H2) {
      c.http1Only = true;
      return undefined;
    }
    throw e;
  }
}

interface OpenRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  payload?: string;
  label: string;
  /**
   * Nothing received for this long: the request fails ("timed out after N ms") and, on HTTP/2, the
   * shared connection is dropped — a silent connection is presumed dead, and every stream on it with it.
   */
  idleTimeoutMs: number;
  /** The idle timeout stops once the response starts (a watch is quiet for minutes). */
  idleTimeoutUntilResponse?: boolean;
}

async function openRequest(
  kubeConfig: KubeConfig,
  request: OpenRequest,
): Promise<{ response: OpenResponse; pathname: string; dropConnection(): void }> {
  const p = await prepare(kubeConfig, request.method, request);
  const fail = (e: Error) => new Error(`${request.label} ${p.url.pathname}: ${e.message}`);
  const timedOut = () => new Error(`timed out after ${request.idleTimeoutMs} ms`);
  const session = p.tryHttp2 ? await http2Session(p).catch((e: Error) => Promise.reject(fail(e))) : undefined;
  if (session) {
    const headers: OutgoingHttpHeaders = {
      ':method': request.method,
      ':path': p.url.pathname + p.url.search,
    };
    for (const [k, v] of Object.entries(p.options.headers ?? {})) {
      const key = k.toLowerCase();
      if (key !== 'connection' && key !== 'host' && key !== 'transfer-encoding' && v !== undefined)
        headers[key] = v;
    }
    if (p.options.auth) headers.authorization = `Basic ${Buffer.from(p.options.auth).toString('base64')}`;
    const c = p.connections;
    const stream = session.request(headers, { endStream: request.payload === undefined });
    if (c.openStreams++ === 0) session.ref();
    stream.once('close', () => {
      if (--c.openStreams === 0 && !session.destroyed) session.unref();
    });
    const dropConnection = () => session.destroy();
    stream.setTimeout(request.idleTimeoutMs, () => {
      stream.destroy(timedOut());
      dropConnection();
    });
    if (request.payload !== undefined) stream.end(request.payload);
    const response = await new Promise<OpenResponse>((resolve, reject) => {
      stream.once('response', (h) => {
        stream.off('error', onEarlyError);
        if (request.idleTimeoutUntilResponse) stream.setTimeout(0);
        const status = Number(h[':status'] ?? 0);
        resolve({
          status,
          statusMessage: STATUS_CODES[status] ?? '',
          body: stream,
          abort: () => stream.close(http2Constants.NGHTTP2_CANCEL),
        });
      });
      const onEarlyError = (e: Error) => reject(fail(e));
      stream.once('error', onEarlyError);
      stream.once('close', () => reject(fail(new Error('stream closed before a response'))));
    });
    return { response, pathname: p.url.pathname, dropConnection };
  }
  const send = p.url.protocol === 'http:' ? httpRequest : httpsRequest;
  let req: ReturnType<typeof send> | undefined;
  const response = await new Promise<OpenResponse>((resolve, reject) => {
    const r = send(p.url, p.options, (res) => {
      r.off('error', onEarlyError);
      if (request.idleTimeoutUntilResponse) r.setTimeout(0);
      // Later failures reach the body reader as errors on the response.
      r.on('error', (e) => res.destroy(e));
      resolve({
        status: res.statusCode ?? 0,
        statusMessage: res.statusMessage ?? '',
        body: res,
        abort: () => r.destroy(),
      });
    });
    req = r;
    r.setTimeout(request.idleTimeoutMs, () => r.destroy(timedOut()));
    const onEarlyError = (e: Error) => reject(fail(e));
    r.on('error', onEarlyError);
    r.end(request.payload);
  });
  // HTTP/1.1: the request has the connection to itself.
  return { response, pathname: p.url.pathname, dropConnection: () => req?.destroy() };
}

export async function requestApiServer(kubeConfig: KubeConfig, request: ApiRequest): Promise<ApiRawResponse> {
  const { response, pathname } = await openRequest(kubeConfig, {
    ...request,
    idleTimeoutMs: request.timeoutMs,
  });
  const text = await readText(response.body).catch((e: Error) =>
    Promise.reject(new Error(`${request.label} ${pathname}: ${e.message}`)),
  );
  return { status: response.status, statusMessage: response.statusMessage, text, pathname };
}

export interface ApiStreamHandlers {
  /** One line of the body (a watch event), without its newline. */
  onLine(line: string): void;
  /** The stream ended: cleanly (no error), cut, or aborted. Called once. */
  onEnd(err?: Error): void;
}

export type ApiStreamResponse =
  /**
   * 200: lines follow through the handlers until onEnd; abort() ends it, and with dropConnection the
   * connection it shares (a watch the server should have ended long ago says that connection is dead).
   */
  | { status: 200; abort(opts?: { dropConnection?: boolean }): void }
  /** Any other status: the whole body, and no handler is called. */
  | { status: number; statusMessage: string; text: string };

/**
 * A streamed GET (a watch): resolves when the response starts. Rejects on a transport failure before it
 * does, or when it does not start within responseTimeoutMs (default 60 s); a failure later is reported
 * through onEnd.
 */
export async function streamApiServer(
  kubeConfig: KubeConfig,
  request: Omit<ApiRequest, 'payload' | 'timeoutMs' | 'method'> & { responseTimeoutMs?: number },
  handlers: ApiStreamHandlers,
): Promise<ApiStreamResponse> {
  const { response, pathname, dropConnection } = await openRequest(kubeConfig, {
    ...request,
    method: 'GET',
    idleTimeoutMs: request.responseTimeoutMs ?? 60_000,
    idleTimeoutUntilResponse: true,
  });
  if (response.status !== 200) {
    const text = await readText(response.body).catch(() => '');
    return { status: response.status, statusMessage: response.statusMessage, text };
  }
  let ended = false;
  const end = (err?: Error): void => {
    if (ended) return;
    ended = true;
    handlers.onEnd(err);
  };
  const decoder = new StringDecoder('utf8');
  let buffered = '';
  let complete = false;
  response.body.on('data', (chunk: Buffer) => {
    buffered += decoder.write(chunk);
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (line !== '' && !ended) handlers.onLine(line);
    }
  });
  response.body.on('end', () => {
    complete = true;
    end();
  });
  response.body.on('error', (e: Error) => end(new Error(`${request.label} ${pathname}: ${e.message}`)));
  response.body.on('close', () =>
    end(complete ? undefined : new Error(`${request.label} ${pathname}: connection closed`)),
  );
  return {
    status: 200,
    abort: (opts = {}) => {
      end(new Error(`${request.label} ${pathname}: aborted`));
      response.abort();
      if (opts.dropConnection) dropConnection();
    },
  };
}

function readText(body: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let complete = false;
    body.on('data', (c: Buffer) => chunks.push(c));
    body.on('error', reject);
    body.on('end', () => {
      complete = true;
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    body.on('close', () => {
      if (!complete) reject(new Error('connection closed before the response ended'));
    });
  });
}
