// Element layouts of portway's nftables maps (docs/adr/0007, 0008), between the renderer's text form
// ({ key: "0-524287", value: "10.244.1.2 . 8080" | "goto svc-…" }) and kernel bytes. Pure.
//
// What nft 1.0.6 sends (checked with `nft --debug=netlink` on
// `typeof numgen random mod 1048576 : ip daddr . tcp dport ; flags interval`):
//   add    0-524287 : 10.244.1.2 . 8080  →  key 00 00 00 00, data 0a f4 01 02 1f 90 00 00, flags 0
//                                           key 00 08 00 00, flags INTERVAL_END
//   delete 0-524287                      →  key 00 00 00 00, flags 0;  key 00 08 00 00, flags INTERVAL_END
// The numgen key is written big-endian (nft byte-swaps host-order keys of interval sets so the
// kernel's rbtree orders them by memcmp); each field of a concatenation is padded to 4 bytes.
import { ipToBigInt, bigIntToIP } from '../../model/ip.js';
import { isIPv4, isIPv6 } from 'node:net';
import { NFT_HAIRPIN_ENDPOINTS } from '../../render/nftables/render.js';
import type { ElementCommand } from '../../render/nftables/types.js';
import {
  type ElementOp,
  type KernelElement,
  type NftFamilyName,
  type Verdict,
  NFT_SET_ELEM_INTERVAL_END,
} from './nftables.js';

/** One element as the renderer writes it. */
export interface TextElement {
  key: string;
  value?: string;
}

export function ipv4Bytes(ip: string): Buffer {
  if (!isIPv4(ip)) throw new Error(`not an IPv4 address: "${ip}"`);
  return Buffer.from(ip.split('.').map(Number));
}

export function ipv6Bytes(ip: string): Buffer {
  if (!isIPv6(ip)) throw new Error(`not an IPv6 address: "${ip}"`);
  return Buffer.from(ipToBigInt(ip).toString(16).padStart(32, '0'), 'hex');
}

/** An inet_service (port): 2 bytes, network order. */
export function portBytes(port: number): Buffer {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`not a port: ${port}`);
  const b = Buffer.alloc(2);
  b.writeUInt16BE(port, 0);
  return b;
}

/** A concatenation: every field padded to a multiple of 4 bytes (NFT_REG32 slots). */
export function concatBytes(parts: readonly Buffer[]): Buffer {
  return Buffer.concat(parts.map((p) => Buffer.concat([p, Buffer.alloc((4 - (p.length % 4)) % 4)])));
}

/** A numgen value as the key of an interval map: 4 bytes big-endian. */
export function numgenKey(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`not a numgen value: ${n}`);
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}

/** key + 1 as a big-endian number of the same width, or null when it overflows (the range ends at the top). */
function successor(key: Buffer): Buffer | null {
  const out = Buffer.from(key);
  for (let i = out.length - 1; i >= 0; i--) {
    const byte = out[i] as number;
    if (byte < 255) {
      out[i] = byte + 1;
      return out;
    }
    out[i] = 0;
  }
  return null;
}

/**
 * The kernel elements of the interval [start, last] (inclusive, as nft writes "a-b"): a start element
 * carrying the data and an end element one past `last` flagged INTERVAL_END — omitted when `last` is
 * the largest key, as nft omits it.
 */
export function intervalElements(start: Buffer, last: Buffer, data?: Buffer | Verdict): KernelElement[] {
  if (start.length !== last.length || Buffer.compare(start, last) > 0) {
    throw new Error(`interval start ${start.toString('hex')} is after its end ${last.toString('hex')}`);
  }
  const startElement: KernelElement = data === undefined ? { key: start } : { key: start, data };
  const end = successor(last);
  return end ? [startElement, { key: end, flags: NFT_SET_ELEM_INTERVAL_END }] : [startElement];
}

/** An interval read back from the kernel: [start, endExclusive) with the start element's data. */
export interface KernelInterval {
  start: Buffer;
  /** Absent when the interval runs to the largest key. */
  endExclusive?: Buffer;
  data?: Buffer | Verdict;
}

/** Pair a dump's start and end elements (the kernel returns them in its own order) into intervals. */
export function intervalsOf(elements: readonly KernelElement[]): KernelInterval[] {
  const sorted = [...elements].sort(
    (a, b) =>
      Buffer.compare(a.key, b.key) ||
      // At one key an end element (closing the interval before) comes before the start of the next.
      ((b.flags ?? 0) & NFT_SET_ELEM_INTERVAL_END) - ((a.flags ?? 0) & NFT_SET_ELEM_INTERVAL_END),
  );
  const out: KernelInterval[] = [];
  let open: KernelInterval | null = null;
  for (const e of sorted) {
    if ((e.flags ?? 0) & NFT_SET_ELEM_INTERVAL_END) {
      if (open) {
        out.push({ ...open, endExclusive: e.key });
        open = null;
      }
      continue;
    }
    if (open) out.push(open);
    open = e.data === undefined ? { start: e.key } : { start: e.key, data: e.data };
  }
  if (open) out.push(open);
  return out;
}

function parseVerdict(text: string): Verdict | null {
  const m = /^(goto|jump)\s+(\S+)$/.exec(text);
  if (m) return { kind: m[1] as 'goto' | 'jump', chain: m[2] as string };
  if (text === 'drop' || text === 'accept' || text === 'return' || text === 'continue') return { kind: text };
  return null;
}

/** "10.244.1.2 . 8080" (ip) / "fd00::2 . 8080" (ip6), or a verdict ("goto ep-…"). */
export function endpointValue(family: NftFamilyName, value: string): Buffer | Verdict {
  const verdict = parseVerdict(value.trim());
  if (verdict) return verdict;
  const m = /^(\S+)\s+\.\s+(\d+)$/.exec(value.trim());
  if (!m) throw new Error(`element value "${value}" is neither "address . port" nor a verdict`);
  const addr = family === 'ip' ? ipv4Bytes(m[1] as string) : ipv6Bytes(m[1] as string);
  return concatBytes([addr, portBytes(Number(m[2]))]);
}

/** The kernel elements of one element of an endpoints map (`eps-…`/`epl-…`): "a-b" or "a" over numgen. */
export function endpointMapElements(
  family: NftFamilyName,
  el: TextElement,
  withData: boolean,
): KernelElement[] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(el.key.trim());
  if (!m) throw new Error(`element key "${el.key}" is not a numgen range ("a-b")`);
  const start = numgenKey(Number(m[1]));
  const last = numgenKey(Number(m[2] ?? m[1]));
  if (!withData) return intervalElements(start, last);
  if (el.value === undefined) throw new Error(`element ${el.key} of an endpoints map has no value`);
  return intervalElements(start, last, endpointValue(family, el.value));
}

/** Text form of a value read back: "10.244.1.2 . 8080", "goto ep-…". */
export function formatEndpointValue(family: NftFamilyName, data: Buffer | Verdict): string {
  if (!Buffer.isBuffer(data)) return data.chain ? `${data.kind} ${data.chain}` : data.kind;
  const addrLen = family === 'ip' ? 4 : 16;
  if (data.length !== addrLen + 4)
    throw new Error(`unexpected ${data.length}-byte value in an ${family} endpoints map`);
  const addr = bigIntToIP(
    BigInt(`0x${data.subarray(0, addrLen).toString('hex')}`),
    family === 'ip' ? 'IPv4' : 'IPv6',
  );
  return `${addr} . ${data.readUInt16BE(addrLen)}`;
}

/** An endpoints map read back, in the renderer's text form ("0-524287" : "10.244.1.2 . 8080"). */
export function endpointMapText(family: NftFamilyName, elements: readonly KernelElement[]): TextElement[] {
  return intervalsOf(elements).map((iv) => {
    const first = iv.start.readUInt32BE(0);
    const last = iv.endExclusive ? iv.endExclusive.readUInt32BE(0) - 1 : 0xffffffff;
    const key = first === last ? `${first}` : `${first}-${last}`;
    return iv.data === undefined ? { key } : { key, value: formatEndpointValue(family, iv.data) };
  });
}

/**
 * One message's worth of an endpoints map change, from the renderer's text form: every added (or every
 * deleted) element of one map in one operation (one set lookup in the kernel, see ElementOp).
 */
export function endpointMapOp(
  op: 'add' | 'delete',
  set: { family: NftFamilyName; table: string; set: string },
  elements: readonly TextElement[],
  options: { exclusive?: boolean } = {},
): ElementOp {
  return {
    op,
    set,
    items: elements.map((el) => ({
      describe: op === 'add' && el.value !== undefined ? `${el.key} : ${el.value}` : el.key,
      elements: endpointMapElements(set.family, el, op === 'add'),
    })),
    ...(op === 'add' && options.exclusive ? { exclusive: true } : {}),
  };
}

/** An address of the family: 4 bytes (ip) or 16 (ip6), network order. */
function addressBytes(family: NftFamilyName, ip: string): Buffer {
  return family === 'ip' ? ipv4Bytes(ip) : ipv6Bytes(ip);
}

/** The kernel element of `hairpin-endpoints` (`address . address`, no interval, no data). */
export function addressPairElements(family: NftFamilyName, el: TextElement): KernelElement[] {
  const m = /^(\S+)\s+\.\s+(\S+)$/.exec(el.key.trim());
  if (!m) throw new Error(`element key "${el.key}" is not "address . address"`);
  return [{ key: concatBytes([addressBytes(family, m[1] as string), addressBytes(family, m[2] as string)]) }];
}

/**
 * The planner's element commands (planNftablesUpdate().elementCommands, in its order: deletes, then
 * adds) as netlink operations, one message per command. Covers the sets an endpoint change touches:
 * the endpoints maps (`eps-…`/`epl-…`, endpoint data or verdicts) and `hairpin-endpoints`; any other
 * set is refused naming it, so the caller falls back to `nft -f` rather than send a wrong layout.
 */
export function elementCommandOps(
  family: NftFamilyName,
  table: string,
  commands: readonly ElementCommand[],
): ElementOp[] {
  return commands.map((c) => {
    const set = { family, table, set: c.set };
    const where = `${family} ${table} ${c.set}`;
    try {
      if (c.role === 'endpoints') return endpointMapOp(c.op, set, c.elements);
      if (c.set === NFT_HAIRPIN_ENDPOINTS) {
        return {
          op: c.op,
          set,
          items: c.elements.map((el) => ({ describe: el.key, elements: addressPairElements(family, el) })),
        };
      }
    } catch (err) {
      throw new Error(`nftables netlink: set ${where}: ${(err as Error).message}`);
    }
    throw new Error(
      `nftables netlink: set ${where}: element updates of this set are not encoded in TypeScript (use nft -f)`,
    );
  });
}
