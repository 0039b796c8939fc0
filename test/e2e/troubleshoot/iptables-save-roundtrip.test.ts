// `portway trace` may be fed what the kernel holds (iptables-save), not what portway wrote. The real
// tools print rules differently from how kube-proxy writes them (options reordered, "/32" added,
// "--or-mark 0x4000" shown as "--set-xmark 0x4000/0x4000", REJECT with its default --reject-with):
// load the kube-proxy-shaped fixture into a fresh network namespace, read it back with each backend,
// and check that the walker gives the same answer for the saved text as for the original.
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { parseIptablesDump } from '../../../src/troubleshoot/iptables-dump.js';
import { walkPacket, type TracedPacket } from '../../../src/troubleshoot/packet-walker.js';
import {
  BLOCKED_CLIENT,
  EXTERNAL_CLIENT,
  KUBE_PROXY_RULES,
  NODE_IP,
} from '../../unit/troubleshoot/kube-proxy-rules.js';

const isRoot = process.getuid?.() === 0;
const maybe = isRoot ? describe : describe.skip;

const BACKENDS = [
  { name: 'nft', restore: 'iptables-nft-restore', save: 'iptables-nft-save' },
  { name: 'legacy', restore: 'iptables-legacy-restore', save: 'iptables-legacy-save' },
];

const PACKETS: Array<[string, TracedPacket, boolean]> = [
  [
    'pod to two-endpoint ClusterIP',
    { protocol: 'TCP', sourceIP: '10.0.0.2', destIP: '172.30.0.44', destPort: 80 },
    false,
  ],
  [
    'external to ClusterIP (masquerade)',
    { protocol: 'TCP', sourceIP: EXTERNAL_CLIENT, destIP: '172.30.0.41', destPort: 80 },
    false,
  ],
  [
    'UDP three-endpoint ladder',
    { protocol: 'UDP', sourceIP: '10.0.0.2', destIP: '172.30.0.47', destPort: 53 },
    false,
  ],
  ['no endpoints', { protocol: 'TCP', sourceIP: '10.0.0.2', destIP: '172.30.0.46', destPort: 80 }, false],
  ['NodePort', { protocol: 'TCP', sourceIP: EXTERNAL_CLIENT, destIP: NODE_IP, destPort: 3003 }, false],
  ['eTP=Local drop', { protocol: 'TCP', sourceIP: EXTERNAL_CLIENT, destIP: '1.2.3.4', destPort: 80 }, false],
  [
    'source range drop',
    { protocol: 'TCP', sourceIP: BLOCKED_CLIENT, destIP: '5.6.7.8', destPort: 80 },
    false,
  ],
  [
    'node to external IP',
    { protocol: 'TCP', sourceIP: NODE_IP, destIP: '192.168.99.22', destPort: 80 },
    true,
  ],
];

async function savedBy(backend: (typeof BACKENDS)[number]): Promise<string> {
  const ns = `pw-trace-${randomBytes(4).toString('hex')}`;
  await execa('ip', ['netns', 'add', ns]);
  try {
    await execa('ip', ['netns', 'exec', ns, backend.restore], { input: KUBE_PROXY_RULES });
    const { stdout } = await execa('ip', ['netns', 'exec', ns, backend.save]);
    return stdout;
  } finally {
    await execa('ip', ['netns', 'delete', ns], { reject: false });
  }
}

maybe.each(BACKENDS)('trace over iptables-save output ($name)', (backend) => {
  let saved = '';
  beforeAll(async () => {
    saved = await savedBy(backend);
  });

  test.each(PACKETS)('%s', (_name, packet, locallyGenerated) => {
    const opts = { localAddresses: [NODE_IP], locallyGenerated };
    const original = walkPacket(parseIptablesDump(KUBE_PROXY_RULES), packet, opts);
    const fromKernel = walkPacket(parseIptablesDump(saved), packet, opts);
    const summary = (o: typeof original) => ({
      verdict: o.verdict,
      // The kernel keeps a probability as a 31-bit fraction, so the saved text differs in the 10th digit.
      endpoints: o.endpointProbabilities.map((e) => [e.endpoint, e.probability.toFixed(6)]),
      masquerade: o.masquerade,
      chains: o.path.map((s) => `${s.table} ${s.chain} ${s.ruleIndex}`),
    });
    expect(summary(fromKernel)).toEqual(summary(original));
  });
});
