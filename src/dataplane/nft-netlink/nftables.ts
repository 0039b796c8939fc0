// nf_tables messages over nfnetlink (include/uapi/linux/netfilter/nf_tables.h): the element batch
// of an endpoint change, and the name-only dumps of a drift check. Pure: builds NfMessage values and
// reads received messages; the socket is elsewhere (client.ts).
import {
  type Attr,
  type NfMessage,
  type ReceivedMessage,
  NLM_F_ACK,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_EXCL,
  NLM_F_REQUEST,
  NFGENMSG_LEN,
  NLA_HDRLEN,
  NLMSG_HDRLEN,
  align4,
  attrLength,
  attrList,
  cstring,
  parseAttrs,
  readCString,
  u32be,
} from './wire.js';

export const NFNL_SUBSYS_NFTABLES = 10;
export const NFNL_MSG_BATCH_BEGIN = 0x10;
export const NFNL_MSG_BATCH_END = 0x11;

export const NFT_MSG_GETTABLE = 1;
export const NFT_MSG_GETCHAIN = 4;
export const NFT_MSG_GETSET = 10;
export const NFT_MSG_NEWSETELEM = 12;
export const NFT_MSG_GETSETELEM = 13;
export const NFT_MSG_DELSETELEM = 14;

export const nftType = (msg: number): number => (NFNL_SUBSYS_NFTABLES << 8) | msg;

const NFTA_TABLE_NAME = 1;
const NFTA_CHAIN_TABLE = 1;
const NFTA_CHAIN_NAME = 3;
const NFTA_SET_TABLE = 1;
const NFTA_SET_NAME = 2;
const NFTA_SET_ELEM_LIST_TABLE = 1;
const NFTA_SET_ELEM_LIST_SET = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS = 3;
const NFTA_SET_ELEM_KEY = 1;
const NFTA_SET_ELEM_DATA = 2;
const NFTA_SET_ELEM_FLAGS = 3;
const NFTA_DATA_VALUE = 1;
const NFTA_DATA_VERDICT = 2;
const NFTA_VERDICT_CODE = 1;
const NFTA_VERDICT_CHAIN = 2;

/** NFT_SET_ELEM_INTERVAL_END: the element is the (exclusive) end of the interval before it. */
export const NFT_SET_ELEM_INTERVAL_END = 1;

export type NftFamilyName = 'ip' | 'ip6';
const NFPROTO: Record<NftFamilyName, number> = { ip: 2, ip6: 10 };

/** Verdict codes (negative ones are nf_tables' own, 0/1 netfilter's NF_DROP/NF_ACCEPT). */
export const VERDICT_CODES = { drop: 0, accept: 1, continue: -1, return: -5, jump: -3, goto: -4 } as const;
export type VerdictKind = keyof typeof VERDICT_CODES;
export interface Verdict {
  kind: VerdictKind;
  /** jump and goto only. */
  chain?: string;
}

/**
 * One kernel set element: key bytes (in the set's key layout), its flags, and for maps the data
 * (a value in the map's data layout, or a verdict). An interval [a, b] of an interval set is two of
 * these — {key: a, data} and {key: b+1, flags: INTERVAL_END} — which is what nft 1.0.6 sends for a
 * non-concatenated interval map (no NFTA_SET_ELEM_KEY_END: that one is for concatenated ranges).
 */
export interface KernelElement {
  key: Buffer;
  flags?: number;
  data?: Buffer | Verdict;
}

export interface SetRef {
  family: NftFamilyName;
  table: string;
  /** Set or map name. */
  set: string;
}

/** One element as the caller knows it: its kernel elements (an interval is two) and its nft text. */
export interface ElementItem {
  /** "0-524287 : 10.244.1.2 . 8080" for an add, "0-524287" for a delete: used in error messages. */
  describe: string;
  elements: KernelElement[];
}

/**
 * One message: elements added to or deleted from one set. Put every element of one set and one kind
 * in one operation: the kernel finds the set by name with a linear walk of the table's sets for each
 * message (nft_set_lookup), which at 10k sets is most of a change's kernel time (ADR 0008).
 */
export interface ElementOp {
  op: 'add' | 'delete';
  set: SetRef;
  items: ElementItem[];
  /** add only: fail with EEXIST if the key exists (NLM_F_EXCL); without it an identical element is a no-op. */
  exclusive?: boolean;
}

function verdictAttr(v: Verdict): Attr {
  const inner: Attr[] = [{ type: NFTA_VERDICT_CODE, value: u32be(VERDICT_CODES[v.kind]) }];
  if (v.kind === 'jump' || v.kind === 'goto') {
    if (!v.chain) throw new Error(`nftables: a ${v.kind} verdict needs a chain name`);
    inner.push({ type: NFTA_VERDICT_CHAIN, value: cstring(v.chain) });
  }
  return { type: NFTA_DATA_VERDICT, value: inner };
}

// Attribute order and list numbering as libnftnl writes them (flags, key, data; list entries numbered
// 1, 2, … where the kernel ignores the type), so a batch compares byte for byte with nft's.
function elementAttr(e: KernelElement, index: number): Attr {
  const inner: Attr[] = [];
  if (e.flags) inner.push({ type: NFTA_SET_ELEM_FLAGS, value: u32be(e.flags) });
  inner.push({ type: NFTA_SET_ELEM_KEY, value: [{ type: NFTA_DATA_VALUE, value: e.key }] });
  if (e.data !== undefined) {
    inner.push({
      type: NFTA_SET_ELEM_DATA,
      value: [Buffer.isBuffer(e.data) ? { type: NFTA_DATA_VALUE, value: e.data } : verdictAttr(e.data)],
    });
  }
  return { type: index + 1, value: inner };
}

/** NEWSETELEM / DELSETELEM for one operation, acked (NLM_F_ACK) so its error can be named. */
export function elementMessage(op: ElementOp, seq: number): NfMessage {
  const flags =
    op.op === 'add'
      ? NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | (op.exclusive ? NLM_F_EXCL : 0)
      : NLM_F_REQUEST | NLM_F_ACK;
  return {
    type: nftType(op.op === 'add' ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM),
    flags,
    seq,
    family: NFPROTO[op.set.family],
    attrs: [
      { type: NFTA_SET_ELEM_LIST_TABLE, value: cstring(op.set.table) },
      { type: NFTA_SET_ELEM_LIST_SET, value: cstring(op.set.set) },
      { type: NFTA_SET_ELEM_LIST_ELEMENTS, value: op.items.flatMap((i) => i.elements).map(elementAttr) },
    ],
  };
}

/** The transaction frame: BATCH_BEGIN … BATCH_END addressed to the nf_tables subsystem. */
export function batchMessage(kind: 'begin' | 'end', seq: number): NfMessage {
  return {
    type: kind === 'begin' ? NFNL_MSG_BATCH_BEGIN : NFNL_MSG_BATCH_END,
    flags: NLM_F_REQUEST,
    seq,
    family: 0,
    resId: NFNL_SUBSYS_NFTABLES,
    attrs: [],
  };
}

/** GETSETELEM dump of one set: its elements only, never the table's other sets. */
export function getSetElementsMessage(set: SetRef, seq: number): NfMessage {
  return {
    type: nftType(NFT_MSG_GETSETELEM),
    flags: NLM_F_REQUEST | NLM_F_DUMP,
    seq,
    family: NFPROTO[set.family],
    attrs: [
      { type: NFTA_SET_ELEM_LIST_TABLE, value: cstring(set.table) },
      { type: NFTA_SET_ELEM_LIST_SET, value: cstring(set.set) },
    ],
  };
}

export type ListKind = 'tables' | 'chains' | 'sets';

/**
 * Name-only list dumps. Sets are filtered by table in the kernel (NFTA_SET_TABLE); chains and tables
 * are dumped per family and filtered here (a chain dump carries no rules, so it is linear in chains).
 */
export function listMessage(kind: ListKind, family: NftFamilyName, table: string, seq: number): NfMessage {
  const type = { tables: NFT_MSG_GETTABLE, chains: NFT_MSG_GETCHAIN, sets: NFT_MSG_GETSET }[kind];
  return {
    type: nftType(type),
    flags: NLM_F_REQUEST | NLM_F_DUMP,
    seq,
    family: NFPROTO[family],
    attrs: kind === 'sets' ? [{ type: NFTA_SET_TABLE, value: cstring(table) }] : [],
  };
}

/** The name a list-dump reply carries, and its table (undefined for a table reply). */
export function listedName(kind: ListKind, msg: ReceivedMessage): { name: string; table?: string } | null {
  const attrs = parseAttrs(msg.payload.subarray(NFGENMSG_LEN));
  const nameAttr = { tables: NFTA_TABLE_NAME, chains: NFTA_CHAIN_NAME, sets: NFTA_SET_NAME }[kind];
  const name = attrs.get(nameAttr);
  if (!name) return null;
  const table =
    kind === 'tables' ? undefined : attrs.get(kind === 'chains' ? NFTA_CHAIN_TABLE : NFTA_SET_TABLE);
  return { name: readCString(name), ...(table ? { table: readCString(table) } : {}) };
}

const VERDICT_BY_CODE = new Map<number, VerdictKind>(
  Object.entries(VERDICT_CODES).map(([k, v]) => [v, k as VerdictKind]),
);

function readData(region: Buffer): Buffer | Verdict | undefined {
  const attrs = parseAttrs(region);
  const value = attrs.get(NFTA_DATA_VALUE);
  if (value) return Buffer.from(value);
  const verdict = attrs.get(NFTA_DATA_VERDICT);
  if (!verdict) return undefined;
  const v = parseAttrs(verdict);
  const codeBuf = v.get(NFTA_VERDICT_CODE);
  const code = codeBuf ? codeBuf.readInt32BE(0) : NaN;
  const kind = VERDICT_BY_CODE.get(code);
  if (!kind) throw new Error(`nftables: unknown verdict code ${code} in a set element`);
  const chain = v.get(NFTA_VERDICT_CHAIN);
  return chain ? { kind, chain: readCString(chain) } : { kind };
}

/** Elements of one GETSETELEM dump reply. */
export function decodeElements(msg: ReceivedMessage): KernelElement[] {
  const attrs = parseAttrs(msg.payload.subarray(NFGENMSG_LEN));
  const list = attrs.get(NFTA_SET_ELEM_LIST_ELEMENTS);
  if (!list) return [];
  const out: KernelElement[] = [];
  for (const [, region] of attrList(list)) {
    const e = parseAttrs(region);
    const keyRegion = e.get(NFTA_SET_ELEM_KEY);
    const key = keyRegion ? parseAttrs(keyRegion).get(NFTA_DATA_VALUE) : undefined;
    if (!key) throw new Error('nftables: a set element without a key in a dump reply');
    const flagsBuf = e.get(NFTA_SET_ELEM_FLAGS);
    const dataRegion = e.get(NFTA_SET_ELEM_DATA);
    const data = dataRegion ? readData(dataRegion) : undefined;
    out.push({
      key: Buffer.from(key),
      ...(flagsBuf ? { flags: flagsBuf.readUInt32BE(0) } : {}),
      ...(data !== undefined ? { data } : {}),
    });
  }
  return out;
}

/**
 * Which item of an element message an extended-ack offset (bytes from the start of the message's
 * nlmsghdr, as the kernel reports it) points into, or null when it points at no element (the table or
 * set name, e.g.). The layout is the one elementMessage writes.
 */
export function itemAtOffset(op: ElementOp, offset: number): ElementItem | null {
  const prefix =
    NLMSG_HDRLEN +
    NFGENMSG_LEN +
    align4(NLA_HDRLEN + op.set.table.length + 1) +
    align4(NLA_HDRLEN + op.set.set.length + 1);
  let at = prefix + NLA_HDRLEN;
  let n = 0;
  for (const item of op.items) {
    for (const e of item.elements) {
      const len = align4(attrLength(elementAttr(e, n++)));
      if (offset >= at && offset < at + len) return item;
      at += len;
    }
  }
  return null;
}
