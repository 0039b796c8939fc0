import {
  buildNeighborSolicitation,
  icmpv6Checksum,
  parseNeighborAdvertisement,
  parseNeighborSolicitation,
} from '../../../src/l2/ndp-frame.js';
import { NdpResponder, decideSolicitation } from '../../../src/l2/ndp-responder.js';
import { FakeNdpSocket, ManualTimers, fakeNdpOpener } from './fakes.js';

const OUR_MAC = '02:00:00:00:00:aa'; // the fake socket's
const CLIENT_MAC = '02:00:00:00:00:01';
const VIP = '2001:db8::100';
const whoHasVip = buildNeighborSolicitation(CLIENT_MAC, '2001:db8::10', VIP);

function setup() {
  const { open, sockets } = fakeNdpOpener();
  const timers = new ManualTimers();
  const responder = new NdpResponder('eth0', open, timers, { count: 3, intervalMs: 100 });
  responder.start();
  const socket = sockets.get('eth0') as FakeNdpSocket;
  return { responder, socket, timers };
}

/** A copy of `frame` with Ethernet destination `mac` (the checksum does not cover it). */
function toEthernet(frame: Buffer, mac: string): Buffer {
  const f = Buffer.from(frame);
  Buffer.from(mac.replace(/:/g, ''), 'hex').copy(f, 0);
  return f;
}

describe('NdpResponder', () => {
  test('answers a solicitation for an owned address: unicast to the asker, Solicited + Override, our MAC', () => {
    const { responder, socket } = setup();
    responder.setOwned([VIP]);
    socket.sent.length = 0;
    expect(responder.handleFrame(whoHasVip, false)).toBe('');
    expect(socket.sent).toHaveLength(1);
    expect(parseNeighborAdvertisement(socket.sent[0] as Buffer)).toEqual({
      ethDst: CLIENT_MAC,
      ethSrc: OUR_MAC,
      srcIp: VIP,
      dstIp: '2001:db8::10',
      targetIp: VIP,
      router: false,
      solicited: true,
      override: true,
      targetLinkAddress: OUR_MAC,
    });
    expect(responder.counters).toMatchObject({ solicitationsSeen: 1, repliesSent: 1 });
  });

  test('owned addresses are compared in canonical form', () => {
    const { responder, socket } = setup();
    responder.setOwned(['2001:DB8:0:0::100']);
    socket.sent.length = 0;
    expect(responder.handleFrame(whoHasVip, false)).toBe('');
    expect(responder.ownedAddresses()).toEqual([VIP]);
  });

  test('never answers for addresses it does not own, or once ownership moved', () => {
    const { responder, socket } = setup();
    expect(responder.handleFrame(whoHasVip, false)).toBe('notOwned');
    responder.setOwned([VIP]);
    responder.setOwned([]);
    socket.sent.length = 0;
    expect(responder.handleFrame(whoHasVip, false)).toBe('notOwned');
    expect(socket.sent).toEqual([]);
    expect(responder.drops.get('notOwned')).toBe(2);
  });

  // MetalLB's ndpClient drops solicitations without a source link-layer option, which RFC 4861 forbids in
  // DAD probes: a DAD probe for a VIP is not answered (see NdpDropReason 'dad').
  test('ignores DAD probes (from ::), as MetalLB does', () => {
    const { responder, socket } = setup();
    responder.setOwned([VIP]);
    socket.sent.length = 0;
    expect(responder.handleFrame(buildNeighborSolicitation(CLIENT_MAC, '::', VIP), false)).toBe('dad');
    expect(socket.sent).toEqual([]);
  });

  test('ignores its own frames: flagged outgoing, or from its own MAC', () => {
    const { responder, socket } = setup();
    responder.setOwned([VIP]);
    socket.sent.length = 0;
    expect(responder.handleFrame(whoHasVip, true)).toBe('outgoing');
    expect(responder.handleFrame(buildNeighborSolicitation(OUR_MAC, '2001:db8::1', VIP), false)).toBe(
      'fromSelf',
    );
    expect(socket.sent).toEqual([]);
  });

  test('answers a unicast probe to its own MAC, not one to another host or another group', () => {
    const { responder, socket } = setup();
    responder.setOwned([VIP]);
    socket.sent.length = 0;
    expect(responder.handleFrame(toEthernet(whoHasVip, '02:00:00:00:00:bb'), false)).toBe('notForUs');
    expect(responder.handleFrame(toEthernet(whoHasVip, '33:33:ff:00:09:99'), false)).toBe('notForUs');
    expect(responder.handleFrame(toEthernet(whoHasVip, OUR_MAC), false)).toBe('');
    expect(socket.sent).toHaveLength(1);
  });

  test('drops what is not a valid solicitation (hop limit not 255, other messages)', () => {
    const { responder, socket } = setup();
    responder.setOwned([VIP]);
    socket.sent.length = 0;
    const routed = Buffer.from(whoHasVip);
    routed.writeUInt8(64, 21); // the hop limit is not under the checksum
    expect(responder.handleFrame(routed, false)).toBe('notSolicitation');
    expect(responder.handleFrame(Buffer.alloc(60), false)).toBe('notSolicitation');
    expect(socket.sent).toEqual([]);
  });

  test('the decision without a source link-layer address: noSourceLinkAddress (MetalLB)', () => {
    const ns = parseNeighborSolicitation(whoHasVip);
    if (!ns) throw new Error('unparsed');
    expect(decideSolicitation({ ...ns, sourceLinkAddress: null }, new Set([VIP]), OUR_MAC)).toBe(
      'noSourceLinkAddress',
    );
    expect(decideSolicitation({ ...ns, dstIp: 'ff02::1' }, new Set([VIP]), OUR_MAC)).toBe('notForUs');
    expect(decideSolicitation({ ...ns, dstIp: VIP }, new Set([VIP]), OUR_MAC)).toBe('');
  });

  test('joins the solicited-node group of each owned address once, and leaves it when the last one goes', () => {
    const { responder, socket } = setup();
    // ::100 and ::1:0:100 share the low 24 bits, so one group.
    responder.setOwned([VIP, '2001:db8::1:0:100', '2001:db8::200']);
    expect([...socket.groups].sort()).toEqual(['33:33:ff:00:01:00', '33:33:ff:00:02:00']);
    responder.setOwned(['2001:db8::1:0:100']);
    expect([...socket.groups]).toEqual(['33:33:ff:00:01:00']);
    responder.setOwned([]);
    expect(socket.groups.size).toBe(0);
    expect(socket.membershipLog).toEqual([
      '+33:33:ff:00:01:00',
      '+33:33:ff:00:02:00',
      '-33:33:ff:00:02:00',
      '-33:33:ff:00:01:00',
    ]);
    expect(responder.counters.membershipErrors).toBe(0);
  });

  test('taking an address sends a spaced burst of unsolicited advertisements; losing it stops the burst', () => {
    const { responder, socket, timers } = setup();
    responder.setOwned([VIP]);
    expect(socket.sent.map((f) => parseNeighborAdvertisement(f))).toEqual([
      {
        ethDst: '33:33:00:00:00:01',
        ethSrc: OUR_MAC,
        srcIp: VIP,
        dstIp: 'ff02::1',
        targetIp: VIP,
        router: false,
        solicited: false,
        override: true,
        targetLinkAddress: OUR_MAC,
      },
    ]);
    timers.advance(99);
    expect(socket.sent).toHaveLength(1);
    timers.advance(1);
    expect(socket.sent).toHaveLength(2);
    responder.setOwned([VIP]); // re-asserting does not restart it
    timers.advance(1000);
    expect(socket.sent).toHaveLength(3);
    expect(responder.counters.unsolicitedSent).toBe(3);
    responder.setOwned(['2001:db8::101']);
    responder.setOwned([]);
    timers.advance(1000);
    expect(socket.sent).toHaveLength(4);
    expect(timers.size).toBe(0);
  });

  test('every sent frame carries a valid ICMPv6 checksum', () => {
    const { responder, socket } = setup();
    responder.setOwned([VIP]);
    responder.handleFrame(whoHasVip, false);
    for (const f of socket.sent) {
      expect(icmpv6Checksum(f.subarray(22, 38), f.subarray(38, 54), f.subarray(54))).toBe(0);
    }
  });

  test('stop closes the socket and cancels bursts; failures are counted, not thrown', () => {
    const { responder, socket, timers } = setup();
    responder.setOwned([VIP]);
    responder.stop();
    expect(socket.closed).toBe(true);
    expect(timers.size).toBe(0);
    const other = setup();
    other.socket.close();
    other.responder.setOwned([VIP]);
    expect(other.responder.counters).toMatchObject({ sendErrors: 1, membershipErrors: 1 });
  });
});
