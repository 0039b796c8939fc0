// Answers ARP for the addresses this node owns, on one interface, with the interface's MAC; on taking an
// address it sends a burst of gratuitous ARP so neighbours move their entries at once instead of waiting
// for their cache to expire. A node that does not own an address never answers for it.
import type { ArpSocket, ArpSocketOpener } from './arp-socket.js';
import { BROADCAST_MAC, buildArpReply, buildGratuitousArp, formatMac, parseArpRequest } from './arp-frame.js';
import { OwnedAddresses, sendCounted } from './owned-addresses.js';

/** Timer functions, injected so tests drive time (DESIGN habit 12). */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface GratuitousBurst {
  /** Rounds sent on taking an address (each round = one request + one reply). */
  count: number;
  /** Gap between rounds. */
  intervalMs: number;
}

export const DEFAULT_BURST: GratuitousBurst = { count: 5, intervalMs: 200 };

export interface ArpResponderEvents {
  onReply?(ip: string, to: string): void;
  onGratuitous?(ip: string): void;
  onError?(err: Error): void;
}

export class ArpResponder {
  private socket: ArpSocket | null = null;
  private readonly owned: OwnedAddresses;
  /** Counters for metrics and tests. */
  readonly counters = { requestsSeen: 0, repliesSent: 0, gratuitousSent: 0, sendErrors: 0 };

  constructor(
    readonly ifname: string,
    private readonly open: ArpSocketOpener,
    timers: Timers = realTimers,
    burst: GratuitousBurst = DEFAULT_BURST,
    private readonly events: ArpResponderEvents = {},
  ) {
    this.owned = new OwnedAddresses(timers, burst, { announce: (ip) => this.announce(ip) });
  }

  /** Opens the packet socket. Throws (naming the interface) when it cannot. */
  start(): void {
    if (this.socket) return;
    this.socket = this.open(this.ifname, (frame, outgoing) => this.handleFrame(frame, outgoing));
  }

  stop(): void {
    this.owned.clear();
    this.socket?.close();
    this.socket = null;
  }

  get mac(): string {
    if (!this.socket) throw new Error(`ARP responder on ${this.ifname} is not started`);
    return formatMac(this.socket.mac);
  }

  ownedAddresses(): string[] {
    return this.owned.sorted();
  }

  /** Replace the set of owned addresses: newly owned ones get a gratuitous burst, dropped ones go quiet at once. */
  setOwned(ips: Iterable<string>): void {
    this.owned.set(new Set(ips));
  }

  /** One round of a gratuitous burst: a request and a reply. */
  private announce(ip: string): boolean {
    if (!this.socket) return false;
    for (const op of ['request', 'reply'] as const) {
      if (this.send(buildGratuitousArp(this.mac, ip, op))) this.counters.gratuitousSent++;
    }
    this.events.onGratuitous?.(ip);
    return true;
  }

  private send(frame: Buffer): boolean {
    return sendCounted(this.socket, frame, this.counters, this.events.onError);
  }

  /** Exposed for tests with a fake socket; the real socket calls it for every ARP frame on the interface. */
  handleFrame(frame: Buffer, outgoing: boolean): void {
    if (outgoing || !this.socket) return;
    const req = parseArpRequest(frame);
    if (!req) return;
    this.counters.requestsSeen++;
    if (!this.owned.has(req.targetIp)) return;
    const mac = this.mac;
    // As MetalLB: only broadcast requests and those sent to this interface are questions to us; a unicast
    // refresh to another host is seen only because the interface is promiscuous or a bridge port.
    if (req.ethDst !== BROADCAST_MAC && req.ethDst !== mac) return;
    // Our own request looped back by a bridge (not flagged outgoing) is not a question either.
    if (req.ethSrc === mac || req.senderMac === mac) return;
    // A gratuitous request from someone else announcing this address is not a question.
    if (req.senderIp === req.targetIp) return;
    if (this.send(buildArpReply(req, mac))) {
      this.counters.repliesSent++;
      this.events.onReply?.(req.targetIp, req.senderMac);
    }
  }
}
