// Which agents are alive, as seen from this node. Each agent serves GET /alive (answering its node name)
// and probes every peer's /alive every `intervalMs` with a `timeoutMs` limit; a peer without a successful
// probe for `downAfterMs` is dead. With 300 ms / 1 s / 1 s, a SIGKILLed agent (connection refused) is
// dropped within ~1.0–1.3 s and a powered-off one (timeouts) within ~1.3 s — every node reaching the
// same conclusion within a probe interval of each other, so the election needs no coordination.
//
// A peer counts as alive from the moment it is added until `downAfterMs` passes without an answer: a
// freshly started agent must not believe it is alone and grab every address.
import { createServer, type Server, Agent, request } from 'node:http';
import type { Timers } from './arp-responder.js';
import { realTimers } from './arp-responder.js';

export interface Peer {
  name: string;
  /** Node address the peer's agent listens on. */
  address: string;
}

export interface MemberHealthOptions {
  self: string;
  /** Address and port this agent's /alive listens on (address '' = all). */
  bindAddress: string;
  port: number;
  intervalMs?: number;
  timeoutMs?: number;
  downAfterMs?: number;
  /** Called after the alive set changed (not on every probe). */
  onChange?: (alive: ReadonlySet<string>) => void;
  now?: () => number;
  timers?: Timers;
  /** Probe one peer: resolves true when it answered as `peer.name`. Injected in unit tests. */
  probe?: (peer: Peer, port: number, timeoutMs: number) => Promise<boolean>;
}

export interface PeerRecord {
  name: string;
  /** Time of the last successful probe, or when the peer was added. */
  lastSuccessAt: number;
}

/** Pure: the peers whose last success is recent enough, plus `self`. */
export function computeAlive(
  self: string,
  peers: PeerRecord[],
  now: number,
  downAfterMs: number,
): Set<string> {
  const alive = new Set([self]);
  for (const p of peers) if (now - p.lastSuccessAt <= downAfterMs) alive.add(p.name);
  return alive;
}

const sameSet = (a: ReadonlySet<string>, b: ReadonlySet<string>) =>
  a.size === b.size && [...a].every((x) => b.has(x));

export class MemberHealth {
  private readonly records = new Map<string, PeerRecord & { peer: Peer; inFlight: boolean }>();
  private server: Server | null = null;
  private timer: unknown = null;
  private alive: Set<string>;
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private readonly downAfterMs: number;
  private readonly now: () => number;
  private readonly timers: Timers;
  private readonly probe: (peer: Peer, port: number, timeoutMs: number) => Promise<boolean>;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 1 });
  private running = false;
  /** Settles a start() still waiting for its server to listen (stop() called meanwhile). */
  private abortStart: (() => void) | null = null;

  constructor(private readonly opts: MemberHealthOptions) {
    this.intervalMs = opts.intervalMs ?? 300;
    this.timeoutMs = opts.timeoutMs ?? 1000;
    this.downAfterMs = opts.downAfterMs ?? 1000;
    this.now = opts.now ?? Date.now;
    this.timers = opts.timers ?? realTimers;
    this.probe = opts.probe ?? ((peer, port, timeoutMs) => this.httpProbe(peer, port, timeoutMs));
    this.alive = new Set([opts.self]);
  }

  /** Replace the peer list (every other node with an agent); keeps history of peers that stay. */
  setPeers(peers: Peer[]): void {
    const now = this.now();
    const names = new Set(peers.filter((p) => p.name !== this.opts.self).map((p) => p.name));
    for (const name of [...this.records.keys()]) if (!names.has(name)) this.records.delete(name);
    for (const peer of peers) {
      if (peer.name === this.opts.self) continue;
      const existing = this.records.get(peer.name);
      if (existing) existing.peer = peer;
      else this.records.set(peer.name, { name: peer.name, lastSuccessAt: now, peer, inFlight: false });
    }
    this.reevaluate();
  }

  aliveNodes(): ReadonlySet<string> {
    return this.alive;
  }

  /** Serve /alive and start probing. Resolves once the server listens. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const self = this.opts.self;
    this.server = createServer((req, res) => {
      if (req.method === 'GET' && req.url === '/alive') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end(self);
      } else {
        res.writeHead(404).end();
      }
    });
    const server = this.server;
    await new Promise<void>((resolve, reject) => {
      // A server closed before it listens never calls the listen callback: stop() settles this instead.
      this.abortStart = resolve;
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.bindAddress === '' ? undefined : this.opts.bindAddress, () =>
        resolve(),
      );
    }).finally(() => {
      this.abortStart = null;
    });
    if (!this.running || this.server !== server) return; // stopped while starting
    this.tick();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.abortStart?.();
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    this.agent.destroy();
    const server = this.server;
    this.server = null;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  /** One probe round; exposed for tests with fake timers. */
  tick(): void {
    for (const record of this.records.values()) {
      if (record.inFlight) continue;
      record.inFlight = true;
      const name = record.name;
      this.probe(record.peer, this.opts.port, this.timeoutMs)
        .catch(() => false)
        .then((ok) => {
          const current = this.records.get(name);
          if (!current) return;
          current.inFlight = false;
          if (ok) current.lastSuccessAt = this.now();
          this.reevaluate();
        });
    }
    this.reevaluate();
    if (this.running) this.timer = this.timers.setTimeout(() => this.tick(), this.intervalMs);
  }

  private reevaluate(): void {
    const next = computeAlive(this.opts.self, [...this.records.values()], this.now(), this.downAfterMs);
    if (sameSet(next, this.alive)) return;
    this.alive = next;
    this.opts.onChange?.(next);
  }

  private httpProbe(peer: Peer, port: number, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const host = peer.address.includes(':') ? `[${peer.address}]` : peer.address;
      const req = request(
        {
          host: peer.address.includes(':') ? host.slice(1, -1) : host,
          port,
          path: '/alive',
          method: 'GET',
          agent: this.agent,
          timeout: timeoutMs,
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => resolve(res.statusCode === 200 && body === peer.name));
          res.on('error', () => resolve(false));
        },
      );
      // Covers connect and the whole exchange: a half-dead peer must not hold the probe longer than timeoutMs.
      const guard = setTimeout(() => req.destroy(new Error('probe timeout')), timeoutMs);
      req.on('close', () => clearTimeout(guard));
      req.on('timeout', () => req.destroy(new Error('probe timeout')));
      req.on('error', () => resolve(false));
      req.end();
    });
  }
}
