// ARP over Ethernet for IPv4 (RFC 826), built and parsed as bytes. Pure.
//
//  Ethernet: dst MAC (6) | src MAC (6) | ethertype 0x0806 (2)
//  ARP:      htype 1 (2) | ptype 0x0800 (2) | hlen 6 | plen 4 | op (2)
//            sender MAC (6) | sender IP (4) | target MAC (6) | target IP (4)
// 42 bytes in all; the NIC pads to the 60-byte Ethernet minimum.
import { isIPv4 } from 'node:net';

export const ETHERTYPE_ARP = 0x0806;
export const ARP_FRAME_LENGTH = 42;
export const BROADCAST_MAC = 'ff:ff:ff:ff:ff:ff';
export const ZERO_MAC = '00:00:00:00:00:00';

const OP_REQUEST = 1;
const OP_REPLY = 2;

export function macToBytes(mac: string): Buffer {
  const parts = mac.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) {
    throw new Error(`invalid MAC address "${mac}" (expected six hex pairs separated by ':')`);
  }
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}

export function formatMac(bytes: Uint8Array): string {
  return Array.from(bytes.subarray(0, 6), (b) => b.toString(16).padStart(2, '0')).join(':');
}

function ipv4ToBytes(ip: string): Buffer {
  if (!isIPv4(ip)) throw new Error(`invalid IPv4 address "${ip}" in an ARP frame`);
  return Buffer.from(ip.split('.').map(Number));
}

function formatIPv4(bytes: Uint8Array): string {
  return Array.from(bytes.subarray(0, 4)).join('.');
}

interface ArpFields {
  ethDst: string;
  ethSrc: string;
  op: number;
  senderMac: string;
  senderIp: string;
  targetMac: string;
  targetIp: string;
}

function buildArpFrame(f: ArpFields): Buffer {
  const frame = Buffer.alloc(ARP_FRAME_LENGTH);
  macToBytes(f.ethDst).copy(frame, 0);
  macToBytes(f.ethSrc).copy(frame, 6);
  frame.writeUInt16BE(ETHERTYPE_ARP, 12);
  frame.writeUInt16BE(1, 14); // hardware type: Ethernet
  frame.writeUInt16BE(0x0800, 16); // protocol type: IPv4
  frame.writeUInt8(6, 18);
  frame.writeUInt8(4, 19);
  frame.writeUInt16BE(f.op, 20);
  macToBytes(f.senderMac).copy(frame, 22);
  ipv4ToBytes(f.senderIp).copy(frame, 28);
  macToBytes(f.targetMac).copy(frame, 32);
  ipv4ToBytes(f.targetIp).copy(frame, 38);
  return frame;
}

/** A parsed ARP request: who asks (sender) and for which address (targetIp). */
export interface ArpRequest {
  /** Ethernet destination of the frame: broadcast, or a unicast refresh to one host. */
  ethDst: string;
  /** Ethernet source of the frame (where the reply goes). */
  ethSrc: string;
  senderMac: string;
  /** 0.0.0.0 for an RFC 5227 probe. */
  senderIp: string;
  targetMac: string;
  targetIp: string;
}

/** The answer to `request` saying `ip` is at `mac`: unicast back to the asker. */
export function buildArpReply(request: ArpRequest, mac: string): Buffer {
  return buildArpFrame({
    ethDst: request.ethSrc,
    ethSrc: mac,
    op: OP_REPLY,
    senderMac: mac,
    senderIp: request.targetIp,
    targetMac: request.senderMac,
    targetIp: request.senderIp,
  });
}

/** A broadcast "who has targetIp? tell senderIp" request from `mac` (benchmarks and tests ask with it). */
export function buildArpRequest(mac: string, senderIp: string, targetIp: string): Buffer {
  return buildArpFrame({
    ethDst: BROADCAST_MAC,
    ethSrc: mac,
    op: OP_REQUEST,
    senderMac: mac,
    senderIp,
    targetMac: ZERO_MAC,
    targetIp,
  });
}

/**
 * An unsolicited announcement that `ip` is at `mac`, broadcast; sender and target address are both `ip`,
 * so every neighbour that has an entry for `ip` updates it. Like MetalLB, the burst sends it both as a
 * request (RFC 5227 announcement, target MAC zero) and as a reply (target MAC broadcast), because
 * devices differ in which one they honour.
 */
export function buildGratuitousArp(mac: string, ip: string, op: 'request' | 'reply'): Buffer {
  return buildArpFrame({
    ethDst: BROADCAST_MAC,
    ethSrc: mac,
    op: op === 'request' ? OP_REQUEST : OP_REPLY,
    senderMac: mac,
    senderIp: ip,
    targetMac: op === 'request' ? ZERO_MAC : BROADCAST_MAC,
    targetIp: ip,
  });
}

/** The request in `frame`, or null when it is not an Ethernet/IPv4 ARP request (a reply, another protocol, truncated). */
export function parseArpRequest(frame: Uint8Array): ArpRequest | null {
  if (frame.length < ARP_FRAME_LENGTH) return null;
  const b = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  if (b.readUInt16BE(12) !== ETHERTYPE_ARP) return null;
  if (b.readUInt16BE(14) !== 1 || b.readUInt16BE(16) !== 0x0800 || b[18] !== 6 || b[19] !== 4) return null;
  if (b.readUInt16BE(20) !== OP_REQUEST) return null;
  return {
    ethDst: formatMac(b.subarray(0, 6)),
    ethSrc: formatMac(b.subarray(6, 12)),
    senderMac: formatMac(b.subarray(22, 28)),
    senderIp: formatIPv4(b.subarray(28, 32)),
    targetMac: formatMac(b.subarray(32, 38)),
    targetIp: formatIPv4(b.subarray(38, 42)),
  };
}

/** Sender MAC and IP of any ARP frame (request or reply), for tests and diagnostics; null when not ARP. */
export function parseArpSender(
  frame: Uint8Array,
): { op: 'request' | 'reply'; senderMac: string; senderIp: string } | null {
  if (frame.length < ARP_FRAME_LENGTH) return null;
  const b = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  if (b.readUInt16BE(12) !== ETHERTYPE_ARP || b.readUInt16BE(16) !== 0x0800) return null;
  const op = b.readUInt16BE(20);
  if (op !== OP_REQUEST && op !== OP_REPLY) return null;
  return {
    op: op === OP_REQUEST ? 'request' : 'reply',
    senderMac: formatMac(b.subarray(22, 28)),
    senderIp: formatIPv4(b.subarray(28, 32)),
  };
}
