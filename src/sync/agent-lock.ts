// One agent per network namespace. A second one would fight the first over the same chains and could
// bind neither metrics nor health ports, so it refuses to start; `portway cleanup` refuses too while
// an agent runs (the agent would put everything back). The lock is an abstract unix socket
// (no file: nothing to clean up, nothing stale after kill -9 — the kernel drops it with the process),
// named after the namespace's inode, which no other live namespace shares. Abstract sockets are per
// network namespace; the agent runs inside the one it programs, so two agents there always collide.
import { createServer, type Server } from 'node:net';

export class AgentLock {
  private constructor(
    private readonly server: Server,
    readonly name: string,
  ) {}

  /** Take the lock of the namespace with this inode; throws a message for the operator when it is held. */
  static async acquire(netnsInode: string): Promise<AgentLock> {
    const name = `portway-agent-netns-${netnsInode}`;
    const server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ path: `\0${name}` }, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') {
        throw new Error(
          `a portway agent is already running in this network namespace (inode ${netnsInode}; ` +
            `it holds the abstract socket @${name}): stop it first — two would fight over the same rules`,
        );
      }
      throw new Error(`cannot take the agent lock @${name}: ${err.message}`);
    });
    server.unref();
    return new AgentLock(server, name);
  }

  async release(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
