// Zod schemas for the fields portway reads of the Kubernetes objects it consumes (DESIGN habit 9:
// parse at the edge). They apply the API server's defaults (protocol TCP, type ClusterIP, …),
// canonicalise addresses, and reject what the API server would reject in those fields, with a
// message that names the value. Fields portway does not read are stripped; unknown ones are ignored.
import { z } from 'zod';
import { ingressHostProblem, ingressPathProblem } from './ingress-fields.js';
import type { IPFamily } from './cluster-state.js';
import { specialAddressProblem, specialRangeProblem } from './address-rules.js';
import { bigIntToIP, canonicalIP, ipAddressHint, ipFamilyOf, ipToBigInt, parseCIDR } from './ip.js';
import {
  dns1035LabelProblem,
  dns1123LabelProblem,
  dns1123SubdomainProblem,
  ianaSvcNameProblem,
  interfaceNameProblem,
  quoteText,
} from './names.js';

type Check<T> = { value: T } | { error: string };

/** Show a value in a message the way it would be written in YAML/JSON. */
export function showValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return quoteText(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (Array.isArray(value)) return 'a list';
  return 'an object';
}

/** A field whose value is checked by a function returning either the parsed value or a message. */
function checked<T>(check: (value: unknown) => Check<T>): z.ZodType<T, z.ZodTypeDef, unknown> {
  return z.unknown().transform((value, ctx): T => {
    if (value === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'required' });
      return z.NEVER;
    }
    const result = check(value);
    if ('error' in result) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: result.error });
      return z.NEVER;
    }
    return result.value;
  });
}

const integerIn = (min: number, max: number) =>
  checked<number>((v) =>
    typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max
      ? { value: v }
      : { error: `must be ${min === max ? min : `${min}-${max}`} (got ${showValue(v)})` },
  );

/** A port number as Services, EndpointSlices and Endpoints carry it. */
export const portNumber = integerIn(1, 65535);
/** nodePort / healthCheckNodePort: 0 means none. */
export const optionalPortNumber = integerIn(0, 65535);

/** "not a valid IP address (got …)", with a hint for a zone or an IPv4-mapped IPv6 address. */
export function notAnIPAddress(value: unknown, what = 'IP'): string {
  const hint = typeof value === 'string' ? ipAddressHint(value) : '';
  return `not a valid ${what} address (got ${showValue(value)})${hint}`;
}

/** A canonical IP address ("010.0.0.1" reads as 10.0.0.1, as kube-proxy's ParseIPSloppy does). */
export const ipAddress = checked<string>((v) => {
  const ip = typeof v === 'string' ? canonicalIP(v) : null;
  return ip === null ? { error: notAnIPAddress(v) } : { value: ip };
});

/** An IP address or "" (unset), as spec.loadBalancerIP is written. */
export const optionalIPAddress = checked<string>((v) => {
  if (v === '') return { value: '' };
  const ip = typeof v === 'string' ? canonicalIP(v) : null;
  return ip === null ? { error: notAnIPAddress(v) } : { value: ip };
});

/** A canonical, masked CIDR. Surrounding spaces are trimmed (API validation lets them through; kube-proxy trims). */
export const cidr = checked<string>((v) => {
  const parsed = typeof v === 'string' && v.includes('/') ? parseCIDR(v) : null;
  return parsed === null ? { error: `not a valid CIDR (got ${showValue(v)})` } : { value: parsed.text };
});

export const protocol = checked<'TCP' | 'UDP' | 'SCTP'>((v) =>
  v === 'TCP' || v === 'UDP' || v === 'SCTP'
    ? { value: v }
    : { error: `must be TCP, UDP or SCTP (got ${showValue(v)})` },
);

/** One of a fixed set of strings. */
function oneOf<const T extends readonly string[]>(values: T): z.ZodType<T[number], z.ZodTypeDef, unknown> {
  const list = values.length === 2 ? `${values[0]} or ${values[1]}` : values.join(', ');
  return checked<T[number]>((v) =>
    typeof v === 'string' && (values as readonly string[]).includes(v)
      ? { value: v as T[number] }
      : { error: `must be ${values.length > 1 ? `one of ${list}` : list} (got ${showValue(v)})` },
  );
}

const text = checked<string>((v) =>
  typeof v === 'string' ? { value: v } : { error: `must be a string (got ${showValue(v)})` },
);
const bool = checked<boolean>((v) =>
  typeof v === 'boolean' ? { value: v } : { error: `must be true or false (got ${showValue(v)})` },
);

/** A string map such as labels: every value must be a string (`enabled: true` is a mistake the API rejects). */
const stringMap = z.record(text);

const list = <T extends z.ZodTypeAny>(item: T) => z.array(item).default([]);

// ── metadata ────────────────────────────────────────────────────────────────────────────────

const objectName = checked<string>((v) =>
  typeof v === 'string' && v.length > 0
    ? { value: v }
    : { error: `must be a non-empty string (got ${showValue(v)})` },
);

/** A string that `rule` (one of names.ts's validators) accepts; '' too when `allowEmpty` (an unnamed port). */
const nameBy = (rule: (name: string) => string | null, allowEmpty = false) =>
  checked<string>((v) => {
    if (typeof v !== 'string') return { error: `must be a string (got ${showValue(v)})` };
    if (v === '' && allowEmpty) return { value: v };
    const problem = rule(v);
    return problem === null ? { value: v } : { error: problem };
  });

export const namespacedMetadata = z.object({
  name: objectName,
  // What `kubectl apply` does with an object that names no namespace.
  namespace: objectName.default('default'),
  uid: text.optional(),
  creationTimestamp: text.optional(),
  labels: stringMap.default({}),
  annotations: stringMap.default({}),
});

export const clusterMetadata = z.object({
  name: objectName,
  /** Accepted and kept for pools/advertisements that live in a namespace (as MetalLB's do). */
  namespace: objectName.optional(),
  uid: text.optional(),
  labels: stringMap.default({}),
  annotations: stringMap.default({}),
});

// ── v1 Service ──────────────────────────────────────────────────────────────────────────────

const loadBalancerIngress = z.object({
  ip: ipAddress.optional(),
  hostname: text.optional(),
  ipMode: oneOf(['VIP', 'Proxy'] as const).default('VIP'),
});

const loadBalancerStatus = z.object({ ingress: list(loadBalancerIngress) }).default({});

export const serviceSchema = z.object({
  metadata: namespacedMetadata,
  spec: z
    .object({
      type: oneOf(['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'] as const).default('ClusterIP'),
      /** "None" = headless, "" = not allocated; otherwise an IP (canonicalised in normalise). */
      clusterIP: text.optional(),
      clusterIPs: z.array(text).optional(),
      externalIPs: list(ipAddress),
      externalName: text.optional(),
      loadBalancerIP: optionalIPAddress.optional(),
      loadBalancerClass: text.optional(),
      loadBalancerSourceRanges: list(cidr),
      externalTrafficPolicy: oneOf(['Cluster', 'Local'] as const).default('Cluster'),
      internalTrafficPolicy: oneOf(['Cluster', 'Local'] as const).default('Cluster'),
      sessionAffinity: oneOf(['None', 'ClientIP'] as const).default('None'),
      sessionAffinityConfig: z
        .object({ clientIP: z.object({ timeoutSeconds: integerIn(1, 86400).optional() }).optional() })
        .optional(),
      healthCheckNodePort: optionalPortNumber.default(0),
      ipFamilies: z
        .array(oneOf(['IPv4', 'IPv6'] as const))
        .max(2)
        .optional(),
      ipFamilyPolicy: oneOf(['SingleStack', 'PreferDualStack', 'RequireDualStack'] as const).optional(),
      selector: stringMap.default({}),
      ports: list(
        z.object({
          name: text.default(''),
          protocol: protocol.default('TCP'),
          port: portNumber,
          nodePort: optionalPortNumber.default(0),
          targetPort: z.union([z.number(), z.string()]).optional(),
        }),
      ),
    })
    .default({}),
  status: z.object({ loadBalancer: loadBalancerStatus }).default({}),
});
export type ServiceObject = z.infer<typeof serviceSchema>;

// ── discovery.k8s.io/v1 EndpointSlice ───────────────────────────────────────────────────────

export const endpointSliceSchema = z.object({
  metadata: namespacedMetadata,
  addressType: oneOf(['IPv4', 'IPv6', 'FQDN'] as const),
  endpoints: list(
    z.object({
      // Checked against addressType in normalise (FQDN slices carry names, not IPs).
      addresses: z.array(text),
      conditions: z
        .object({ ready: bool.optional(), serving: bool.optional(), terminating: bool.optional() })
        .default({}),
      nodeName: text.optional(),
      zone: text.optional(),
      targetRef: z.object({ name: text.optional() }).optional(),
      // Topology hints the EndpointSlice controller writes for trafficDistribution (or the older
      // topology-aware-hints annotation); kube-proxy routes cluster traffic by them.
      hints: z
        .object({ forZones: list(z.object({ name: text })), forNodes: list(z.object({ name: text })) })
        .optional(),
    }),
  ),
  ports: list(
    z.object({
      // The API server defaults an unnamed port's name to "" and its protocol to TCP.
      name: text.default(''),
      protocol: protocol.default('TCP'),
      /** Unset or 0: kube-proxy ignores the port. */
      port: optionalPortNumber.optional(),
    }),
  ),
});
export type EndpointSliceObject = z.infer<typeof endpointSliceSchema>;

// ── v1 Endpoints (legacy) ───────────────────────────────────────────────────────────────────

/** An endpoint's address: a canonical IP that is not loopback, unspecified, link-local, multicast or broadcast. */
const endpointIPAddress = checked<string>((v) => {
  const ip = typeof v === 'string' ? canonicalIP(v) : null;
  if (ip === null) return { error: notAnIPAddress(v) };
  const special = specialAddressProblem(ip);
  return special === null ? { value: ip } : { error: special };
});

const endpointAddress = z.object({
  ip: endpointIPAddress,
  nodeName: text.optional(),
  targetRef: z.object({ name: text.optional() }).optional(),
});

export const endpointsSchema = z.object({
  metadata: namespacedMetadata,
  subsets: list(
    z.object({
      addresses: list(endpointAddress),
      notReadyAddresses: list(endpointAddress),
      ports: list(
        z.object({
          name: nameBy(dns1123LabelProblem, true).default(''),
          protocol: protocol.default('TCP'),
          port: portNumber,
        }),
      ),
    }),
  ),
});
export type EndpointsObject = z.infer<typeof endpointsSchema>;

// ── v1 Node ─────────────────────────────────────────────────────────────────────────────────

export const nodeSchema = z.object({
  metadata: clusterMetadata,
  // Read as text and checked in readNode: a bad pod CIDR is reported and dropped, not the whole Node.
  spec: z
    .object({
      podCIDR: text.default(''),
      podCIDRs: list(text),
    })
    .default({}),
  status: z
    .object({
      addresses: list(z.object({ type: text, address: text })),
      conditions: list(z.object({ type: text, status: text })),
    })
    .default({}),
});
export type NodeObject = z.infer<typeof nodeSchema>;

// ── v1 Namespace ────────────────────────────────────────────────────────────────────────────

export const namespaceSchema = z.object({ metadata: clusterMetadata });

// ── networking.k8s.io/v1 Ingress ────────────────────────────────────────────────────────────

const ingressServiceBackend = z.object({
  name: nameBy(dns1035LabelProblem),
  port: z.object({ number: portNumber.optional(), name: nameBy(ianaSvcNameProblem, true).optional() }).superRefine((p, ctx) => {
    if ((p.number === undefined) === (p.name === undefined || p.name === '')) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'exactly one of number or name must be set' });
    }
  }),
});

// A resource backend (an object of another API, e.g. a storage bucket) is not a Service: portway
// reports it as not checked. Exactly one of the two, as the API server validates.
const ingressBackend = z
  .object({
    service: ingressServiceBackend.optional(),
    resource: z.object({ apiGroup: text.default(''), kind: text, name: text }).optional(),
  })
  .superRefine((b, ctx) => {
    if ((b.service === undefined) === (b.resource === undefined)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'exactly one of service or resource must be set' });
    }
  });

const ingressPath = z
  .object({
    path: text.default(''),
    // Required in networking.k8s.io/v1; the API server refuses an Ingress path without it.
    pathType: z.enum(['Exact', 'Prefix', 'ImplementationSpecific']),
    backend: ingressBackend,
  })
  .superRefine((p, ctx) => {
    const problem = ingressPathProblem(p.path, p.pathType);
    if (problem !== null) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['path'], message: problem });
  });

export const ingressSchema = z.object({
  metadata: namespacedMetadata,
  spec: z
    .object({
      ingressClassName: text.optional(),
      defaultBackend: ingressBackend.optional(),
      rules: list(
        z.object({
          host: text.default('').superRefine((host, ctx) => {
            const problem = ingressHostProblem(host);
            if (problem !== null) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
          }),
          http: z.object({ paths: list(ingressPath) }).optional(),
        }),
      ),
    })
    .default({}),
  status: z
    .object({
      loadBalancer: z
        .object({
          ingress: list(
            z.object({
              ip: ipAddress.optional(),
              hostname: text.optional(),
              ports: list(z.object({ port: z.number().int(), protocol: z.enum(['TCP', 'UDP', 'SCTP']).default('TCP') })),
            }),
          ),
        })
        .default({}),
    })
    .default({}),
});
export type IngressObject = z.infer<typeof ingressSchema>;

// ── networking.k8s.io/v1 IngressClass ───────────────────────────────────────────────────────

export const ingressClassSchema = z.object({
  metadata: clusterMetadata,
  spec: z.object({ controller: text.default('') }).default({}),
});
export type IngressClassObject = z.infer<typeof ingressClassSchema>;

// ── portway.io/v1alpha1 IPAddressPool and L2Advertisement (MetalLB's shapes) ────────────────

export const labelSelectorSchema = z
  .object({
    matchLabels: stringMap.default({}),
    matchExpressions: list(
      z.object({
        key: objectName,
        operator: oneOf(['In', 'NotIn', 'Exists', 'DoesNotExist'] as const),
        values: list(text),
      }),
    ),
  })
  .superRefine((selector, ctx) => {
    selector.matchExpressions.forEach((e, i) => {
      // Zod still runs this refinement after a field issue; an operator that failed is reported already.
      if (!['In', 'NotIn', 'Exists', 'DoesNotExist'].includes(e.operator as string)) return;
      const needsValues = e.operator === 'In' || e.operator === 'NotIn';
      if (needsValues && e.values.length === 0) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['matchExpressions', i, 'values'],
          message: `must be non-empty for operator ${e.operator}`,
        });
      } else if (!needsValues && e.values.length > 0) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['matchExpressions', i, 'values'],
          message: `must be empty for operator ${e.operator}`,
        });
      }
    });
  });

export interface AddressRange {
  first: string;
  last: string;
  family: IPFamily;
  text: string;
}

/**
 * One entry of IPAddressPool spec.addresses, as MetalLB accepts it: a CIDR ("192.0.2.0/28") or a
 * range "first-last" of one family with first <= last. A bare address is not accepted (MetalLB
 * rejects it too); write "/32" or "/128".
 */
export function parseAddressRange(value: string): Check<AddressRange> {
  if (value.includes('-')) {
    const parts = value.split('-');
    if (parts.length !== 2) return { error: `not a range "first-last" (got ${showValue(value)})` };
    const first = canonicalIP(parts[0] ?? '');
    const last = canonicalIP(parts[1] ?? '');
    if (first === null || last === null) {
      return {
        error: `not a valid range: ${showValue(first === null ? parts[0]?.trim() : parts[1]?.trim())} is not an IP address`,
      };
    }
    const family = ipFamilyOf(first);
    if (family === null || family !== ipFamilyOf(last)) {
      return { error: `range ${showValue(value)} mixes IPv4 and IPv6` };
    }
    const text = `${first}-${last}`;
    const order = compareAddresses(first, last);
    if (order > 0) return { error: `range ${showValue(value)} starts after it ends (${first} > ${last})` };
    const special = specialRangeProblem(ipToBigInt(first), ipToBigInt(last), family);
    if (special !== null) return { error: `range ${showValue(value)} ${special}` };
    return { value: { first, last, family, text } };
  }
  const parsed = value.includes('/') ? parseCIDR(value) : null;
  if (parsed === null) {
    const bare = canonicalIP(value);
    const hint =
      bare === null ? '' : ` (for one address write ${bare}/${ipFamilyOf(bare) === 'IPv4' ? 32 : 128})`;
    return { error: `not a CIDR or a range "first-last" (got ${showValue(value)})${hint}` };
  }
  const bits = parsed.family === 'IPv4' ? 32 : 128;
  const size = 1n << BigInt(bits - parsed.prefix);
  const special = specialRangeProblem(parsed.network, parsed.network + size - 1n, parsed.family);
  if (special !== null) return { error: `${parsed.text} ${special}` };
  return {
    value: {
      first: bigIntToIP(parsed.network, parsed.family),
      last: bigIntToIP(parsed.network + size - 1n, parsed.family),
      family: parsed.family,
      text: parsed.text,
    },
  };
}

function compareAddresses(a: string, b: string): number {
  const x = ipToBigInt(a);
  const y = ipToBigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

const addressRange = checked<AddressRange>((v) =>
  typeof v === 'string' ? parseAddressRange(v) : { error: `must be a string (got ${showValue(v)})` },
);

export const ipAddressPoolSchema = z.object({
  metadata: clusterMetadata,
  spec: z.object({
    addresses: z.array(addressRange).min(1, 'must list at least one CIDR or range'),
    autoAssign: bool.default(true),
    avoidBuggyIPs: bool.default(false),
    serviceAllocation: z
      .object({
        priority: integerIn(0, 2 ** 31 - 1).optional(),
        namespaces: list(nameBy(dns1123LabelProblem)),
        namespaceSelectors: list(labelSelectorSchema),
        serviceSelectors: list(labelSelectorSchema),
      })
      .optional(),
  }),
});
export type IPAddressPoolObject = z.infer<typeof ipAddressPoolSchema>;

export const l2AdvertisementSchema = z.object({
  metadata: clusterMetadata,
  spec: z
    .object({
      ipAddressPools: list(nameBy(dns1123SubdomainProblem)),
      ipAddressPoolSelectors: list(labelSelectorSchema),
      nodeSelectors: list(labelSelectorSchema),
      interfaces: list(nameBy(interfaceNameProblem)),
    })
    .default({}),
});
export type L2AdvertisementObject = z.infer<typeof l2AdvertisementSchema>;

// ── which kinds portway reads ───────────────────────────────────────────────────────────────

export type KnownKind =
  | 'Service'
  | 'EndpointSlice'
  | 'Endpoints'
  | 'Node'
  | 'Namespace'
  | 'Ingress'
  | 'IngressClass'
  | 'IPAddressPool'
  | 'L2Advertisement';

/** The group/version portway reads each kind at. Objects of another group (knative's Service) are not ours. */
export const KIND_VERSIONS: Record<KnownKind, { group: string; version: string; namespaced: boolean }> = {
  Service: { group: '', version: 'v1', namespaced: true },
  EndpointSlice: { group: 'discovery.k8s.io', version: 'v1', namespaced: true },
  Endpoints: { group: '', version: 'v1', namespaced: true },
  Node: { group: '', version: 'v1', namespaced: false },
  Namespace: { group: '', version: 'v1', namespaced: false },
  Ingress: { group: 'networking.k8s.io', version: 'v1', namespaced: true },
  IngressClass: { group: 'networking.k8s.io', version: 'v1', namespaced: false },
  IPAddressPool: { group: 'portway.io', version: 'v1alpha1', namespaced: false },
  L2Advertisement: { group: 'portway.io', version: 'v1alpha1', namespaced: false },
};

/** MetalLB's API group: its pools and advertisements are read as portway's own (see ALSO_READ_AS). */
export const METALLB_GROUP = 'metallb.io';

/**
 * Further group/versions a kind is read at, with the same schema and meaning as portway's own:
 * MetalLB's IPAddressPool and L2Advertisement (metallb.io/v1beta1, the only version MetalLB serves them
 * at), so a cluster moves from MetalLB without rewriting them.
 */
export const ALSO_READ_AS: Partial<Record<KnownKind, ReadonlyArray<{ group: string; version: string }>>> = {
  IPAddressPool: [{ group: METALLB_GROUP, version: 'v1beta1' }],
  L2Advertisement: [{ group: METALLB_GROUP, version: 'v1beta1' }],
};

const BGP_UNSUPPORTED = 'BGP is not supported by portway; ignored';

/**
 * MetalLB kinds for features portway does not have, by API group and kind, with what portway says
 * about each object: reported once by name, then ignored (never an error that stops anything).
 * MetalLB's own status objects (ServiceL2Status, ServiceBGPStatus, ConfigurationState) are MetalLB's
 * output, not configuration, and are ignored silently.
 */
export const UNSUPPORTED_METALLB_KINDS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  [METALLB_GROUP]: {
    BGPPeer: BGP_UNSUPPORTED,
    BGPAdvertisement: BGP_UNSUPPORTED,
    BFDProfile: 'BFD is not supported by portway (it serves BGP sessions, which portway does not have); ignored',
    Community: 'BGP communities are not supported by portway; ignored',
    AddressPool:
      "MetalLB's deprecated AddressPool is not read by portway; ignored (write it as an IPAddressPool and an L2Advertisement)",
  },
  'frrk8s.metallb.io': {
    FRRConfiguration: 'FRR (BGP) is not supported by portway; ignored',
  },
};
