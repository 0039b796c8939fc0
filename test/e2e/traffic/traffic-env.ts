// Shared pieces of the real-traffic e2e tests ("Apply for real") and the demo: a namespace topology
// (test/e2e/harness), the agent running as a real process inside node namespaces
// (`ip netns exec NODE portway run --manifests DIR --config FILE`), manifests written to a watched
// temp directory, and a long-lived traffic client per namespace that reports which pod answered and
// which source address the pod saw.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rename, rm, writeFile, mkdir, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { ECHO_TCP_PORT, Topology, type NodeInfo, type TopologySpec } from '../harness/topology.js';
import { forgetNetnsState } from '../../../src/sync/netns-state.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const TRAFFIC_CLIENT = join(dirname(fileURLToPath(import.meta.url)), 'traffic-client.mjs');

// ── manifests ───────────────────────────────────────────────────────────────────────────────────

export interface PortSpec {
  name: string;
  port: number;
  protocol?: 'TCP' | 'UDP';
  targetPort?: number;
  nodePort?: number;
}

export interface ServiceSpec {
  name: string;
  namespace?: string;
  type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer';
  clusterIP: string;
  ports: PortSpec[];
  externalIPs?: string[];
  loadBalancerIngress?: string[];
  loadBalancerSourceRanges?: string[];
  externalTrafficPolicy?: 'Cluster' | 'Local';
  sessionAffinity?: { timeoutSeconds: number };
}

export interface EndpointSpec {
  ip: string;
  /** Node name (as in the agents' configs: "node1" …). */
  node: string;
  /** Pod name (targetRef). */
  pod?: string;
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
}

/** Service port "http" 80 → the pods' TCP echo server, with a node port when one is given. */
export function echoHttpPort(nodePort?: number): PortSpec {
  const node = nodePort !== undefined ? { nodePort } : {};
  return { name: 'http', port: 80, targetPort: ECHO_TCP_PORT, ...node };
}

/** A Service object as the API would hold it (plain data, stringified to YAML by writeManifest). */
export function serviceObject(s: ServiceSpec): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: s.name, namespace: s.namespace ?? 'default' },
    spec: {
      type: s.type ?? 'ClusterIP',
      clusterIP: s.clusterIP,
      clusterIPs: [s.clusterIP],
      selector: { app: s.name },
      ports: s.ports.map((p) => ({
        name: p.name,
        port: p.port,
        protocol: p.protocol ?? 'TCP',
        targetPort: p.targetPort ?? p.port,
        ...(p.nodePort !== undefined ? { nodePort: p.nodePort } : {}),
      })),
      ...(s.externalIPs ? { externalIPs: s.externalIPs } : {}),
      ...(s.loadBalancerSourceRanges ? { loadBalancerSourceRanges: s.loadBalancerSourceRanges } : {}),
      ...(s.externalTrafficPolicy ? { externalTrafficPolicy: s.externalTrafficPolicy } : {}),
      ...(s.sessionAffinity
        ? {
            sessionAffinity: 'ClientIP',
            sessionAffinityConfig: { clientIP: { timeoutSeconds: s.sessionAffinity.timeoutSeconds } },
          }
        : {}),
    },
    ...(s.loadBalancerIngress
      ? { status: { loadBalancer: { ingress: s.loadBalancerIngress.map((ip) => ({ ip })) } } }
      : {}),
  };
}

/** The EndpointSlice the controller would write for a Service (ports: the Service's target ports). */
export function endpointSliceObject(
  s: ServiceSpec,
  endpoints: EndpointSpec[],
  sliceName = `${s.name}-abcde`,
): Record<string, unknown> {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: sliceName,
      namespace: s.namespace ?? 'default',
      labels: { 'kubernetes.io/service-name': s.name },
    },
    addressType: 'IPv4',
    ports: s.ports.map((p) => ({
      name: p.name,
      port: p.targetPort ?? p.port,
      protocol: p.protocol ?? 'TCP',
    })),
    endpoints: endpoints.map((e) => ({
      addresses: [e.ip],
      conditions: {
        ready: e.ready ?? true,
        ...(e.serving !== undefined ? { serving: e.serving } : {}),
        ...(e.terminating !== undefined ? { terminating: e.terminating } : {}),
      },
      nodeName: e.node,
      ...(e.pod ? { targetRef: { kind: 'Pod', name: e.pod } } : {}),
    })),
  };
}

export const toYaml = (objects: Array<Record<string, unknown>>): string =>
  objects.map((o) => stringify(o)).join('---\n');

// ── the traffic client ──────────────────────────────────────────────────────────────────────────

export interface RequestSpec {
  timeoutMs?: number;
  source?: string;
  sourcePort?: number;
}

export interface RequestResult {
  ok: boolean;
  pod?: string;
  client?: string;
  error?: string;
  ms: number;
}

/** One traffic-client.mjs process in a namespace; requests are JSON lines, answers matched by id. */
export class TrafficClient {
  private nextId = 1;
  private readonly pending = new Map<number, (r: RequestResult) => void>();
  private constructor(
    readonly netns: string,
    private readonly child: ChildProcess,
  ) {}

  static async start(netns: string): Promise<TrafficClient> {
    const child = spawn('ip', ['netns', 'exec', netns, process.execPath, TRAFFIC_CLIENT], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const client = new TrafficClient(netns, child);
    const lines = createInterface({ input: child.stdout! });
    await new Promise<void>((resolveReady, reject) => {
      const timer = setTimeout(() => reject(new Error(`traffic client in ${netns} did not start`)), 10_000);
      child.once('exit', (code) => reject(new Error(`traffic client in ${netns} exited (${code})`)));
      lines.on('line', (line) => {
        const msg = JSON.parse(line) as { ready?: boolean; id?: number } & RequestResult;
        if (msg.ready) {
          clearTimeout(timer);
          resolveReady();
          return;
        }
        const cb = msg.id !== undefined ? client.pending.get(msg.id) : undefined;
        if (cb && msg.id !== undefined) {
          client.pending.delete(msg.id);
          cb(msg);
        }
      });
    });
    return client;
  }

  request(proto: 'tcp' | 'udp', host: string, port: number, spec: RequestSpec = {}): Promise<RequestResult> {
    const id = this.nextId++;
    return new Promise((res) => {
      this.pending.set(id, res);
      this.child.stdin!.write(
        JSON.stringify({ id, proto, host, port, timeoutMs: spec.timeoutMs ?? 1000, ...spec }) + '\n',
      );
    });
  }

  /** `count` requests, `parallel` at a time; answers per pod (failures under the key "!<error>"). */
  async spread(
    proto: 'tcp' | 'udp',
    host: string,
    port: number,
    count: number,
    spec: RequestSpec = {},
    parallel = 4,
  ): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    let left = count;
    const worker = async () => {
      while (left-- > 0) {
        const r = await this.request(proto, host, port, spec);
        const key = r.ok ? (r.pod ?? '') : `!${r.error}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: parallel }, worker));
    return counts;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(timer);
  }
}

// ── the agent process ───────────────────────────────────────────────────────────────────────────

export interface AgentConfigSpec {
  minSyncPeriod?: string;
  syncPeriod?: string;
  extra?: Record<string, unknown>;
}

/** One `portway run` process inside a node namespace; its pino JSON lines are kept for assertions. */
export class AgentProcess {
  private out = '';
  private readonly listeners = new Set<() => void>();
  private readonly exited: Promise<void>;
  readonly child: ChildProcess;

  constructor(
    readonly node: NodeInfo,
    readonly args: readonly string[],
    env: NodeJS.ProcessEnv,
  ) {
    this.child = spawn('ip', ['netns', 'exec', node.netns, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
    });
    const onData = (d: Buffer) => {
      this.out += d.toString();
      for (const l of this.listeners) l();
    };
    this.child.stdout!.on('data', onData);
    this.child.stderr!.on('data', onData);
    this.exited = new Promise((r) => this.child.once('exit', () => r()));
    this.child.once('exit', () => {
      for (const l of this.listeners) l();
    });
  }

  output(): string {
    return this.out;
  }

  /** Parsed log records (pino JSON lines; anything else is ignored). */
  records(): Array<{ level: number; msg: string } & Record<string, unknown>> {
    const out: Array<{ level: number; msg: string } & Record<string, unknown>> = [];
    for (const line of this.out.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        out.push(JSON.parse(line) as { level: number; msg: string });
      } catch {
        // a partial line at the end of the buffer
      }
    }
    return out;
  }

  /** Number of log records with this message so far. */
  count(msg: string | RegExp): number {
    return this.records().filter((r) => (typeof msg === 'string' ? r.msg === msg : msg.test(r.msg))).length;
  }

  /** Wait until at least `n` records match (e.g. the first "iptables rules applied"). */
  waitForCount(msg: string | RegExp, n: number, timeoutMs = 15_000): Promise<void> {
    return new Promise((resolveWait, reject) => {
      const check = () => {
        if (this.count(msg) >= n) {
          done();
          resolveWait();
        } else if (this.child.exitCode !== null || this.child.signalCode !== null) {
          done();
          reject(
            new Error(
              `agent on ${this.node.name} exited (${this.child.exitCode ?? this.child.signalCode}) before ${n}× "${msg}":\n${this.tail()}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `agent on ${this.node.name}: fewer than ${n}× "${msg}" within ${timeoutMs} ms:\n${this.tail()}`,
          ),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }

  tail(lines = 30): string {
    return this.out.split('\n').slice(-lines).join('\n');
  }

  /** SIGTERM (the agent stops cleanly, leaving its rules), SIGKILL after 5 s. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await this.exited;
      clearTimeout(timer);
    }
    return this.child.exitCode;
  }
}

export const RULES_APPLIED = /^iptables (rules applied|already up to date)$/;

// ── the environment ─────────────────────────────────────────────────────────────────────────────

export interface TrafficEnvSpec extends TopologySpec {
  /** Run the agent with the built CLI (./bin/portway) instead of the TypeScript sources through tsx. */
  useBuiltCli?: boolean;
}

/**
 * A topology plus a manifest directory, per-node agent configs, agents and traffic clients. teardown()
 * stops every process, deletes every namespace, the temp directory and the agents' state under /run/portway.
 */
export class TrafficEnv {
  readonly manifests: string;
  private readonly clients: TrafficClient[] = [];
  private readonly agents: AgentProcess[] = [];
  private readonly netnsIds: string[] = [];
  private counter = 0;

  private constructor(
    readonly topo: Topology,
    readonly dir: string,
    private readonly spec: TrafficEnvSpec,
  ) {
    this.manifests = join(dir, 'manifests');
  }

  static async create(spec: TrafficEnvSpec): Promise<TrafficEnv> {
    if (process.getuid?.() !== 0)
      throw new Error('the traffic e2e tests need root (network namespaces, iptables)');
    const topo = await Topology.create({ ipv6: false, ...spec });
    let dir = '';
    try {
      dir = await mkdtemp(join(tmpdir(), `portway-traffic-${spec.tag ?? 'x'}-`));
      await mkdir(join(dir, 'manifests'));
      await mkdir(join(dir, 'staging'));
      const env = new TrafficEnv(topo, dir, spec);
      for (const n of topo.nodes) {
        const id = await execa('ip', ['netns', 'exec', n.netns, 'readlink', '/proc/self/ns/net']);
        const m = /\[(\d+)\]/.exec(id.stdout);
        if (m?.[1]) env.netnsIds.push(m[1]);
      }
      return env;
    } catch (err) {
      await topo.teardown();
      if (dir) await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /**
   * Write a manifest file into the watched directory atomically (written beside it, then renamed in),
   * so the agent never reads half a file unless a test wants it to.
   */
  async writeManifest(file: string, content: string | Array<Record<string, unknown>>): Promise<void> {
    const text = typeof content === 'string' ? content : toYaml(content);
    const staged = join(this.dir, 'staging', `${file}.${++this.counter}`);
    await writeFile(staged, text);
    await rename(staged, join(this.manifests, file));
  }

  /** One file per Service: `<name>.yaml` with the Service and its EndpointSlice (rewritten to change endpoints). */
  async writeService(s: ServiceSpec, endpoints: EndpointSpec[]): Promise<void> {
    await this.writeManifest(`${s.name}.yaml`, [serviceObject(s), endpointSliceObject(s, endpoints)]);
  }

  async removeManifest(file: string): Promise<void> {
    await rm(join(this.manifests, file), { force: true });
  }

  /** The agent config of a node: its name and LAN address, the pod CIDR detector, short sync periods. */
  async writeConfig(node: NodeInfo, spec: AgentConfigSpec = {}): Promise<string> {
    const path = join(this.dir, `${node.name}.yaml`);
    const config = {
      nodeName: node.name,
      nodeIPs: [node.ip],
      mode: 'iptables',
      clusterCIDRs: ['10.244.0.0/16'],
      iptables: { minSyncPeriod: spec.minSyncPeriod ?? '100ms', syncPeriod: spec.syncPeriod ?? '30s' },
      ...spec.extra,
    };
    await writeFile(path, stringify(config));
    return path;
  }

  agentArgs(configPath: string): string[] {
    const cli = this.spec.useBuiltCli
      ? [process.execPath, join(ROOT, 'bin/portway')]
      : [process.execPath, '--import', 'tsx', join(ROOT, 'src/cli/main.ts')];
    return [...cli, 'run', '--manifests', this.manifests, '--config', configPath];
  }

  /** Start the agent in a node's namespace (`env` adds to the environment, e.g. a PATH with a fault). */
  startAgent(node: NodeInfo, configPath: string, env: NodeJS.ProcessEnv = {}): AgentProcess {
    const agent = new AgentProcess(node, this.agentArgs(configPath), { ...process.env, LC_ALL: 'C', ...env });
    this.agents.push(agent);
    return agent;
  }

  /** Start an agent and wait for its first successful sync. */
  async startAgentAndSync(
    node: NodeInfo,
    configPath: string,
    env: NodeJS.ProcessEnv = {},
  ): Promise<AgentProcess> {
    const agent = this.startAgent(node, configPath, env);
    await agent.waitForCount(RULES_APPLIED, 1, 30_000);
    return agent;
  }

  async client(netns: string): Promise<TrafficClient> {
    const c = await TrafficClient.start(netns);
    this.clients.push(c);
    return c;
  }

  async iptablesSave(node: NodeInfo, table: 'nat' | 'filter' = 'nat'): Promise<string> {
    const res = await execa('ip', ['netns', 'exec', node.netns, 'iptables-save', '-t', table]);
    return res.stdout;
  }

  /** Poll the node's rules until `predicate` holds; returns how long it took. */
  async waitForRules(
    node: NodeInfo,
    what: string,
    predicate: (nat: string) => boolean,
    timeoutMs = 10_000,
  ): Promise<number> {
    const start = Date.now();
    for (;;) {
      const nat = await this.iptablesSave(node);
      if (predicate(nat)) return Date.now() - start;
      if (Date.now() - start > timeoutMs) {
        const logs = this.agents
          .filter((a) => a.node === node)
          .map((a) => a.tail(15))
          .join('\n');
        throw new Error(`rules on ${node.name}: no ${what} within ${timeoutMs} ms\n${logs}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** A fake tool directory to put first on an agent's PATH: `iptables-nft-restore` fails while FLAG exists. */
  async failingRestoreDir(): Promise<{ pathDir: string; flag: string }> {
    const pathDir = join(this.dir, 'fault-bin');
    const flag = join(this.dir, 'fail-restore');
    await mkdir(pathDir, { recursive: true });
    for (const tool of ['iptables-nft-restore', 'iptables-legacy-restore']) {
      const real = `/usr/sbin/${tool}`;
      const script = [
        '#!/bin/sh',
        `# e2e fault injection: fail while ${flag} exists, else run the real tool`,
        `if [ -e '${flag}' ]; then cat >/dev/null; echo "${tool}: injected failure (line 1 failed)" >&2; exit 1; fi`,
        `exec ${real} "$@"`,
        '',
      ].join('\n');
      await writeFile(join(pathDir, tool), script);
      await chmod(join(pathDir, tool), 0o755);
    }
    return { pathDir, flag };
  }

  async teardown(): Promise<void> {
    await Promise.allSettled(this.clients.map((c) => c.stop()));
    await Promise.allSettled(this.agents.map((a) => a.stop()));
    await this.topo.teardown();
    await rm(this.dir, { recursive: true, force: true });
    // The agents' sysctl / created-chain journals are per network namespace: gone with it.
    for (const id of this.netnsIds) await forgetNetnsState(id);
  }
}

/** Sum of counts over keys that are pod names (not failures). */
/** Whether a nat dump DNATs the service port `id` ("ns/name:port") to `ip` (some KUBE-SEP rule does). */
export function hasDnat(nat: string, id: string, ip: string): boolean {
  // iptables-nft-save quotes every comment; iptables-legacy-save only those with spaces.
  return nat
    .split('\n')
    .some(
      (l) =>
        (l.includes(`--comment "${id}" `) || l.includes(`--comment ${id} `)) &&
        l.includes(`-j DNAT --to-destination ${ip}:`),
    );
}

export function okCount(counts: Map<string, number>): number {
  let n = 0;
  for (const [k, v] of counts) if (!k.startsWith('!')) n += v;
  return n;
}

export function podsHit(counts: Map<string, number>): string[] {
  return [...counts.keys()].filter((k) => !k.startsWith('!')).sort();
}
