// A small bare-metal cluster made of network namespaces, for end-to-end tests and the demo.
//
//   client ─┐                    LAN 10.99.0.0/24 (fd99::/64): a bridge inside the "lan" namespace
//   node1  ─┼─ br0 (in ns lan)   node k = 10.99.0.(10+k), client = 10.99.0.100
//   node2  ─┘
//   node k ── veth ── pod (10.244.k.(10+j)/32, gateway 10.244.k.1 on the node side; point-to-point,
//                          so hairpin traffic is routed by the node, no bridge netfilter needed)
//   node k routes 10.244.m.0/24 via node m's LAN address.
//
// Every namespace name starts with a prefix that holds the creating process id, so namespaces left
// by a crashed run are recognised (the owner is gone) and swept by the next create(). Nothing is
// created in the root namespace: veth pairs are made directly between the target namespaces.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { forgetNetnsState } from '../../../src/sync/netns-state.js';

const HACK_E2E = join(dirname(fileURLToPath(import.meta.url)), '../../../hack/e2e');
export const ECHO_SERVER = join(HACK_E2E, 'echo-server.mjs');
export const ECHO_CLIENT = join(HACK_E2E, 'echo-client.mjs');

/** Namespaces of every topology start with this, then "<pid>-<random>-". */
export const NETNS_PREFIX = 'pwt-';
/** The benchmarks' namespaces: `pwbench-<pid>-<bench>`, swept like the topologies' when stale. */
export const BENCH_NETNS_PREFIX = 'pwbench-';

export const LAN_CIDR = '10.99.0.0/24';
export const LAN6_CIDR = 'fd99::/64';
export const CLIENT_IP = '10.99.0.100';
export const CLIENT_IP6 = 'fd99::100';
export const ECHO_TCP_PORT = 8080;
export const ECHO_UDP_PORT = 8081;

export interface TopologySpec {
  /** Number of nodes (default 2). */
  nodes?: number;
  /** Pods per node (default 1), or the exact pod count for each node (e.g. [2, 0, 1]). */
  podsPerNode?: number | number[];
  /** Give everything IPv6 addresses too (default true). */
  ipv6?: boolean;
  /** Start an echo server in every pod (default true). */
  echo?: boolean;
  /** Word in the namespace prefix instead of a random one ([a-z0-9], ≤ 12): "pwt-<pid>-<tag>-". */
  tag?: string;
}

export interface PodInfo {
  /** Pod name, also what its echo server answers: "node1-pod1". */
  name: string;
  netns: string;
  /** Index of its node (1-based). */
  node: number;
  ip: string;
  ip6: string | null;
  /** Name of the host-side veth in the node namespace. */
  hostIfname: string;
}

export interface NodeInfo {
  /** "node1" … */
  name: string;
  index: number;
  netns: string;
  ip: string;
  ip6: string | null;
  podCidr: string;
  podCidr6: string | null;
  /** The node's address on its pod links: the source it uses when it talks to its own pods. */
  podGateway: string;
  /** LAN interface inside the node namespace. */
  ifname: 'eth0';
  pods: PodInfo[];
}

export interface ClientInfo {
  name: 'client';
  netns: string;
  ip: string;
  ip6: string | null;
  ifname: 'eth0';
}

export interface EchoAnswer {
  /** The pod name the server answered with. */
  pod: string;
  /** The client address the server saw (shows whether traffic was masqueraded). */
  client: string;
}

export interface RequestOptions {
  timeoutMs?: number;
  /** Bind the client socket to this local address. */
  source?: string;
}

export interface NetnsProcess {
  readonly netns: string;
  readonly child: ChildProcess;
  /** Everything written to stdout/stderr so far. */
  output(): string;
  /** Resolve when a line matching `pattern` appears on stdout/stderr. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

async function ip(args: string[]): Promise<void> {
  await execa('ip', args, { env: { LC_ALL: 'C' } });
}

/** Run a command in a namespace and return its result (never throws on a non-zero exit). */
export async function execInNetns(
  netns: string,
  cmd: string,
  args: readonly string[],
  opts: { input?: string; timeoutMs?: number } = {},
): Promise<{ stdout: string; stderr: string; exitCode: number }> {
  const res = await execa('ip', ['netns', 'exec', netns, cmd, ...args], {
    reject: false,
    env: { LC_ALL: 'C' },
    ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' as const }),
    ...(opts.timeoutMs !== undefined ? { timeout: opts.timeoutMs } : {}),
  });
  return { stdout: String(res.stdout ?? ''), stderr: String(res.stderr ?? ''), exitCode: res.exitCode ?? -1 };
}

/** Start a long-running process inside a namespace (`ip netns exec NS cmd …`, no shell). */
export function startInNetns(netns: string, cmd: string, args: readonly string[]): NetnsProcess {
  const child = spawn('ip', ['netns', 'exec', netns, cmd, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LC_ALL: 'C' },
  });
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const l of listeners) l();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => {
    for (const l of listeners) l();
  });
  return {
    netns,
    child,
    output: () => out,
    waitFor(pattern, timeoutMs = 10_000) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (pattern.test(out)) {
            done();
            resolve();
          } else if (child.exitCode !== null || child.signalCode !== null) {
            done();
            reject(
              new Error(
                `${cmd} in ${netns} exited (${child.exitCode ?? child.signalCode}) before ${pattern}: ${out}`,
              ),
            );
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${cmd} in ${netns}: no ${pattern} within ${timeoutMs} ms; output: ${out}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** One request to an echo server from `netns`; rejects with the reason on timeout or refusal. */
export async function echoRequest(
  netns: string,
  protocol: 'tcp' | 'udp',
  host: string,
  port: number,
  opts: RequestOptions = {},
): Promise<EchoAnswer> {
  const timeoutMs = opts.timeoutMs ?? 2000;
  const res = await execInNetns(
    netns,
    process.execPath,
    [ECHO_CLIENT, protocol, host, String(port), String(timeoutMs), ...(opts.source ? [opts.source] : [])],
    { timeoutMs: timeoutMs + 5000 },
  );
  if (res.exitCode !== 0)
    throw new Error(
      `${protocol} request ${host}:${port} from ${netns} failed: ${res.stderr.trim() || res.exitCode}`,
    );
  const [pod = '', client = ''] = res.stdout.trim().split(/\s+/);
  return { pod, client };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function listNetns(): Promise<string[]> {
  const res = await execa('ip', ['netns', 'list'], { reject: false });
  return String(res.stdout ?? '')
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter(Boolean);
}

/** Kill every process in a namespace, then delete it (its veth ends and bridges go with it). */
export async function deleteNetns(netns: string): Promise<void> {
  const pids = await execa('ip', ['netns', 'pids', netns], { reject: false });
  for (const p of String(pids.stdout ?? '')
    .split('\n')
    .filter(Boolean)) {
    try {
      process.kill(Number(p), 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await execa('ip', ['netns', 'del', netns], { reject: false });
}

/**
 * A namespace standing for a node with nothing around it: loopback up and one interface (eth0, a
 * veth whose peer stays inside) holding `address`, so that tools reading the node's addresses from
 * its interfaces find exactly that one.
 */
export async function createLoneNodeNetns(netns: string, address = '10.99.0.2/24'): Promise<void> {
  await execa('ip', ['netns', 'add', netns]);
  await execa('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
  await execa('ip', ['-n', netns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1']);
  await execa('ip', ['-n', netns, 'addr', 'add', address, 'dev', 'eth0']);
  await execa('ip', ['-n', netns, 'link', 'set', 'eth0', 'up']);
}

/**
 * Delete namespaces named `<prefix><pid>-…` whose process has died (killed before its own clean-up
 * ran). Topologies use NETNS_PREFIX; the benchmarks use their own prefix. Returns what was removed.
 */
export async function sweepStaleTopologies(prefix = NETNS_PREFIX): Promise<string[]> {
  const stale = (await listNetns()).filter((n) => {
    const m = new RegExp(`^${prefix}(\\d+)-`).exec(n);
    return m?.[1] !== undefined && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]));
  });
  for (const n of stale) await deleteNetns(n);
  return stale;
}

/** Delete the state `portway run` keeps for a network namespace (/run/portway/netns-<inode>-<marker>). */
export async function removeAgentState(netns: string): Promise<void> {
  const res = await execInNetns(netns, 'readlink', ['/proc/self/ns/net']);
  const id = /\[(\d+)\]/.exec(String(res.stdout))?.[1];
  if (id) await forgetNetnsState(id);
}

export class Topology {
  readonly prefix: string;
  readonly lanNetns: string;
  readonly client: ClientInfo;
  readonly nodes: NodeInfo[] = [];
  readonly ipv6: boolean;
  private readonly created: string[] = [];
  private readonly processes: NetnsProcess[] = [];
  private tornDown = false;

  private constructor(prefix: string, ipv6: boolean) {
    this.prefix = prefix;
    this.ipv6 = ipv6;
    this.lanNetns = `${prefix}lan`;
    this.client = {
      name: 'client',
      netns: `${prefix}client`,
      ip: CLIENT_IP,
      ip6: ipv6 ? CLIENT_IP6 : null,
      ifname: 'eth0',
    };
  }

  /** Build the topology; on any failure everything created so far is removed before rethrowing. */
  static async create(spec: TopologySpec = {}): Promise<Topology> {
    await sweepStaleTopologies();
    if (spec.tag !== undefined && !/^[a-z0-9]{1,12}$/.test(spec.tag))
      throw new Error(`topology: tag "${spec.tag}" must be 1-12 of [a-z0-9]`);
    const prefix = `${NETNS_PREFIX}${process.pid}-${spec.tag ?? randomBytes(2).toString('hex')}-`;
    const topo = new Topology(prefix, spec.ipv6 ?? true);
    try {
      await topo.build(spec);
    } catch (err) {
      await topo.teardown();
      throw err;
    }
    return topo;
  }

  get pods(): PodInfo[] {
    return this.nodes.flatMap((n) => n.pods);
  }

  node(nameOrIndex: string | number): NodeInfo {
    const n = this.nodes.find((x) => x.name === nameOrIndex || x.index === nameOrIndex);
    if (!n) throw new Error(`topology has no node ${nameOrIndex}`);
    return n;
  }

  pod(name: string): PodInfo {
    const p = this.pods.find((x) => x.name === name);
    if (!p) throw new Error(`topology has no pod ${name}`);
    return p;
  }

  /** Every namespace this topology made (for inspection; teardown deletes them). */
  namespaces(): string[] {
    return [...this.created];
  }

  exec(
    netns: string,
    cmd: string,
    args: readonly string[],
    opts: { input?: string; timeoutMs?: number } = {},
  ) {
    return execInNetns(netns, cmd, args, opts);
  }

  /** Start a process in a namespace; teardown stops it. */
  start(netns: string, cmd: string, args: readonly string[]): NetnsProcess {
    const p = startInNetns(netns, cmd, args);
    this.processes.push(p);
    return p;
  }

  /** Start an echo server in a pod (done for every pod at create unless echo: false). */
  async startEcho(pod: PodInfo, ports: { tcp?: number; udp?: number } = {}): Promise<NetnsProcess> {
    const p = this.start(pod.netns, process.execPath, [
      ECHO_SERVER,
      '--name',
      pod.name,
      '--tcp',
      String(ports.tcp ?? ECHO_TCP_PORT),
      '--udp',
      String(ports.udp ?? ECHO_UDP_PORT),
    ]);
    await p.waitFor(/^ready$/m);
    return p;
  }

  tcpRequest(fromNetns: string, host: string, port: number, opts?: RequestOptions): Promise<EchoAnswer> {
    return echoRequest(fromNetns, 'tcp', host, port, opts);
  }

  udpRequest(fromNetns: string, host: string, port: number, opts?: RequestOptions): Promise<EchoAnswer> {
    return echoRequest(fromNetns, 'udp', host, port, opts);
  }

  /** Add a route in a namespace (e.g. the client's route to service addresses via a node). */
  async addRoute(netns: string, cidr: string, via: string): Promise<void> {
    await ip(['-n', netns, 'route', 'replace', cidr, 'via', via]);
  }

  /** Stop every process and delete every namespace (and with them every link). Safe to call twice. */
  async teardown(): Promise<void> {
    if (this.tornDown) return;
    this.tornDown = true;
    await Promise.allSettled(this.processes.map((p) => p.stop()));
    // An agent run in a namespace keeps its journals in /run/portway/netns-<inode>-…: they go with it.
    for (const ns of this.created) await removeAgentState(ns);
    for (const ns of [...this.created].reverse()) await deleteNetns(ns);
    // Anything with our prefix that a failed step created but did not record.
    for (const ns of await listNetns()) if (ns.startsWith(this.prefix)) await deleteNetns(ns);
  }

  // ── building ──

  private async addNetns(name: string, forwarding: boolean): Promise<void> {
    await ip(['netns', 'add', name]);
    this.created.push(name);
    await ip(['-n', name, 'link', 'set', 'lo', 'up']);
    const sysctls = [
      // Addresses must be usable at once: no IPv6 duplicate address detection delay.
      'net.ipv6.conf.all.accept_dad=0',
      'net.ipv6.conf.default.accept_dad=0',
      'net.ipv4.conf.all.rp_filter=0',
      'net.ipv4.conf.default.rp_filter=0',
      ...(forwarding ? ['net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1'] : []),
    ];
    const res = await execInNetns(name, 'sysctl', ['-q', '-w', ...sysctls]);
    if (res.exitCode !== 0) throw new Error(`sysctl in ${name}: ${res.stderr}`);
  }

  private async build(spec: TopologySpec): Promise<void> {
    const nodeCount = spec.nodes ?? 2;
    if (!Number.isInteger(nodeCount) || nodeCount < 1 || nodeCount > 50)
      throw new Error(`topology: nodes must be 1..50, got ${nodeCount}`);
    const podCounts = Array.isArray(spec.podsPerNode)
      ? spec.podsPerNode
      : Array<number>(nodeCount).fill(spec.podsPerNode ?? 1);
    if (podCounts.some((c) => !Number.isInteger(c) || c < 0 || c > 200))
      throw new Error(`topology: pods per node must be 0..200, got ${podCounts.join(',')}`);
    if (podCounts.length !== nodeCount)
      throw new Error(`topology: podsPerNode has ${podCounts.length} entries for ${nodeCount} nodes`);
    const v6 = this.ipv6;

    // The LAN: a bridge in its own namespace.
    await this.addNetns(this.lanNetns, false);
    await ip(['-n', this.lanNetns, 'link', 'add', 'br0', 'type', 'bridge']);
    await ip(['-n', this.lanNetns, 'link', 'set', 'br0', 'up']);
    let port = 0;
    const attachToLan = async (netns: string, ip4: string, ip6: string | null) => {
      const lanSide = `p${++port}`;
      await ip([
        '-n',
        netns,
        'link',
        'add',
        'eth0',
        'type',
        'veth',
        'peer',
        'name',
        lanSide,
        'netns',
        this.lanNetns,
      ]);
      await ip(['-n', this.lanNetns, 'link', 'set', lanSide, 'master', 'br0', 'up']);
      await ip(['-n', netns, 'addr', 'add', `${ip4}/24`, 'dev', 'eth0']);
      if (ip6) await ip(['-n', netns, 'addr', 'add', `${ip6}/64`, 'dev', 'eth0', 'nodad']);
      await ip(['-n', netns, 'link', 'set', 'eth0', 'up']);
    };

    await this.addNetns(this.client.netns, false);
    await attachToLan(this.client.netns, this.client.ip, this.client.ip6);

    for (let k = 1; k <= nodeCount; k++) {
      const node: NodeInfo = {
        name: `node${k}`,
        index: k,
        netns: `${this.prefix}node${k}`,
        ip: `10.99.0.${10 + k}`,
        ip6: v6 ? `fd99::${(10 + k).toString(16)}` : null,
        podCidr: `10.244.${k}.0/24`,
        podCidr6: v6 ? `fd44:0:0:${k.toString(16)}::/64` : null,
        podGateway: `10.244.${k}.1`,
        ifname: 'eth0',
        pods: [],
      };
      await this.addNetns(node.netns, true);
      await attachToLan(node.netns, node.ip, node.ip6);
      for (let j = 1; j <= (podCounts[k - 1] ?? 0); j++) node.pods.push(await this.addPod(node, j));
      this.nodes.push(node);
    }
    // Routes to the other nodes' pod CIDRs via their LAN addresses.
    for (const node of this.nodes) {
      for (const other of this.nodes) {
        if (other === node) continue;
        await ip(['-n', node.netns, 'route', 'add', other.podCidr, 'via', other.ip]);
        if (other.podCidr6 && other.ip6)
          await ip(['-n', node.netns, '-6', 'route', 'add', other.podCidr6, 'via', other.ip6]);
      }
    }
    if (spec.echo ?? true) await Promise.all(this.pods.map((p) => this.startEcho(p)));
  }

  private async addPod(node: NodeInfo, j: number): Promise<PodInfo> {
    const pod: PodInfo = {
      name: `${node.name}-pod${j}`,
      netns: `${this.prefix}n${node.index}-pod${j}`,
      node: node.index,
      ip: `10.244.${node.index}.${10 + j}`,
      ip6: node.podCidr6 ? `fd44:0:0:${node.index.toString(16)}::${(10 + j).toString(16)}` : null,
      hostIfname: `veth${j}`,
    };
    const gw = node.podGateway;
    await this.addNetns(pod.netns, false);
    await ip([
      '-n',
      pod.netns,
      'link',
      'add',
      'eth0',
      'type',
      'veth',
      'peer',
      'name',
      pod.hostIfname,
      'netns',
      node.netns,
    ]);
    // Node side: the gateway address (the same /32 on every pod veth) and a host route to the pod.
    await ip(['-n', node.netns, 'addr', 'add', `${gw}/32`, 'dev', pod.hostIfname]);
    await ip(['-n', node.netns, 'link', 'set', pod.hostIfname, 'up']);
    await ip(['-n', node.netns, 'route', 'add', `${pod.ip}/32`, 'dev', pod.hostIfname]);
    // Pod side: its /32 and a default route through the node.
    await ip(['-n', pod.netns, 'addr', 'add', `${pod.ip}/32`, 'dev', 'eth0']);
    await ip(['-n', pod.netns, 'link', 'set', 'eth0', 'up']);
    await ip(['-n', pod.netns, 'route', 'add', gw, 'dev', 'eth0', 'scope', 'link']);
    await ip(['-n', pod.netns, 'route', 'add', 'default', 'via', gw, 'dev', 'eth0']);
    if (pod.ip6) {
      const gw6 = 'fe80::1';
      await ip(['-n', node.netns, 'addr', 'add', `${gw6}/64`, 'dev', pod.hostIfname, 'nodad']);
      await ip(['-n', node.netns, '-6', 'route', 'add', `${pod.ip6}/128`, 'dev', pod.hostIfname]);
      await ip(['-n', pod.netns, 'addr', 'add', `${pod.ip6}/128`, 'dev', 'eth0', 'nodad']);
      await ip(['-n', pod.netns, '-6', 'route', 'add', 'default', 'via', gw6, 'dev', 'eth0']);
    }
    return pod;
  }
}

/** Convenience for tests: build, run, and always tear down. */
export async function withTopology<T>(spec: TopologySpec, fn: (t: Topology) => Promise<T>): Promise<T> {
  const t = await Topology.create(spec);
  try {
    return await fn(t);
  } finally {
    await t.teardown();
  }
}
