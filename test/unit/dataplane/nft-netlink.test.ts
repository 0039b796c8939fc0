// nf_tables netlink messages built in TypeScript (src/dataplane/nft-netlink): the element bytes are
// compared with what nft 1.0.6 itself sends (captured with `strace -xx -e sendmsg nft add element …`
// on kernel 6.18), the batch framing with nfnetlink's, and read-back with the encoder's output.
import { describe, expect, it } from '@jest/globals';
import {
  type ElementOp,
  NFT_SET_ELEM_INTERVAL_END,
  NLMSG_HDRLEN,
  NFGENMSG_LEN,
  NLM_F_ACK,
  NLM_F_CREATE,
  NLM_F_EXCL,
  NLM_F_REQUEST,
  batchMessage,
  decodeElements,
  describeErrno,
  elementCommandOps,
  elementMessage,
  encodeMessages,
  endpointMapElements,
  endpointMapOp,
  itemAtOffset,
  endpointMapText,
  intervalElements,
  intervalsOf,
  numgenKey,
  parseAttrs,
  splitMessages,
} from '../../../src/dataplane/nft-netlink/index.js';

const set = { family: 'ip' as const, table: 'portway', set: 'eps-x' };
const hex = (s: string): string => s.replace(/\s+/g, '');

/** The NFTA_SET_ELEM_LIST_ELEMENTS attribute (header included) of an encoded NEWSETELEM/DELSETELEM. */
function elementsAttr(op: ElementOp): string {
  const [msg] = splitMessages(encodeMessages([elementMessage(op, 1)]));
  const attrs = msg?.payload.subarray(NFGENMSG_LEN) as Buffer;
  // Walk to attribute type 3 keeping its header.
  let at = 0;
  while (at < attrs.length) {
    const len = attrs.readUInt16LE(at);
    if ((attrs.readUInt16LE(at + 2) & 0x3fff) === 3) return attrs.subarray(at, at + len).toString('hex');
    at += (len + 3) & ~3;
  }
  throw new Error('no elements attribute');
}

describe('element messages', () => {
  it('writes an interval of a data map exactly as nft 1.0.6 does: start with data, end one past flagged INTERVAL_END', () => {
    const elements = endpointMapElements('ip', { key: '0-524287', value: '10.244.1.2 . 8080' }, true);
    // nft add element ip portway eps-x { 0-524287 : 10.244.1.2 . 8080 }
    expect(elementsAttr({ op: 'add', set, items: [{ elements, describe: '' }] })).toBe(
      hex(`3c000380
        20000180 0c000180 08000100 00000000 10000280 0c000100 0af40102 1f900000
        18000280 08000300 00000001 0c000180 08000100 00080000`),
    );
  });

  it('writes a goto element of a verdict interval map exactly as nft 1.0.6 does', () => {
    const elements = endpointMapElements('ip', { key: '0-524287', value: 'goto c1' }, true);
    // nft add element ip portway vm { 0-524287 : goto c1 }
    expect(elementsAttr({ op: 'add', set: { ...set, set: 'vm' }, items: [{ elements, describe: '' }] })).toBe(
      hex(`44000380
        28000180 0c000180 08000100 00000000 18000280 14000280 08000100 fffffffc 07000200 63310000
        18000280 08000300 00000001 0c000180 08000100 00080000`),
    );
  });

  it('deletes an interval by its start key (no data) and its end element', () => {
    const elements = endpointMapElements('ip', { key: '0-524287' }, false);
    expect(elements).toEqual([
      { key: numgenKey(0) },
      { key: numgenKey(524288), flags: NFT_SET_ELEM_INTERVAL_END },
    ]);
  });

  it('writes IPv6 address . port as 16 + 4 bytes (the port padded to a register)', () => {
    const [start] = endpointMapElements('ip6', { key: '0-9', value: 'fd00::1:2 . 443' }, true);
    expect((start?.data as Buffer).toString('hex')).toBe('fd000000000000000000000000010002' + '01bb0000');
  });

  it('frames a batch for the nf_tables subsystem; adds carry ACK|CREATE, exclusive adds EXCL too', () => {
    const add = endpointMapElements('ip', { key: '0-1', value: '10.0.0.1 . 80' }, true);
    const buf = encodeMessages([
      batchMessage('begin', 7),
      elementMessage({ op: 'add', set, items: [{ elements: add, describe: '' }] }, 8),
      elementMessage({ op: 'add', set, items: [{ elements: add, describe: '' }], exclusive: true }, 9),
      elementMessage({ op: 'delete', set, items: [{ elements: add, describe: '' }] }, 10),
      batchMessage('end', 11),
    ]);
    const msgs = splitMessages(buf);
    expect(msgs.map((m) => [m.type, m.flags, m.seq])).toEqual([
      [0x10, NLM_F_REQUEST, 7],
      [(10 << 8) | 12, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE, 8],
      [(10 << 8) | 12, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, 9],
      [(10 << 8) | 14, NLM_F_REQUEST | NLM_F_ACK, 10],
      [0x11, NLM_F_REQUEST, 11],
    ]);
    // nfgenmsg of begin/end: AF_UNSPEC, version 0, res_id = htons(NFNL_SUBSYS_NFTABLES); elements: AF_INET.
    expect(msgs[0]?.payload.subarray(0, 4).toString('hex')).toBe('0000000a');
    expect(msgs[1]?.payload.subarray(0, 4).toString('hex')).toBe('02000000');
    expect(buf.length).toBe(msgs.reduce((n, m) => n + ((NLMSG_HDRLEN + m.payload.length + 3) & ~3), 0));
  });

  it('refuses what it cannot encode, naming the value', () => {
    expect(() => endpointMapElements('ip', { key: '0-9', value: 'fd00::1 . 80' }, true)).toThrow(
      'not an IPv4 address: "fd00::1"',
    );
    expect(() => endpointMapElements('ip', { key: 'x', value: '10.0.0.1 . 80' }, true)).toThrow(
      'element key "x" is not a numgen range',
    );
    expect(() => endpointMapElements('ip', { key: '5-1', value: '10.0.0.1 . 80' }, true)).toThrow(
      'is after its end',
    );
    expect(() => endpointMapElements('ip', { key: '0-1', value: '10.0.0.1:80' }, true)).toThrow(
      'neither "address . port" nor a verdict',
    );
  });
});

// The planner's element commands (planNftablesUpdate().elementCommands) through elementCommandOps.
describe('element commands of the planner', () => {
  // NFTA_SET_ELEM_LIST_ELEMENTS as nft 1.0.6 sent it (`strace -xx -e sendmsg nft -f` on `add element ip
  // t eps { 0-524287 : 10.244.1.2 . 8080, 524288-1048575 : 10.244.2.3 . 8080 }`): two intervals in one
  // message, list entries numbered 1-4 across them.
  const NFT_TWO_INTERVALS = hex(`7400 0380
    2000 0180 0c00 0180 0800 0100 00000000 1000 0280 0c00 0100 0af40102 1f900000
    1800 0280 0800 0300 00000001 0c00 0180 0800 0100 00080000
    2000 0380 0c00 0180 0800 0100 00080000 1000 0280 0c00 0100 0af40203 1f900000
    1800 0480 0800 0300 00000001 0c00 0180 0800 0100 00100000`);
  const eps = { set: 'eps', role: 'endpoints', verdicts: false } as const;

  it('an add of two intervals is, after the header, the bytes nft sends', () => {
    const [op] = elementCommandOps('ip', 't', [
      {
        op: 'add',
        ...eps,
        elements: [
          { key: '0-524287', value: '10.244.1.2 . 8080' },
          { key: '524288-1048575', value: '10.244.2.3 . 8080' },
        ],
      },
    ]);
    const buf = encodeMessages([elementMessage(op as ElementOp, 1)]);
    // nlmsghdr: NFNL_SUBSYS_NFTABLES<<8 | NEWSETELEM, REQUEST|ACK|CREATE; nfgenmsg AF_INET, v0, res_id 0;
    // table "t", set "eps" (nft also sends a set id: the kernel does not need it), then the elements.
    expect([buf.readUInt32LE(0), buf.readUInt16LE(4), buf.readUInt16LE(6)]).toEqual([
      buf.length,
      0x0a0c,
      0x405,
    ]);
    expect(buf.subarray(16).toString('hex')).toBe(
      hex(`02000000 0600 0100 74000000 0800 0200 65707300`) + NFT_TWO_INTERVALS,
    );
  });

  it('keeps the planner order (deletes first) and encodes hairpin address pairs', () => {
    const ops = elementCommandOps('ip6', 'portway', [
      { op: 'delete', ...eps, elements: [{ key: '0-1048575' }] },
      {
        op: 'add',
        set: 'hairpin-endpoints',
        role: 'static',
        verdicts: false,
        elements: [{ key: 'fd00::1 . fd00::1' }],
      },
    ]);
    expect(ops.map((o) => [o.op, o.set.set, o.items.flatMap((i) => i.elements).length])).toEqual([
      ['delete', 'eps', 2],
      ['add', 'hairpin-endpoints', 1],
    ]);
    expect(ops[1]?.items[0]?.elements[0]?.key.toString('hex')).toBe(
      'fd000000000000000000000000000001'.repeat(2),
    );
    const [v4] = elementCommandOps('ip', 'portway', [
      {
        op: 'add',
        set: 'hairpin-endpoints',
        role: 'static',
        verdicts: false,
        elements: [{ key: '10.0.0.1 . 10.0.0.1' }],
      },
    ]);
    expect(v4?.items[0]?.elements).toEqual([{ key: Buffer.from('0a0000010a000001', 'hex') }]);
  });

  it('refuses a set it has no layout for, and a bad element, naming the set', () => {
    const command = (set: string, role: 'static' | 'endpoints', key: string, value?: string) => ({
      op: 'add' as const,
      set,
      role,
      verdicts: true,
      elements: [value === undefined ? { key } : { key, value }],
    });
    expect(() =>
      elementCommandOps('ip', 'portway', [command('service-ips', 'static', '10.96.0.1', 'goto svc-x')]),
    ).toThrow('nftables netlink: set ip portway service-ips: element updates of this set are not encoded');
    expect(() =>
      elementCommandOps('ip', 'portway', [command('eps-x', 'endpoints', '0-9', 'fd00::1 . 80')]),
    ).toThrow('nftables netlink: set ip portway eps-x: not an IPv4 address: "fd00::1"');
  });
});

describe('extended-ack offsets', () => {
  it('map an offset inside the message back to the item (interval) it belongs to', () => {
    const op = endpointMapOp('add', set, [
      { key: '0-9', value: '10.0.0.1 . 80' },
      { key: '10-19', value: '10.0.0.2 . 80' },
    ]);
    const [msg] = splitMessages(encodeMessages([elementMessage(op, 1)]));
    // Offsets as the kernel counts them: from the start of the nlmsghdr. Find the list entries.
    const payload = msg?.payload as Buffer;
    const attrsStart = NLMSG_HDRLEN + NFGENMSG_LEN;
    let at = attrsStart;
    let listAt = -1;
    while (at - NLMSG_HDRLEN < payload.length) {
      const len = payload.readUInt16LE(at - NLMSG_HDRLEN);
      if ((payload.readUInt16LE(at - NLMSG_HDRLEN + 2) & 0x3fff) === 3) listAt = at + 4;
      at += (len + 3) & ~3;
    }
    const entryLen = (i: number) => payload.readUInt16LE(listAt - NLMSG_HDRLEN + i);
    const second = entryLen(0) + entryLen(entryLen(0)); // two entries (start, end) per interval
    expect(itemAtOffset(op, listAt)?.describe).toBe('0-9 : 10.0.0.1 . 80');
    expect(itemAtOffset(op, listAt + second)?.describe).toBe('10-19 : 10.0.0.2 . 80');
    expect(itemAtOffset(op, attrsStart)).toBeNull(); // the table name
  });
});

describe('reading elements back', () => {
  it('decodes what it encodes into the renderer text form (IPv4, IPv6, verdicts)', () => {
    for (const [family, value] of [
      ['ip', '10.244.1.2 . 8080'],
      ['ip6', 'fd00::2 . 8080'],
      ['ip', 'goto ep-x__10.0.0.1/80'],
    ] as const) {
      const elements = [
        ...endpointMapElements(family, { key: '524288-1048575', value }, true),
        ...endpointMapElements(family, { key: '0-524287', value }, true),
      ];
      const [msg] = splitMessages(
        encodeMessages([elementMessage({ op: 'add', set, items: [{ elements, describe: '' }] }, 1)]),
      );
      expect(endpointMapText(family, decodeElements(msg as never))).toEqual([
        { key: '0-524287', value },
        { key: '524288-1048575', value },
      ]);
    }
  });

  it('pairs a dump in the kernel order (ends before starts, descending) into intervals', () => {
    const a = intervalElements(numgenKey(0), numgenKey(9), Buffer.from('aa', 'hex'));
    const b = intervalElements(numgenKey(10), numgenKey(19), Buffer.from('bb', 'hex'));
    const iv = intervalsOf([...b].reverse().concat([...a].reverse()));
    expect(
      iv.map((i) => [
        i.start.readUInt32BE(0),
        i.endExclusive?.readUInt32BE(0),
        (i.data as Buffer).toString('hex'),
      ]),
    ).toEqual([
      [0, 10, 'aa'],
      [10, 20, 'bb'],
    ]);
  });

  it('omits the end element of an interval that runs to the largest key, as nft does', () => {
    expect(intervalElements(numgenKey(5), numgenKey(0xffffffff))).toEqual([{ key: numgenKey(5) }]);
  });

  it('refuses a truncated datagram instead of reading past it', () => {
    const buf = encodeMessages([batchMessage('begin', 1)]);
    buf.writeUInt32LE(64, 0);
    expect(() => splitMessages(buf)).toThrow('malformed message');
    expect(() => parseAttrs(Buffer.from('20000100', 'hex'))).toThrow('malformed attribute');
  });

  it('explains errnos with the name and what it means for a set element', () => {
    expect(describeErrno(2)).toMatch(
      /\(ENOENT: the table, the set or \(delete\) the element does not exist\)$/,
    );
    expect(describeErrno(17)).toMatch(/EEXIST/);
  });
});
