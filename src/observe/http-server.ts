// Small HTTP plumbing shared by the metrics, healthz and service health-check servers.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { bindAddressProblem } from '../config/config.js';

export interface BindAddress {
  /** '' = every address (dual-stack where the kernel allows it). */
  host: string;
  port: number;
}

/** "127.0.0.1:10249", "[::1]:10249", "0.0.0.0:10256", ":10256" → host and port; checked as the config checks it. */
export function parseBindAddress(text: string, what = 'bind address'): BindAddress {
  const problem = bindAddressProblem(text);
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d+)$/.exec(text);
  if (problem !== null || !m) throw new Error(`${what}: ${problem ?? `"${text}" is not host:port`}`);
  return { host: m[1] ?? m[2] ?? '', port: Number(m[3]) };
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/** An HTTP server with explicit start/stop that also cuts keep-alive connections on stop. */
export class SimpleHttpServer {
  private server?: Server;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly bind: BindAddress,
    private readonly handler: Handler,
  ) {}

  async start(): Promise<void> {
    if (this.server) return;
    const server = createServer((req, res) => {
      Promise.resolve(this.handler(req, res)).catch((e: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(`internal error: ${(e as Error).message}\n`);
      });
    });
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const done = (): void => {
        server.off('error', reject);
        resolve();
      };
      if (this.bind.host === '') server.listen(this.bind.port, done);
      else server.listen(this.bind.port, this.bind.host, done);
    });
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await closed;
  }

  /** The port actually bound (useful with port 0). */
  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? 0;
  }
}

export function pathOf(req: IncomingMessage): string {
  return new URL(req.url ?? '/', 'http://local').pathname;
}

/** 404 with the body Go's net/http gives an unknown path (what kube-proxy's servers answer). */
export function replyNotFound(res: ServerResponse): void {
  res.writeHead(404, { 'Content-Type': 'text/plain' });
  res.end('404 page not found\n');
}
