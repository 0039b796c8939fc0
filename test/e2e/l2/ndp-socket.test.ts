// The addon's NDP socket in a namespace pair (needs it built and root): the kernel-side BPF filter lets
// only Neighbor Solicitations through, and joining a solicited-node group registers it both as a link-layer
// group and as an IPv6 group (so MLD reports it to snooping switches). Fails loudly when the addon is missing.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { openNdpSocket } from '../../../src/l2/arp-socket.js';
import { parseNeighborSolicitation } from '../../../src/l2/ndp-frame.js';
import { Segment, requireNativeAddon } from './topology.js';
import { pollFor } from '../../fixtures/polling.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const segment = new Segment(`pns${process.pid % 100000}`, '192.168.233', '2001:db8:233');
const TARGET = '2001:db8:233::100';

// Runs inside the node namespace: opens an NDP socket on eth0, joins TARGET's group, reports what it hears.
const PROBE = `
import { openNdpSocket } from './src/l2/arp-socket.ts';
const frames = [];
const s = openNdpSocket('eth0', (f, outgoing) => frames.push({ hex: f.toString('hex'), outgoing }));
s.addMembership(Buffer.from('3333ff000100', 'hex'));
console.log(JSON.stringify({ ready: true, protocol: s.protocol }));
setTimeout(() => { console.log(JSON.stringify({ frames })); s.close(); }, 2500);
`;

beforeAll(async () => {
  requireNativeAddon();
  await segment.create([
    { name: 'node', octet: 11 },
    { name: 'client', octet: 50 },
  ]);
}, 30_000);

afterAll(async () => {
  await segment.destroy();
});

test('an NDP socket hears solicitations only, and joins the solicited-node group at both layers', async () => {
  const node = segment.host('node');
  const client = segment.host('client');
  const proc = execa(
    'ip',
    ['netns', 'exec', node.netns, process.execPath, '--import', 'tsx', '--input-type=module', '-e', PROBE],
    { cwd: ROOT, reject: false, all: true, buffer: true },
  );
  const lines: string[] = [];
  proc.stdout?.on('data', (c: Buffer) =>
    lines.push(
      ...c
        .toString()
        .split('\n')
        .filter((l) => l !== ''),
    ),
  );
  await pollFor('the probe to open its socket', 10_000, async () =>
    lines.some((l) => l.includes('"ready"')) ? true : null,
  );
  expect(JSON.parse(lines[0] as string)).toEqual({ ready: true, protocol: 'ndp' });
  const { stdout: maddr } = await execa('ip', ['-n', node.netns, 'maddr', 'show', 'dev', 'eth0']);
  expect(maddr).toContain('33:33:ff:00:01:00');
  expect(maddr).toContain('ff02::1:ff00:100');
  // Unicast UDP to the node (filtered out), then the client's kernel asks for TARGET (heard).
  const send = (to: string) =>
    execa('ip', ['netns', 'exec', client.netns, 'socat', '-u', 'STDIN', `UDP6:[${to}]:9`], {
      input: 'x',
      reject: false,
    });
  await send(node.ip6 as string);
  await send(TARGET);
  const result = await proc;
  const report = JSON.parse(result.stdout.split('\n').filter((l) => l.includes('"frames"'))[0] ?? '{}') as {
    frames?: Array<{ hex: string; outgoing: boolean }>;
  };
  const frames = report.frames ?? [];
  const parsed = frames.map((f) => parseNeighborSolicitation(Buffer.from(f.hex, 'hex')));
  expect(parsed.length).toBeGreaterThan(0);
  // Every frame that crossed the filter is a valid solicitation; the UDP datagram never did.
  expect(parsed.every((p) => p !== null)).toBe(true);
  expect(parsed.some((p) => p?.targetIp === TARGET && p.sourceLinkAddress === client.mac)).toBe(true);
  // Closing the socket left both groups.
  const { stdout: after } = await execa('ip', ['-n', node.netns, 'maddr', 'show', 'dev', 'eth0']);
  expect(after).not.toContain('ff02::1:ff00:100');
  expect(after).not.toContain('33:33:ff:00:01:00');
}, 30_000);

test('a missing interface is an error naming it (NDP socket)', () => {
  expect(() => openNdpSocket('pw-nonexist0', () => undefined)).toThrow(
    /if_nametoindex on interface "pw-nonexist0"/,
  );
});
