// The proxy layer's per-Service-port record, read directly (the renderers' tests see it through their
// output): which endpoints each kind of traffic goes to and what follows when there are none.
import { describe, expect, it } from '@jest/globals';
import { planServicePort, planServicePorts, type ServicePortPlan } from '../../../src/proxy/index.js';
import { ep, options, stateOf, svcPort } from '../render/fixtures.js';

const ctx = { family: 'IPv4' as const, nodeName: 'test-node', nodeZone: '' };
const hostPorts = (eps: ServicePortPlan['clusterEndpoints']): string[] => eps.map((e) => e.hostPort);

describe('planServicePort', () => {
  it('gives no plan to a Service without a cluster IP of the family', () => {
    const sp = svcPort('ns', 'v6only', 'p', { clusterIPs: ['fd00::10'], endpoints: [ep('fd00:1::1', 80)] });
    expect(planServicePort(sp, ctx)).toBeNull();
    expect(planServicePort(sp, { ...ctx, family: 'IPv6' })?.clusterIP).toBe('fd00::10');
  });

  it('orders endpoints by their "ip:port" string, as kube-proxy does ("10.0.0.10:80" before "10.0.0.1:80")', () => {
    const sp = svcPort('ns', 's', 'p', {
      clusterIPs: ['10.96.0.1'],
      endpoints: [ep('10.0.0.9', 80), ep('10.0.0.10', 80), ep('10.0.0.1', 80)],
    });
    expect(hostPorts(planServicePort(sp, ctx)!.endpoints)).toEqual([
      '10.0.0.10:80',
      '10.0.0.1:80',
      '10.0.0.9:80',
    ]);
  });

  it('falls back to serving-terminating endpoints and says REJECT when nothing can serve', () => {
    const terminating = { ready: false, serving: true, terminating: true };
    const sp = svcPort('ns', 's', 'p', {
      clusterIPs: ['10.96.0.1'],
      endpoints: [
        ep('10.0.0.1', 80, terminating),
        ep('10.0.0.2', 80, { ready: false, serving: false, terminating: true }),
      ],
    });
    const plan = planServicePort(sp, ctx)!;
    expect(hostPorts(plan.clusterEndpoints)).toEqual(['10.0.0.1:80']);
    expect(plan.internalNoEndpoints).toBe('');
    const none = planServicePort(
      { ...sp, endpoints: [ep('10.0.0.2', 80, { ready: false, serving: false })] },
      ctx,
    )!;
    expect([none.hasEndpoints, none.internalNoEndpoints, none.externalNoEndpoints]).toEqual([
      false,
      'REJECT',
      'REJECT',
    ]);
  });

  it('externalTrafficPolicy Local without a local endpoint: DROP for external traffic, cluster IP still served', () => {
    const sp = svcPort('ns', 's', 'p', {
      type: 'NodePort',
      nodePort: 30080,
      clusterIPs: ['10.96.0.1'],
      externalTrafficPolicy: 'Local',
      endpoints: [ep('10.0.0.1', 80, { nodeName: 'other-node' })],
    });
    const plan = planServicePort(sp, ctx)!;
    expect(plan.localEndpoints).toEqual([]);
    expect([plan.hasInternalEndpoints, plan.hasExternalEndpoints]).toEqual([true, false]);
    expect([plan.internalNoEndpoints, plan.externalNoEndpoints]).toEqual(['', 'DROP']);
    const local = planServicePort(
      { ...sp, endpoints: [...sp.endpoints, ep('10.0.0.2', 80, { nodeName: 'test-node' })] },
      ctx,
    )!;
    expect(hostPorts(local.localEndpoints)).toEqual(['10.0.0.2:80']);
    expect(local.externalNoEndpoints).toBe('');
  });

  it('keeps only VIP-mode load-balancer IPs and treats a /0 source range as none', () => {
    const sp = svcPort('ns', 's', 'p', {
      type: 'LoadBalancer',
      nodePort: 30080,
      clusterIPs: ['10.96.0.1'],
      loadBalancerIngress: [
        { ip: '192.0.2.1', ipMode: 'VIP' },
        { ip: '192.0.2.2', ipMode: 'Proxy' },
      ],
      loadBalancerSourceRanges: ['0.0.0.0/0', '203.0.113.0/24'],
      endpoints: [ep('10.0.0.1', 80)],
    });
    const plan = planServicePort(sp, ctx)!;
    expect(plan.loadBalancerVIPs).toEqual(['192.0.2.1']);
    expect(plan.loadBalancerSourceRanges).toEqual([]);
    expect(plan.usesSourceRanges).toBe(false);
  });

  it('names the object and field of an affinity timeout out of range', () => {
    const sp = svcPort('ns', 's', 'p', {
      clusterIPs: ['10.96.0.1'],
      sessionAffinity: { type: 'ClientIP', timeoutSeconds: 90000 },
    });
    expect(() => planServicePort(sp, ctx)).toThrow(
      'servicePort ns/s:p/tcp: sessionAffinity.timeoutSeconds: 90000 is not 0..86400',
    );
  });
});

describe('planServicePorts', () => {
  it('plans the node (NodePort addresses, detector) and every service port of the family', () => {
    const state = stateOf(
      svcPort('ns', 'a', 'p', { clusterIPs: ['10.96.0.1'] }),
      svcPort('ns', 'b', 'p', { clusterIPs: ['fd00::1'] }),
    );
    const { node, servicePorts } = planServicePorts(
      state,
      options({ nodePortAddresses: ['192.168.0.0/24'] }),
    );
    expect(node.nodePorts).toEqual({ matchAll: false, ips: ['192.168.0.2'], localhostNodePorts: false });
    expect(node.detector.ifNotLocal).toEqual(['!', '-s', '10.0.0.0/8']);
    expect(servicePorts.map((p) => p.sp.id)).toEqual(['ns/a:p']);
  });
});
