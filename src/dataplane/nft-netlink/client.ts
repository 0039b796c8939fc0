// The imperative shell of nf_tables over netlink: one NETLINK_NETFILTER socket (native/netlink), element
// batches sent as one sendmsg() with every message acked, and name-only dumps. Message bytes are built
// and read in nftables.ts / wire.ts (docs/adr/0008-nftables-netlink.md).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getSystemErrorMap } from 'node:util';
import {
  type ElementItem,
  type ElementOp,
  type KernelElement,
  type ListKind,
  type NftFamilyName,
  type SetRef,
  batchMessage,
  decodeElements,
  elementMessage,
  getSetElementsMessage,
  itemAtOffset,
  listMessage,
  listedName,
} from './nftables.js';
import {
  type NfMessage,
  type ReceivedMessage,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLM_F_DUMP_INTR,
  align4,
  encodeMessages,
  parseAttrs,
  readCString,
  readI32,
  readU32,
  splitMessages,
} from './wire.js';

export const NETLINK_NETFILTER = 12;

/** The addon's socket (native/netlink/src/netlink_socket.cc). */
export interface NetlinkSocket {
  readonly portId: number;
  send(buf: Buffer): number;
  /** One datagram, or null when none arrives within timeoutMs (0: do not wait). */
  recv(timeoutMs: number): Buffer | null;
  /** Returns the size the kernel granted. */
  setReceiveBufferSize(bytes: number): number;
  close(): void;
}

interface NetlinkAddon {
  NetlinkSocket: new (protocol: number, netnsPath?: string) => NetlinkSocket;
}

export const BUILD_NETLINK_COMMAND = 'npx --no-install node-gyp rebuild -C native/netlink';

function addonPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [
    resolve(here, '../../../native/netlink/build/Release/netlink.node'),
    resolve(here, '../../../../native/netlink/build/Release/netlink.node'),
  ];
  return candidates.find((p) => existsSync(p)) ?? (candidates[0] as string);
}

let addon: NetlinkAddon | undefined;
function loadAddon(): NetlinkAddon {
  if (addon) return addon;
  const path = addonPath();
  if (!existsSync(path)) {
    throw new Error(`native netlink addon not built (${path} missing): run \`${BUILD_NETLINK_COMMAND}\``);
  }
  addon = createRequire(import.meta.url)(path) as NetlinkAddon;
  return addon;
}

/** "/var/run/netns/<name>" for a name made by `ip netns add`; a path is taken as it is. */
export function netnsPath(netns: string): string {
  return netns.includes('/') ? netns : `/var/run/netns/${netns}`;
}

const ERRNO_HINTS: Record<string, string> = {
  ENOENT: 'the table, the set or (delete) the element does not exist',
  EEXIST: 'an element with this key exists already (an exclusive add, or one with other data)',
  EBUSY: 'an element with this key exists with other data',
  EINVAL: 'the kernel refused the message as malformed for this set',
  ERANGE: 'the key or data length does not match the set',
  EOPNOTSUPP: 'the set does not support this operation',
  ENOSPC: 'the set is full',
  EPERM: 'needs CAP_NET_ADMIN in the network namespace',
};

/** "No such file or directory (ENOENT: the table, …)" */
export function describeErrno(errno: number): string {
  const entry = getSystemErrorMap().get(-Math.abs(errno));
  const [name, text] = entry ?? [`errno ${errno}`, 'unknown error'];
  const hint = ERRNO_HINTS[name];
  return `${text} (${name}${hint ? `: ${hint}` : ''})`;
}

export interface BatchFailure {
  errno: number;
  /** The kernel's own words, when it gave any (extended ack). */
  kernelMessage?: string;
  /** "add element 0-524287 : 10.244.1.2 . 8080 to map ip portway eps-…", or "commit of the batch". */
  what: string;
}

/** A batch the kernel refused: nothing of it was applied (nf_tables aborts the whole transaction). */
export class NftBatchError extends Error {
  constructor(readonly failures: BatchFailure[]) {
    super(
      `nftables batch refused, nothing applied: ${failures
        .map((f) => `${f.what}: ${describeErrno(f.errno)}${f.kernelMessage ? ` [${f.kernelMessage}]` : ''}`)
        .join('; ')}`,
    );
    this.name = 'NftBatchError';
  }
}

export interface BatchTiming {
  /** Wall time of the sendmsg() carrying the transaction plus reading its acks: the kernel's share. */
  kernelMs: number;
  /** The same plus encoding and decoding in this process. */
  totalMs: number;
  messages: number;
  bytes: number;
}

const elapsedMs = (from: bigint): number => Number(process.hrtime.bigint() - from) / 1e6;

/** "add element 0-9 : 10.0.0.1 . 80 to ip portway eps-…"; all the message's items when the kernel did not say which. */
function describeOp(op: ElementOp, item?: ElementItem | null): string {
  const where = `${op.set.family} ${op.set.table} ${op.set.set}`;
  const what = item ? item.describe : op.items.map((i) => i.describe).join(', ');
  const noun = item || op.items.length === 1 ? 'element' : 'one of the elements';
  return op.op === 'add' ? `add ${noun} ${what} to ${where}` : `delete ${noun} ${what} from ${where}`;
}

const NLM_F_CAPPED = 0x100;
const NLM_F_ACK_TLVS = 0x200;
const NLMSGERR_ATTR_MSG = 1;
const NLMSGERR_ATTR_OFFS = 2;

/** The extended-ack attributes of an NLMSG_ERROR: the kernel's text and the offending attribute's offset. */
export function extendedAck(m: ReceivedMessage): { message?: string; offset?: number } {
  if (!(m.flags & NLM_F_ACK_TLVS)) return {};
  // error (4) + the original message: its header only when capped, else all of it.
  const original = m.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : readU32(m.payload, 4);
  const tlvs = parseAttrs(m.payload.subarray(4 + align4(original)));
  const text = tlvs.get(NLMSGERR_ATTR_MSG);
  const offs = tlvs.get(NLMSGERR_ATTR_OFFS);
  return {
    ...(text ? { message: readCString(text) } : {}),
    ...(offs && offs.length >= 4 ? { offset: readU32(offs, 0) } : {}),
  };
}

/** Bounded waits: a dump part is produced as it is read, so each recv waits at most this long. */
const DUMP_RECV_TIMEOUT_MS = 5000;
const DUMP_ATTEMPTS = 3;

export class NftNetlink {
  private seq: number;

  constructor(private readonly socket: NetlinkSocket) {
    // Distinct from other sockets' sequence numbers only for readability of traces; replies are
    // matched by seq within this socket.
    this.seq = (Date.now() & 0x7fffffff) >>> 0;
  }

  /** Open a NETLINK_NETFILTER socket, in the named network namespace when given. */
  static open(options: { netns?: string; receiveBufferBytes?: number } = {}): NftNetlink {
    const { NetlinkSocket: Socket } = loadAddon();
    const socket = options.netns
      ? new Socket(NETLINK_NETFILTER, netnsPath(options.netns))
      : new Socket(NETLINK_NETFILTER);
    // Every message of a batch is acked; a small default buffer would drop acks of a large batch (ENOBUFS).
    socket.setReceiveBufferSize(options.receiveBufferBytes ?? 8 << 20);
    return new NftNetlink(socket);
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    return this.seq;
  }

  /**
   * One transaction of element operations (adds and deletes in the order given: deletes of replaced
   * intervals first). All or nothing: on any error the kernel aborts the batch and this throws
   * NftBatchError naming each failed operation.
   */
  applyElements(ops: readonly ElementOp[]): BatchTiming {
    const started = process.hrtime.bigint();
    if (ops.length === 0) return { kernelMs: 0, totalMs: 0, messages: 0, bytes: 0 };
    const bySeq = new Map<number, ElementOp>();
    const msgs: NfMessage[] = [batchMessage('begin', this.nextSeq())];
    for (const op of ops) {
      const seq = this.nextSeq();
      bySeq.set(seq, op);
      msgs.push(elementMessage(op, seq));
    }
    const endSeq = this.nextSeq();
    msgs.push(batchMessage('end', endSeq));
    const firstSeq = msgs[0]?.seq ?? 0;
    const buf = encodeMessages(msgs);

    const sent = process.hrtime.bigint();
    this.socket.send(buf);
    // nfnetlink processes the batch inside send(): every ack and error is queued when it returns.
    const datagrams: Buffer[] = [];
    for (let d = this.socket.recv(0); d !== null; d = this.socket.recv(0)) datagrams.push(d);
    const kernelMs = elapsedMs(sent);

    const acked = new Set<number>();
    const failures: BatchFailure[] = [];
    for (const d of datagrams) {
      for (const m of splitMessages(d)) {
        // Replies of this batch only (matched by seq, which may wrap: no range test).
        if (m.type !== NLMSG_ERROR || !(bySeq.has(m.seq) || m.seq === firstSeq || m.seq === endSeq)) continue;
        const errno = -readI32(m.payload, 0);
        if (errno === 0) {
          acked.add(m.seq);
          continue;
        }
        const op = bySeq.get(m.seq);
        const ext = extendedAck(m);
        const item = op && ext.offset !== undefined ? itemAtOffset(op, ext.offset) : null;
        failures.push({
          errno,
          what: op ? describeOp(op, item) : 'commit of the batch',
          ...(ext.message ? { kernelMessage: ext.message } : {}),
        });
      }
    }
    if (failures.length > 0) throw new NftBatchError(failures);
    const missing = [...bySeq.keys()].filter((s) => !acked.has(s));
    if (missing.length > 0) {
      // Not refused, not confirmed: the acks were lost (receive buffer overrun). Say so rather than
      // report success for a transaction whose outcome is unknown.
      throw new Error(
        `nftables batch: ${missing.length} of ${bySeq.size} operations were not acknowledged (first: ${describeOp(
          bySeq.get(missing[0] as number) as ElementOp,
        )}); the outcome is unknown, read the set back`,
      );
    }
    return { kernelMs, totalMs: elapsedMs(started), messages: msgs.length, bytes: buf.length };
  }

  /** Send one dump request and collect its replies until NLMSG_DONE; retried when the ruleset changed mid-dump. */
  private dump(build: (seq: number) => NfMessage, what: string): ReceivedMessage[] {
    for (let attempt = 1; ; attempt++) {
      const request = build(this.nextSeq());
      this.socket.send(encodeMessages([request]));
      const replies: ReceivedMessage[] = [];
      let interrupted = false;
      for (;;) {
        const d = this.socket.recv(DUMP_RECV_TIMEOUT_MS);
        if (d === null)
          throw new Error(`nftables: no reply to the dump of ${what} within ${DUMP_RECV_TIMEOUT_MS} ms`);
        let done = false;
        for (const m of splitMessages(d)) {
          if (m.seq !== request.seq) continue;
          if (m.flags & NLM_F_DUMP_INTR) interrupted = true;
          if (m.type === NLMSG_ERROR) {
            const errno = -readI32(m.payload, 0);
            if (errno !== 0) throw new Error(`nftables: cannot list ${what}: ${describeErrno(errno)}`);
            done = true;
          } else if (m.type === NLMSG_DONE) {
            done = true;
          } else {
            replies.push(m);
          }
        }
        if (done) break;
      }
      if (!interrupted) return replies;
      if (attempt >= DUMP_ATTEMPTS) {
        throw new Error(`nftables: the ruleset kept changing while ${what} was listed (${attempt} attempts)`);
      }
    }
  }

  /** The elements of one set or map (GETSETELEM dump of that set only). */
  setElements(set: SetRef): KernelElement[] {
    return this.dump(
      (seq) => getSetElementsMessage(set, seq),
      `${set.family} ${set.table} ${set.set}`,
    ).flatMap(decodeElements);
  }

  /** Names of the tables of a family, or the chains or sets of one table: for drift checks. */
  listNames(kind: ListKind, family: NftFamilyName, table: string): string[] {
    const what = kind === 'tables' ? `${family} tables` : `${kind} of ${family} ${table}`;
    const names: string[] = [];
    for (const m of this.dump((seq) => listMessage(kind, family, table, seq), what)) {
      const n = listedName(kind, m);
      if (n && (kind === 'tables' || n.table === table)) names.push(n.name);
    }
    return names.sort();
  }

  close(): void {
    this.socket.close();
  }
}
