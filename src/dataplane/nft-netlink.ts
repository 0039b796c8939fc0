// Element-only nftables updates sent over netlink from this process (docs/adr/0007-nftables-mode.md):
// the batch the planner's element commands make (src/render/nftables/netlink.ts) goes to the kernel in
// one datagram on a NETLINK_NETFILTER socket (native/netlink), and the kernel's acknowledgements are
// read back: no `nft` process, no cache dump before the change. A prototype: the nftables syncer will
// own one writer per family. The socket works in the network namespace of the process that opens it.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  elementBatch,
  NETLINK_NETFILTER,
  parseAcks,
  type ElementCommand,
} from '../render/nftables/netlink.js';
import type { NftFamily } from '../render/nftables/types.js';

export interface NetlinkSocket {
  send(datagram: Buffer): void;
  /** One datagram, or null when none came within the timeout. */
  receive(timeoutMs: number): Buffer | null;
  close(): void;
}

interface NetlinkAddon {
  NetlinkSocket: new (protocol: number) => NetlinkSocket;
}

export const BUILD_NETLINK_COMMAND = 'npx --no-install node-gyp rebuild -C native/netlink';

function addonPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [
    resolve(here, '../../native/netlink/build/Release/netlink.node'),
    resolve(here, '../../../native/netlink/build/Release/netlink.node'),
  ];
  return candidates.find((p) => existsSync(p)) ?? (candidates[0] as string);
}

/** A NETLINK_NETFILTER socket from the native addon (needs CAP_NET_ADMIN to change tables). */
export function openNetfilterSocket(): NetlinkSocket {
  const path = addonPath();
  if (!existsSync(path))
    throw new Error(`native netlink addon not built (${path} missing): run \`${BUILD_NETLINK_COMMAND}\``);
  const addon = createRequire(import.meta.url)(path) as NetlinkAddon;
  return new addon.NetlinkSocket(NETLINK_NETFILTER);
}

/** The kernel refused a command of the batch (the whole transaction was rolled back). */
export class NftNetlinkError extends Error {
  constructor(
    readonly command: ElementCommand,
    readonly errno: number,
  ) {
    super(`nf_tables refused ${command.op} element in set ${command.set}: errno ${errno}`);
    this.name = 'NftNetlinkError';
  }
}

export class NftElementWriter {
  private seq: number;

  constructor(
    private readonly socket: NetlinkSocket,
    private readonly ackTimeoutMs = 5000,
  ) {
    // Sequence numbers only pair acks with messages on this socket.
    this.seq = 1;
  }

  /** Send one transaction of element commands and wait until the kernel acknowledged each. */
  apply(family: NftFamily, table: string, commands: readonly ElementCommand[]): void {
    if (commands.length === 0) return;
    const { datagram, ackSeqs } = elementBatch(family, table, commands, this.seq);
    this.seq += commands.length + 2;
    this.socket.send(datagram);
    const waiting = new Map(ackSeqs.map((s, i) => [s, commands[i]!]));
    while (waiting.size > 0) {
      const reply = this.socket.receive(this.ackTimeoutMs);
      if (reply === null) throw new Error(`nf_tables: no acknowledgement within ${this.ackTimeoutMs} ms`);
      for (const ack of parseAcks(reply)) {
        const command = waiting.get(ack.seq);
        if (command === undefined) continue;
        if (ack.errno !== 0) throw new NftNetlinkError(command, ack.errno);
        waiting.delete(ack.seq);
      }
    }
  }

  close(): void {
    this.socket.close();
  }
}
