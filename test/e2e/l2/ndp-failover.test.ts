// IPv6 layer2 (NDP) end to end as root: two node namespaces and a client on one bridge with IPv6
// addresses, each node running the real announcer process (src/l2/standalone-main.ts) for one IPv6 VIP
// that no interface has. The client's own kernel is the judge: it resolves the VIP by a Neighbor
// Solicitation and accepts our advertisements only if they are valid (hop limit, checksum, flags, option).
import { execa } from 'execa';
import { AnnouncerPair } from './announcer-pair.js';
import { neighbourMac } from './topology.js';

const pair = new AnnouncerPair(
  '2001:db8:232::100',
  `pn6${process.pid % 100000}`,
  '192.168.232',
  '2001:db8:232',
);
const { owner: OWNER, standby: STANDBY, segment, announcers, vip: VIP, nodes: NODES } = pair;
const waitFor = pair.waitFor.bind(pair);
const touchVip = (): Promise<void> => pair.touchVip();
const startAnnouncer = (node: string): void => pair.start(node);
const stopAnnouncer = (node: string, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> => pair.stop(node, signal);

beforeAll(() => pair.create(), 30_000);
afterAll(() => pair.destroy());

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
