// Layer2 failover, end to end as root: two node namespaces and a client on one bridge, each node running
// the real announcer process (allocation → election → member health → AF_PACKET responder) for one VIP.
import { AnnouncerPair } from './announcer-pair.js';
import { arping, neighbourMac } from './topology.js';

const pair = new AnnouncerPair('192.168.231.100', `pl2${process.pid % 100000}`, '192.168.231');
const { owner: OWNER, standby: STANDBY, segment, vip: VIP } = pair;
const waitFor = pair.waitFor.bind(pair);
const touchVip = (): Promise<void> => pair.touchVip();
const startAnnouncer = (node: string): void => pair.start(node);
const stopAnnouncer = (node: string, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> => pair.stop(node, signal);

beforeAll(() => pair.create(), 30_000);
afterAll(() => pair.destroy());

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
