// Node spec.podCIDRs (kube-proxy's NodeCIDR local detector reads them from this node's Node object).
import { buildClusterState } from '../../../src/model/normalise.js';
import { parseManifestText } from '../../../src/model/load.js';
import type { InputProblem } from '../../../src/model/cluster-state.js';

const build = (text: string) => buildClusterState(parseManifestText(text, 'nodes.yaml').objects);
const brief = (ps: InputProblem[]) => ps.map((p) => `${p.kind} ${p.object} ${p.field}: ${p.message}`);

describe('Node podCIDRs', () => {
  it('reads spec.podCIDRs canonical and masked, in the Node order, deduplicated', () => {
    const { state, problems } = build(`
apiVersion: v1
kind: Node
metadata: { name: node-a }
spec: { podCIDR: 10.244.1.0/24, podCIDRs: [10.244.1.0/24, "FD00:244:0:1::/64", 10.244.1.7/24] }
`);
    expect(problems).toEqual([]);
    expect(state.nodes[0]?.podCIDRs).toEqual(['10.244.1.0/24', 'fd00:244:0:1::/64']);
  });

  it('falls back to the legacy spec.podCIDR when podCIDRs is empty', () => {
    const { state } = build(`
apiVersion: v1
kind: Node
metadata: { name: node-a }
spec: { podCIDR: "fd00:244:0:2::/64" }
`);
    expect(state.nodes[0]?.podCIDRs).toEqual(['fd00:244:0:2::/64']);
  });

  it('leaves podCIDRs out when the Node has none', () => {
    const { state } = build(`
apiVersion: v1
kind: Node
metadata: { name: node-a }
`);
    expect(state.nodes[0]).toEqual({ name: 'node-a', addresses: [], ready: false, labels: {} });
  });

  it('reports a malformed pod CIDR by field and keeps the Node and its other CIDRs', () => {
    const { state, problems } = build(`
apiVersion: v1
kind: Node
metadata: { name: node-a }
spec: { podCIDRs: [10.244.1.0/33, "fd00:244::/64", 10.244.1.1] }
status: { conditions: [{ type: Ready, status: "True" }] }
---
apiVersion: v1
kind: Node
metadata: { name: node-b }
spec: { podCIDR: nonsense }
`);
    expect(brief(problems)).toEqual([
      'Node node-a spec.podCIDRs[0]: not a valid CIDR (got "10.244.1.0/33")',
      'Node node-a spec.podCIDRs[2]: not a valid CIDR (got "10.244.1.1")',
      'Node node-b spec.podCIDR: not a valid CIDR (got "nonsense")',
    ]);
    expect(state.nodes.map((n) => [n.name, n.ready, n.podCIDRs])).toEqual([
      ['node-a', true, ['fd00:244::/64']],
      ['node-b', false, undefined],
    ]);
  });

  it('names the field when podCIDRs is not a list of strings', () => {
    const { problems } = build(`
apiVersion: v1
kind: Node
metadata: { name: node-a }
spec: { podCIDRs: [7] }
`);
    expect(brief(problems)).toEqual([expect.stringMatching(/^Node node-a spec\.podCIDRs\.?\[?0\]?: must be a string/)]);
  });
});
