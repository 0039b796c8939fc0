// IPv6 Neighbor Discovery (RFC 4861) over Ethernet: Neighbor Solicitations parsed, Neighbor Advertisements
// built, as bytes. Pure. The IPv6 counterpart of arp-frame.ts.
//
//  Ethernet: dst MAC (6) | src MAC (6) | ethertype 0x86dd (2)                                   offset 0
//  IPv6:     version 6, traffic class 0, flow label 0 (4) | payload length (2) | next header 58 (1)
//            | hop limit 255 (1) | source (16) | destination (16)                                offset 14
//  ICMPv6:   type (1) | code 0 (1) | checksum (2)                                                offset 54
//            NS: reserved (4) | target (16) | options
//            NA: R S O flags + reserved (4) | target (16) | options
//  Option:   type (1) | length in units of 8 bytes (1) | value — link-layer address: 6-byte MAC
//
// Only frames whose IPv6 header is followed directly by ICMPv6 are read: Neighbor Discovery messages
// carry no extension headers in practice (the kernel's own never do), and reading them would only add a
// way to be fooled.
import { isIPv6 } from 'node:net';
import { bigIntToIP, ipToBigInt } from '../model/ip.js';
import { formatMac, macToBytes } from './arp-frame.js';

export const ETHERTYPE_IPV6 = 0x86dd;
export const IPPROTO_ICMPV6 = 58;
export const ICMPV6_NEIGHBOR_SOLICITATION = 135;
export const ICMPV6_NEIGHBOR_ADVERTISEMENT = 136;
/** RFC 4861 7.1: a Neighbor Discovery message with any other hop limit did not come from this link. */
export const ND_HOP_LIMIT = 255;
export const ALL_NODES = 'ff02::1';
export const ALL_NODES_MAC = '33:33:00:00:00:01';

const ETH_HEADER = 14;
const IPV6_HEADER = 40;
const ICMP_OFFSET = ETH_HEADER + IPV6_HEADER; // 54
const ND_HEADER = 24; // type, code, checksum, flags/reserved, target
const OPTION_SOURCE_LL = 1;
const OPTION_TARGET_LL = 2;
/** Ethernet + IPv6 + NA + one target link-layer option: 86 bytes. */
export const NA_FRAME_LENGTH = ICMP_OFFSET + ND_HEADER + 8;

const FLAG_ROUTER = 0x80;
const FLAG_SOLICITED = 0x40;
const FLAG_OVERRIDE = 0x20;

function ipv6ToBytes(ip: string): Buffer {
  if (!isIPv6(ip)) throw new Error(`invalid IPv6 address "${ip}" in a Neighbor Discovery frame`);
  const hex = ipToBigInt(ip).toString(16).padStart(32, '0');
  return Buffer.from(hex, 'hex');
}

function formatIPv6(bytes: Uint8Array): string {
  return bigIntToIP(BigInt(`0x${Buffer.from(bytes.subarray(0, 16)).toString('hex')}`), 'IPv6');
}

/** The solicited-node multicast address of `ip` (RFC 4291 2.7.1): ff02::1:ff + its low 24 bits. */
export function solicitedNodeMulticast(ip: string): string {
  const b = ipv6ToBytes(ip);
  return formatIPv6(Buffer.concat([Buffer.from('ff0200000000000000000001ff', 'hex'), b.subarray(13, 16)]));
}

/** The Ethernet multicast address of an IPv6 multicast address (RFC 2464 7): 33:33 + its low 32 bits. */
export function multicastMac(ip: string): string {
  const b = ipv6ToBytes(ip);
  return formatMac(Buffer.concat([Buffer.from([0x33, 0x33]), b.subarray(12, 16)]));
}

/** The Ethernet group a node joins to hear solicitations for `ip`: 33:33:ff + the low 24 bits of `ip`. */
export function solicitedNodeMac(ip: string): string {
  return multicastMac(solicitedNodeMulticast(ip));
}

/** The ICMPv6 checksum of `message` (checksum field zero) over the IPv6 pseudo-header (RFC 8200 8.1). */
export function icmpv6Checksum(src: Uint8Array, dst: Uint8Array, message: Uint8Array): number {
  const pseudo = Buffer.alloc(40);
  Buffer.from(src.subarray(0, 16)).copy(pseudo, 0);
  Buffer.from(dst.subarray(0, 16)).copy(pseudo, 16);
  pseudo.writeUInt32BE(message.length, 32);
  pseudo.writeUInt8(IPPROTO_ICMPV6, 39);
  let sum = 0;
  const add = (data: Uint8Array) => {
    for (let i = 0; i < data.length; i += 2) sum += ((data[i] as number) << 8) | (data[i + 1] ?? 0);
  };
  add(pseudo);
  add(message);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

interface NdFields {
  ethDst: string;
  ethSrc: string;
  ipSrc: string;
  ipDst: string;
  type: number;
  flags: number;
  target: string;
  option: { type: number; mac: string } | null;
}

function buildNdFrame(f: NdFields): Buffer {
  const icmpLength = ND_HEADER + (f.option ? 8 : 0);
  const frame = Buffer.alloc(ICMP_OFFSET + icmpLength);
  macToBytes(f.ethDst).copy(frame, 0);
  macToBytes(f.ethSrc).copy(frame, 6);
  frame.writeUInt16BE(ETHERTYPE_IPV6, 12);
  frame.writeUInt32BE(0x60000000, 14); // version 6, traffic class 0, flow label 0
  frame.writeUInt16BE(icmpLength, 18);
  frame.writeUInt8(IPPROTO_ICMPV6, 20);
  frame.writeUInt8(ND_HOP_LIMIT, 21);
  const src = ipv6ToBytes(f.ipSrc);
  const dst = ipv6ToBytes(f.ipDst);
  src.copy(frame, 22);
  dst.copy(frame, 38);
  frame.writeUInt8(f.type, ICMP_OFFSET);
  frame.writeUInt8(0, ICMP_OFFSET + 1);
  frame.writeUInt8(f.flags, ICMP_OFFSET + 4);
  ipv6ToBytes(f.target).copy(frame, ICMP_OFFSET + 8);
  if (f.option) {
    frame.writeUInt8(f.option.type, ICMP_OFFSET + 24);
    frame.writeUInt8(1, ICMP_OFFSET + 25);
    macToBytes(f.option.mac).copy(frame, ICMP_OFFSET + 26);
  }
  frame.writeUInt16BE(icmpv6Checksum(src, dst, frame.subarray(ICMP_OFFSET)), ICMP_OFFSET + 2);
  return frame;
}

/** A parsed, valid Neighbor Solicitation (RFC 4861 7.1.1). */
export interface NeighborSolicitation {
  ethDst: string;
  ethSrc: string;
  /** IPv6 source; '::' for duplicate address detection. */
  srcIp: string;
  /** IPv6 destination: the target's solicited-node group, or the target itself (unicast NUD probe). */
  dstIp: string;
  /** The address asked about. */
  targetIp: string;
  /** The source link-layer address option, null when absent (always absent in DAD). */
  sourceLinkAddress: string | null;
  /** Duplicate address detection: from '::', asking whether anyone already uses targetIp. */
  dad: boolean;
}

/** ICMPv6 payload bounds of an Ethernet/IPv6 frame whose next header is ICMPv6 with hop limit 255, or null. */
function icmpPayload(b: Buffer): Buffer | null {
  if (b.length < ICMP_OFFSET + 4) return null;
  if (b.readUInt16BE(12) !== ETHERTYPE_IPV6 || (b[14] as number) >> 4 !== 6) return null;
  if (b[20] !== IPPROTO_ICMPV6 || b[21] !== ND_HOP_LIMIT) return null;
  const length = b.readUInt16BE(18);
  // The NIC may pad short frames; the payload length says where the message ends.
  if (length < ND_HEADER || b.length < ICMP_OFFSET + length) return null;
  const icmp = b.subarray(ICMP_OFFSET, ICMP_OFFSET + length);
  if (icmp[1] !== 0) return null; // code
  if (icmpv6Checksum(b.subarray(22, 38), b.subarray(38, 54), icmp) !== 0) return null;
  return icmp;
}

/** Options of an ND message: type → first value; null when one is malformed (zero length, overruns). */
function readOptions(icmp: Buffer): Map<number, Buffer> | null {
  const options = new Map<number, Buffer>();
  for (let at = ND_HEADER; at < icmp.length;) {
    if (at + 2 > icmp.length) return null;
    const len = (icmp[at + 1] as number) * 8;
    if (len === 0 || at + len > icmp.length) return null;
    const type = icmp[at] as number;
    if (!options.has(type)) options.set(type, icmp.subarray(at + 2, at + len));
    at += len;
  }
  return options;
}

const view = (frame: Uint8Array) => Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);

/**
 * The Neighbor Solicitation in `frame`, or null when it is not a valid one (RFC 4861 7.1.1): another
 * protocol, hop limit not 255, bad checksum, code not 0, a multicast target, a malformed option, or a
 * DAD solicitation (from '::') not sent to a solicited-node group or carrying a source link-layer option.
 */
export function parseNeighborSolicitation(frame: Uint8Array): NeighborSolicitation | null {
  const b = view(frame);
  const icmp = icmpPayload(b);
  if (!icmp || icmp[0] !== ICMPV6_NEIGHBOR_SOLICITATION) return null;
  if (icmp[8] === 0xff) return null; // multicast target
  const options = readOptions(icmp);
  if (!options) return null;
  const srcIp = formatIPv6(b.subarray(22, 38));
  const dstIp = formatIPv6(b.subarray(38, 54));
  const targetIp = formatIPv6(icmp.subarray(8, 24));
  const sll = options.get(OPTION_SOURCE_LL);
  const dad = srcIp === '::';
  if (dad && (sll !== undefined || dstIp !== solicitedNodeMulticast(targetIp))) return null;
  return {
    ethDst: formatMac(b.subarray(0, 6)),
    ethSrc: formatMac(b.subarray(6, 12)),
    srcIp,
    dstIp,
    targetIp,
    sourceLinkAddress: sll && sll.length >= 6 ? formatMac(sll) : null,
    dad,
  };
}

/** A parsed Neighbor Advertisement (tests and diagnostics), or null when `frame` is not a valid one. */
export interface NeighborAdvertisement {
  ethDst: string;
  ethSrc: string;
  srcIp: string;
  dstIp: string;
  targetIp: string;
  router: boolean;
  solicited: boolean;
  override: boolean;
  targetLinkAddress: string | null;
}

export function parseNeighborAdvertisement(frame: Uint8Array): NeighborAdvertisement | null {
  const b = view(frame);
  const icmp = icmpPayload(b);
  if (!icmp || icmp[0] !== ICMPV6_NEIGHBOR_ADVERTISEMENT) return null;
  const options = readOptions(icmp);
  if (!options) return null;
  const flags = icmp[4] as number;
  const tll = options.get(OPTION_TARGET_LL);
  return {
    ethDst: formatMac(b.subarray(0, 6)),
    ethSrc: formatMac(b.subarray(6, 12)),
    srcIp: formatIPv6(b.subarray(22, 38)),
    dstIp: formatIPv6(b.subarray(38, 54)),
    targetIp: formatIPv6(icmp.subarray(8, 24)),
    router: (flags & FLAG_ROUTER) !== 0,
    solicited: (flags & FLAG_SOLICITED) !== 0,
    override: (flags & FLAG_OVERRIDE) !== 0,
    targetLinkAddress: tll && tll.length >= 6 ? formatMac(tll) : null,
  };
}

/**
 * The answer to `ns` saying its target is at `mac`: unicast to the asker (its source link-layer option,
 * else the frame's source), from the target address, Solicited and Override set, with the target
 * link-layer option — byte for byte what Linux sends for an address it has configured when asked by a
 * multicast solicitation. Not for DAD solicitations (those are answered to all-nodes, and the responder
 * does not answer them at all).
 */
export function buildNeighborAdvertisement(ns: NeighborSolicitation, mac: string): Buffer {
  if (ns.dad) throw new Error('a DAD solicitation is not answered with a unicast advertisement');
  return buildNdFrame({
    ethDst: ns.sourceLinkAddress ?? ns.ethSrc,
    ethSrc: mac,
    ipSrc: ns.targetIp,
    ipDst: ns.srcIp,
    type: ICMPV6_NEIGHBOR_ADVERTISEMENT,
    flags: FLAG_SOLICITED | FLAG_OVERRIDE,
    target: ns.targetIp,
    option: { type: OPTION_TARGET_LL, mac },
  });
}

/**
 * An unsolicited advertisement that `ip` is at `mac`, to all nodes (ff02::1, 33:33:00:00:00:01), Override
 * set and Solicited clear (RFC 4861 7.2.6): every neighbour that has an entry for `ip` replaces its
 * link-layer address (and marks it STALE, so it is confirmed before long). The IPv6 gratuitous ARP.
 */
export function buildUnsolicitedAdvertisement(mac: string, ip: string): Buffer {
  return buildNdFrame({
    ethDst: ALL_NODES_MAC,
    ethSrc: mac,
    ipSrc: ip,
    ipDst: ALL_NODES,
    type: ICMPV6_NEIGHBOR_ADVERTISEMENT,
    flags: FLAG_OVERRIDE,
    target: ip,
    option: { type: OPTION_TARGET_LL, mac },
  });
}

/**
 * A multicast "who has targetIp?" solicitation from `mac`/`srcIp` to the target's solicited-node group
 * (tests and benchmarks ask with it); with srcIp '::' a DAD probe without the source link-layer option.
 */
export function buildNeighborSolicitation(mac: string, srcIp: string, targetIp: string): Buffer {
  const group = solicitedNodeMulticast(targetIp);
  return buildNdFrame({
    ethDst: multicastMac(group),
    ethSrc: mac,
    ipSrc: srcIp,
    ipDst: group,
    type: ICMPV6_NEIGHBOR_SOLICITATION,
    flags: 0,
    target: targetIp,
    option: srcIp === '::' ? null : { type: OPTION_SOURCE_LL, mac },
  });
}
