// VLAN-tagged frames on the addon's sockets (needs it built and root). The kernel strips an 802.1Q tag
// before a packet socket sees the frame, so a question asked on VLAN 10 reaches a socket bound to the
// untagged parent looking exactly like an untagged one; answering it would answer on the wrong layer2
// domain (untagged, where the asker is not). Such a frame is delivered as PACKET_OTHERHOST when no VLAN
// device takes it, or with the VLAN device's ifindex when one does: the addon passes neither to JavaScript.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ResultPromise, execa } from 'execa';

import { buildGratuitousArp } from '../../../src/l2/arp-frame.js';
import { buildNeighborSolicitation, parseNeighborSolicitation } from '../../../src/l2/ndp-frame.js';
import { Segment, requireNativeAddon, collectLines } from './topology.js';
import { pollFor } from '../../fixtures/polling.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const segment = new Segment(`pvl${process.pid % 100000}`, '192.168.235', '2001:db8:235');

// Runs inside the node namespace: an ARP and an NDP socket on eth0; one line per frame heard.
const PROBE = `
import { openArpSocket, openNdpSocket } from './src/l2/arp-socket.ts';
const arp = openArpSocket('eth0', (f, outgoing) => { if (!outgoing) console.log(JSON.stringify({ arp: f.toString('hex') })); });
const ndp = openNdpSocket('eth0', (f, outgoing) => { if (!outgoing) console.log(JSON.stringify({ ndp: f.toString('hex') })); });
for (const g of ['3333ff000010', '3333ff000011']) ndp.addMembership(Buffer.from(g, 'hex'));
console.log(JSON.stringify({ ready: true }));
process.stdin.on('data', () => { arp.close(); ndp.close(); process.exit(0); });
`;

let probe: ResultPromise | null = null;
const lines: string[] = [];

beforeAll(async () => {
  requireNativeAddon();
  await segment.create([
    { name: 'node', octet: 11 },
    { name: 'client', octet: 50 },
  ]);
}, 30_000);

afterAll(async () => {
  probe?.kill();
  await probe;
  await segment.destroy();
});

/** `frame` with an 802.1Q tag (VLAN `vid`) inserted after the MAC addresses. */
function tagged(frame: Buffer, vid: number): Buffer {
  const tag = Buffer.alloc(4);
  tag.writeUInt16BE(0x8100, 0);
  tag.writeUInt16BE(vid, 2);
  return Buffer.concat([frame.subarray(0, 12), tag, frame.subarray(12)]);
}

test('frames tagged for a VLAN this socket is not on are not delivered; untagged ones are', async () => {
  const node = segment.host('node');
  const client = segment.host('client');
  probe = execa(
    'ip',
    ['netns', 'exec', node.netns, process.execPath, '--import', 'tsx', '--input-type=module', '-e', PROBE],
    { cwd: ROOT, reject: false, buffer: false, all: true },
  );
  collectLines(probe, lines);
  await pollFor('the probe to open its sockets', 10_000, async () =>
    lines.some((l) => l.includes('"ready"')) ? true : null,
  );
  // Broadcast ARP requests (gratuitous form: sender = target) and multicast solicitations: .10 / ::10 on
  // VLAN 10, .11 / ::11 untagged, sent as raw frames by the client.
  const frames = [
    tagged(buildGratuitousArp(client.mac, '192.168.235.10', 'request'), 10),
    tagged(buildNeighborSolicitation(client.mac, client.ip6 as string, '2001:db8:235::10'), 10),
    buildGratuitousArp(client.mac, '192.168.235.11', 'request'),
    buildNeighborSolicitation(client.mac, client.ip6 as string, '2001:db8:235::11'),
  ];
  const script = `
import { openArpSocket } from './src/l2/arp-socket.ts';
const s = openArpSocket('eth0', () => undefined);
for (const f of ${JSON.stringify(frames.map((f) => f.toString('hex')))}) s.send(Buffer.from(f, 'hex'));
s.close();
`;
  await execa(
    'ip',
    ['netns', 'exec', client.netns, process.execPath, '--import', 'tsx', '--input-type=module', '-e', script],
    { cwd: ROOT },
  );
  const heard = () =>
    lines
      .filter((l) => l.startsWith('{"arp"') || l.startsWith('{"ndp"'))
      .map((l) => JSON.parse(l) as { arp?: string; ndp?: string });
  await pollFor('the untagged frames to be heard', 8_000, async () =>
    heard().some((f) => f.arp) && heard().some((f) => f.ndp) ? true : null,
  );
  await new Promise((r) => setTimeout(r, 300));
  const arpTargets = heard()
    .filter((f) => f.arp !== undefined)
    .map((f) =>
      Buffer.from(f.arp as string, 'hex')
        .subarray(38, 42)
        .join('.'),
    );
  const ndpTargets = heard()
    .filter((f) => f.ndp !== undefined)
    .map((f) => parseNeighborSolicitation(Buffer.from(f.ndp as string, 'hex'))?.targetIp)
    .filter((t) => t?.startsWith('2001:db8:235::1'));
  expect(arpTargets).toEqual(['192.168.235.11']);
  expect(ndpTargets).toEqual(['2001:db8:235::11']);
  probe.stdin?.write('stop\n');
  await probe;
}, 40_000);
