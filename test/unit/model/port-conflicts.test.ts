// Two Services claiming one cluster IP:port or node port: one keeps it, the other is reported.
import { ClusterStateBuilder } from '../../../src/model/incremental.js';
import type { SourcedObject } from '../../../src/model/load.js';
import { buildClusterState } from '../../../src/model/normalise.js';

interface Draft {
  name: string;
  ns?: string;
  clusterIP: string;
  created?: string;
  type?: string;
  ports: Array<{ name?: string; port: number; nodePort?: number; protocol?: string }>;
}

const service = (d: Draft, source = 'svc.yaml'): SourcedObject => ({
  source,
  object: {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: d.name,
      namespace: d.ns ?? 'ns',
      ...(d.created ? { creationTimestamp: d.created } : {}),
    },
    spec: { type: d.type ?? 'ClusterIP', clusterIP: d.clusterIP, ports: d.ports },
  },
});

const portIds = (objects: SourcedObject[]) =>
  buildClusterState(objects).state.servicePorts.map((p) => `${p.id}/${p.protocol}`);
const messages = (objects: SourcedObject[]) =>
  buildClusterState(objects).problems.map((p) => `${p.source}: ${p.object} ${p.field}: ${p.message}`);

describe('conflicting cluster IP:port', () => {
  const a = service(
    {
      name: 'a',
      clusterIP: '10.96.0.1',
      ports: [
        { name: 'http', port: 80 },
        { name: 'dns', port: 53, protocol: 'UDP' },
      ],
    },
    'a.yaml',
  );
  const b = service(
    {
      name: 'b',
      clusterIP: '10.96.0.1',
      ports: [
        { name: 'web', port: 80 },
        { name: 'alt', port: 8080 },
      ],
    },
    'b.yaml',
  );

  it('the first by namespace/name keeps it; the other loses only the conflicting port, with a report naming both', () => {
    for (const objects of [
      [a, b],
      [b, a],
    ]) {
      expect(portIds(objects)).toEqual(['ns/a:dns/UDP', 'ns/a:http/TCP', 'ns/b:alt/TCP']);
      expect(messages(objects)).toEqual([
        'b.yaml: ns/b spec.ports[0].port: cluster IP 10.96.0.1:80/TCP is also claimed by Service ns/a (port http), ' +
          'which keeps it because it comes first by namespace/name; this port gets no rules',
      ]);
    }
  });

  it('the older Service by creationTimestamp keeps it when both have one', () => {
    const older = service({
      name: 'z',
      clusterIP: '10.96.0.1',
      created: '2024-01-01T00:00:00Z',
      ports: [{ port: 80 }],
    });
    const newer = service({
      name: 'a',
      clusterIP: '10.96.0.1',
      created: '2025-06-01T12:00:00Z',
      ports: [{ port: 80 }],
    });
    expect(portIds([older, newer])).toEqual(['ns/z/TCP']);
    expect(messages([older, newer])).toEqual([
      'svc.yaml: ns/a spec.ports[0].port: cluster IP 10.96.0.1:80/TCP is also claimed by Service ns/z, ' +
        'which keeps it because it was created earlier; this port gets no rules',
    ]);
  });

  it('the same port number over another protocol, or another address, is no conflict', () => {
    const udp = service({ name: 'u', clusterIP: '10.96.0.1', ports: [{ port: 80, protocol: 'UDP' }] });
    const other = service({ name: 'o', clusterIP: '10.96.0.2', ports: [{ port: 80 }] });
    const tcp = service({ name: 't', clusterIP: '10.96.0.1', ports: [{ port: 80 }] });
    expect(portIds([udp, other, tcp])).toEqual(['ns/o/TCP', 'ns/t/TCP', 'ns/u/UDP']);
    expect(messages([udp, other, tcp])).toEqual([]);
  });

  it('IPv6 addresses are named in brackets', () => {
    const x = service({ name: 'x', clusterIP: 'fd00::1', ports: [{ port: 80 }] });
    const y = service({ name: 'y', clusterIP: 'fd00::1', ports: [{ port: 80 }] });
    expect(messages([x, y])[0]).toContain('cluster IP [fd00::1]:80/TCP is also claimed by Service ns/x');
  });
});

describe('conflicting node ports', () => {
  it('two NodePort Services on one nodePort/protocol: the first keeps it', () => {
    const a = service({
      name: 'a',
      type: 'NodePort',
      clusterIP: '10.96.0.1',
      ports: [{ port: 80, nodePort: 30080 }],
    });
    const b = service({
      name: 'b',
      type: 'NodePort',
      clusterIP: '10.96.0.2',
      ports: [{ port: 81, nodePort: 30080 }],
    });
    expect(portIds([b, a])).toEqual(['ns/a/TCP']);
    expect(messages([b, a])).toEqual([
      'svc.yaml: ns/b spec.ports[0].nodePort: node port 30080/TCP is also claimed by Service ns/a, ' +
        'which keeps it because it comes first by namespace/name; this port gets no rules',
    ]);
  });

  it('headless and other-proxy Services claim nothing', () => {
    const headless = service({ name: 'a', clusterIP: 'None', ports: [{ port: 80 }] });
    const b = service({ name: 'b', clusterIP: '10.96.0.1', ports: [{ port: 80 }] });
    expect(portIds([headless, b])).toEqual(['ns/b/TCP']);
    expect(messages([headless, b])).toEqual([]);
  });
});

describe('the incremental builder resolves conflicts as buildClusterState does', () => {
  it('follows a conflict appearing and going away', () => {
    const a = service({ name: 'a', clusterIP: '10.96.0.1', ports: [{ port: 80 }] });
    const b = service({ name: 'b', clusterIP: '10.96.0.1', ports: [{ port: 80 }] });
    const b2 = service({ name: 'b', clusterIP: '10.96.0.2', ports: [{ port: 80 }] });
    const builder = new ClusterStateBuilder();
    builder.upsert(b);
    expect(builder.build().state.servicePorts.map((p) => p.id)).toEqual(['ns/b']);
    builder.upsert(a);
    const conflicted = builder.build();
    expect(conflicted).toEqual(buildClusterState(builder.objects()));
    expect(conflicted.state.servicePorts.map((p) => p.id)).toEqual(['ns/a']);
    expect(conflicted.problems).toHaveLength(1);
    expect(builder.build()).toBe(conflicted);
    builder.upsert(b2);
    const resolved = builder.build();
    expect(resolved).toEqual(buildClusterState(builder.objects()));
    expect(resolved.state.servicePorts.map((p) => p.id)).toEqual(['ns/a', 'ns/b']);
    expect(resolved.problems).toEqual([]);
  });
});
