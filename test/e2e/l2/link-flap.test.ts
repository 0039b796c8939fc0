// The addon's sockets across a link flap (needs it built and root). When an interface goes down the
// kernel reports ENETDOWN on every packet socket bound to it (POLLERR), and libuv stops a poll handle on
// POLLERR; the kernel resumes delivery when the link comes back up, so the socket must keep polling —
// otherwise one `ip link set eth0 down; … up` (a cable pull, a switch reboot) silences the responder for
// good while it still looks healthy. Fails loudly when the addon is missing.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ResultPromise, execa } from 'execa';

import { buildNeighborSolicitation } from '../../../src/l2/ndp-frame.js';
import { Segment, requireNativeAddon, collectLines } from './topology.js';
import { pollFor } from '../../fixtures/polling.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const segment = new Segment(`pfl${process.pid % 100000}`, '192.168.234', '2001:db8:234');
const VIP = '192.168.234.100';
const VIP6 = '2001:db8:234::100';

// Runs inside the node namespace: an ARP and an NDP socket on eth0; one line per frame heard.
const PROBE = `
import { openArpSocket, openNdpSocket } from './src/l2/arp-socket.ts';
const arp = openArpSocket('eth0', (f, outgoing) => { if (!outgoing) console.log(JSON.stringify({ arp: f.length })); });
const ndp = openNdpSocket('eth0', (f, outgoing) => { if (!outgoing) console.log(JSON.stringify({ ndp: f.length })); });
ndp.addMembership(Buffer.from('3333ff000100', 'hex'));
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

const count = (kind: 'arp' | 'ndp') => lines.filter((l) => l.startsWith(`{"${kind}"`)).length;

async function askArp(): Promise<void> {
  const client = segment.host('client');
  await execa('ip', ['netns', 'exec', client.netns, 'arping', '-i', 'eth0', '-c', '1', '-W', '0.2', VIP], {
    reject: false,
  });
}

async function askNdp(): Promise<void> {
  const client = segment.host('client');
  // One multicast solicitation for VIP6, written by the client as a raw frame (so no neighbour-cache
  // state of the client decides whether it is sent).
  const frame = buildNeighborSolicitation(client.mac, client.ip6 as string, VIP6).toString('hex');
  const script = `
import { openArpSocket } from './src/l2/arp-socket.ts';
const s = openArpSocket('eth0', () => undefined);
s.send(Buffer.from('${frame}', 'hex'));
s.close();
`;
  await execa(
    'ip',
    ['netns', 'exec', client.netns, process.execPath, '--import', 'tsx', '--input-type=module', '-e', script],
    { cwd: ROOT },
  );
}

async function heard(kind: 'arp' | 'ndp', before: number, ask: () => Promise<void>): Promise<void> {
  await pollFor(`the probe to hear a new ${kind} frame`, 8_000, async () => {
    if (count(kind) > before) return true;
    await ask();
    return count(kind) > before ? true : null;
  });
}

test('ARP and NDP sockets keep receiving after their interface goes down and up again', async () => {
  const node = segment.host('node');
  probe = execa(
    'ip',
    ['netns', 'exec', node.netns, process.execPath, '--import', 'tsx', '--input-type=module', '-e', PROBE],
    { cwd: ROOT, reject: false, buffer: false, all: true },
  );
  collectLines(probe, lines);
  await pollFor('the probe to open its sockets', 10_000, async () =>
    lines.some((l) => l.includes('"ready"')) ? true : null,
  );
  await heard('arp', 0, askArp);
  await heard('ndp', 0, askNdp);

  await execa('ip', ['-n', node.netns, 'link', 'set', 'eth0', 'down']);
  await execa('ip', ['-n', node.netns, 'link', 'set', 'eth0', 'up']);

  const arpBefore = count('arp');
  const ndpBefore = count('ndp');
  await heard('arp', arpBefore, askArp);
  await heard('ndp', ndpBefore, askNdp);
  expect(lines.filter((l) => !l.startsWith('{'))).toEqual([]);
  probe.stdin?.write('stop\n');
  await probe;
}, 40_000);
