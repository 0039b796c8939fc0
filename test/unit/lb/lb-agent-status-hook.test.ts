// The status-writer hook of LoadBalancerAgent: it gets the Services as read (their status from the API, not
// the allocated one the rules use) with the allocation, only when portway allocates; and follows start/stop.
import { parseConfig } from '../../../src/config/config.js';
import { FakeSysctl } from '../../../src/dataplane/sysctl.js';
import type { AllocationResult } from '../../../src/lb/allocator.js';
import { LoadBalancerAgent, type AllocationStatusWriter } from '../../../src/lb/lb-agent.js';
import type { ServiceInfo } from '../../../src/model/cluster-state.js';
import { RecordingLogger } from '../../../src/observe/logger.js';
import { lbManifests, stateOf } from './manifest-fixtures.js';

class RecordingWriter implements AllocationStatusWriter {
  readonly updates: Array<{ services: ServiceInfo[]; allocation: AllocationResult }> = [];
  readonly calls: string[] = [];
  update(services: ServiceInfo[], allocation: AllocationResult): void {
    this.updates.push({ services, allocation });
  }
  start(): void {
    this.calls.push('start');
  }
  async stop(): Promise<void> {
    this.calls.push('stop');
  }
}

const make = (config = parseConfig({ loadBalancer: { layer2: false } })) => {
  const writer = new RecordingWriter();
  const agent = new LoadBalancerAgent({
    config,
    nodeName: 'node1',
    nodeIPs: ['10.99.0.11'],
    logger: new RecordingLogger(),
    sysctl: new FakeSysctl(),
    statusWriter: writer,
  });
  return { agent, writer };
};

describe('LoadBalancerAgent status writer hook', () => {
  it('passes the Services with their observed status and the allocation', () => {
    const { agent, writer } = make();
    const out = agent.process(stateOf(lbManifests()));
    expect(writer.updates).toHaveLength(1);
    const { services, allocation } = writer.updates[0]!;
    const web = services.find((s) => s.type === 'LoadBalancer')!;
    expect(web.statusIngress).toEqual([]); // as read, not the allocated address
    expect(allocation.assignments.get(`${web.namespace}/${web.name}`)?.ips).toEqual(['10.99.0.200']);
    expect(out.services.find((s) => s.name === web.name)?.statusIngress).toEqual([{ ip: '10.99.0.200', ipMode: 'VIP' }]);
  });

  it('writes nothing when portway does not allocate (no pools, or disabled)', () => {
    const { agent, writer } = make();
    agent.process(stateOf(lbManifests({ pools: false })));
    const disabled = make(parseConfig({ loadBalancer: { enabled: false, layer2: false } }));
    disabled.agent.process(stateOf(lbManifests()));
    expect(writer.updates).toHaveLength(0);
    expect(disabled.writer.updates).toHaveLength(0);
  });

  it('starts and stops the writer with the agent', async () => {
    const { agent, writer } = make();
    await agent.start();
    await agent.stop();
    expect(writer.calls).toEqual(['start', 'stop']);
  });
});
