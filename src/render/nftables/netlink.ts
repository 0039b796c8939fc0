// nf_tables netlink messages for element-only updates, built in TypeScript (docs/adr/0007): one batch
// (NFNL_MSG_BATCH_BEGIN … END) of NFT_MSG_DELSETELEM / NFT_MSG_NEWSETELEM, the same bytes nft 1.0.6
// sends for `delete element` / `add element` (checked byte for byte in the unit test), without nft's
// cache dump before each command. Prototype scope: the sets an endpoint change touches — the
// per-service interval maps (`eps-…`/`epl-…`: numgen slice → address . port) and `hairpin-endpoints`
// (address . address). Anything else is refused with an error naming the set. Pure.
import { isIP } from 'node:net';
import { NFT_HAIRPIN_ENDPOINTS } from './render.js';
import type { NftElement, NftFamily, NftRole } from './types.js';

// linux/netlink.h, linux/netfilter/nfnetlink.h, linux/netfilter/nf_tables.h
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLM_F_CREATE = 0x400;
const NLMSG_ERROR = 0x2;
const NLA_F_NESTED = 0x8000;
const NFNL_MSG_BATCH_BEGIN = 0x10;
const NFNL_MSG_BATCH_END = 0x11;
const NFNL_SUBSYS_NFTABLES = 10;
const NFT_MSG_NEWSETELEM = 12;
const NFT_MSG_DELSETELEM = 14;
const NFTA_SET_ELEM_LIST_TABLE = 1;
const NFTA_SET_ELEM_LIST_SET = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS = 3;
const NFTA_SET_ELEM_KEY = 1;
const NFTA_SET_ELEM_DATA = 2;
const NFTA_SET_ELEM_FLAGS = 3;
const NFTA_DATA_VALUE = 1;
const NFT_SET_ELEM_INTERVAL_END = 1;
const AF_INET = 2;
const AF_INET6 = 10;
const AF_UNSPEC = 0;
/** The netlink protocol of nf_tables (NETLINK_NETFILTER). */
export const NETLINK_NETFILTER = 12;

/** One element as the kernel stores it: key bytes, data bytes of a map, the interval-end flag. */
export interface NetlinkElement {
  key: Buffer;
  data?: Buffer;
  intervalEnd?: boolean;
}

export interface ElementCommand {
  op: 'add' | 'delete';
  set: string;
  /** The set's role and whether it maps to verdicts: decide how its elements are encoded. */
  role: NftRole;
  verdicts: boolean;
  elements: readonly NftElement[];
}

const align4 = (n: number): number => (n + 3) & ~3;

function attr(type: number, payload: Buffer): Buffer {
  const out = Buffer.alloc(align4(4 + payload.length));
  out.writeUInt16LE(4 + payload.length, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}
const nested = (type: number, parts: readonly Buffer[]): Buffer =>
  attr(type | NLA_F_NESTED, Buffer.concat(parts));
const cstring = (s: string): Buffer => Buffer.from(`${s}\0`, 'utf8');
function be32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

function message(
  type: number,
  flags: number,
  seq: number,
  family: number,
  resId: number,
  payload: Buffer,
): Buffer {
  const head = Buffer.alloc(20);
  head.writeUInt32LE(20 + payload.length, 0);
  head.writeUInt16LE(type, 4);
  head.writeUInt16LE(flags, 6);
  head.writeUInt32LE(seq >>> 0, 8);
  head.writeUInt32LE(0, 12);
  head.writeUInt8(family, 16);
  head.writeUInt8(0, 17); // NFNETLINK_V0
  head.writeUInt16BE(resId, 18);
  return Buffer.concat([head, payload]);
}

/** An address in network order; a port as nft stores a concatenation field: 2 bytes, padded to 4. */
function addressBytes(text: string, set: string): Buffer {
  const version = isIP(text);
  if (version === 4) return Buffer.from(text.split('.').map(Number));
  if (version === 6) {
    const [head = '', tail] = text.split('::');
    const groups = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
    const h = groups(head);
    const t = tail === undefined ? [] : groups(tail);
    const all = [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
    const b = Buffer.alloc(16);
    all.forEach((g, i) => b.writeUInt16BE(g, i * 2));
    return b;
  }
  throw new Error(`netlink: set ${set}: "${text}" is not an address`);
}
function portField(port: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(port, 0);
  return b;
}

const SLICE = /^(\d+)(?:-(\d+))?$/;
const ADDRESS_PORT = /^(\S+) \. (\d+)$/;
const ADDRESS_PAIR = /^(\S+) \. (\S+)$/;

/**
 * The kernel's elements for one rendered element. An interval ("0-524287 : 10.244.1.2 . 8080") is two:
 * its start with the data, and end+1 flagged as an interval end, as nft encodes intervals; a delete
 * names the same two without data.
 */
export function kernelElements(
  command: Pick<ElementCommand, 'set' | 'role' | 'verdicts'>,
  e: NftElement,
  op: 'add' | 'delete',
): NetlinkElement[] {
  const { set } = command;
  if (command.role === 'endpoints' && !command.verdicts) {
    const slice = SLICE.exec(e.key);
    const target = ADDRESS_PORT.exec(e.value ?? '');
    if (slice === null || (op === 'add' && target === null)) {
      throw new Error(
        `netlink: set ${set}: element "${e.key} : ${e.value ?? ''}" is not a slice → address . port`,
      );
    }
    const start = Number(slice[1]);
    const end = Number(slice[2] ?? slice[1]);
    const first: NetlinkElement = { key: be32(start) };
    if (op === 'add' && target !== null) {
      first.data = Buffer.concat([addressBytes(target[1]!, set), portField(Number(target[2]))]);
    }
    return [first, { key: be32(end + 1), intervalEnd: true }];
  }
  if (set === NFT_HAIRPIN_ENDPOINTS) {
    const pair = ADDRESS_PAIR.exec(e.key);
    if (pair === null) throw new Error(`netlink: set ${set}: element "${e.key}" is not address . address`);
    return [{ key: Buffer.concat([addressBytes(pair[1]!, set), addressBytes(pair[2]!, set)]) }];
  }
  throw new Error(
    `netlink: set ${set}: element updates of this set are not built in TypeScript yet (use nft -f)`,
  );
}

function elementAttr(e: NetlinkElement, index: number): Buffer {
  const parts: Buffer[] = [];
  if (e.intervalEnd === true) parts.push(attr(NFTA_SET_ELEM_FLAGS, be32(NFT_SET_ELEM_INTERVAL_END)));
  parts.push(nested(NFTA_SET_ELEM_KEY, [attr(NFTA_DATA_VALUE, e.key)]));
  if (e.data !== undefined) parts.push(nested(NFTA_SET_ELEM_DATA, [attr(NFTA_DATA_VALUE, e.data)]));
  // nft numbers the list members 1, 2, …; the kernel reads them as a list whatever their type.
  return nested(index, parts);
}

/** The NFT_MSG_NEWSETELEM / DELSETELEM message of one command (without the batch around it). */
export function setElementMessage(
  family: NftFamily,
  table: string,
  command: ElementCommand,
  seq: number,
): Buffer {
  const elements = command.elements.flatMap((e) => kernelElements(command, e, command.op));
  const payload = Buffer.concat([
    attr(NFTA_SET_ELEM_LIST_TABLE, cstring(table)),
    attr(NFTA_SET_ELEM_LIST_SET, cstring(command.set)),
    nested(
      NFTA_SET_ELEM_LIST_ELEMENTS,
      elements.map((e, i) => elementAttr(e, i + 1)),
    ),
  ]);
  const add = command.op === 'add';
  return message(
    (NFNL_SUBSYS_NFTABLES << 8) | (add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM),
    NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE : 0),
    seq,
    family === 'ip' ? AF_INET : AF_INET6,
    0,
    payload,
  );
}

/** One transaction: BATCH_BEGIN, the commands in order, BATCH_END; sequence numbers from `firstSeq`. */
export function elementBatch(
  family: NftFamily,
  table: string,
  commands: readonly ElementCommand[],
  firstSeq: number,
): { datagram: Buffer; ackSeqs: number[] } {
  let seq = firstSeq;
  const parts = [
    message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq++, AF_UNSPEC, NFNL_SUBSYS_NFTABLES, Buffer.alloc(0)),
  ];
  const ackSeqs: number[] = [];
  for (const c of commands) {
    ackSeqs.push(seq);
    parts.push(setElementMessage(family, table, c, seq++));
  }
  parts.push(
    message(NFNL_MSG_BATCH_END, NLM_F_REQUEST, seq, AF_UNSPEC, NFNL_SUBSYS_NFTABLES, Buffer.alloc(0)),
  );
  return { datagram: Buffer.concat(parts), ackSeqs };
}

/** The acknowledgements (NLMSG_ERROR) in a datagram the kernel sent: sequence number and errno (0 = ok). */
export function parseAcks(datagram: Buffer): Array<{ seq: number; errno: number }> {
  const out: Array<{ seq: number; errno: number }> = [];
  let o = 0;
  while (o + 16 <= datagram.length) {
    const len = datagram.readUInt32LE(o);
    if (len < 16 || o + len > datagram.length) break;
    if (datagram.readUInt16LE(o + 4) === NLMSG_ERROR && len >= 20) {
      out.push({ seq: datagram.readUInt32LE(o + 8), errno: -datagram.readInt32LE(o + 16) || 0 });
    }
    o += align4(len);
  }
  return out;
}
