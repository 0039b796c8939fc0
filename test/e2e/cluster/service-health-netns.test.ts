// Health-check node ports answering real HTTP across network namespaces: the server runs in
// namespace A, the "load balancer" probes it with curl from namespace B over a veth pair.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { execa } from 'execa';
import { emptyClusterState, type ServicePort } from '../../../src/model/cluster-state.js';

const id = `${process.pid % 100000}`;
const NS_A = `pw-hc-a-${id}`;
const NS_B = `pw-hc-b-${id}`;
const VETH_A = `pwa${id}`;
const VETH_B = `pwb${id}`;
const ADDR_A = '10.201.77.1';
const PORT = 32123;

const canRun = process.getuid?.() === 0;
const maybe = canRun ? describe : describe.skip;

function lbService(localEndpointNodes: string[]): ServicePort {
  return {
    id: 'shop/front:http',
    namespace: 'shop',
    serviceName: 'front',
    portName: 'http',
    protocol: 'TCP',
    type: 'LoadBalancer',
    port: 80,
    nodePort: 30080,
    healthCheckNodePort: PORT,
    clusterIPs: ['10.96.0.20'],
    externalIPs: [],
    loadBalancerIngress: [{ ip: '192.0.2.10', ipMode: 'VIP' }],
    loadBalancerSourceRanges: [],
    externalTrafficPolicy: 'Local',
    internalTrafficPolicy: 'Cluster',
    sessionAffinity: { type: 'None' },
    ipFamilies: ['IPv4'],
    endpoints: localEndpointNodes.map((node, i) => ({
      ip: `10.244.0.${i + 1}`,
      port: 8080,
      family: 'IPv4' as const,
      ready: true,
      serving: true,
      terminating: false,
      nodeName: node,
    })),
  };
}

maybe('service health-check node port across network namespaces', () => {
  let child: ChildProcessWithoutNullStreams | undefined;
  let output = '';

  const waitForOutput = async (text: string, count = 1): Promise<void> => {
    const deadline = Date.now() + 20_000;
    while (output.split(text).length - 1 < count) {
      if (Date.now() > deadline) throw new Error(`child did not print "${text}" (${count}×); got: ${output}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };

  const probe = async (): Promise<{ status: string; body: string }> => {
    const r = await execa(
      'ip',
      ['netns', 'exec', NS_B, 'curl', '-s', '-m', '3', '-w', '\n%{http_code}', `http://${ADDR_A}:${PORT}/`],
      { reject: false },
    );
    const lines = r.stdout.split('\n');
    return { status: lines.pop() ?? '', body: lines.join('\n') };
  };

  beforeAll(async () => {
    await execa('ip', ['netns', 'add', NS_A]);
    await execa('ip', ['netns', 'add', NS_B]);
    await execa('ip', ['link', 'add', VETH_A, 'type', 'veth', 'peer', 'name', VETH_B]);
    await execa('ip', ['link', 'set', VETH_A, 'netns', NS_A]);
    await execa('ip', ['link', 'set', VETH_B, 'netns', NS_B]);
    await execa('ip', ['-n', NS_A, 'addr', 'add', `${ADDR_A}/24`, 'dev', VETH_A]);
    await execa('ip', ['-n', NS_B, 'addr', 'add', '10.201.77.2/24', 'dev', VETH_B]);
    for (const [ns, dev] of [
      [NS_A, VETH_A],
      [NS_B, VETH_B],
    ] as const) {
      await execa('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      await execa('ip', ['-n', ns, 'link', 'set', dev, 'up']);
    }
    child = spawn(
      'ip',
      [
        'netns',
        'exec',
        NS_A,
        process.execPath,
        '--import',
        'tsx',
        'test/e2e/cluster/serve-service-health.ts',
        'node-a',
      ],
      { cwd: process.cwd() },
    );
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    await waitForOutput('ready');
  }, 60_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.stdin.end();
      await new Promise((r) => {
        const t = setTimeout(() => {
          child!.kill('SIGKILL');
          r(undefined);
        }, 3000);
        child!.on('exit', () => {
          clearTimeout(t);
          r(undefined);
        });
      });
    }
    await execa('ip', ['netns', 'del', NS_A], { reject: false });
    await execa('ip', ['netns', 'del', NS_B], { reject: false });
  });

  const sync = async (servicePorts: ServicePort[], n: number): Promise<void> => {
    child!.stdin.write(`${JSON.stringify({ ...emptyClusterState(), servicePorts })}\n`);
    await waitForOutput('synced', n);
  };

  it('answers 200 with the local endpoint count, 503 without, and closes with the Service', async () => {
    await sync([lbService(['node-a', 'node-a', 'node-b'])], 1);
    let r = await probe();
    expect(r.status).toBe('200');
    expect(JSON.parse(r.body)).toEqual({
      service: { namespace: 'shop', name: 'front' },
      localEndpoints: 2,
      serviceProxyHealthy: true,
    });

    await sync([lbService(['node-b'])], 2);
    r = await probe();
    expect(r.status).toBe('503');
    expect(JSON.parse(r.body).localEndpoints).toBe(0);

    await sync([], 3);
    r = await probe();
    expect(r.status).toBe('000'); // connection refused: the port is closed
  }, 60_000);
});
