// The Ingress writer hook of LoadBalancerAgent: it gets the state with the allocation applied (the
// controller Service's allocated address is what Ingresses publish), and follows start/stop.
import { parseConfig } from '../../../src/config/config.js';
import { FakeSysctl } from '../../../src/dataplane/sysctl.js';
import { LoadBalancerAgent, type IngressWriterHook } from '../../../src/lb/lb-agent.js';
import type { ClusterState } from '../../../src/model/cluster-state.js';
import { RecordingLogger } from '../../../src/observe/logger.js';
import { lbManifests, stateOf } from './manifest-fixtures.js';

class RecordingIngressWriter implements IngressWriterHook {
  readonly states: ClusterState[] = [];
  readonly calls: string[] = [];
  update(state: ClusterState): void {
    this.states.push(state);
  }
  start(): void {
    this.calls.push('start');
  }
  async stop(): Promise<void> {
    this.calls.push('stop');
  }
}

describe('LoadBalancerAgent Ingress writer hook', () => {
  it('passes the state with the allocated controller address, and starts/stops with the agent', async () => {
    const writer = new RecordingIngressWriter();
    const agent = new LoadBalancerAgent({
      config: parseConfig({ loadBalancer: { layer2: false } }),
      nodeName: 'node1',
      nodeIPs: ['10.99.0.11'],
      logger: new RecordingLogger(),
      sysctl: new FakeSysctl(),
      ingressWriter: writer,
    });
    agent.process(stateOf(lbManifests()));
    expect(writer.states).toHaveLength(1);
    expect(writer.states[0]!.services.find((s) => s.name === 'web')?.statusIngress).toEqual([{ ip: '10.99.0.200', ipMode: 'VIP' }]);
    await agent.start();
    await agent.stop();
    expect(writer.calls).toEqual(['start', 'stop']);
  });
});
