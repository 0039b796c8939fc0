// Answers IPv6 Neighbor Solicitations for the addresses this node owns, on one interface, with the
// interface's MAC; on taking an address it sends a burst of unsolicited Neighbor Advertisements (Override
// set) so neighbours move their entries at once. The IPv6 twin of arp-responder.ts, as MetalLB's ndpClient
// is of its arpResponder. A node that does not own an address never answers for it.
import type { NdpSocket, NdpSocketOpener } from './arp-socket.js';
import { formatMac, macToBytes } from './arp-frame.js';
import { DEFAULT_BURST, type GratuitousBurst, type Timers, realTimers } from './arp-responder.js';
import { OwnedAddresses, sendCounted } from './owned-addresses.js';
import {
  type NeighborSolicitation,
  buildNeighborAdvertisement,
  buildUnsolicitedAdvertisement,
  parseNeighborSolicitation,
  solicitedNodeMac,
  solicitedNodeMulticast,
} from './ndp-frame.js';
import { canonicalIP } from '../model/ip.js';

/** Why a frame was (not) answered; '' = answered (DESIGN habit 7). */
export type NdpDropReason =
  | ''
  /** Sent by this socket (PACKET_OUTGOING). */
  | 'outgoing'
  /** Not a valid Neighbor Solicitation (ndp-frame.ts). */
  | 'notSolicitation'
  /**
   * Duplicate address detection (from ::). Not answered, as MetalLB does not (its ndpClient drops every
   * solicitation without a source link-layer option, and RFC 4861 forbids that option in DAD): the VIP is
   * never configured on a node, so no node runs DAD for it, and an answer to all nodes would make any
   * host that tries the address give it up — a decision for the address's owner, not the speaker.
   */
  | 'dad'
  /** No source link-layer address option: MetalLB's dropReasonNoSourceLL (nowhere to answer to). */
  | 'noSourceLinkAddress'
  /** This node does not own the target on this interface. */
  | 'notOwned'
  /**
   * Not a question to us: sent to another host's MAC (seen because the interface is promiscuous or a
   * bridge port), or to an IPv6 destination that is neither the target nor its solicited-node group.
   */
  | 'notForUs'
  /** Our own solicitation looped back (same MAC), not flagged outgoing. */
  | 'fromSelf';

/** Pure: what to do with solicitation `ns` on an interface with MAC `mac` owning `owned`. */
export function decideSolicitation(
  ns: NeighborSolicitation,
  owned: { has(ip: string): boolean },
  mac: string,
): NdpDropReason {
  if (ns.dad) return 'dad';
  if (ns.sourceLinkAddress === null) return 'noSourceLinkAddress';
  if (!owned.has(ns.targetIp)) return 'notOwned';
  const group = solicitedNodeMulticast(ns.targetIp);
  if (ns.ethDst !== mac && ns.ethDst !== solicitedNodeMac(ns.targetIp)) return 'notForUs';
  if (ns.dstIp !== group && ns.dstIp !== ns.targetIp) return 'notForUs';
  if (ns.ethSrc === mac || ns.sourceLinkAddress === mac) return 'fromSelf';
  return '';
}

export interface NdpResponderEvents {
  onReply?(ip: string, to: string): void;
  onUnsolicited?(ip: string): void;
  onError?(err: Error): void;
}

export class NdpResponder {
  private socket: NdpSocket | null = null;
  private readonly owned: OwnedAddresses;
  /** Solicited-node group MAC → owned addresses in it (several addresses can share the low 24 bits). */
  private readonly groups = new Map<string, Set<string>>();
  /** Counters for metrics and tests. */
  readonly counters = {
    solicitationsSeen: 0,
    repliesSent: 0,
    unsolicitedSent: 0,
    sendErrors: 0,
    membershipErrors: 0,
  };
  /** Drops by reason (what was seen and not answered). */
  readonly drops = new Map<NdpDropReason, number>();

  constructor(
    readonly ifname: string,
    private readonly open: NdpSocketOpener,
    timers: Timers = realTimers,
    burst: GratuitousBurst = DEFAULT_BURST,
    private readonly events: NdpResponderEvents = {},
  ) {
    this.owned = new OwnedAddresses(timers, burst, {
      announce: (ip) => this.announce(ip),
      added: (ip) => this.join(ip),
      removed: (ip) => this.leave(ip),
    });
  }

  /** Opens the packet socket. Throws (naming the interface) when it cannot. */
  start(): void {
    if (this.socket) return;
    this.socket = this.open(this.ifname, (frame, outgoing) => this.handleFrame(frame, outgoing));
  }

  /** Closing the socket also leaves its multicast groups (the kernel drops a socket's memberships). */
  stop(): void {
    this.owned.clear();
    this.groups.clear();
    this.socket?.close();
    this.socket = null;
  }

  get mac(): string {
    if (!this.socket) throw new Error(`NDP responder on ${this.ifname} is not started`);
    return formatMac(this.socket.mac);
  }

  /** The Ethernet groups joined, sorted (for tests and diagnostics). */
  joinedGroups(): string[] {
    return [...this.groups.keys()].sort();
  }

  ownedAddresses(): string[] {
    return this.owned.sorted();
  }

  /**
   * Replace the set of owned IPv6 addresses: newly owned ones join their solicited-node group and get a
   * burst of unsolicited advertisements; dropped ones go quiet at once and leave the group.
   */
  setOwned(ips: Iterable<string>): void {
    this.owned.set(new Set([...ips].map((ip) => canonicalIP(ip) ?? ip)));
  }

  private join(ip: string): void {
    const group = solicitedNodeMac(ip);
    const members = this.groups.get(group);
    if (members) {
      members.add(ip);
      return;
    }
    this.groups.set(group, new Set([ip]));
    try {
      this.socket?.addMembership(macToBytes(group));
    } catch (e) {
      // Unicast solicitations (neighbour unreachability probes) are still answered.
      this.counters.membershipErrors++;
      this.events.onError?.(e as Error);
    }
  }

  private leave(ip: string): void {
    const group = solicitedNodeMac(ip);
    const members = this.groups.get(group);
    if (!members) return;
    members.delete(ip);
    if (members.size > 0) return;
    this.groups.delete(group);
    try {
      this.socket?.dropMembership(macToBytes(group));
    } catch (e) {
      this.counters.membershipErrors++;
      this.events.onError?.(e as Error);
    }
  }

  /** One round of an unsolicited burst: one advertisement to all nodes. */
  private announce(ip: string): boolean {
    if (!this.socket) return false;
    if (this.send(buildUnsolicitedAdvertisement(this.mac, ip))) this.counters.unsolicitedSent++;
    this.events.onUnsolicited?.(ip);
    return true;
  }

  private send(frame: Buffer): boolean {
    return sendCounted(this.socket, frame, this.counters, this.events.onError);
  }

  /** Exposed for tests with a fake socket; the real socket calls it for every solicitation it receives. */
  handleFrame(frame: Buffer, outgoing: boolean): NdpDropReason {
    if (!this.socket) return 'notForUs';
    const reason = this.decide(frame, outgoing);
    if (reason !== '') {
      this.drops.set(reason, (this.drops.get(reason) ?? 0) + 1);
    }
    return reason;
  }

  private decide(frame: Buffer, outgoing: boolean): NdpDropReason {
    if (outgoing) return 'outgoing';
    const ns = parseNeighborSolicitation(frame);
    if (!ns) return 'notSolicitation';
    this.counters.solicitationsSeen++;
    const mac = this.mac;
    const reason = decideSolicitation(ns, this.owned, mac);
    if (reason !== '') return reason;
    if (this.send(buildNeighborAdvertisement(ns, mac))) {
      this.counters.repliesSent++;
      this.events.onReply?.(ns.targetIp, ns.sourceLinkAddress ?? ns.ethSrc);
    }
    return '';
  }
}
