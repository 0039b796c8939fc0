// ARP answer latency under a flood, on the namespace harness's bridge (root needed; nothing leaves the
// namespaces this script creates):
//
//   node --import tsx hack/bench/arp-bench.ts [--rate 10000] [--seconds 3]
//
// A node namespace runs the real layer2 responder (src/l2/standalone-main.ts: member health + election +
// AF_PACKET responder) owning one VIP; the client namespace floods "who has VIP?" requests at --rate per
// second for --seconds (bounded: ≤ 50k/s, ≤ 10 s) through the same AF_PACKET addon, each request with its
// own sender address so every reply is matched to its request. Prints sent/answered/lost, reply latency
// percentiles (measured in the flooding process: it includes its own event-loop delay, so it is an upper
// bound) and the responder's CPU time.
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { buildArpRequest, formatMac } from '../../src/l2/arp-frame.js';
import { openArpSocket } from '../../src/l2/arp-socket.js';
import { Topology } from '../../test/e2e/harness/topology.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const VIP = '10.99.0.200';

const { values } = parseArgs({
  options: {
    flood: { type: 'boolean', default: false },
    rate: { type: 'string', default: '10000' },
    seconds: { type: 'string', default: '3' },
    interface: { type: 'string', default: 'eth0' },
  },
});
const rate = Number(values.rate);
const seconds = Number(values.seconds);
if (!Number.isInteger(rate) || rate < 1 || rate > 50_000)
  throw new Error(`--rate: 1..50000 (got ${values.rate})`);
if (!(seconds > 0 && seconds <= 10)) throw new Error(`--seconds: (0, 10] (got ${values.seconds})`);

/** Sender address of request `i`: unique for up to 2^15 requests in flight, outside the LAN's used hosts. */
const senderOf = (i: number) => `10.98.${128 + ((i >> 8) & 127)}.${i & 255}`;

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

/** The flooding side: runs inside the client namespace, prints one JSON line. */
async function flood(): Promise<void> {
  const sentAt = new Map<string, bigint>();
  const latenciesUs: number[] = [];
  let replies = 0;
  let gratuitous = 0;
  let duplicates = 0;
  const socket = openArpSocket(values.interface as string, (frame, outgoing) => {
    if (outgoing || frame.length < 42 || frame.readUInt16BE(20) !== 2) return;
    const target = `${frame[38]}.${frame[39]}.${frame[40]}.${frame[41]}`;
    const t0 = sentAt.get(target);
    if (t0 === undefined) {
      // A gratuitous announcement (target = the VIP) is not an answer; anything else would be a second
      // answer to one request.
      if (target === VIP) gratuitous++;
      else duplicates++;
      return;
    }
    sentAt.delete(target);
    replies++;
    latenciesUs.push(Number(process.hrtime.bigint() - t0) / 1000);
  });
  const mac = formatMac(socket.mac);
  const total = Math.round(rate * seconds);
  const frames = Array.from({ length: Math.min(total, 32768) }, (_, i) =>
    buildArpRequest(mac, senderOf(i), VIP),
  );
  let sent = 0;
  let sendErrors = 0;
  const start = process.hrtime.bigint();
  await new Promise<void>((done) => {
    const tick = () => {
      const elapsedS = Number(process.hrtime.bigint() - start) / 1e9;
      const due = Math.min(total, Math.floor(elapsedS * rate));
      while (sent < due) {
        const i = sent % frames.length;
        sentAt.set(senderOf(i), process.hrtime.bigint());
        try {
          socket.send(frames[i] as Buffer);
        } catch {
          sendErrors++;
        }
        sent++;
      }
      if (sent >= total) done();
      else setImmediate(tick);
    };
    tick();
  });
  const sendSeconds = Number(process.hrtime.bigint() - start) / 1e9;
  await new Promise((r) => setTimeout(r, 500)); // stragglers
  socket.close();
  latenciesUs.sort((a, b) => a - b);
  process.stdout.write(
    `${JSON.stringify({
      sent,
      sendErrors,
      sendSeconds: Number(sendSeconds.toFixed(3)),
      achievedRate: Math.round(sent / sendSeconds),
      replies,
      lost: sent - sendErrors - replies,
      duplicateReplies: duplicates,
      gratuitousSeen: gratuitous,
      latencyUs: {
        p50: Math.round(percentile(latenciesUs, 50)),
        p90: Math.round(percentile(latenciesUs, 90)),
        p99: Math.round(percentile(latenciesUs, 99)),
        max: Math.round(latenciesUs[latenciesUs.length - 1] ?? NaN),
      },
    })}\n`,
  );
}

async function cpuMs(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
  // utime and stime are fields 14 and 15 (1-based) of the whole line: 12 and 13 after "pid (comm) ".
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('arp-bench needs root (network namespaces, AF_PACKET)');
  const topo = await Topology.create({ nodes: 1, podsPerNode: 0, ipv6: false, echo: false, tag: 'arpbench' });
  try {
    const node = topo.node(1);
    const responder = topo.start(node.netns, process.execPath, [
      '--import',
      'tsx',
      join(ROOT, 'src/l2/standalone-main.ts'),
      '--node',
      node.name,
      '--interface',
      'eth0',
      '--vip',
      VIP,
      '--bind',
      node.ip,
      '--hold-ms',
      '0',
    ]);
    await responder.waitFor(/"msg":"started"/, 30_000);
    const pid = responder.child.pid as number;
    const cpuBefore = await cpuMs(pid);
    const res = await execa(
      'ip',
      [
        'netns',
        'exec',
        topo.client.netns,
        process.execPath,
        '--import',
        'tsx',
        fileURLToPath(import.meta.url),
        '--flood',
        '--rate',
        String(rate),
        '--seconds',
        String(seconds),
      ],
      { cwd: ROOT, timeout: (seconds + 30) * 1000 },
    );
    const cpuAfter = await cpuMs(pid);
    const result = JSON.parse(res.stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
    const responderCpuMs = Math.round(cpuAfter - cpuBefore);
    process.stdout.write(
      `ARP flood on the harness bridge: ${JSON.stringify({ requestedRate: rate, seconds, ...result, responderCpuMs, responderCpuPercent: Math.round((responderCpuMs / 10 / seconds) * 10) / 10 })}\n`,
    );
  } finally {
    await topo.teardown();
  }
}

if (values.flood) await flood();
else await main();
