// IPv6 layer2 (NDP) end to end as root: two node namespaces and a client on one bridge with IPv6
// addresses, each node running the real announcer process (src/l2/standalone-main.ts) for one IPv6 VIP
// that no interface has. The client's own kernel is the judge: it resolves the VIP by a Neighbor
// Solicitation and accepts our advertisements only if they are valid (hop limit, checksum, flags, option).
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ResultPromise, execa } from 'execa';

import { rankNodes } from '../../../src/l2/election.js';
import { Segment, neighbourMac, requireNativeAddon, collectLines } from './topology.js';
import { pollFor } from '../../fixtures/polling.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const VIP = '2001:db8:232::100';
const NODES = ['node-a', 'node-b'];
const [OWNER, STANDBY] = rankNodes(VIP, NODES) as [string, string];

const segment = new Segment(`pn6${process.pid % 100000}`, '192.168.232', '2001:db8:232');
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

const waitFor = <T>(what: string, timeoutMs: number, probe: () => Promise<T | null>): Promise<T> =>
  pollFor(what, timeoutMs, probe, () =>
    [...announcers].map(([n, a]) => `--- ${n}\n${a.log.slice(-15).join('\n')}`).join('\n'),
  );

/** Make the client resolve the VIP through its kernel (a UDP datagram to the VIP triggers a solicitation). */
async function touchVip(): Promise<void> {
  await execa(
    'ip',
    ['netns', 'exec', segment.host('client').netns, 'socat', '-u', 'STDIN', `UDP6:[${VIP}]:9`],
    { input: 'x', reject: false },
  );
}

beforeAll(async () => {
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

test("the client resolves the IPv6 VIP to the elected owner's MAC; no node configures it", async () => {
  const client = segment.host('client').netns;
  const ownerMac = segment.host(OWNER).mac;
  await waitFor("the client's neighbour entry for the VIP to hold the owner's MAC", 15_000, async () => {
    await touchVip();
    return (await neighbourMac(client, VIP)) === ownerMac ? true : null;
  });
  for (const n of NODES) {
    const { stdout } = await execa('ip', ['-n', segment.host(n).netns, '-6', 'addr', 'show']);
    expect(stdout).not.toContain(VIP);
  }
  // Asked again (entry flushed), the answer is the owner's, not the standby's.
  await execa('ip', ['-n', client, 'neigh', 'flush', 'to', VIP, 'dev', 'eth0']);
  await waitFor('the VIP to be resolved again', 5_000, async () => {
    await touchVip();
    return (await neighbourMac(client, VIP)) === ownerMac ? true : null;
  });
}, 30_000);

test("SIGKILL of the owner: the standby's unsolicited advertisement moves the client's entry within 3 s", async () => {
  const client = segment.host('client').netns;
  expect(await neighbourMac(client, VIP)).toBe(segment.host(OWNER).mac);
  const killedAt = Date.now();
  await stopAnnouncer(OWNER, 'SIGKILL');
  // No traffic from the client meanwhile: only the unsolicited advertisement (Override) can move it.
  await waitFor('the neighbour entry to move', 10_000, async () =>
    (await neighbourMac(client, VIP)) === segment.host(STANDBY).mac ? true : null,
  );
  const movedMs = Date.now() - killedAt;
  process.stdout.write(
    `ndp failover: client neighbour entry moved ${movedMs} ms after SIGKILL of ${OWNER}\n`,
  );
  expect(movedMs).toBeLessThan(3000);
  expect(announcers.get(STANDBY)?.log.some((l) => l.includes('"unsolicited NA"'))).toBe(true);
}, 30_000);

test('the owner returns: its takeover moves the entry back', async () => {
  const client = segment.host('client').netns;
  startAnnouncer(OWNER);
  await waitFor('the neighbour entry to move back', 10_000, async () =>
    (await neighbourMac(client, VIP)) === segment.host(OWNER).mac ? true : null,
  );
  // And a fresh resolution is answered by the owner only.
  await execa('ip', ['-n', client, 'neigh', 'flush', 'to', VIP, 'dev', 'eth0']);
  await waitFor('the VIP to be resolved by the owner', 5_000, async () => {
    await touchVip();
    return (await neighbourMac(client, VIP)) === segment.host(OWNER).mac ? true : null;
  });
}, 30_000);
