// The hand-written Service and EndpointSlice readers must give exactly zod's result, or decline.
import fc from 'fast-check';
import { canonicalIP } from '../../../src/model/ip.js';
import {
  canonicalAddress,
  fastParseEndpointSlice,
  fastParseService,
  parseKnownObject,
  zodParse,
} from '../../../src/model/normalise.js';

// Each object is generated clean (right types, valid values, required fields present) or dirty
// (any field may be missing, null, of another type or out of range), so that both the readers'
// accepting and declining paths are exercised.
function generators(dirty: boolean) {
  /** One of the good values; when dirty, sometimes one of the bad ones. */
  const values = <T>(good: T[], bad: unknown[] = []): fc.Arbitrary<unknown> =>
    dirty && bad.length > 0
      ? fc.oneof(
          { weight: 6, arbitrary: fc.constantFrom(...good) },
          { weight: 1, arbitrary: fc.constantFrom(...bad) },
        )
      : fc.constantFrom(...good);
  /** A field's value; when dirty, sometimes null, absent or of another type. */
  const field = (good: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> =>
    dirty
      ? fc.oneof(
          { weight: 12, arbitrary: good },
          {
            weight: 1,
            arbitrary: fc.constantFrom(null, undefined, 7, 'text', true, [], {}, [null], 1.5, NaN),
          },
        )
      : good;
  const rec = (shape: Record<string, fc.Arbitrary<unknown>>, required: string[] = []) =>
    fc.record(shape, { requiredKeys: dirty ? [] : required });
  const list = (item: fc.Arbitrary<unknown>, maxLength = 2) => field(fc.array(field(item), { maxLength }));

  const ip = values(
    ['10.0.0.1', '010.000.000.001', '2001:DB8::1', 'fd00::a', '::ffff:1.2.3.4', ' 10.0.0.2 '],
    ['300.1.1.1', 'bogus', '', 'None'],
  );
  const cidr = values(['10.1.2.3/8', ' 2001:db8::1/32 ', '192.0.2.0/24'], ['10.0.0.0/33', '10.0.0.1', 'x/8']);
  const stringMap = fc.dictionary(
    values(['app', 'kubernetes.io/service-name', 'tier', '1'], ['__proto__']) as fc.Arbitrary<string>,
    field(values(['web', '', 'db'])),
    { maxKeys: 3 },
  );
  const portNumber = values([80, 8080, 30000, 65535], [0, -1, 65536, 2.5]);
  const optionalPort = values([0, 80, 30000], [-1, 65536]);

  const metadata = rec(
    {
      name: field(values(['web'], [''])),
      namespace: field(values(['ns', 'default'], [''])),
      uid: field(values(['u-1', ''])),
      labels: field(stringMap),
      annotations: field(stringMap),
      resourceVersion: fc.constant('12'),
      creationTimestamp: fc.constant(null),
    },
    ['name'],
  );

  const servicePort = rec(
    {
      name: field(values(['', 'http', 'dns'])),
      protocol: field(values(['TCP', 'UDP', 'SCTP'], ['tcp'])),
      port: field(portNumber),
      nodePort: field(optionalPort),
      targetPort: field(values([8080, 'http', ''], [NaN])),
      appProtocol: fc.constant('http'),
    },
    ['port'],
  );

  const service = fc.record(
    {
      apiVersion: fc.constant('v1'),
      kind: fc.constant('Service'),
      metadata: field(metadata),
      spec: field(
        rec({
          type: field(values(['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'], ['Other'])),
          clusterIP: field(ip),
          clusterIPs: list(ip, 3),
          externalIPs: list(ip),
          externalName: field(values(['example.com'])),
          loadBalancerIP: field(values(['', '192.0.2.1', '192.000.2.1'], ['bogus'])),
          loadBalancerClass: field(values(['x'])),
          loadBalancerSourceRanges: list(cidr),
          externalTrafficPolicy: field(values(['Cluster', 'Local'], ['local'])),
          internalTrafficPolicy: field(values(['Cluster', 'Local'], ['local'])),
          sessionAffinity: field(values(['None', 'ClientIP'], ['Sticky'])),
          sessionAffinityConfig: field(
            rec({ clientIP: field(rec({ timeoutSeconds: field(values([1, 60, 86400], [0, 86401])) })) }),
          ),
          healthCheckNodePort: field(optionalPort),
          ipFamilies: list(values(['IPv4', 'IPv6'], ['IPv5']), 3),
          ipFamilyPolicy: field(values(['SingleStack', 'PreferDualStack', 'RequireDualStack'], ['Any'])),
          selector: field(stringMap),
          ports: list(servicePort, 3),
          publishNotReadyAddresses: fc.boolean(),
        }),
      ),
      status: field(
        rec({
          loadBalancer: field(
            rec({
              ingress: list(
                rec({
                  ip: field(ip),
                  hostname: field(values(['lb.example.com'])),
                  ipMode: field(values(['VIP', 'Proxy'], ['vip'])),
                  ports: fc.constant([]),
                }),
              ),
            }),
          ),
        }),
      ),
    },
    { requiredKeys: ['apiVersion', 'kind', 'metadata'] },
  );

  const sliceEndpoint = rec(
    {
      addresses: list(values(['10.0.0.1', '2001:DB8::1', 'host.example.com', ''])),
      conditions: field(
        rec({
          ready: field(values([true, false])),
          serving: field(values([true, false])),
          terminating: field(values([true, false])),
        }),
      ),
      nodeName: field(values(['n1', ''])),
      zone: field(values(['z1'])),
      targetRef: field(rec({ kind: fc.constant('Pod'), name: field(values(['pod-1'])) })),
      hints: field(
        rec({
          forZones: list(rec({ name: field(values(['z1', 'z2', ''])) }, ['name']), 3),
          forNodes: list(rec({ name: field(values(['n1'])) }, ['name'])),
        }),
      ),
    },
    ['addresses'],
  );

  const slice = fc.record(
    {
      apiVersion: fc.constant('discovery.k8s.io/v1'),
      kind: fc.constant('EndpointSlice'),
      metadata: field(metadata),
      addressType: field(values(['IPv4', 'IPv6', 'FQDN'], ['ipv4'])),
      endpoints: list(sliceEndpoint, 3),
      ports: list(
        rec({
          name: field(values(['', 'http'])),
          protocol: field(values(['TCP', 'UDP', 'SCTP'], ['ICMP'])),
          port: field(optionalPort),
          appProtocol: fc.constant('http'),
        }),
      ),
    },
    { requiredKeys: ['apiVersion', 'kind', 'metadata', 'addressType'] },
  );
  return { service, slice };
}

const clean = generators(false);
const anyKind = generators(true);
const service = fc.oneof(clean.service, anyKind.service);
const slice = fc.oneof(clean.slice, anyKind.slice);

function agreesWithZod(
  kind: 'Service' | 'EndpointSlice',
  raw: Record<string, unknown>,
  fast: unknown,
): 'fast' | 'declined' {
  const reference = zodParse(kind, raw);
  if (typeof fast === 'symbol') {
    // Declined: parseKnownObject falls back to zod, so its answer is zod's.
    expect(parseKnownObject(kind, raw)).toEqual(reference);
    return 'declined';
  }
  expect(reference.success).toBe(true);
  if (reference.success) {
    expect(fast).toEqual(reference.data);
    expect(JSON.stringify(fast)).toBe(JSON.stringify(reference.data));
  }
  return 'fast';
}

describe('fast readers', () => {
  it('read a Service exactly as serviceSchema does, or decline', () => {
    const seen = { fast: 0, declined: 0 };
    fc.assert(
      fc.property(service, (raw) => {
        seen[agreesWithZod('Service', raw, fastParseService(raw))] += 1;
      }),
      { numRuns: 3000 },
    );
    // Both paths must actually be exercised.
    expect(seen.fast).toBeGreaterThan(100);
    expect(seen.declined).toBeGreaterThan(100);
  });

  it('read an EndpointSlice exactly as endpointSliceSchema does, or decline', () => {
    const seen = { fast: 0, declined: 0 };
    fc.assert(
      fc.property(slice, (raw) => {
        seen[agreesWithZod('EndpointSlice', raw, fastParseEndpointSlice(raw))] += 1;
      }),
      { numRuns: 3000 },
    );
    expect(seen.fast).toBeGreaterThan(100);
    expect(seen.declined).toBeGreaterThan(100);
  });

  it('decline what is not plain JSON data (class instances) so that zod decides', () => {
    const raw = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', creationTimestamp: new Date(0) },
      spec: new Map(),
    };
    expect(typeof fastParseService(raw)).toBe('symbol');
    expect(parseKnownObject('Service', raw)).toEqual(zodParse('Service', raw));
  });
});

describe('canonicalAddress', () => {
  it('equals canonicalIP on every kind of input', () => {
    const octetText = fc.oneof(
      fc.integer({ min: 0, max: 300 }).map(String),
      fc.constantFrom('00', '01', '007', '', 'a', ' 1'),
    );
    const candidate = fc.oneof(
      fc.array(octetText, { minLength: 1, maxLength: 5 }).map((parts) => parts.join('.')),
      fc.constantFrom('::1', 'FD00::A', '::ffff:1.2.3.4', '1.2.3.4 ', '1..2.3', '.1.2.3', '1.2.3.'),
    );
    fc.assert(
      fc.property(candidate, (text) => {
        expect(canonicalAddress(text)).toBe(canonicalIP(text));
      }),
      { numRuns: 3000 },
    );
  });
});
