// A recording fake packet socket and manual timers for layer2 unit tests.
import type { ArpSocket, ArpSocketOpener, NdpSocket, NdpSocketOpener } from '../../../src/l2/arp-socket.js';
import type { Timers } from '../../../src/l2/arp-responder.js';
import { formatMac, macToBytes } from '../../../src/l2/arp-frame.js';

export class FakeArpSocket implements ArpSocket {
  readonly sent: Buffer[] = [];
  closed = false;
  readonly ifindex = 7;
  readonly mac: Buffer;
  constructor(
    readonly ifname: string,
    readonly deliver: (frame: Buffer, outgoing: boolean) => void,
    mac = '02:00:00:00:00:aa',
  ) {
    this.mac = macToBytes(mac);
  }
  send(frame: Buffer): number {
    if (this.closed) throw new Error(`socket on ${this.ifname} is closed`);
    this.sent.push(Buffer.from(frame));
    return frame.length;
  }
  close(): void {
    this.closed = true;
  }
}

export function fakeOpener(): { open: ArpSocketOpener; sockets: Map<string, FakeArpSocket> } {
  const sockets = new Map<string, FakeArpSocket>();
  return {
    sockets,
    open: (ifname, onFrame) => {
      const s = new FakeArpSocket(ifname, onFrame);
      sockets.set(ifname, s);
      return s;
    },
  };
}

/** A fake NDP socket: records frames and the multicast groups joined, like the kernel refuses a double drop. */
export class FakeNdpSocket extends FakeArpSocket implements NdpSocket {
  readonly groups = new Set<string>();
  /** Every membership call, in order: "+33:33:ff:…" or "-33:33:ff:…". */
  readonly membershipLog: string[] = [];
  addMembership(mac: Buffer): void {
    if (this.closed) throw new Error(`socket on ${this.ifname} is closed`);
    this.groups.add(formatMac(mac));
    this.membershipLog.push(`+${formatMac(mac)}`);
  }
  dropMembership(mac: Buffer): void {
    if (this.closed) throw new Error(`socket on ${this.ifname} is closed`);
    if (!this.groups.delete(formatMac(mac))) throw new Error(`EADDRNOTAVAIL: ${formatMac(mac)} not joined`);
    this.membershipLog.push(`-${formatMac(mac)}`);
  }
}

export function fakeNdpOpener(opts: { failOn?: string[] } = {}): {
  open: NdpSocketOpener;
  sockets: Map<string, FakeNdpSocket>;
} {
  const sockets = new Map<string, FakeNdpSocket>();
  return {
    sockets,
    open: (ifname, onFrame) => {
      if (opts.failOn?.includes(ifname)) throw new Error(`socket(AF_PACKET) on interface "${ifname}": EPERM`);
      const s = new FakeNdpSocket(ifname, onFrame);
      sockets.set(ifname, s);
      return s;
    },
  };
}

export class ManualTimers implements Timers {
  now = 0;
  private seq = 0;
  private readonly pending = new Map<number, { at: number; fn: () => void }>();
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.pending.set(id, { at: this.now + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  /** Advance time, running due timers in order (including ones they schedule). */
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      const due = [...this.pending.entries()]
        .filter(([, t]) => t.at <= end)
        .sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0];
      if (!due) break;
      this.pending.delete(due[0]);
      this.now = due[1].at;
      due[1].fn();
    }
    this.now = end;
  }
  get size(): number {
    return this.pending.size;
  }
}
