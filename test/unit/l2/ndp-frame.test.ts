import {
  NA_FRAME_LENGTH,
  buildNeighborAdvertisement,
  buildNeighborSolicitation,
  buildUnsolicitedAdvertisement,
  icmpv6Checksum,
  parseNeighborAdvertisement,
  parseNeighborSolicitation,
  solicitedNodeMac,
  solicitedNodeMulticast,
} from '../../../src/l2/ndp-frame.js';

const hex = (s: string) => Buffer.from(s.replace(/[\s|]/g, ''), 'hex');

// Captured with an AF_PACKET socket between two namespaces (Linux 6.x, forwarding off): the client
// 2001:db8:1::50 (02:00:00:00:03:01) resolving 2001:db8:1::1, configured on the node (02:00:00:00:01:01).
// The kernel's solicitation, to the solicited-node group ff02::1:ff00:1, with its source link-layer option:
const kernelNS = hex(`
  3333ff000001 020000000301 86dd | 60000000 0020 3a ff
  20010db8000100000000000000000050 | ff0200000000000000000001ff000001
  87 00 18d8 00000000 | 20010db8000100000000000000000001 | 01 01 020000000301`);
// …and the node kernel's answer: unicast, from the target, Solicited + Override, target link-layer option.
const kernelNA = hex(`
  020000000301 020000000101 86dd | 60000000 0020 3a ff
  20010db8000100000000000000000001 | 20010db8000100000000000000000050
  88 00 8922 60000000 | 20010db8000100000000000000000001 | 02 01 020000000101`);

describe('NDP frames', () => {
  test('solicited-node multicast address and its Ethernet group', () => {
    expect(solicitedNodeMulticast('2001:db8:1::1')).toBe('ff02::1:ff00:1');
    expect(solicitedNodeMulticast('2001:db8::12:3456:789a')).toBe('ff02::1:ff56:789a');
    expect(solicitedNodeMac('2001:db8::12:3456:789a')).toBe('33:33:ff:56:78:9a');
  });

  test("the checksum of the kernel's frames verifies (sums to zero) and is recomputed identically", () => {
    for (const f of [kernelNS, kernelNA]) {
      expect(icmpv6Checksum(f.subarray(22, 38), f.subarray(38, 54), f.subarray(54))).toBe(0);
      const zeroed = Buffer.from(f);
      zeroed.writeUInt16BE(0, 56);
      expect(icmpv6Checksum(f.subarray(22, 38), f.subarray(38, 54), zeroed.subarray(54))).toBe(
        f.readUInt16BE(56),
      );
    }
  });

  test("parseNeighborSolicitation reads the kernel's solicitation", () => {
    expect(parseNeighborSolicitation(kernelNS)).toEqual({
      ethDst: '33:33:ff:00:00:01',
      ethSrc: '02:00:00:00:03:01',
      srcIp: '2001:db8:1::50',
      dstIp: 'ff02::1:ff00:1',
      targetIp: '2001:db8:1::1',
      sourceLinkAddress: '02:00:00:00:03:01',
      dad: false,
    });
  });

  test('buildNeighborAdvertisement answers it byte for byte as the kernel does', () => {
    const ns = parseNeighborSolicitation(kernelNS);
    if (!ns) throw new Error('unparsed');
    const na = buildNeighborAdvertisement(ns, '02:00:00:00:01:01');
    expect(na).toHaveLength(NA_FRAME_LENGTH);
    expect(na.toString('hex')).toBe(kernelNA.toString('hex'));
  });

  test('buildNeighborSolicitation reproduces the kernel solicitation byte for byte', () => {
    expect(
      buildNeighborSolicitation('02:00:00:00:03:01', '2001:db8:1::50', '2001:db8:1::1').toString('hex'),
    ).toBe(kernelNS.toString('hex'));
  });

  test('the answer goes to the source link-layer option, else to the Ethernet source', () => {
    const ns = parseNeighborSolicitation(kernelNS);
    if (!ns) throw new Error('unparsed');
    const viaOption = buildNeighborAdvertisement({ ...ns, ethSrc: '02:00:00:00:09:09' }, '02:00:00:00:01:01');
    expect(viaOption.subarray(0, 6).toString('hex')).toBe('020000000301');
    const noOption = buildNeighborAdvertisement({ ...ns, sourceLinkAddress: null }, '02:00:00:00:01:01');
    expect(noOption.subarray(0, 6).toString('hex')).toBe('020000000301');
    expect(() => buildNeighborAdvertisement({ ...ns, srcIp: '::', dad: true }, '02:00:00:00:01:01')).toThrow(
      /DAD/,
    );
  });

  test('buildUnsolicitedAdvertisement: to all nodes, Override only, target link-layer option, byte for byte', () => {
    const na = buildUnsolicitedAdvertisement('02:00:00:00:01:01', '2001:db8:1::1');
    expect(na.toString('hex')).toBe(
      hex(`
        333300000001 020000000101 86dd | 60000000 0020 3a ff
        20010db8000100000000000000000001 | ff020000000000000000000000000001
        88 00 ${na.subarray(56, 58).toString('hex')} 20000000 | 20010db8000100000000000000000001 | 02 01 020000000101`).toString(
        'hex',
      ),
    );
    // The checksum, computed independently (python3 one-liner over pseudo-header + message).
    expect(na.readUInt16BE(56)).toBe(0xf828);
    expect(parseNeighborAdvertisement(na)).toEqual({
      ethDst: '33:33:00:00:00:01',
      ethSrc: '02:00:00:00:01:01',
      srcIp: '2001:db8:1::1',
      dstIp: 'ff02::1',
      targetIp: '2001:db8:1::1',
      router: false,
      solicited: false,
      override: true,
      targetLinkAddress: '02:00:00:00:01:01',
    });
  });

  test('a DAD probe parses as dad, without a link-layer address', () => {
    const probe = buildNeighborSolicitation('02:00:00:00:03:01', '::', '2001:db8:1::1');
    expect(probe.readUInt16BE(18)).toBe(24);
    expect(parseNeighborSolicitation(probe)).toMatchObject({
      srcIp: '::',
      dad: true,
      sourceLinkAddress: null,
    });
  });

  test('rejects what RFC 4861 7.1.1 says to discard, other messages, and short or padded frames right', () => {
    const mutate = (at: number, value: number, fixChecksum = true) => {
      const f = Buffer.from(kernelNS);
      f.writeUInt8(value, at);
      if (fixChecksum) {
        f.writeUInt16BE(0, 56);
        f.writeUInt16BE(icmpv6Checksum(f.subarray(22, 38), f.subarray(38, 54), f.subarray(54)), 56);
      }
      return f;
    };
    expect(parseNeighborSolicitation(mutate(21, 64))).toBeNull(); // hop limit not 255: routed from elsewhere
    expect(parseNeighborSolicitation(mutate(55, 1))).toBeNull(); // code not 0
    expect(parseNeighborSolicitation(mutate(60, 0x12, false))).toBeNull(); // bad checksum
    expect(parseNeighborSolicitation(mutate(62, 0xff))).toBeNull(); // multicast target
    expect(parseNeighborSolicitation(mutate(79, 0))).toBeNull(); // option of length 0
    expect(parseNeighborSolicitation(mutate(20, 17, false))).toBeNull(); // UDP, not ICMPv6
    expect(parseNeighborSolicitation(mutate(54, 128))).toBeNull(); // echo request
    expect(parseNeighborSolicitation(kernelNA)).toBeNull();
    expect(parseNeighborAdvertisement(kernelNS)).toBeNull();
    expect(parseNeighborSolicitation(kernelNS.subarray(0, 80))).toBeNull();
    // Ethernet padding after the payload is ignored.
    expect(parseNeighborSolicitation(Buffer.concat([kernelNS, Buffer.alloc(10)]))?.targetIp).toBe(
      '2001:db8:1::1',
    );
    // A DAD probe (from ::) with a source link-layer option is invalid.
    const badDad = buildNeighborSolicitation('02:00:00:00:03:01', '::', '2001:db8:1::1');
    expect(parseNeighborSolicitation(Buffer.from(badDad))).not.toBeNull();
    const withSll = Buffer.from(kernelNS);
    withSll.fill(0, 22, 38);
    withSll.writeUInt16BE(0, 56);
    withSll.writeUInt16BE(
      icmpv6Checksum(withSll.subarray(22, 38), withSll.subarray(38, 54), withSll.subarray(54)),
      56,
    );
    expect(parseNeighborSolicitation(withSll)).toBeNull();
  });
});
