// Layer2 failover, end to end as root: two node namespaces and a client on one bridge, each node running
// the real announcer process (allocation → election → member health → AF_PACKET responder) for one VIP.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ResultPromise, execa } from 'execa';

import { rankNodes } from '../../../src/l2/election.js';
import { Segment, arping, neighbourMac, requireNativeAddon, collectLines } from './topology.js';
import { pollFor } from '../../fixtures/polling.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const VIP = '192.168.231.100';
const NODES = ['node-a', 'node-b'];
// The node that must own the VIP (the same sha256 ranking every agent computes).
const [OWNER, STANDBY] = rankNodes(VIP, NODES) as [string, string];

const segment = new Segment(`pl2${process.pid % 100000}`, '192.168.231');
const announcers = new Map<string, { proc: ResultPromise; log: string[] }>();

function startAnnouncer(node: string): void {
  const h = segment.host(node);
  const peers = NODES.map((n) => `${n}=${segment.host(n).ip}`).join(',');
  const proc = execa(
    'ip',
    [
      'netns',
      'exec',
      h.netns,
      process.execPath,
      '--import',
      'tsx',
      'src/l2/standalone-main.ts',
      '--node',
      node,
      '--interface',
      'eth0',
      '--vip',
      VIP,
      '--bind',
      h.ip,
      '--peers',
      peers,
      '--port',
      '7473',
    ],
    { cwd: ROOT, reject: false, buffer: false, all: true },
  );
  const log: string[] = [];
  collectLines(proc, log);
  announcers.set(node, { proc, log });
}

async function stopAnnouncer(node: string, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
  const a = announcers.get(node);
  if (!a) return;
  a.proc.kill(signal);
  await a.proc;
  announcers.delete(node);
}

/** pollFor, failing with the tail of every announcer's log. */
const waitFor = <T>(what: string, timeoutMs: number, probe: () => Promise<T | null>): Promise<T> =>
  pollFor(what, timeoutMs, probe, () =>
    [...announcers].map(([n, a]) => `--- ${n}\n${a.log.slice(-15).join('\n')}`).join('\n'),
  );

/** Make the client resolve the VIP through its kernel (a UDP datagram to the VIP triggers ARP). */
async function touchVip(): Promise<void> {
  await execa('ip', ['netns', 'exec', segment.host('client').netns, 'socat', '-u', 'STDIN', `UDP:${VIP}:9`], {
    input: 'x',
    reject: false,
  });
}

beforeAll(async () => {
  // Fail loudly, never skip: this suite is the proof that layer2 works.
  requireNativeAddon();
  if (process.getuid?.() !== 0)
    throw new Error('the layer2 e2e suite needs root (network namespaces, AF_PACKET)');
  await segment.create([
    { name: 'node-a', octet: 11 },
    { name: 'node-b', octet: 12 },
    { name: 'client', octet: 50 },
  ]);
  for (const n of NODES) startAnnouncer(n);
}, 30_000);

afterAll(async () => {
  for (const n of [...announcers.keys()]) await stopAnnouncer(n, 'SIGKILL');
  await segment.destroy();
});

test('exactly one node answers ARP for the VIP: the elected owner', async () => {
  const ownerMac = segment.host(OWNER).mac;
  await waitFor('the owner to answer', 15_000, async () =>
    (await arping(segment.host('client').netns, VIP, 1, 0.2)).macs[0] === ownerMac ? true : null,
  );
  const r = await arping(segment.host('client').netns, VIP, 5, 0.1);
  expect(r).toEqual({ transmitted: 5, received: 5, extra: 0, macs: Array(5).fill(ownerMac) });
}, 30_000);

test('SIGKILL of the owner: the client neighbour entry moves to the standby within 3 s', async () => {
  const client = segment.host('client').netns;
  await touchVip();
  await waitFor('the client to resolve the VIP', 5_000, async () =>
    (await neighbourMac(client, VIP)) === segment.host(OWNER).mac ? true : null,
  );
  const killedAt = Date.now();
  await stopAnnouncer(OWNER, 'SIGKILL');
  await waitFor('the neighbour entry to move', 10_000, async () =>
    (await neighbourMac(client, VIP)) === segment.host(STANDBY).mac ? true : null,
  );
  const movedMs = Date.now() - killedAt;
  process.stdout.write(
    `layer2 failover: client neighbour entry moved ${movedMs} ms after SIGKILL of ${OWNER}\n`,
  );
  expect(movedMs).toBeLessThan(3000);
  const r = await arping(client, VIP, 3, 0.1);
  expect(r).toEqual({
    transmitted: 3,
    received: 3,
    extra: 0,
    macs: Array(3).fill(segment.host(STANDBY).mac),
  });
}, 30_000);

test('the owner returns: ownership follows the ranking again, never two answers', async () => {
  const client = segment.host('client').netns;
  startAnnouncer(OWNER);
  // Ask continuously through the restart, startup hold and handover.
  const during = await arping(client, VIP, 40, 0.1);
  expect(during.extra).toBe(0);
  expect(during.received).toBeLessThanOrEqual(during.transmitted);
  await waitFor('the owner to answer again', 10_000, async () =>
    (await arping(client, VIP, 1, 0.2)).macs[0] === segment.host(OWNER).mac ? true : null,
  );
  const after = await arping(client, VIP, 5, 0.1);
  expect(after).toEqual({
    transmitted: 5,
    received: 5,
    extra: 0,
    macs: Array(5).fill(segment.host(OWNER).mac),
  });
  // The returning owner's gratuitous burst moved the client's entry back.
  await touchVip();
  await waitFor('the neighbour entry to move back', 5_000, async () =>
    (await neighbourMac(client, VIP)) === segment.host(OWNER).mac ? true : null,
  );
}, 60_000);
