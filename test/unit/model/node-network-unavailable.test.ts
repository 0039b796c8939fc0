// Node status.conditions NetworkUnavailable → NodeInfo.networkUnavailable (MetalLB's speaker announces
// nothing from such a node): only an explicit "True" on the first condition of that type counts.
import { buildClusterState } from '../../../src/model/normalise.js';
import { parseManifestText } from '../../../src/model/load.js';

const build = (text: string) => buildClusterState(parseManifestText(text, 'nodes.yaml').objects);
const nodeWith = (conditions: string) => `
apiVersion: v1
kind: Node
metadata: { name: node-a }
status: { conditions: [{ type: Ready, status: "True" }${conditions}] }
`;

describe('Node NetworkUnavailable condition', () => {
  it('reads status "True" as networkUnavailable, keeping the other fields', () => {
    const { state, problems } = build(
      nodeWith(
        ', { type: NetworkUnavailable, status: "True", reason: NoRouteCreated, message: "route not created" }',
      ),
    );
    expect(problems).toEqual([]);
    expect(state.nodes).toStrictEqual([
      { name: 'node-a', addresses: [], ready: true, labels: {}, networkUnavailable: true },
    ]);
  });

  it.each([
    ['"False"', ', { type: NetworkUnavailable, status: "False" }'],
    ['"Unknown"', ', { type: NetworkUnavailable, status: Unknown }'],
    ['absent', ''],
    ['another condition "True"', ', { type: MemoryPressure, status: "True" }'],
    ['status in another case ("true")', ', { type: NetworkUnavailable, status: "true" }'],
  ])('leaves the field out when the condition is %s', (_label, conditions) => {
    const { state, problems } = build(nodeWith(conditions));
    expect(problems).toEqual([]);
    expect(state.nodes).toHaveLength(1);
    expect(state.nodes[0]).not.toHaveProperty('networkUnavailable');
    expect(state.nodes[0]?.ready).toBe(true);
  });

  it('reads the first NetworkUnavailable condition when there are several, as MetalLB does', () => {
    const first = (a: string, b: string) =>
      build(
        nodeWith(
          `, { type: NetworkUnavailable, status: "${a}" }, { type: NetworkUnavailable, status: "${b}" }`,
        ),
      ).state.nodes[0]?.networkUnavailable;
    expect(first('True', 'False')).toBe(true);
    expect(first('False', 'True')).toBeUndefined();
  });

  it('is independent of Ready: a NotReady node can also have its network unavailable', () => {
    const { state } = build(`
apiVersion: v1
kind: Node
metadata: { name: node-a }
status: { conditions: [{ type: NetworkUnavailable, status: "True" }] }
`);
    expect(state.nodes[0]).toMatchObject({ ready: false, networkUnavailable: true });
  });
});
