// A minimal HTTPS client for talking to the stand-in API server from tests (CA + bearer token),
// independent of @kubernetes/client-node so the stand-in can be tested on its own.
import { request } from 'node:https';
import type { StandInApiServer } from './api-server.js';

export interface StandInResponse {
  status: number;
  body: unknown;
}

export function standInRequest(
  server: StandInApiServer,
  method: string,
  path: string,
  body?: unknown,
  opts: { contentType?: string; token?: string | null } = {},
): Promise<StandInResponse> {
  return new Promise((resolve, reject) => {
    const token = opts.token === undefined ? server.token : opts.token;
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (token !== null) headers.Authorization = `Bearer ${token}`;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    if (payload !== undefined) headers['Content-Type'] = opts.contentType ?? 'application/json';
    const req = request(
      `${server.url}${path}`,
      { method, ca: server.caCert, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            body: text === '' ? undefined : (JSON.parse(text) as unknown),
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

export interface WatchEvent {
  type: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- raw Kubernetes JSON, asserted on by tests
  object: Record<string, any>;
}

/** Open a watch and collect its events; `close()` ends it, `next(n)` waits until n events arrived. */
export function standInWatch(server: StandInApiServer, path: string) {
  const events: WatchEvent[] = [];
  let ended = false;
  const waiters: Array<() => void> = [];
  const notify = (): void => waiters.splice(0).forEach((w) => w());
  const req = request(
    `${server.url}${path}`,
    { method: 'GET', ca: server.caCert, agent: false, headers: { Authorization: `Bearer ${server.token}` } },
    (res) => {
      let buffered = '';
      res.on('data', (c: Buffer) => {
        buffered += c.toString('utf8');
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          events.push(JSON.parse(buffered.slice(0, nl)) as WatchEvent);
          buffered = buffered.slice(nl + 1);
        }
        notify();
      });
      res.on('end', () => {
        ended = true;
        notify();
      });
      res.on('error', () => {
        ended = true;
        notify();
      });
    },
  );
  req.on('error', () => {
    ended = true;
    notify();
  });
  req.end();
  return {
    events,
    get ended() {
      return ended;
    },
    async next(count: number, timeoutMs = 5000): Promise<WatchEvent[]> {
      const deadline = Date.now() + timeoutMs;
      while (events.length < count && !ended) {
        if (Date.now() > deadline)
          throw new Error(`watch ${path}: ${events.length}/${count} events after ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 50);
        });
      }
      return events.slice(0, count);
    },
    close(): void {
      req.destroy();
    },
  };
}
