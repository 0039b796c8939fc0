// nftables-mode endpoint-change benchmark (issue 14, docs/adr/0008-nftables-netlink.md): one endpoint
// replaced at 10k Services × 10 endpoints, applied as an nf_tables netlink batch from this process
// (src/dataplane/nft-netlink) vs `nft -f` of the same change.
//
//   node --import tsx hack/bench/nft-elements.ts [--services 10000] [--endpoints 10] [--changes 200]
//        [--nft-changes 10]
//
// The namespace is loaded once by the real `nft -f` with portway's nftables shape (docs/adr/0007; the
// same statements as the renderer's golden files: hook chains, dispatch verdict maps, per-service
// chains ending in `dnat ip to numgen random mod 1048576 map @eps-…` over named interval maps, the
// hairpin set). A change replaces one endpoint of one Service: its interval of the eps map
// (delete + add) and its hairpin element (delete + add) — what the planner emits for it.
// Figures printed, median and p99:
//  - netlink kernel: the sendmsg() carrying the batch plus reading its acks (the kernel's share);
//  - netlink total: building the operations from the renderer's text form, encoding, sending, acks;
//  - nft -f: the same change through the nft binary (its cache dump of every interval set first),
//    over fewer changes (--nft-changes) because each takes seconds at 10k.
// Target (issue 14): change → rules in kernel, median ≤ 10 ms, p99 ≤ 25 ms.
import { execFileSync } from 'node:child_process';
import {
  type ElementOp,
  NftNetlink,
  concatBytes,
  elementMessage,
  encodeMessages,
  endpointMapOp,
  endpointMapText,
  ipv4Bytes,
} from '../../src/dataplane/nft-netlink/index.js';
import { BENCH_NETNS_PREFIX } from '../../test/e2e/harness/topology.js';
import { benchFlag } from './bench-util.js';

const SERVICES = Number(benchFlag('services', '10000'));
const ENDPOINTS = Number(benchFlag('endpoints', '10'));
const CHANGES = Number(benchFlag('changes', '200'));
const NFT_CHANGES = Number(benchFlag('nft-changes', '10'));
/** Which parts of a change to send: both (the planner's change), or the eps map or the hairpin set alone. */
const PARTS = benchFlag('parts', 'both') as 'both' | 'eps' | 'hairpin';
const NETNS = `${BENCH_NETNS_PREFIX}${process.pid}-nftel`;
const SLOTS = 1 << 20;

const clusterIP = (i: number): string => `10.96.${Math.floor(i / 250)}.${(i % 250) + 1}`;
const epsMap = (i: number): string => `eps-B${String(i).padStart(7, '0')}-bench/s${i}/tcp/http`;
const svcChain = (i: number): string => `svc-B${String(i).padStart(7, '0')}-bench/s${i}/tcp/http`;
/** Endpoint addresses: 10.x.y.z from a running counter, so a replacement never repeats one. */
const podIP = (n: number): string =>
  `10.${128 + Math.floor(n / 65025)}.${Math.floor(n / 255) % 255}.${(n % 255) + 1}`;

/** Even slices of the 2^20 numgen space, as the renderer cuts them. */
function slices(n: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let j = 0; j < n; j++) out.push([Math.floor((j * SLOTS) / n), Math.floor(((j + 1) * SLOTS) / n) - 1]);
  return out;
}

function loadText(endpoints: string[][]): string {
  const L: string[] = [
    'add table ip portway',
    'delete table ip portway',
    'add table ip portway',
    'add chain ip portway nat-prerouting { type nat hook prerouting priority -101 ; policy accept ; }',
    'add chain ip portway nat-output { type nat hook output priority -101 ; policy accept ; }',
    'add chain ip portway nat-postrouting { type nat hook postrouting priority 99 ; policy accept ; }',
    'add chain ip portway services',
    'add chain ip portway mark-for-masquerade',
    'add chain ip portway masquerading',
    'add map ip portway service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; }',
    'add set ip portway cluster-ips { type ipv4_addr ; }',
    'add set ip portway hairpin-endpoints { type ipv4_addr . ipv4_addr ; }',
    'add rule ip portway nat-prerouting jump services',
    'add rule ip portway nat-output jump services',
    'add rule ip portway nat-postrouting jump masquerading',
    'add rule ip portway services ip daddr . meta l4proto . th dport vmap @service-ips',
    'add rule ip portway mark-for-masquerade meta mark set meta mark or 0x4000',
    'add rule ip portway masquerading ct status dnat ip saddr . ip daddr @hairpin-endpoints meta mark set meta mark or 0x4000',
    'add rule ip portway masquerading meta mark & 0x4000 == 0 return',
    'add rule ip portway masquerading meta mark set meta mark xor 0x4000',
    'add rule ip portway masquerading masquerade fully-random',
  ];
  const cuts = slices(ENDPOINTS);
  for (let i = 0; i < SERVICES; i++) {
    const eps = endpoints[i]!;
    L.push(`add chain ip portway ${svcChain(i)}`);
    L.push(
      `add map ip portway ${epsMap(i)} { typeof numgen random mod 1048576 : ip daddr . tcp dport ; flags interval ; }`,
    );
    L.push(
      `add element ip portway ${epsMap(i)} { ${cuts.map(([a, b], j) => `${a}-${b} : ${eps[j]} . 8080`).join(', ')} }`,
    );
    L.push(`add element ip portway hairpin-endpoints { ${eps.map((e) => `${e} . ${e}`).join(', ')} }`);
    L.push(`add element ip portway cluster-ips { ${clusterIP(i)} }`);
    L.push(
      `add rule ip portway ${svcChain(i)} ip daddr ${clusterIP(i)} tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade`,
    );
    L.push(
      `add rule ip portway ${svcChain(i)} meta l4proto tcp dnat ip to numgen random mod 1048576 map @${epsMap(i)}`,
    );
    L.push(`add element ip portway service-ips { ${clusterIP(i)} . tcp . 80 : goto ${svcChain(i)} }`);
  }
  return L.join('\n') + '\n';
}

interface Change {
  service: number;
  slot: number;
  from: string;
  to: string;
}

function changeOps(c: Change): ElementOp[] {
  const [a, b] = slices(ENDPOINTS)[c.slot]!;
  const key = `${a}-${b}`;
  const eps = { family: 'ip' as const, table: 'portway', set: epsMap(c.service) };
  const hairpin = { family: 'ip' as const, table: 'portway', set: 'hairpin-endpoints' };
  const pair = (ip: string) => [{ key: concatBytes([ipv4Bytes(ip), ipv4Bytes(ip)]) }];
  const epsOps: ElementOp[] = [
    endpointMapOp('delete', eps, [{ key }]),
    endpointMapOp('add', eps, [{ key, value: `${c.to} . 8080` }]),
  ];
  const hairpinOps: ElementOp[] = [
    { op: 'delete', set: hairpin, items: [{ elements: pair(c.from), describe: `${c.from} . ${c.from}` }] },
    { op: 'add', set: hairpin, items: [{ elements: pair(c.to), describe: `${c.to} . ${c.to}` }] },
  ];
  if (PARTS === 'eps') return epsOps;
  if (PARTS === 'hairpin') return hairpinOps;
  return [epsOps[0]!, hairpinOps[0]!, epsOps[1]!, hairpinOps[1]!];
}

function changeText(c: Change): string {
  const [a, b] = slices(ENDPOINTS)[c.slot]!;
  return [
    `delete element ip portway ${epsMap(c.service)} { ${a}-${b} }`,
    `delete element ip portway hairpin-endpoints { ${c.from} . ${c.from} }`,
    `add element ip portway ${epsMap(c.service)} { ${a}-${b} : ${c.to} . 8080 }`,
    `add element ip portway hairpin-endpoints { ${c.to} . ${c.to} }`,
    '',
  ].join('\n');
}

const ms = (from: bigint): number => Number(process.hrtime.bigint() - from) / 1e6;
function stats(samples: number[]): string {
  const s = [...samples].sort((x, y) => x - y);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] ?? NaN;
  return `median ${at(0.5).toFixed(2)} ms, p99 ${at(0.99).toFixed(2)} ms, max ${s.at(-1)?.toFixed(2)} ms (n=${s.length})`;
}

function main(): void {
  execFileSync('ip', ['netns', 'add', NETNS]);
  try {
    let counter = 0;
    const endpoints = Array.from({ length: SERVICES }, () =>
      Array.from({ length: ENDPOINTS }, () => podIP(counter++)),
    );
    process.stdout.write(
      `nft-elements: ${SERVICES} Services × ${ENDPOINTS} endpoints, loading with nft -f …\n`,
    );
    const t0 = process.hrtime.bigint();
    execFileSync('ip', ['netns', 'exec', NETNS, 'nft', '-f', '-'], {
      input: loadText(endpoints),
      maxBuffer: 1 << 26,
    });
    process.stdout.write(`  full load by nft -f: ${(ms(t0) / 1000).toFixed(1)} s\n`);

    const nextChange = (): Change => {
      const service = Math.floor(Math.random() * SERVICES);
      const slot = Math.floor(Math.random() * ENDPOINTS);
      const from = endpoints[service]![slot]!;
      const to = podIP(counter++);
      endpoints[service]![slot] = to;
      return { service, slot, from, to };
    };

    // Building and encoding alone (no socket): what a C library (libnftnl/libmnl) could save at most.
    const encodeRuns = 2000;
    const encodeStart = process.hrtime.bigint();
    for (let k = 0; k < encodeRuns; k++) {
      const c: Change = { service: k % SERVICES, slot: k % ENDPOINTS, from: podIP(k), to: podIP(k + 1) };
      encodeMessages(changeOps(c).map((op, n) => elementMessage(op, n + 1)));
    }
    const encodeUs = (ms(encodeStart) * 1000) / encodeRuns;

    const client = NftNetlink.open({ netns: NETNS });
    const kernel: number[] = [];
    const total: number[] = [];
    const touched = new Set<number>();
    for (let k = 0; k < CHANGES; k++) {
      const c = nextChange();
      touched.add(c.service);
      const start = process.hrtime.bigint();
      const timing = client.applyElements(changeOps(c));
      total.push(ms(start));
      kernel.push(timing.kernelMs);
    }
    // The batches did what they said: every touched map reads back as the model has it.
    const cuts = slices(ENDPOINTS);
    for (const i of PARTS === 'hairpin' ? [] : touched) {
      const got = endpointMapText(
        'ip',
        client.setElements({ family: 'ip', table: 'portway', set: epsMap(i) }),
      );
      const want = cuts.map(([a, b], j) => ({ key: `${a}-${b}`, value: `${endpoints[i]![j]} . 8080` }));
      if (JSON.stringify(got) !== JSON.stringify(want))
        throw new Error(`${epsMap(i)} reads back wrong after the batches`);
    }
    const readStart = process.hrtime.bigint();
    const sets = client.listNames('sets', 'ip', 'portway').length;
    const chains = client.listNames('chains', 'ip', 'portway').length;
    const listMs = ms(readStart);
    client.close();
    const parts = {
      both: 'eps map + hairpin set, 4 element messages',
      eps: 'eps map only',
      hairpin: 'hairpin set only',
    }[PARTS];
    process.stdout.write(`  one endpoint change, netlink batch (${parts} + begin/end, acked):\n`);
    process.stdout.write(`    kernel (sendmsg + acks): ${stats(kernel)}\n`);
    process.stdout.write(`    total in process:        ${stats(total)}\n`);
    process.stdout.write(
      `    of which building + encoding the batch in TypeScript: ${encodeUs.toFixed(1)} µs\n`,
    );
    if (PARTS !== 'hairpin')
      process.stdout.write(`    ${touched.size} changed maps read back and verified\n`);
    process.stdout.write(
      `  drift-check names: ${sets} sets + ${chains} chains listed in ${listMs.toFixed(0)} ms\n`,
    );

    const viaNft: number[] = [];
    for (let k = 0; k < NFT_CHANGES; k++) {
      const c = nextChange();
      const start = process.hrtime.bigint();
      execFileSync('ip', ['netns', 'exec', NETNS, 'nft', '-f', '-'], { input: changeText(c) });
      viaNft.push(ms(start));
      process.stdout.write(`    nft -f change ${k + 1}/${NFT_CHANGES}: ${viaNft.at(-1)!.toFixed(0)} ms\n`);
    }
    if (viaNft.length > 0) {
      process.stdout.write(`  the same change by nft -f:  ${stats(viaNft)}\n`);
      const median = (x: number[]) => [...x].sort((p, q) => p - q)[Math.floor(x.length / 2)] ?? NaN;
      process.stdout.write(
        `  ratio of medians nft -f / netlink total: ${(median(viaNft) / median(total)).toFixed(0)}×\n`,
      );
    }
  } finally {
    execFileSync('ip', ['netns', 'del', NETNS]);
  }
}

main();
