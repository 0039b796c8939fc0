import { ArpResponder } from '../../../src/l2/arp-responder.js';
import { buildGratuitousArp, parseArpSender } from '../../../src/l2/arp-frame.js';
import { FakeArpSocket, ManualTimers, fakeOpener } from './fakes.js';

const hex = (s: string) => Buffer.from(s.replace(/\s/g, ''), 'hex');
// who-has 192.168.1.100 tell 192.168.1.10
const whoHas100 = hex(
  'ffffffffffff 020000000001 0806 0001 0800 06 04 0001 020000000001 c0a8010a 000000000000 c0a80164',
);

function setup() {
  const { open, sockets } = fakeOpener();
  const timers = new ManualTimers();
  const responder = new ArpResponder('eth0', open, timers, { count: 3, intervalMs: 100 });
  responder.start();
  const socket = sockets.get('eth0') as FakeArpSocket;
  return { responder, socket, timers };
}

describe('ArpResponder', () => {
  test('answers requests for owned addresses with the interface MAC, unicast to the asker', () => {
    const { responder, socket } = setup();
    responder.setOwned(['192.168.1.100']);
    socket.sent.length = 0;
    socket.deliver(whoHas100, false);
    expect(socket.sent.map((f) => f.toString('hex'))).toEqual([
      hex(
        '020000000001 0200000000aa 0806 0001 0800 06 04 0002 0200000000aa c0a80164 020000000001 c0a8010a',
      ).toString('hex'),
    ]);
    expect(responder.counters.repliesSent).toBe(1);
  });

  test('never answers for addresses it does not own, its own outgoing frames, or gratuitous requests', () => {
    const { responder, socket } = setup();
    socket.deliver(whoHas100, false);
    responder.setOwned(['192.168.1.100']);
    socket.sent.length = 0;
    socket.deliver(whoHas100, true);
    socket.deliver(buildGratuitousArp('02:00:00:00:00:99', '192.168.1.100', 'request'), false);
    expect(socket.sent).toEqual([]);
    responder.setOwned([]);
    socket.deliver(whoHas100, false);
    expect(socket.sent).toEqual([]);
  });

  // MetalLB's arpResponder drops requests whose Ethernet destination is neither broadcast nor its own MAC
  // (a promiscuous interface or a bridge port also sees unicast refreshes meant for another host).
  test('answers a request unicast to its own MAC, not one unicast to another host', () => {
    const { responder, socket } = setup();
    responder.setOwned(['192.168.1.100']);
    socket.sent.length = 0;
    const toOther = Buffer.from(whoHas100);
    Buffer.from('0200000000bb', 'hex').copy(toOther, 0);
    socket.deliver(toOther, false);
    expect(socket.sent).toEqual([]);
    const toUs = Buffer.from(whoHas100);
    Buffer.from('0200000000aa', 'hex').copy(toUs, 0);
    socket.deliver(toUs, false);
    expect(socket.sent).toHaveLength(1);
  });

  test('ignores a request sent from its own MAC even when not flagged outgoing (looped back by a bridge)', () => {
    const { responder, socket } = setup();
    responder.setOwned(['192.168.1.100']);
    socket.sent.length = 0;
    const looped = Buffer.from(whoHas100);
    Buffer.from('0200000000aa', 'hex').copy(looped, 6); // Ethernet source
    Buffer.from('0200000000aa', 'hex').copy(looped, 22); // ARP sender MAC
    socket.deliver(looped, false);
    expect(socket.sent).toEqual([]);
  });

  test('taking an address sends a spaced burst of gratuitous request+reply; dropping it stops the burst', () => {
    const { responder, socket, timers } = setup();
    responder.setOwned(['192.168.1.100']);
    expect(socket.sent.map((f) => parseArpSender(f))).toEqual([
      { op: 'request', senderMac: '02:00:00:00:00:aa', senderIp: '192.168.1.100' },
      { op: 'reply', senderMac: '02:00:00:00:00:aa', senderIp: '192.168.1.100' },
    ]);
    timers.advance(99);
    expect(socket.sent).toHaveLength(2);
    timers.advance(1);
    expect(socket.sent).toHaveLength(4);
    // Re-asserting ownership does not restart the burst.
    responder.setOwned(['192.168.1.100']);
    timers.advance(1000);
    expect(socket.sent).toHaveLength(6);
    expect(responder.counters.gratuitousSent).toBe(6);
    responder.setOwned(['192.168.1.101']);
    responder.setOwned([]);
    timers.advance(1000);
    expect(socket.sent).toHaveLength(8);
    expect(timers.size).toBe(0);
  });

  test('stop closes the socket and cancels bursts', () => {
    const { responder, socket, timers } = setup();
    responder.setOwned(['192.168.1.100']);
    responder.stop();
    expect(socket.closed).toBe(true);
    expect(timers.size).toBe(0);
  });

  test('a failing send is counted, not thrown', () => {
    const { responder, socket } = setup();
    socket.close();
    responder.setOwned(['192.168.1.100']);
    expect(responder.counters.sendErrors).toBe(2);
  });
});
