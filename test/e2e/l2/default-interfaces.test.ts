// An L2Advertisement without interfaces, end to end as root: one node namespace on four LANs, each LAN a
// client namespace. The announcer (standalone, no --interface) reads the links with `ip -j -d link show`
// and answers ARP, as MetalLB does, on every suitable interface: the two up veths and the bridge — not on
// the bridge's port, and not on the down veth until it comes up. Only namespaces this test creates are
// addressed.
import { afterAll, beforeAll, expect, test } from '@jest/globals';

import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ResultPromise, execa } from 'execa';

import { pollFor } from '../../fixtures/polling.js';
import { arping, requireNativeAddon, collectLines } from './topology.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const VIP = '192.168.241.100';
const PREFIX = `pl2d${process.pid % 100000}`;
const NODE_NS = `${PREFIX}-node`;
// LAN name → the node's interface on it, its subnet, and how it is attached.
const LANS = [
  { lan: 'a', nodeIf: 'lan0', subnet: '192.168.241' },
  { lan: 'b', nodeIf: 'lan1', subnet: '192.168.242' },
  { lan: 'c', nodeIf: 'lan2', subnet: '192.168.243' }, // starts down
  { lan: 'd', nodeIf: 'lan3', subnet: '192.168.244' }, // a port of br0 (br0 holds the address)
] as const;
const clientNs = (lan: string) => `${PREFIX}-${lan}`;
const created: string[] = [];
let proc: ResultPromise | null = null;
const log: string[] = [];

async function ip(...args: string[]): Promise<void> {
  await execa('ip', args);
}
async function addNs(name: string): Promise<void> {
  await execa('ip', ['netns', 'del', name], { reject: false });
  await ip('netns', 'add', name);
  created.push(name);
  await ip('-n', name, 'link', 'set', 'lo', 'up');
}
async function macOf(netns: string, ifname: string): Promise<string> {
  const { stdout } = await execa('ip', ['-n', netns, '-j', 'link', 'show', ifname]);
  return (JSON.parse(stdout) as Array<{ address: string }>)[0]?.address ?? '';
}
const waitFor = <T>(what: string, timeoutMs: number, probe: () => Promise<T | null>): Promise<T> =>
  pollFor(what, timeoutMs, probe, () => `--- announcer\n${log.slice(-15).join('\n')}`);

beforeAll(async () => {
  requireNativeAddon();
  if (process.getuid?.() !== 0)
    throw new Error('the layer2 default-interfaces e2e test needs root (network namespaces, AF_PACKET)');
  await addNs(NODE_NS);
  await ip('-n', NODE_NS, 'link', 'add', 'br0', 'type', 'bridge');
  for (const [i, l] of LANS.entries()) {
    const ns = clientNs(l.lan);
    await addNs(ns);
    await ip('-n', NODE_NS, 'link', 'add', l.nodeIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    await ip('-n', ns, 'link', 'set', 'eth0', 'address', `02:00:00:00:0${i + 1}:02`);
    await ip('-n', ns, 'addr', 'add', `${l.subnet}.2/24`, 'dev', 'eth0');
    await ip('-n', ns, 'link', 'set', 'eth0', 'up');
    const holder = l.nodeIf === 'lan3' ? 'br0' : l.nodeIf;
    if (l.nodeIf === 'lan3') await ip('-n', NODE_NS, 'link', 'set', 'lan3', 'master', 'br0');
    await ip('-n', NODE_NS, 'link', 'set', l.nodeIf, 'address', `02:00:00:00:0${i + 1}:01`);
    await ip('-n', NODE_NS, 'addr', 'add', `${l.subnet}.1/24`, 'dev', holder);
    if (l.nodeIf !== 'lan2') await ip('-n', NODE_NS, 'link', 'set', l.nodeIf, 'up');
  }
  await ip('-n', NODE_NS, 'link', 'set', 'br0', 'address', '02:00:00:00:0b:01');
  await ip('-n', NODE_NS, 'link', 'set', 'br0', 'up');

  proc = execa(
    'ip',
    [
      'netns',
      'exec',
      NODE_NS,
      process.execPath,
      '--import',
      'tsx',
      'src/l2/standalone-main.ts',
      '--node',
      'node-a',
      '--vip',
      VIP,
      '--bind',
      '192.168.241.1',
      '--peers',
      'node-a=192.168.241.1',
      '--hold-ms',
      '0',
      '--link-refresh-ms',
      '300',
    ],
    { cwd: ROOT, reject: false, buffer: false, all: true },
  );
  collectLines(proc, log);
  await waitFor('the announcer to start', 30_000, async () =>
    log.some((l) => l.includes('"msg":"started"')) ? true : null,
  );
}, 60_000);

afterAll(async () => {
  proc?.kill('SIGTERM');
  await proc;
  for (const ns of created.reverse()) await execa('ip', ['netns', 'del', ns], { reject: false });
});

test('ARP for the owned address is answered once on each suitable interface, with that interface’s MAC', async () => {
  const expected: Array<[string, string]> = [
    ['a', await macOf(NODE_NS, 'lan0')],
    ['b', await macOf(NODE_NS, 'lan1')],
    ['d', await macOf(NODE_NS, 'br0')], // the bridge answers, its port does not answer as well
  ];
  for (const [lan, mac] of expected) {
    await waitFor(`an answer on LAN ${lan}`, 10_000, async () =>
      (await arping(clientNs(lan), VIP, 1, 0.2)).macs[0] === mac ? true : null,
    );
    expect(await arping(clientNs(lan), VIP, 3, 0.1)).toEqual({
      transmitted: 3,
      received: 3,
      extra: 0,
      macs: [mac, mac, mac],
    });
  }
  const chosen = log
    .map((l) => JSON.parse(l) as { msg?: string; interfaces?: string[]; skipped?: string })
    .filter((e) => e.msg === 'interfaces')
    .at(-1);
  expect(chosen?.interfaces).toEqual(['br0', 'lan0', 'lan1']);
  expect(chosen?.skipped).toBe('lan2: down, lan3: enslaved to br0 (bridge), lo: excluded');
}, 60_000);

test('the down interface gets no answer; once it is up, it is answered after the next link refresh', async () => {
  // While lan2 is down the client's end has no carrier either: the proof that down is why it is skipped
  // is the verdict logged above and the answer that follows once lan2 is up (no restart, no state change).
  expect((await arping(clientNs('c'), VIP, 3, 0.1)).received).toBe(0);
  await ip('-n', NODE_NS, 'link', 'set', 'lan2', 'up');
  const mac = await macOf(NODE_NS, 'lan2');
  await waitFor('an answer on LAN c after lan2 comes up', 10_000, async () =>
    (await arping(clientNs('c'), VIP, 1, 0.2)).macs[0] === mac ? true : null,
  );
}, 60_000);
