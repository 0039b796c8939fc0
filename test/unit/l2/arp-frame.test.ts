import {
  buildArpReply,
  buildGratuitousArp,
  formatMac,
  macToBytes,
  parseArpRequest,
  parseArpSender,
} from '../../../src/l2/arp-frame.js';

const hex = (s: string) => Buffer.from(s.replace(/[\s|]/g, ''), 'hex');

// who-has 192.168.1.100 tell 192.168.1.10 (02:00:00:00:00:01)
const request = hex(`
  ffffffffffff 020000000001 0806 | 0001 0800 06 04 0001
  020000000001 c0a8010a | 000000000000 c0a80164`);

describe('ARP frames', () => {
  test('parseArpRequest reads a who-has', () => {
    expect(parseArpRequest(request)).toEqual({
      ethDst: 'ff:ff:ff:ff:ff:ff',
      ethSrc: '02:00:00:00:00:01',
      senderMac: '02:00:00:00:00:01',
      senderIp: '192.168.1.10',
      targetMac: '00:00:00:00:00:00',
      targetIp: '192.168.1.100',
    });
  });

  test('parseArpRequest accepts padded frames and rejects replies, other ethertypes and short frames', () => {
    expect(parseArpRequest(Buffer.concat([request, Buffer.alloc(18)]))?.targetIp).toBe('192.168.1.100');
    const reply = Buffer.from(request);
    reply.writeUInt16BE(2, 20);
    expect(parseArpRequest(reply)).toBeNull();
    const ipv4 = Buffer.from(request);
    ipv4.writeUInt16BE(0x0800, 12);
    expect(parseArpRequest(ipv4)).toBeNull();
    expect(parseArpRequest(request.subarray(0, 41))).toBeNull();
    const ipv6ptype = Buffer.from(request);
    ipv6ptype.writeUInt16BE(0x86dd, 16);
    expect(parseArpRequest(ipv6ptype)).toBeNull();
  });

  test('buildArpReply answers byte for byte', () => {
    const req = parseArpRequest(request);
    if (!req) throw new Error('unparsed');
    expect(buildArpReply(req, 'aa:bb:cc:dd:ee:ff').toString('hex')).toBe(
      hex(`
        020000000001 aabbccddeeff 0806 | 0001 0800 06 04 0002
        aabbccddeeff c0a80164 | 020000000001 c0a8010a`).toString('hex'),
    );
  });

  test('buildGratuitousArp as request and as reply, byte for byte', () => {
    expect(buildGratuitousArp('aa:bb:cc:dd:ee:ff', '10.0.0.1', 'request').toString('hex')).toBe(
      hex(`ffffffffffff aabbccddeeff 0806 | 0001 0800 06 04 0001
           aabbccddeeff 0a000001 | 000000000000 0a000001`).toString('hex'),
    );
    expect(buildGratuitousArp('aa:bb:cc:dd:ee:ff', '10.0.0.1', 'reply').toString('hex')).toBe(
      hex(`ffffffffffff aabbccddeeff 0806 | 0001 0800 06 04 0002
           aabbccddeeff 0a000001 | ffffffffffff 0a000001`).toString('hex'),
    );
  });

  test('parseArpSender reads requests and replies', () => {
    expect(parseArpSender(buildGratuitousArp('aa:bb:cc:dd:ee:ff', '10.0.0.1', 'reply'))).toEqual({
      op: 'reply',
      senderMac: 'aa:bb:cc:dd:ee:ff',
      senderIp: '10.0.0.1',
    });
  });

  test('bad MAC and IP are reported by value', () => {
    expect(() => macToBytes('aa:bb:cc:dd:ee')).toThrow('invalid MAC address "aa:bb:cc:dd:ee"');
    expect(() => buildGratuitousArp('aa:bb:cc:dd:ee:ff', '2001:db8::1', 'reply')).toThrow(
      'invalid IPv4 address "2001:db8::1"',
    );
    expect(formatMac(Buffer.from([0, 1, 2, 0xab, 0xcd, 0xef]))).toBe('00:01:02:ab:cd:ef');
  });
});

describe('buildArpRequest', () => {
  test('a broadcast who-has that parseArpRequest reads back, byte for byte', async () => {
    const { buildArpRequest } = await import('../../../src/l2/arp-frame.js');
    const frame = buildArpRequest('02:00:00:00:00:01', '10.0.0.5', '10.0.0.200');
    expect(frame.toString('hex')).toBe(
      'ffffffffffff' +
        '020000000001' +
        '0806' +
        '0001' +
        '0800' +
        '06' +
        '04' +
        '0001' +
        '020000000001' +
        '0a000005' +
        '000000000000' +
        '0a0000c8',
    );
    expect(parseArpRequest(frame)).toEqual({
      ethDst: 'ff:ff:ff:ff:ff:ff',
      ethSrc: '02:00:00:00:00:01',
      senderMac: '02:00:00:00:00:01',
      senderIp: '10.0.0.5',
      targetMac: '00:00:00:00:00:00',
      targetIp: '10.0.0.200',
    });
  });
});
