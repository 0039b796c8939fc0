import { describe, expect, test } from '@jest/globals';
import { defaultConfig } from '../../../src/config/config.js';
import { LoadBalancerController, applyAllocation } from '../../../src/lb/lb-controller.js';
import { allocate } from '../../../src/lb/allocator.js';
import { RecordingLogger } from '../../../src/observe/logger.js';
import {
  renderIptables,
  renderOptionsFromConfig,
  serializeRuleSet,
} from '../../../src/render/iptables/index.js';
import { lbManifests, stateOf } from './manifest-fixtures.js';

const render = (state: ReturnType<typeof stateOf>) =>
  serializeRuleSet(renderIptables(state, renderOptionsFromConfig(defaultConfig(), 'IPv4', ['10.99.0.11'])));

describe('applyAllocation', () => {
  test('allocated addresses become status and every port loadBalancerIngress; the input is not modified', () => {
    const state = stateOf(lbManifests());
    const result = allocate(state.services, state.addressPools, state.namespaceLabels);
    const applied = applyAllocation(state, result);
    expect(applied.services.find((s) => s.name === 'web')?.statusIngress).toEqual([
      { ip: '10.99.0.200', ipMode: 'VIP' },
    ]);
    expect(applied.servicePorts.map((sp) => sp.loadBalancerIngress)).toEqual([
      [{ ip: '10.99.0.200', ipMode: 'VIP' }],
    ]);
    expect(state.servicePorts[0]?.loadBalancerIngress).toEqual([]);
  });

  test('a Service of another loadBalancerClass keeps its written status', () => {
    const text = lbManifests({ status: '192.0.2.7' }).replace(
      'type: LoadBalancer',
      'type: LoadBalancer\n  loadBalancerClass: other.io/lb',
    );
    const state = stateOf(text);
    const applied = applyAllocation(
      state,
      allocate(state.services, state.addressPools, state.namespaceLabels),
    );
    expect(applied.servicePorts[0]?.loadBalancerIngress).toEqual([{ ip: '192.0.2.7', ipMode: 'VIP' }]);
  });
});

describe('LoadBalancerController', () => {
  test('rendered rules use the allocated address as the LoadBalancer ingress IP', () => {
    const state = new LoadBalancerController().process(stateOf(lbManifests())).state;
    const rules = render(state);
    expect(rules).toMatch(/^-A KUBE-SERVICES .*loadbalancer IP.* -d 10\.99\.0\.200 --dport 80 -j KUBE-EXT-/m);
  });

  test('a written status inside the pool is kept; one outside every pool is replaced', () => {
    const kept = new LoadBalancerController().process(stateOf(lbManifests({ status: '10.99.0.205' })));
    expect(kept.state.servicePorts[0]?.loadBalancerIngress.map((i) => i.ip)).toEqual(['10.99.0.205']);
    const replaced = new LoadBalancerController().process(stateOf(lbManifests({ status: '192.0.2.9' })));
    expect(replaced.state.servicePorts[0]?.loadBalancerIngress.map((i) => i.ip)).toEqual(['10.99.0.200']);
    expect(render(replaced.state)).not.toContain('192.0.2.9');
  });

  test('the address survives input changes (memory of the previous allocation)', () => {
    const ctl = new LoadBalancerController();
    ctl.process(stateOf(lbManifests()));
    // A Service sorting before "demo/web" appears: without memory it would take .200 and push web to .201.
    const earlier = `---
apiVersion: v1
kind: Service
metadata: { name: aaa, namespace: demo }
spec: { type: LoadBalancer, clusterIP: 10.96.0.51, ports: [{ port: 81, nodePort: 30051 }] }
`;
    const next = ctl.process(stateOf(lbManifests({ extra: earlier })));
    const ip = (name: string) =>
      next.state.services.find((s) => s.name === name)?.statusIngress.map((i) => i.ip);
    expect(ip('web')).toEqual(['10.99.0.200']);
    expect(ip('aaa')).toEqual(['10.99.0.201']);
  });

  test('without any IPAddressPool the written status is used as is (another LB implementation)', () => {
    const out = new LoadBalancerController().process(
      stateOf(lbManifests({ pools: false, status: '192.0.2.9' })),
    );
    expect(out.allocation).toBeNull();
    expect(out.state.servicePorts[0]?.loadBalancerIngress.map((i) => i.ip)).toEqual(['192.0.2.9']);
  });

  test('disabled: nothing allocated even with pools', () => {
    const out = new LoadBalancerController({ enabled: false }).process(
      stateOf(lbManifests({ status: '192.0.2.9' })),
    );
    expect(out.allocation).toBeNull();
    expect(out.state.servicePorts[0]?.loadBalancerIngress.map((i) => i.ip)).toEqual(['192.0.2.9']);
  });

  test('a Service without an address gets no LB rules and its reason is logged once', () => {
    const logger = new RecordingLogger();
    const ctl = new LoadBalancerController({ logger });
    const text = lbManifests().replace(
      'type: LoadBalancer',
      'type: LoadBalancer\n  loadBalancerIP: 10.1.1.1',
    );
    const out = ctl.process(stateOf(text));
    expect(out.state.servicePorts[0]?.loadBalancerIngress).toEqual([]);
    ctl.process(stateOf(text));
    const warnings = logger.records.filter((r) => r.message === 'LoadBalancer Service has no address');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.fields).toMatchObject({ service: 'demo/web' });
  });
});
