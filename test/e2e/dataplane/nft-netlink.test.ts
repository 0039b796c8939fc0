// nf_tables element batches over netlink (src/dataplane/nft-netlink, native/netlink) against the real
// kernel, in a fresh network namespace: maps created by the real `nft -f` in portway's shape
// (docs/adr/0007), elements changed by our batches, read back both by `nft list map` and by our reader;
// refused batches leave the map as it was; traffic follows an interval-map update.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execa } from 'execa';
import {
  type ElementOp,
  type NftFamilyName,
  NftBatchError,
  NftNetlink,
  endpointMapOp,
  endpointMapText,
} from '../../../src/dataplane/nft-netlink/index.js';
import { ECHO_SERVER, type NetnsProcess, echoRequest, startInNetns } from '../harness/topology.js';

const NS = `pwnftnl-${process.pid}`;
const isRoot = process.getuid?.() === 0;
const maybe = isRoot ? describe : describe.skip;

const nft = async (args: string[], input?: string): Promise<string> =>
  (await execa('ip', ['netns', 'exec', NS, 'nft', ...args], input === undefined ? {} : { input })).stdout;

/** The elements of a map as `nft list map` prints them: ["0-524287 : 10.244.1.2 . 8080", …]. */
async function nftListed(family: NftFamilyName, map: string): Promise<string[]> {
  const text = await nft(['list', 'map', family, 'portway', map]);
  const m = /elements = \{([^}]*)\}/.exec(text);
  return m?.[1] ? m[1].split(',').map((e) => e.replace(/\s+/g, ' ').trim()) : [];
}

function add(family: NftFamilyName, map: string, key: string, value: string, exclusive = false): ElementOp {
  return endpointMapOp('add', { family, table: 'portway', set: map }, [{ key, value }], { exclusive });
}
function del(family: NftFamilyName, map: string, key: string): ElementOp {
  return endpointMapOp('delete', { family, table: 'portway', set: map }, [{ key }]);
}

const EPS = 'eps-ABCDEFGH-shop/web/tcp/http';

maybe('nf_tables element batches over netlink in a network namespace', () => {
  let client: NftNetlink;
  const servers: NetnsProcess[] = [];

  beforeAll(async () => {
    await execa('ip', ['netns', 'add', NS]);
    await nft(
      ['-f', '-'],
      [
        'add table ip portway',
        `add map ip portway ${EPS} { typeof numgen random mod 1048576 : ip daddr . tcp dport ; flags interval ; }`,
        'add map ip portway eps-aff { typeof numgen random mod 1048576 : verdict ; flags interval ; }',
        'add chain ip portway ep-one',
        'add chain ip portway nat-output { type nat hook output priority -101 ; policy accept ; }',
        `add rule ip portway nat-output ip daddr 10.96.0.1 tcp dport 80 meta l4proto tcp dnat ip to numgen random mod 1048576 map @${EPS}`,
        `add element ip portway ${EPS} { 0-524287 : 10.244.1.2 . 8080, 524288-1048575 : 10.244.1.3 . 8080 }`,
        'add table ip6 portway',
        `add map ip6 portway ${EPS} { typeof numgen random mod 1048576 : ip6 daddr . tcp dport ; flags interval ; }`,
        '',
      ].join('\n'),
    );
    client = NftNetlink.open({ netns: NS });
  });
  afterAll(async () => {
    client?.close();
    for (const s of servers) await s.stop();
    await execa('ip', ['netns', 'del', NS], { reject: false });
  });

  it('replaces an endpoint (delete + add in one batch) as nft and our reader both see it', async () => {
    const set = { family: 'ip' as const, table: 'portway', set: EPS };
    expect(endpointMapText('ip', client.setElements(set))).toEqual([
      { key: '0-524287', value: '10.244.1.2 . 8080' },
      { key: '524288-1048575', value: '10.244.1.3 . 8080' },
    ]);
    const timing = client.applyElements([
      del('ip', EPS, '0-524287'),
      del('ip', EPS, '524288-1048575'),
      add('ip', EPS, '0-349524', '10.244.1.2 . 8080'),
      add('ip', EPS, '349525-699049', '10.244.1.3 . 8080'),
      add('ip', EPS, '699050-1048575', '10.244.7.7 . 9090'),
    ]);
    expect(timing.messages).toBe(7);
    const expected = [
      '0-349524 : 10.244.1.2 . 8080',
      '349525-699049 : 10.244.1.3 . 8080',
      '699050-1048575 : 10.244.7.7 . 9090',
    ];
    expect(await nftListed('ip', EPS)).toEqual(expected);
    expect(endpointMapText('ip', client.setElements(set)).map((e) => `${e.key} : ${e.value}`)).toEqual(
      expected,
    );
  });

  it('writes IPv6 endpoints and goto elements that nft lists as written', async () => {
    client.applyElements([
      add('ip6', EPS, '0-1048575', 'fd00:244::1:2 . 8443'),
      add('ip', 'eps-aff', '0-1048575', 'goto ep-one'),
    ]);
    expect(await nftListed('ip6', EPS)).toEqual(['0-1048575 : fd00:244::1:2 . 8443']);
    expect(await nftListed('ip', 'eps-aff')).toEqual(['0-1048575 : goto ep-one']);
    expect(endpointMapText('ip6', client.setElements({ family: 'ip6', table: 'portway', set: EPS }))).toEqual(
      [{ key: '0-1048575', value: 'fd00:244::1:2 . 8443' }],
    );
  });

  it('refuses a batch with an unknown set, naming set and element, and applies nothing of it', async () => {
    const before = await nftListed('ip', EPS);
    const attempt = () =>
      client.applyElements([del('ip', EPS, '0-349524'), add('ip', 'eps-missing', '0-9', '10.0.0.1 . 80')]);
    expect(attempt).toThrow(NftBatchError);
    expect(attempt).toThrow(
      'nftables batch refused, nothing applied: add element 0-9 : 10.0.0.1 . 80 to ip portway eps-missing: no such file or directory (ENOENT',
    );
    expect(await nftListed('ip', EPS)).toEqual(before);
  });

  it('a duplicate element: an error with NLM_F_EXCL, an idempotent no-op without it, an error when its data differs', async () => {
    const before = await nftListed('ip', EPS);
    expect(() => client.applyElements([add('ip', EPS, '0-349524', '10.244.1.2 . 8080', true)])).toThrow(
      /add element 0-349524 : 10\.244\.1\.2 \. 8080 to ip portway eps-ABCDEFGH-shop\/web\/tcp\/http: .*EEXIST/,
    );
    client.applyElements([add('ip', EPS, '0-349524', '10.244.1.2 . 8080')]);
    expect(() => client.applyElements([add('ip', EPS, '0-349524', '10.244.9.9 . 8080')])).toThrow(/EEXIST/);
    expect(await nftListed('ip', EPS)).toEqual(before);
  });

  it('deleting an element that is not there is refused (ENOENT), naming it', () => {
    expect(() => client.applyElements([del('ip', EPS, '5-6')])).toThrow(
      `delete element 5-6 from ip portway ${EPS}: no such file or directory (ENOENT`,
    );
  });

  it('names the one element of a multi-element message the kernel refused (extended-ack offset)', async () => {
    const before = await nftListed('ip', EPS);
    const op = endpointMapOp('delete', { family: 'ip', table: 'portway', set: EPS }, [
      { key: '0-349524' },
      { key: '5-6' },
      { key: '349525-699049' },
    ]);
    expect(() => client.applyElements([op])).toThrow(
      `nftables batch refused, nothing applied: delete element 5-6 from ip portway ${EPS}: no such file or directory (ENOENT`,
    );
    expect(await nftListed('ip', EPS)).toEqual(before);
  });

  it('lists table, chain and set names of one table, and says which set a dump could not find', () => {
    expect(client.listNames('tables', 'ip', 'portway')).toEqual(['portway']);
    expect(client.listNames('sets', 'ip', 'portway')).toEqual([EPS, 'eps-aff'].sort());
    expect(client.listNames('chains', 'ip', 'portway')).toEqual(['ep-one', 'nat-output']);
    expect(client.listNames('chains', 'ip6', 'portway')).toEqual([]);
    expect(() => client.setElements({ family: 'ip', table: 'portway', set: 'nope' })).toThrow(
      'nftables: cannot list ip portway nope: no such file or directory (ENOENT',
    );
  });

  it('traffic to the service address follows an interval-map update (DNAT through numgen over the map)', async () => {
    const run = (args: string[]) => execa('ip', ['netns', 'exec', NS, 'ip', ...args]);
    await run(['link', 'set', 'lo', 'up']);
    // Endpoints are local addresses: DNAT in nat output re-routes the connection to them.
    await run(['addr', 'add', '10.99.1.2/32', 'dev', 'lo']);
    await run(['addr', 'add', '10.99.1.3/32', 'dev', 'lo']);
    await run(['route', 'add', '10.96.0.0/24', 'dev', 'lo']);
    for (const [name, port] of [
      ['a', '8080'],
      ['b', '8090'],
    ] as const) {
      const s = startInNetns(NS, process.execPath, [
        ECHO_SERVER,
        '--name',
        name,
        '--tcp',
        port,
        '--udp',
        '0',
      ]);
      servers.push(s);
      await s.waitFor(/ready/);
    }
    const servedBy = async (n: number): Promise<Set<string>> => {
      const seen = new Set<string>();
      for (let i = 0; i < n; i++) seen.add((await echoRequest(NS, 'tcp', '10.96.0.1', 80)).pod);
      return seen;
    };
    const current = endpointMapText('ip', client.setElements({ family: 'ip', table: 'portway', set: EPS }));
    client.applyElements([
      ...current.map((e) => del('ip', EPS, e.key)),
      add('ip', EPS, '0-1048575', '10.99.1.2 . 8080'),
    ]);
    expect(await servedBy(3)).toEqual(new Set(['a']));
    client.applyElements([del('ip', EPS, '0-1048575'), add('ip', EPS, '0-1048575', '10.99.1.3 . 8090')]);
    expect(await servedBy(3)).toEqual(new Set(['b']));
    client.applyElements([
      del('ip', EPS, '0-1048575'),
      add('ip', EPS, '0-524287', '10.99.1.2 . 8080'),
      add('ip', EPS, '524288-1048575', '10.99.1.3 . 8090'),
    ]);
    // Both halves answer: the chance that 16 random picks miss one is 2^-15.
    expect(await servedBy(16)).toEqual(new Set(['a', 'b']));
  }, 120_000);
});
