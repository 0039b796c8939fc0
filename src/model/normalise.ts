// Raw Kubernetes objects → ClusterState, following kube-proxy's reading of them
// (pkg/proxy/serviceport.go, servicechangetracker.go, endpointslicecache.go) and MetalLB's of pools.
// Pure and deterministic: the result depends on the objects and their (source, document), never on
// the order of the input array. A malformed object is reported as an InputProblem and skipped.
import { z } from 'zod';
import type {
  AddressPool,
  ClusterState,
  Endpoint,
  IngressBackendRef,
  IngressInfo,
  InputProblem,
  IPFamily,
  L2Advertisement,
  LabelSelector,
  LoadBalancerIngress,
  NodeInfo,
  Protocol,
  ServiceInfo,
  ServicePort,
} from './cluster-state.js';
import { servicePortId } from './cluster-state.js';
import { canonicalIP, ipFamilyOf, ipToBigInt, joinHostPort } from './ip.js';
import {
  endpointSliceSchema,
  endpointsSchema,
  ingressSchema,
  ipAddressPoolSchema,
  KIND_VERSIONS,
  l2AdvertisementSchema,
  namespaceSchema,
  nodeSchema,
  serviceSchema,
  showValue,
  type EndpointSliceObject,
  type EndpointsObject,
  type IngressObject,
  type IPAddressPoolObject,
  type KnownKind,
  type L2AdvertisementObject,
  type NodeObject,
  type ServiceObject,
} from './k8s-schemas.js';
import type { SourcedObject } from './load.js';

/** Label joining an EndpointSlice to its Service. */
export const LABEL_SERVICE_NAME = 'kubernetes.io/service-name';
/** Services (and their slices) with this label belong to another proxy: kube-proxy does not watch them. */
export const LABEL_SERVICE_PROXY_NAME = 'service.kubernetes.io/service-proxy-name';
/** Slices of headless Services carry it; kube-proxy's informers filter them out. */
export const LABEL_HEADLESS = 'service.kubernetes.io/headless';
export const LABEL_ZONE = 'topology.kubernetes.io/zone';
export const ANNOTATION_INGRESS_CLASS = 'kubernetes.io/ingress.class';
/** The API server's default for sessionAffinityConfig.clientIP.timeoutSeconds (3 hours). */
export const DEFAULT_AFFINITY_TIMEOUT_SECONDS = 10800;

export interface BuildResult {
  state: ClusterState;
  problems: InputProblem[];
}

/** `examples/app.yaml: Service default/web: spec.ports[0].port: must be 1-65535 (got 70000)` */
export function formatProblem(p: InputProblem): string {
  const parts = [p.source];
  if (p.kind !== '') parts.push(p.object === '' ? `${p.kind} (unnamed)` : `${p.kind} ${p.object}`);
  else if (p.object !== '') parts.push(p.object);
  if (p.field !== '') parts.push(p.field);
  parts.push(p.message);
  return parts.join(': ');
}

/** Code-point order: independent of the locale, so output is identical on every machine. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** In Kubernetes JSON a null field means "not set"; zod's optional() wants it absent. */
function withoutNullFields(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNullFields);
  if (!isRecord(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== null) out[k] = withoutNullFields(v);
  return out;
}

/** ['spec', 'ports', 1, 'port'] → "spec.ports[1].port"; keys that are not identifiers are quoted. */
export function formatFieldPath(path: ReadonlyArray<string | number>): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(part)) out += out === '' ? part : `.${part}`;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out;
}

const TYPE_NAMES: Record<string, string> = {
  object: 'an object',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  boolean: 'true or false',
};

function issueMessage(issue: z.ZodIssue): string {
  if (issue.code === z.ZodIssueCode.invalid_type) {
    if (issue.received === 'undefined') return 'required';
    return `must be ${TYPE_NAMES[issue.expected] ?? issue.expected} (got ${TYPE_NAMES[issue.received] ?? issue.received})`;
  }
  return issue.message;
}

interface Identity {
  source: string;
  document?: number;
  kind: KnownKind;
  /** "namespace/name", "name", or "" when the name is missing. */
  object: string;
}

class ProblemList {
  readonly items: InputProblem[] = [];
  add(id: Identity, field: string, message: string): void {
    const where = id.object === '' && id.document !== undefined ? ` (document ${id.document})` : '';
    this.items.push({ source: id.source, kind: id.kind, object: id.object, field, message: message + where });
  }
  addRaw(source: string, document: number | undefined, field: string, message: string): void {
    const where = document !== undefined ? ` (document ${document})` : '';
    this.items.push({ source, kind: '', object: '', field, message: message + where });
  }
}

interface Parsed<T> {
  id: Identity;
  value: T;
}

/** Which kind portway reads this object as, or null when it is not one of ours. */
function classify(
  raw: Record<string, unknown>,
): { kind: KnownKind } | { versionMismatch: string; kind: KnownKind } | null {
  const kind = raw.kind;
  if (typeof kind !== 'string' || !(kind in KIND_VERSIONS)) return null;
  const known = kind as KnownKind;
  const want = KIND_VERSIONS[known];
  const apiVersion = typeof raw.apiVersion === 'string' ? raw.apiVersion : '';
  const slash = apiVersion.lastIndexOf('/');
  const group = slash < 0 ? '' : apiVersion.slice(0, slash);
  const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
  if (group !== want.group) {
    // Another API group's kind of the same name (knative's Service, MetalLB's IPAddressPool) is not ours,
    // but a core kind written without apiVersion is a mistake worth naming.
    return apiVersion === '' ? { kind: known, versionMismatch: apiVersion } : null;
  }
  if (version !== want.version) return { kind: known, versionMismatch: apiVersion };
  return { kind: known };
}

function objectLabel(kind: KnownKind, metadata: unknown): string {
  if (!isRecord(metadata) || typeof metadata.name !== 'string' || metadata.name === '') return '';
  if (!KIND_VERSIONS[kind].namespaced) return metadata.name;
  const ns =
    typeof metadata.namespace === 'string' && metadata.namespace !== '' ? metadata.namespace : 'default';
  return `${ns}/${metadata.name}`;
}

/** Pools and advertisements are referenced by name alone, so their names must be unique across namespaces. */
function identityKey(kind: KnownKind, object: string): string {
  const byNameOnly = kind === 'IPAddressPool' || kind === 'L2Advertisement';
  return `${kind} ${byNameOnly ? object.slice(object.lastIndexOf('/') + 1) : object}`;
}

const SCHEMAS = {
  Service: serviceSchema,
  EndpointSlice: endpointSliceSchema,
  Endpoints: endpointsSchema,
  Node: nodeSchema,
  Namespace: namespaceSchema,
  Ingress: ingressSchema,
  IPAddressPool: ipAddressPoolSchema,
  L2Advertisement: l2AdvertisementSchema,
} as const;

interface ParsedObjects {
  Service: Parsed<ServiceObject>[];
  EndpointSlice: Parsed<EndpointSliceObject>[];
  Endpoints: Parsed<EndpointsObject>[];
  Node: Parsed<NodeObject>[];
  Namespace: Parsed<z.infer<typeof namespaceSchema>>[];
  Ingress: Parsed<IngressObject>[];
  IPAddressPool: Parsed<IPAddressPoolObject>[];
  L2Advertisement: Parsed<L2AdvertisementObject>[];
}

/** Sort by (source, document); objects from the API (no document) keep their relative order. */
function inSourceOrder(objects: SourcedObject[]): SourcedObject[] {
  return objects
    .map((o, i) => ({ o, i }))
    .sort(
      (a, b) => compareText(a.o.source, b.o.source) || (a.o.document ?? 0) - (b.o.document ?? 0) || a.i - b.i,
    )
    .map(({ o }) => o);
}

/**
 * Schema results by raw object identity. The API source hands the same (never mutated) informer
 * objects to every sync, and parsing is most of the cost of a rebuild (zod: ~50 µs per Service,
 * ~120 µs per 10-endpoint slice), so an unchanged object is parsed once. Inputs must be treated as
 * immutable, as informer caches already require.
 */
const parseCache = new WeakMap<
  object,
  { kind: KnownKind; result: z.SafeParseReturnType<unknown, unknown> }
>();

function parseMemoised(
  kind: KnownKind,
  raw: Record<string, unknown>,
): z.SafeParseReturnType<unknown, unknown> {
  const hit = parseCache.get(raw);
  if (hit && hit.kind === kind) return hit.result;
  const result = SCHEMAS[kind].safeParse(withoutNullFields(raw));
  parseCache.set(raw, { kind, result });
  return result;
}

function parseObjects(objects: SourcedObject[], problems: ProblemList): ParsedObjects {
  const parsed: ParsedObjects = {
    Service: [],
    EndpointSlice: [],
    Endpoints: [],
    Node: [],
    Namespace: [],
    Ingress: [],
    IPAddressPool: [],
    L2Advertisement: [],
  };
  const firstSeen = new Map<string, SourcedObject>();
  for (const sourced of inSourceOrder(objects)) {
    // Classification reads kind/apiVersion/metadata, where a null means the same as absent;
    // nulls are stripped only before the schema parse (on a cache miss).
    const raw = sourced.object;
    if (!isRecord(raw)) {
      problems.addRaw(
        sourced.source,
        sourced.document,
        '',
        `not a Kubernetes object (got ${showValue(raw)})`,
      );
      continue;
    }
    if (typeof raw.kind !== 'string' || raw.kind === '') {
      problems.addRaw(sourced.source, sourced.document, 'kind', 'required: not a Kubernetes object');
      continue;
    }
    const cls = classify(raw);
    if (cls === null) continue; // a kind portway does not read (Deployment, ConfigMap, …)
    const { kind } = cls;
    const id: Identity = { source: sourced.source, kind, object: objectLabel(kind, raw.metadata) };
    if (sourced.document !== undefined) id.document = sourced.document;
    if ('versionMismatch' in cls) {
      const want = KIND_VERSIONS[kind];
      const wanted = want.group === '' ? want.version : `${want.group}/${want.version}`;
      problems.add(
        id,
        'apiVersion',
        `portway reads ${kind} as ${wanted} (got ${showValue(cls.versionMismatch || undefined)})`,
      );
      continue;
    }
    if (id.object !== '') {
      const key = identityKey(kind, id.object);
      const earlier = firstSeen.get(key);
      if (earlier) {
        const at = earlier.document !== undefined ? ` document ${earlier.document}` : '';
        problems.add(
          id,
          'metadata.name',
          `duplicate of the ${kind} in ${earlier.source}${at}; this one is skipped`,
        );
        continue;
      }
      firstSeen.set(key, sourced);
    }
    const result = parseMemoised(kind, raw);
    if (!result.success) {
      for (const issue of result.error.issues)
        problems.add(id, formatFieldPath(issue.path), issueMessage(issue));
      continue;
    }
    (parsed[kind] as Parsed<unknown>[]).push({ id, value: result.data });
  }
  return parsed;
}

// ── Services ───────────────────────────────────────────────────────────────────────────────

interface ServiceEntry {
  id: Identity;
  svc: ServiceObject;
  info: ServiceInfo;
  /** kube-proxy proxies it: not headless, not ExternalName, has a cluster IP, not another proxy's. */
  proxied: boolean;
}

function readService(id: Identity, svc: ServiceObject, problems: ProblemList): ServiceEntry | null {
  const { spec, metadata } = svc;
  const errors: Array<[string, string]> = [];

  // clusterIPs, falling back to clusterIP; "None" alone means headless, "" not (yet) allocated.
  const single = spec.clusterIP ?? '';
  const rawIPs =
    spec.clusterIPs && spec.clusterIPs.length > 0 ? spec.clusterIPs : single === '' ? [] : [single];
  const field = spec.clusterIPs && spec.clusterIPs.length > 0 ? 'spec.clusterIPs' : 'spec.clusterIP';
  const headless = rawIPs[0] === 'None';
  const clusterIPs: string[] = [];
  if (spec.type !== 'ExternalName') {
    if (headless && rawIPs.length > 1)
      errors.push([`${field}[1]`, 'must be the only entry when the first is "None"']);
    if (rawIPs.length > 2)
      errors.push([`${field}`, `at most two addresses, one per family (got ${rawIPs.length})`]);
    if (!headless) {
      rawIPs.forEach((text, i) => {
        const ip = canonicalIP(text);
        if (ip === null)
          errors.push([
            field === 'spec.clusterIP' ? field : `${field}[${i}]`,
            `not a valid IP address (got ${showValue(text)})`,
          ]);
        else clusterIPs.push(ip);
      });
      if (clusterIPs.length === 2 && ipFamilyOf(clusterIPs[0]!) === ipFamilyOf(clusterIPs[1]!)) {
        errors.push([`${field}[1]`, 'must be of the other IP family than the first']);
      }
    }
    if (spec.clusterIPs && spec.clusterIPs.length > 0 && single !== '' && rawIPs[0] !== single) {
      const a = canonicalIP(single) ?? single;
      const b = canonicalIP(rawIPs[0] ?? '') ?? rawIPs[0];
      if (a !== b) errors.push(['spec.clusterIPs[0]', `must equal spec.clusterIP (${showValue(single)})`]);
    }
  }

  const derivedFamilies = clusterIPs.map((ip) => ipFamilyOf(ip)).filter((f): f is IPFamily => f !== null);
  const ipFamilies: IPFamily[] = spec.ipFamilies ?? derivedFamilies;
  if (spec.ipFamilies) {
    spec.ipFamilies.forEach((f, i) => {
      const derived = derivedFamilies[i];
      if (derived !== undefined && derived !== f)
        errors.push([
          `spec.ipFamilies[${i}]`,
          `${f} does not match spec.clusterIPs[${i}] (${clusterIPs[i]})`,
        ]);
    });
    if (spec.ipFamilies.length === 2 && spec.ipFamilies[0] === spec.ipFamilies[1]) {
      errors.push(['spec.ipFamilies[1]', `duplicate family ${spec.ipFamilies[1]}`]);
    }
  }

  // Port identity: kube-proxy keys chains by "ns/name:portName" + protocol, so names must be unique
  // and present when there are several ports (the API server enforces the same).
  const names = new Set<string>();
  const portProtocols = new Set<string>();
  spec.ports.forEach((p, i) => {
    if (spec.ports.length > 1 && p.name === '')
      errors.push([`spec.ports[${i}].name`, 'required when the Service has more than one port']);
    if (p.name !== '' && names.has(p.name))
      errors.push([`spec.ports[${i}].name`, `duplicate port name ${showValue(p.name)}`]);
    names.add(p.name);
    const pp = `${p.port}/${p.protocol}`;
    if (portProtocols.has(pp)) errors.push([`spec.ports[${i}].port`, `duplicate port ${pp}`]);
    portProtocols.add(pp);
    if (p.nodePort !== 0 && (spec.type === 'ClusterIP' || spec.type === 'ExternalName')) {
      errors.push([`spec.ports[${i}].nodePort`, `may not be set when type is ${spec.type}`]);
    }
  });

  if (errors.length > 0) {
    for (const [f, m] of errors) problems.add(id, f, m);
    return null;
  }

  const statusIngress: LoadBalancerIngress[] = svc.status.loadBalancer.ingress
    .filter((ing): ing is typeof ing & { ip: string } => ing.ip !== undefined) // hostname-only ingress has nothing to program
    .map((ing) => ({ ip: ing.ip, ipMode: ing.ipMode }));

  const info: ServiceInfo = {
    namespace: metadata.namespace,
    name: metadata.name,
    type: spec.type,
    labels: metadata.labels,
    annotations: metadata.annotations,
    selector: spec.selector,
    clusterIPs: spec.type === 'ExternalName' ? [] : clusterIPs,
    ipFamilies,
    ipFamilyPolicy: spec.ipFamilyPolicy ?? (ipFamilies.length === 2 ? 'RequireDualStack' : 'SingleStack'),
    loadBalancerIP: spec.loadBalancerIP ?? '',
    loadBalancerClass: spec.loadBalancerClass ?? '',
    externalTrafficPolicy: spec.externalTrafficPolicy,
    ports: spec.ports.map((p) => ({
      name: p.name,
      protocol: p.protocol,
      port: p.port,
      nodePort: p.nodePort,
    })),
    statusIngress,
  };
  if (metadata.uid !== undefined) info.uid = metadata.uid;

  // kube-proxy's ShouldSkipService, plus its informers' label filter.
  const proxied =
    spec.type !== 'ExternalName' &&
    !headless &&
    clusterIPs.length > 0 &&
    !(LABEL_SERVICE_PROXY_NAME in metadata.labels);
  return { id, svc, info, proxied };
}

function servicePortsOf(
  entry: ServiceEntry,
  endpointsFor: (name: string, protocol: Protocol) => Endpoint[],
): ServicePort[] {
  const { svc, info } = entry;
  const { spec } = svc;
  if (!entry.proxied || spec.type === 'ExternalName') return [];
  const type = spec.type;
  const sessionAffinity: ServicePort['sessionAffinity'] =
    spec.sessionAffinity === 'ClientIP'
      ? {
          type: 'ClientIP',
          timeoutSeconds:
            spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? DEFAULT_AFFINITY_TIMEOUT_SECONDS,
        }
      : { type: 'None' };
  // apiservice.NeedsHealthCheck: only a LoadBalancer with externalTrafficPolicy Local has one.
  const healthCheckNodePort =
    type === 'LoadBalancer' && spec.externalTrafficPolicy === 'Local' ? spec.healthCheckNodePort : 0;
  return spec.ports.map((p) => ({
    id: servicePortId(info.namespace, info.name, p.name),
    namespace: info.namespace,
    serviceName: info.name,
    portName: p.name,
    protocol: p.protocol,
    type,
    port: p.port,
    nodePort: p.nodePort,
    healthCheckNodePort,
    clusterIPs: [...info.clusterIPs],
    externalIPs: [...spec.externalIPs],
    loadBalancerIngress: info.statusIngress.map((i) => ({ ...i })),
    loadBalancerSourceRanges: [...spec.loadBalancerSourceRanges],
    externalTrafficPolicy: spec.externalTrafficPolicy,
    internalTrafficPolicy: spec.internalTrafficPolicy,
    sessionAffinity: { ...sessionAffinity },
    ipFamilies: [...info.ipFamilies],
    endpoints: endpointsFor(p.name, p.protocol),
  }));
}

// ── Endpoints ──────────────────────────────────────────────────────────────────────────────

interface SliceEntry {
  name: string;
  slice: EndpointSliceObject;
  /** addresses[0] of each endpoint, canonical; null when the endpoint has no address (kube-proxy skips it). */
  firstAddresses: Array<string | null>;
}

function readEndpointSlice(
  id: Identity,
  slice: EndpointSliceObject,
  problems: ProblemList,
): { service: string; entry: SliceEntry } | null {
  const labels = slice.metadata.labels;
  // kube-proxy's informers never see these slices.
  if (LABEL_SERVICE_PROXY_NAME in labels || LABEL_HEADLESS in labels) return null;
  const serviceName = labels[LABEL_SERVICE_NAME];
  if (serviceName === undefined || serviceName === '') {
    problems.add(
      id,
      formatFieldPath(['metadata', 'labels', LABEL_SERVICE_NAME]),
      'required: it names the Service the slice belongs to',
    );
    return null;
  }
  if (slice.addressType === 'FQDN') return null; // kube-proxy proxies IP slices only
  const family = slice.addressType;
  const errors: Array<[string, string]> = [];
  const firstAddresses = slice.endpoints.map((ep, i) => {
    let first: string | null = null;
    ep.addresses.forEach((text, j) => {
      const ip = canonicalIP(text);
      if (ip === null || ipFamilyOf(ip) !== family) {
        errors.push([
          `endpoints[${i}].addresses[${j}]`,
          `not a valid ${family} address (got ${showValue(text)})`,
        ]);
      } else if (j === 0) first = ip;
    });
    return first;
  });
  if (errors.length > 0) {
    for (const [f, m] of errors) problems.add(id, f, m);
    return null;
  }
  return {
    service: `${slice.metadata.namespace}/${serviceName}`,
    entry: { name: slice.metadata.name, slice, firstAddresses },
  };
}

/** Sort by (family, numeric IP, port); keys are computed once per endpoint, not per comparison. */
function sortEndpoints(endpoints: Iterable<Endpoint>): Endpoint[] {
  return [...endpoints]
    .map((e) => ({ e, family: e.family === 'IPv4' ? 0 : 1, ip: ipToBigInt(e.ip) }))
    .sort((a, b) => a.family - b.family || (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0) || a.e.port - b.e.port)
    .map(({ e }) => e);
}

/**
 * Endpoints of one service port from its slices, as kube-proxy's EndpointSliceCache merges them:
 * slice ports join by (name, protocol); a port of 0/unset and an endpoint without addresses are
 * ignored; only addresses[0] is used; an ip:port seen in several slices is kept once (the first by
 * slice name).
 */
function endpointsFromSlices(slices: SliceEntry[], portName: string, protocol: Protocol): Endpoint[] {
  const byKey = new Map<string, Endpoint>();
  for (const { slice, firstAddresses } of slices) {
    for (const sp of slice.ports) {
      if (sp.name !== portName || sp.protocol !== protocol || sp.port === undefined || sp.port === 0)
        continue;
      slice.endpoints.forEach((ep, i) => {
        const ip = firstAddresses[i];
        if (ip === null || ip === undefined) return;
        const key = joinHostPort(ip, sp.port!);
        if (byKey.has(key)) return;
        const endpoint: Endpoint = {
          ip,
          port: sp.port!,
          family: slice.addressType === 'IPv6' ? 'IPv6' : 'IPv4',
          // kube-proxy: ready unset = true, serving unset = true, terminating unset = false.
          ready: ep.conditions.ready ?? true,
          serving: ep.conditions.serving ?? true,
          terminating: ep.conditions.terminating ?? false,
        };
        if (ep.nodeName !== undefined) endpoint.nodeName = ep.nodeName;
        if (ep.zone !== undefined) endpoint.zone = ep.zone;
        if (ep.targetRef?.name !== undefined) endpoint.targetName = ep.targetRef.name;
        byKey.set(key, endpoint);
      });
    }
  }
  return sortEndpoints(byKey.values());
}

/**
 * Endpoints of one service port from a legacy v1 Endpoints object (used only when the Service has no
 * EndpointSlice): ports match by name and protocol; `addresses` are ready, `notReadyAddresses` not.
 * Serving follows ready, as the EndpointSlice controller sets it for a pod that is not terminating.
 */
function endpointsFromLegacy(endpoints: EndpointsObject, portName: string, protocol: Protocol): Endpoint[] {
  const byKey = new Map<string, Endpoint>();
  for (const subset of endpoints.subsets) {
    for (const sp of subset.ports) {
      if (sp.name !== portName || sp.protocol !== protocol) continue;
      const add = (addr: (typeof subset.addresses)[number], ready: boolean): void => {
        const key = joinHostPort(addr.ip, sp.port);
        if (byKey.has(key)) return;
        const endpoint: Endpoint = {
          ip: addr.ip,
          port: sp.port,
          family: ipFamilyOf(addr.ip) ?? 'IPv4',
          ready,
          serving: ready,
          terminating: false,
        };
        if (addr.nodeName !== undefined) endpoint.nodeName = addr.nodeName;
        if (addr.targetRef?.name !== undefined) endpoint.targetName = addr.targetRef.name;
        byKey.set(key, endpoint);
      };
      for (const a of subset.addresses) add(a, true);
      for (const a of subset.notReadyAddresses) add(a, false);
    }
  }
  return sortEndpoints(byKey.values());
}

// ── Nodes, Ingresses, pools ─────────────────────────────────────────────────────────────────

function readNode(id: Identity, node: NodeObject, problems: ProblemList): NodeInfo | null {
  const addresses: string[] = [];
  let bad = false;
  node.status.addresses.forEach((a, i) => {
    if (a.type !== 'InternalIP' && a.type !== 'ExternalIP') return; // Hostname, InternalDNS, …
    const ip = canonicalIP(a.address);
    if (ip === null) {
      problems.add(
        id,
        `status.addresses[${i}].address`,
        `not a valid IP address (got ${showValue(a.address)})`,
      );
      bad = true;
    } else if (!addresses.includes(ip)) addresses.push(ip);
  });
  if (bad) return null;
  const info: NodeInfo = {
    name: node.metadata.name,
    addresses,
    // No Ready condition = the kubelet has not reported: not ready, as the node controller treats it.
    ready: node.status.conditions.some((c) => c.type === 'Ready' && c.status === 'True'),
    labels: node.metadata.labels,
  };
  const zone = node.metadata.labels[LABEL_ZONE];
  if (zone !== undefined && zone !== '') info.zone = zone;
  return info;
}

function readIngress(ing: IngressObject): IngressInfo {
  const backends: IngressBackendRef[] = [];
  const add = (backend: IngressObject['spec']['defaultBackend'], host: string, path: string): void => {
    const svc = backend?.service;
    if (!svc) return;
    const port = svc.port.number ?? svc.port.name ?? '';
    backends.push({ serviceName: svc.name, port, host, path });
  };
  add(ing.spec.defaultBackend, '', '');
  for (const rule of ing.spec.rules)
    for (const p of rule.http?.paths ?? []) add(p.backend, rule.host, p.path);
  return {
    namespace: ing.metadata.namespace,
    name: ing.metadata.name,
    ingressClassName: ing.spec.ingressClassName ?? ing.metadata.annotations[ANNOTATION_INGRESS_CLASS] ?? '',
    backends,
    statusIngress: ing.status.loadBalancer.ingress
      .filter((i): i is typeof i & { ip: string } => i.ip !== undefined)
      .map((i) => ({ ip: i.ip, ipMode: 'VIP' as const })),
  };
}

function selector(s: {
  matchLabels: Record<string, string>;
  matchExpressions: LabelSelector['matchExpressions'];
}): LabelSelector {
  return {
    matchLabels: { ...s.matchLabels },
    matchExpressions: s.matchExpressions.map((e) => ({ ...e, values: [...e.values] })),
  };
}

function readPool(pool: IPAddressPoolObject): AddressPool {
  const out: AddressPool = {
    name: pool.metadata.name,
    labels: pool.metadata.labels,
    addresses: pool.spec.addresses.map((a) => ({
      first: a.first,
      last: a.last,
      family: a.family,
      text: a.text,
    })),
    autoAssign: pool.spec.autoAssign,
    avoidBuggyIPs: pool.spec.avoidBuggyIPs,
  };
  const alloc = pool.spec.serviceAllocation;
  if (alloc) {
    out.serviceAllocation = {
      namespaces: [...alloc.namespaces],
      namespaceSelectors: alloc.namespaceSelectors.map(selector),
      serviceSelectors: alloc.serviceSelectors.map(selector),
    };
    if (alloc.priority !== undefined) out.serviceAllocation.priority = alloc.priority;
  }
  return out;
}

/**
 * MetalLB refuses overlapping pools: an address must belong to one pool. Pools are checked in name
 * order, so the later-named of two overlapping pools is the one reported and skipped.
 */
function withoutOverlaps(pools: Parsed<AddressPool>[], problems: ProblemList): AddressPool[] {
  const accepted: AddressPool[] = [];
  const taken: Array<{ pool: string; text: string; family: IPFamily; first: bigint; last: bigint }> = [];
  for (const { id, value: pool } of pools) {
    const mine: typeof taken = [];
    let overlap = false;
    pool.addresses.forEach((a, i) => {
      const first = ipToBigInt(a.first);
      const last = ipToBigInt(a.last);
      const clash = [...taken, ...mine].find(
        (t) => t.family === a.family && t.first <= last && first <= t.last,
      );
      if (clash) {
        const whose =
          clash.pool === pool.name
            ? `spec.addresses entry ${clash.text}`
            : `pool ${clash.pool}'s ${clash.text}`;
        problems.add(id, `spec.addresses[${i}]`, `${a.text} overlaps ${whose}`);
        overlap = true;
      }
      mine.push({ pool: pool.name, text: a.text, family: a.family, first, last });
    });
    if (overlap) continue;
    taken.push(...mine);
    accepted.push(pool);
  }
  return accepted;
}

function readL2Advertisement(ad: L2AdvertisementObject): L2Advertisement {
  return {
    name: ad.metadata.name,
    ipAddressPools: [...ad.spec.ipAddressPools],
    ipAddressPoolSelectors: ad.spec.ipAddressPoolSelectors.map(selector),
    nodeSelectors: ad.spec.nodeSelectors.map(selector),
    interfaces: [...ad.spec.interfaces],
  };
}

// ── the whole picture ──────────────────────────────────────────────────────────────────────

const byName = <T extends { name: string }>(a: T, b: T): number => compareText(a.name, b.name);
const byNamespacedName = <T extends { namespace: string; name: string }>(a: T, b: T): number =>
  compareText(a.namespace, b.namespace) || compareText(a.name, b.name);

/**
 * Normalise raw objects into ClusterState. Pure and deterministic; objects are taken in (source,
 * document) order, so the first of two duplicates in file order wins whatever the array order.
 */
export function buildClusterState(objects: SourcedObject[]): BuildResult {
  const problems = new ProblemList();
  const parsed = parseObjects(objects, problems);

  const services = parsed.Service.map(({ id, value }) => readService(id, value, problems)).filter(
    (s): s is ServiceEntry => s !== null,
  );

  const slicesByService = new Map<string, SliceEntry[]>();
  for (const { id, value } of parsed.EndpointSlice) {
    const read = readEndpointSlice(id, value, problems);
    if (!read) continue;
    const list = slicesByService.get(read.service) ?? [];
    list.push(read.entry);
    slicesByService.set(read.service, list);
  }
  for (const list of slicesByService.values()) list.sort(byName);
  const legacyByService = new Map(
    parsed.Endpoints.map(({ value }) => [`${value.metadata.namespace}/${value.metadata.name}`, value]),
  );

  const servicePorts: ServicePort[] = [];
  for (const entry of services) {
    const key = `${entry.info.namespace}/${entry.info.name}`;
    const slices = slicesByService.get(key);
    const legacy = legacyByService.get(key);
    servicePorts.push(
      ...servicePortsOf(entry, (name, protocol) =>
        slices
          ? endpointsFromSlices(slices, name, protocol)
          : legacy
            ? endpointsFromLegacy(legacy, name, protocol)
            : [],
      ),
    );
  }
  servicePorts.sort((a, b) => compareText(a.id, b.id) || compareText(a.protocol, b.protocol));

  const nodes = parsed.Node.map(({ id, value }) => readNode(id, value, problems)).filter(
    (n): n is NodeInfo => n !== null,
  );

  const pools = parsed.IPAddressPool.map(({ id, value }) => ({ id, value: readPool(value) })).sort((a, b) =>
    byName(a.value, b.value),
  );

  const namespaceLabels: Record<string, Record<string, string>> = {};
  for (const { value } of [...parsed.Namespace].sort((a, b) => byName(a.value.metadata, b.value.metadata))) {
    namespaceLabels[value.metadata.name] = value.metadata.labels;
  }

  const state: ClusterState = {
    servicePorts,
    services: services.map((s) => s.info).sort(byNamespacedName),
    nodes: nodes.sort(byName),
    ingresses: parsed.Ingress.map(({ value }) => readIngress(value)).sort(byNamespacedName),
    addressPools: withoutOverlaps(pools, problems),
    l2Advertisements: parsed.L2Advertisement.map(({ value }) => readL2Advertisement(value)).sort(byName),
    namespaceLabels,
  };
  return { state, problems: problems.items };
}
