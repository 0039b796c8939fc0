// Netlink framing (nlmsghdr, nlattr) and nfnetlink's nfgenmsg, as the kernel lays them out
// (include/uapi/linux/netlink.h, linux/netfilter/nfnetlink.h). Pure: bytes in, bytes out.
// Header and attribute-header fields are in host byte order; nf_tables attribute *values* that are
// integers are big-endian (the kernel reads them with ntohl), which callers write with u32be().
import { endianness } from 'node:os';

export const NLMSG_HDRLEN = 16;
export const NFGENMSG_LEN = 4;
export const NLA_HDRLEN = 4;
export const NLA_F_NESTED = 0x8000;

export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP_INTR = 0x10;
// Modifiers of NEW requests.
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
// Modifier of GET requests (ROOT | MATCH).
export const NLM_F_DUMP = 0x300;

export const NLMSG_ERROR = 0x2;
export const NLMSG_DONE = 0x3;

const LE = endianness() === 'LE';

export const align4 = (n: number): number => (n + 3) & ~3;

function writeU16(buf: Buffer, value: number, offset: number): void {
  if (LE) buf.writeUInt16LE(value, offset);
  else buf.writeUInt16BE(value, offset);
}
function writeU32(buf: Buffer, value: number, offset: number): void {
  if (LE) buf.writeUInt32LE(value, offset);
  else buf.writeUInt32BE(value, offset);
}
export function readU16(buf: Buffer, offset: number): number {
  return LE ? buf.readUInt16LE(offset) : buf.readUInt16BE(offset);
}
export function readU32(buf: Buffer, offset: number): number {
  return LE ? buf.readUInt32LE(offset) : buf.readUInt32BE(offset);
}
export function readI32(buf: Buffer, offset: number): number {
  return LE ? buf.readInt32LE(offset) : buf.readInt32BE(offset);
}

/** A 4-byte big-endian integer, as nf_tables' NLA_U32/NLA_BE32 attributes carry them. */
export function u32be(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value >>> 0, 0);
  return b;
}

/** A NUL-terminated string, as NLA_STRING/NLA_NUL_STRING attributes carry them. */
export function cstring(text: string): Buffer {
  return Buffer.concat([Buffer.from(text, 'utf8'), Buffer.alloc(1)]);
}

/** One attribute: a payload, or nested attributes (written with NLA_F_NESTED, as libnftnl does). */
export interface Attr {
  type: number;
  value: Buffer | Attr[];
}

export function attrLength(attr: Attr): number {
  const payload = Array.isArray(attr.value)
    ? attr.value.reduce((n, a) => n + align4(attrLength(a)), 0)
    : attr.value.length;
  return NLA_HDRLEN + payload;
}

function writeAttr(buf: Buffer, offset: number, attr: Attr): number {
  const len = attrLength(attr);
  writeU16(buf, len, offset);
  writeU16(buf, Array.isArray(attr.value) ? attr.type | NLA_F_NESTED : attr.type, offset + 2);
  let at = offset + NLA_HDRLEN;
  if (Array.isArray(attr.value)) {
    for (const child of attr.value) at = writeAttr(buf, at, child);
  } else {
    attr.value.copy(buf, at);
    at += attr.value.length;
  }
  // Padding bytes stay zero (Buffer.alloc).
  return offset + align4(len);
}

export interface NfMessage {
  /** (subsystem << 8) | message type. */
  type: number;
  flags: number;
  seq: number;
  /** nfgenmsg.nfgen_family: NFPROTO_IPV4 (2), NFPROTO_IPV6 (10), AF_UNSPEC (0). */
  family: number;
  /** nfgenmsg.res_id (big-endian on the wire): the subsystem id for batch begin/end, else 0. */
  resId?: number;
  attrs: Attr[];
}

export function messageLength(msg: NfMessage): number {
  return NLMSG_HDRLEN + NFGENMSG_LEN + msg.attrs.reduce((n, a) => n + align4(attrLength(a)), 0);
}

/** Encode messages back to back into one buffer: what one sendmsg() carries. */
export function encodeMessages(msgs: readonly NfMessage[]): Buffer {
  const total = msgs.reduce((n, m) => n + align4(messageLength(m)), 0);
  const buf = Buffer.alloc(total);
  let at = 0;
  for (const m of msgs) {
    const len = messageLength(m);
    writeU32(buf, len, at);
    writeU16(buf, m.type, at + 4);
    writeU16(buf, m.flags, at + 6);
    writeU32(buf, m.seq >>> 0, at + 8);
    writeU32(buf, 0, at + 12); // nlmsg_pid 0: addressed to the kernel
    buf.writeUInt8(m.family, at + 16);
    buf.writeUInt8(0, at + 17); // NFNETLINK_V0
    buf.writeUInt16BE(m.resId ?? 0, at + 18);
    let a = at + NLMSG_HDRLEN + NFGENMSG_LEN;
    for (const attr of m.attrs) a = writeAttr(buf, a, attr);
    at += align4(len);
  }
  return buf;
}

export interface ReceivedMessage {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  /** Everything after the 16-byte header. */
  payload: Buffer;
}

/** Split one datagram into its messages; a truncated header or length is an error, not a short read. */
export function splitMessages(datagram: Buffer): ReceivedMessage[] {
  const out: ReceivedMessage[] = [];
  let at = 0;
  while (at + NLMSG_HDRLEN <= datagram.length) {
    const len = readU32(datagram, at);
    if (len < NLMSG_HDRLEN || at + len > datagram.length) {
      throw new Error(
        `netlink: malformed message at byte ${at} (length ${len}, datagram ${datagram.length})`,
      );
    }
    out.push({
      type: readU16(datagram, at + 4),
      flags: readU16(datagram, at + 6),
      seq: readU32(datagram, at + 8),
      pid: readU32(datagram, at + 12),
      payload: datagram.subarray(at + NLMSG_HDRLEN, at + len),
    });
    at += align4(len);
  }
  return out;
}

/** Attributes of a payload region: type (NLA_F_NESTED and NLA_F_NET_BYTEORDER masked off) → value. */
export function parseAttrs(region: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (const [type, value] of attrList(region)) out.set(type, value);
  return out;
}

/** The same, in order and with repeats (a nested list of elements repeats one type). */
export function attrList(region: Buffer): Array<[number, Buffer]> {
  const out: Array<[number, Buffer]> = [];
  let at = 0;
  while (at + NLA_HDRLEN <= region.length) {
    const len = readU16(region, at);
    if (len < NLA_HDRLEN || at + len > region.length) {
      throw new Error(`netlink: malformed attribute at byte ${at} (length ${len}, region ${region.length})`);
    }
    out.push([readU16(region, at + 2) & 0x3fff, region.subarray(at + NLA_HDRLEN, at + len)]);
    at += align4(len);
  }
  return out;
}

/** A NUL-terminated string attribute's text. */
export function readCString(value: Buffer): string {
  const nul = value.indexOf(0);
  return value.subarray(0, nul < 0 ? value.length : nul).toString('utf8');
}
