// Raw Kubernetes objects → ClusterState, following kube-proxy's reading of them
// (pkg/proxy/serviceport.go, servicechangetracker.go, endpointslicecache.go) and MetalLB's of pools.
// Pure and deterministic: the result depends on the objects and their (source, document), never on
// the order of the input array. A malformed object is reported as an InputProblem and skipped.
import { readIngress, readIngressClass } from './ingress-read.js';
import { z } from 'zod';
import type {
  AddressPool,
  ClusterState,
  Endpoint,
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
import { specialAddressProblem } from './address-rules.js';
import { withoutPortConflicts } from './port-conflicts.js';
import { appendAll } from './arrays.js';
import { canonicalIP, ipFamilyOf, ipToBigInt, joinHostPort, parseCIDR } from './ip.js';
import {
  dns1035LabelProblem,
  dns1123LabelProblem,
  dns1123SubdomainProblem,
  ianaSvcNameProblem,
  labelValueProblem,
  metadataNameProblems,
  printableLine,
  printableName,
} from './names.js';
import {
  endpointSliceSchema,
  endpointsSchema,
  ingressSchema,
  ingressClassSchema,
  type IngressClassObject,
  ipAddressPoolSchema,
  KIND_VERSIONS,
  ALSO_READ_AS,
  UNSUPPORTED_METALLB_KINDS,
  l2AdvertisementSchema,
  namespaceSchema,
  nodeSchema,
  notAnIPAddress,
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
export { ANNOTATION_INGRESS_CLASS, readIngress, readIngressClass } from './ingress-read.js';
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
  // One line whatever the file name or message holds: control and bidi characters are escaped.
  return printableLine(parts.join(': '));
}

/** Code-point order: independent of the locale, so output is identical on every machine. */
export function compareText(a: string, b: string): number {
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

export interface Identity {
  source: string;
  document?: number;
  kind: KnownKind;
  /** "namespace/name", "name", or "" when the name is missing. */
  object: string;
}

export class ProblemList {
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

export interface Parsed<T> {
  id: Identity;
  value: T;
}

/**
 * Which kind portway reads this object as; `unsupported` for a MetalLB feature portway does not have
 * (reported, then ignored); null when it is not one of ours.
 */
export function classify(
  raw: Record<string, unknown>,
):
  | { kind: KnownKind }
  | { versionMismatch: string; kind: KnownKind }
  | { unsupported: string; group: string; kind: string }
  | null {
  const kind = raw.kind;
  const apiVersion = typeof raw.apiVersion === 'string' ? raw.apiVersion : '';
  const slash = apiVersion.lastIndexOf('/');
  const group = slash < 0 ? '' : apiVersion.slice(0, slash);
  const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
  if (typeof kind !== 'string') return null;
  const unsupported = UNSUPPORTED_METALLB_KINDS[group]?.[kind];
  if (unsupported !== undefined) return { unsupported, group, kind };
  if (!(kind in KIND_VERSIONS)) return null;
  const known = kind as KnownKind;
  const want = KIND_VERSIONS[known];
  const also = ALSO_READ_AS[known]?.find((v) => v.group === group);
  if (also !== undefined) {
    return version === also.version ? { kind: known } : { kind: known, versionMismatch: apiVersion };
  }
  if (group !== want.group) {
    // Another API group's kind of the same name (knative's Service, MetalLB's IPAddressPool) is not ours,
    // but a core kind written without apiVersion is a mistake worth naming.
    return apiVersion === '' ? { kind: known, versionMismatch: apiVersion } : null;
  }
  if (version !== want.version) return { kind: known, versionMismatch: apiVersion };
  return { kind: known };
}

export function objectLabel(kind: KnownKind, metadata: unknown): string {
  if (!isRecord(metadata) || typeof metadata.name !== 'string' || metadata.name === '') return '';
  // Names that are not plain words are quoted, so a reported name never reads as something else.
  const name = printableName(metadata.name);
  if (!KIND_VERSIONS[kind].namespaced) return name;
  const ns =
    typeof metadata.namespace === 'string' && metadata.namespace !== '' ? printableName(metadata.namespace) : 'default';
  return `${ns}/${name}`;
}

/** Pools and advertisements are referenced by name alone, so their names must be unique across namespaces. */
export function identityKey(kind: KnownKind, object: string): string {
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
  IngressClass: ingressClassSchema,
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
  IngressClass: Parsed<IngressClassObject>[];
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

/** What reading one object's kind, apiVersion and name says, before duplicates and the schema. */
export type Triage =
  /** Not a kind portway reads (Deployment, ConfigMap, knative's Service …): no problem, no effect. */
  | { type: 'ignored' }
  /** Not an object, no kind, or a wrong apiVersion: these problems, nothing else. */
  | { type: 'rejected'; problems: InputProblem[] }
  | {
      type: 'known';
      kind: KnownKind;
      raw: Record<string, unknown>;
      id: Identity;
      /** Key under which two objects are duplicates (see identityKey); null for an unnamed object. */
      identityKey: string | null;
    };

/**
 * Classify one object. Classification reads kind/apiVersion/metadata, where a null means the same
 * as absent; nulls are stripped only before the schema parse.
 */
export function triageObject(sourced: SourcedObject): Triage {
  const raw = sourced.object;
  const problems = new ProblemList();
  if (!isRecord(raw)) {
    problems.addRaw(sourced.source, sourced.document, '', `not a Kubernetes object (got ${showValue(raw)})`);
    return { type: 'rejected', problems: problems.items };
  }
  if (typeof raw.kind !== 'string' || raw.kind === '') {
    problems.addRaw(sourced.source, sourced.document, 'kind', 'required: not a Kubernetes object');
    return { type: 'rejected', problems: problems.items };
  }
  const cls = classify(raw);
  if (cls === null) return { type: 'ignored' };
  if ('unsupported' in cls) {
    // Named as "metallb.io BGPPeer metallb-system/x"; the message says what portway does about it.
    const meta = isRecord(raw.metadata) ? raw.metadata : {};
    const name = typeof meta.name === 'string' && meta.name !== '' ? printableName(meta.name) : '';
    const ns =
      typeof meta.namespace === 'string' && meta.namespace !== '' ? `${printableName(meta.namespace)}/` : '';
    problems.items.push({
      source: sourced.source,
      kind: `${cls.group} ${printableName(cls.kind)}`,
      object: name === '' ? '' : `${ns}${name}`,
      field: '',
      message: cls.unsupported,
    });
    return { type: 'rejected', problems: problems.items };
  }
  const { kind } = cls;
  const id: Identity = { source: sourced.source, kind, object: objectLabel(kind, raw.metadata) };
  if (sourced.document !== undefined) id.document = sourced.document;
  if ('versionMismatch' in cls) {
    const wanted = [KIND_VERSIONS[kind], ...(ALSO_READ_AS[kind] ?? [])]
      .map((v) => (v.group === '' ? v.version : `${v.group}/${v.version}`))
      .join(' or ');
    problems.add(
      id,
      'apiVersion',
      `portway reads ${kind} as ${wanted} (got ${showValue(cls.versionMismatch || undefined)})`,
    );
    return { type: 'rejected', problems: problems.items };
  }
  // A name Kubernetes would refuse is refused here, before duplicates are looked for: it could
  // otherwise carry markup or newlines into comments and diffs, or print like another object's name.
  const badNames = metadataNameProblems(kind, raw.metadata);
  if (badNames.length > 0) {
    for (const [field, message] of badNames) problems.add(id, field, message);
    return { type: 'rejected', problems: problems.items };
  }
  return {
    type: 'known',
    kind,
    raw,
    id,
    identityKey: id.object === '' ? null : identityKey(kind, id.object),
  };
}

/** The problem of the second of two objects with the same identity key; `earlier` is the one kept. */
export function addDuplicateProblem(
  problems: ProblemList,
  id: Identity,
  earlier: { source: string; document?: number },
): void {
  const at = earlier.document !== undefined ? ` document ${earlier.document}` : '';
  problems.add(
    id,
    'metadata.name',
    `duplicate of the ${id.kind} in ${earlier.source}${at}; this one is skipped`,
  );
}

/** A schema result: the parsed value, or the issues as (field, message) pairs. */
export type ParseOutcome =
  { success: true; data: unknown } | { success: false; issues: Array<{ field: string; message: string }> };

/**
 * Parse one object of a known kind. Services and EndpointSlices (nearly all of a big cluster) go
 * through a hand-written reader first, which yields exactly zod's result for well-formed input and
 * declines anything else; zod then parses what was declined, so every problem message is zod's.
 */
export function parseKnownObject(kind: KnownKind, raw: Record<string, unknown>): ParseOutcome {
  const fast =
    kind === 'Service'
      ? fastParseService(raw)
      : kind === 'EndpointSlice'
        ? fastParseEndpointSlice(raw)
        : DECLINED;
  if (fast !== DECLINED) return { success: true, data: fast };
  return zodParse(kind, raw);
}

/** The zod schema's verdict alone (the reference for the fast readers). */
export function zodParse(kind: KnownKind, raw: Record<string, unknown>): ParseOutcome {
  const result = SCHEMAS[kind].safeParse(withoutNullFields(raw));
  // Nulls mean "unset" and are dropped before the schema, but a whole `spec: null` (an empty `spec:`
  // line) would silently become e.g. a Service with no address and no port: name it instead.
  const nullSpec =
    raw.spec === null ? [{ field: 'spec', message: `null: the ${kind} has no spec (an empty "spec:"?)` }] : [];
  if (result.success && nullSpec.length === 0) return { success: true, data: result.data };
  return {
    success: false,
    issues: [
      ...nullSpec,
      ...(result.success ? [] : result.error.issues).map((issue) => ({
        field: formatFieldPath(issue.path),
        message: issueMessage(issue),
      })),
    ],
  };
}

/**
 * Schema results by raw object identity. The API source hands the same (never mutated) informer
 * objects to every sync, so an unchanged object is parsed once. Inputs must be treated as
 * immutable, as informer caches already require.
 */
const parseCache = new WeakMap<object, { kind: KnownKind; result: ParseOutcome }>();

function parseMemoised(kind: KnownKind, raw: Record<string, unknown>): ParseOutcome {
  const hit = parseCache.get(raw);
  if (hit && hit.kind === kind) return hit.result;
  const result = parseKnownObject(kind, raw);
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
    IngressClass: [],
    IPAddressPool: [],
    L2Advertisement: [],
  };
  const firstSeen = new Map<string, SourcedObject>();
  for (const sourced of inSourceOrder(objects)) {
    const triage = triageObject(sourced);
    if (triage.type === 'ignored') continue;
    if (triage.type === 'rejected') {
      appendAll(problems.items, triage.problems);
      continue;
    }
    const { kind, raw, id } = triage;
    if (triage.identityKey !== null) {
      const earlier = firstSeen.get(triage.identityKey);
      if (earlier) {
        addDuplicateProblem(problems, id, earlier);
        continue;
      }
      firstSeen.set(triage.identityKey, sourced);
    }
    const result = parseMemoised(kind, raw);
    if (!result.success) {
      for (const issue of result.issues) problems.add(id, issue.field, issue.message);
      continue;
    }
    (parsed[kind] as Parsed<unknown>[]).push({ id, value: result.data });
  }
  return parsed;
}

/** True for an IPv4 address already in canonical form ("10.0.0.1", not "010.0.0.1" or " 10.0.0.1"). */
function isCanonicalIPv4(text: string): boolean {
  let dots = 0;
  let digits = 0;
  let value = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      if (digits === 0) return false;
      dots++;
      digits = 0;
      value = 0;
      continue;
    }
    if (c < 48 || c > 57 || (digits > 0 && value === 0)) return false;
    value = value * 10 + (c - 48);
    digits++;
    if (value > 255) return false;
  }
  return digits > 0 && dots === 3;
}

/** canonicalIP, without its regex and splitting for the address that is already canonical (nearly all). */
export function canonicalAddress(text: string): string | null {
  return isCanonicalIPv4(text) ? text : canonicalIP(text);
}

/** The family of an address canonicalIP returned: only its IPv6 form has colons. */
function familyOfCanonical(ip: string): IPFamily {
  return ip.includes(':') ? 'IPv6' : 'IPv4';
}

// ── fast readers ───────────────────────────────────────────────────────────────────────────
// Hand-written equivalents of serviceSchema and endpointSliceSchema for well-formed input: zod
// costs ~50 µs per Service and ~120 µs per 10-endpoint slice, which is most of a first sync of a
// big cluster. Each reader returns exactly what zod returns after withoutNullFields (same values,
// same defaults, same canonical addresses, unknown fields dropped, fresh objects), or DECLINED at
// the first thing that is not plainly valid, and zod then parses the object and words the
// problems. A property test holds them to zod's output.

const DECLINED: unique symbol = Symbol('declined');
type Declined = typeof DECLINED;

/** A JSON-like object (what the YAML loader and the API informers produce). */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** A map of strings (labels, annotations, selector); absent = {}; null values are absent. */
function fastStringMap(value: unknown): Record<string, string> | Declined {
  if (value === undefined || value === null) return {};
  if (!isPlainObject(value)) return DECLINED;
  const out: Record<string, string> = {};
  for (const key of Object.keys(value)) {
    const v = value[key];
    if (v === null) continue;
    if (typeof v !== 'string' || key === '__proto__') return DECLINED;
    out[key] = v;
  }
  return out;
}

const isAbsent = (v: unknown): v is null | undefined => v === undefined || v === null;
const isIntegerIn = (v: unknown, min: number, max: number): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

function fastNamespacedMetadata(value: unknown): ServiceObject['metadata'] | Declined {
  if (!isPlainObject(value)) return DECLINED;
  const { name, uid, creationTimestamp } = value;
  let namespace = value.namespace;
  if (typeof name !== 'string' || name === '') return DECLINED;
  if (isAbsent(namespace)) namespace = 'default';
  else if (typeof namespace !== 'string' || namespace === '') return DECLINED;
  if (!isAbsent(uid) && typeof uid !== 'string') return DECLINED;
  if (!isAbsent(creationTimestamp) && typeof creationTimestamp !== 'string') return DECLINED;
  const labels = fastStringMap(value.labels);
  const annotations = fastStringMap(value.annotations);
  if (labels === DECLINED || annotations === DECLINED) return DECLINED;
  // zod's key order: name, namespace, uid, creationTimestamp, labels, annotations. Object literals,
  // not added properties, so the metadata of every object of a kind shares one shape.
  const ns = namespace as string;
  if (isAbsent(creationTimestamp))
    return isAbsent(uid)
      ? { name, namespace: ns, labels, annotations }
      : { name, namespace: ns, uid, labels, annotations };
  return isAbsent(uid)
    ? { name, namespace: ns, creationTimestamp, labels, annotations }
    : { name, namespace: ns, uid, creationTimestamp, labels, annotations };
}

/** The value when it is absent (default) or one of `values`. */
function fastOneOf<T extends string>(
  value: unknown,
  values: readonly T[],
  fallback: T | undefined,
): T | undefined | Declined {
  if (isAbsent(value)) return fallback;
  return typeof value === 'string' && (values as readonly string[]).includes(value) ? (value as T) : DECLINED;
}

/**
 * The list with a backing store of exactly its length. An array filled by push() keeps room for 17
 * elements or more (V8 grows it by half plus 16), so a one-address list costs 184 bytes instead of
 * 40: the parsed objects live as long as the objects do (the builder keeps them), and at 10k
 * EndpointSlices × 10 endpoints that room came to ~19 MB.
 */
function exactSize<T>(list: T[]): T[] {
  return list.slice();
}

function fastStringList(value: unknown, map?: (s: string) => string | null): string[] | Declined {
  if (!Array.isArray(value)) return DECLINED;
  const out: string[] = [];
  for (const item of value) {
    if (typeof item !== 'string') return DECLINED;
    const v = map ? map(item) : item;
    if (v === null) return DECLINED;
    out.push(v);
  }
  return exactSize(out);
}

const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'] as const;
const POLICIES = ['Cluster', 'Local'] as const;
const AFFINITIES = ['None', 'ClientIP'] as const;
const FAMILIES = ['IPv4', 'IPv6'] as const;
const FAMILY_POLICIES = ['SingleStack', 'PreferDualStack', 'RequireDualStack'] as const;
const PROTOCOLS = ['TCP', 'UDP', 'SCTP'] as const;
const INGRESS_MODES = ['VIP', 'Proxy'] as const;
const ADDRESS_TYPES = ['IPv4', 'IPv6', 'FQDN'] as const;
const cidrText = (s: string): string | null => (s.includes('/') ? (parseCIDR(s)?.text ?? null) : null);

type ServiceSpec = ServiceObject['spec'];

function fastServiceSpec(value: unknown): ServiceSpec | Declined {
  const s = isAbsent(value) ? {} : value;
  if (!isPlainObject(s)) return DECLINED;
  const type = fastOneOf(s.type, SERVICE_TYPES, 'ClusterIP');
  const externalTrafficPolicy = fastOneOf(s.externalTrafficPolicy, POLICIES, 'Cluster');
  const internalTrafficPolicy = fastOneOf(s.internalTrafficPolicy, POLICIES, 'Cluster');
  const sessionAffinity = fastOneOf(s.sessionAffinity, AFFINITIES, 'None');
  const ipFamilyPolicy = fastOneOf(s.ipFamilyPolicy, FAMILY_POLICIES, undefined);
  if (
    type === DECLINED ||
    externalTrafficPolicy === DECLINED ||
    internalTrafficPolicy === DECLINED ||
    sessionAffinity === DECLINED ||
    ipFamilyPolicy === DECLINED
  )
    return DECLINED;
  const out: Record<string, unknown> = { type };
  if (!isAbsent(s.clusterIP)) {
    if (typeof s.clusterIP !== 'string') return DECLINED;
    out.clusterIP = s.clusterIP;
  }
  if (!isAbsent(s.clusterIPs)) {
    const ips = fastStringList(s.clusterIPs);
    if (ips === DECLINED) return DECLINED;
    out.clusterIPs = ips;
  }
  const externalIPs = isAbsent(s.externalIPs) ? [] : fastStringList(s.externalIPs, canonicalAddress);
  if (externalIPs === DECLINED) return DECLINED;
  out.externalIPs = externalIPs;
  if (!isAbsent(s.externalName)) {
    if (typeof s.externalName !== 'string') return DECLINED;
    out.externalName = s.externalName;
  }
  if (!isAbsent(s.loadBalancerIP)) {
    if (typeof s.loadBalancerIP !== 'string') return DECLINED;
    const ip = s.loadBalancerIP === '' ? '' : canonicalAddress(s.loadBalancerIP);
    if (ip === null) return DECLINED;
    out.loadBalancerIP = ip;
  }
  if (!isAbsent(s.loadBalancerClass)) {
    if (typeof s.loadBalancerClass !== 'string') return DECLINED;
    out.loadBalancerClass = s.loadBalancerClass;
  }
  const ranges = isAbsent(s.loadBalancerSourceRanges)
    ? []
    : fastStringList(s.loadBalancerSourceRanges, cidrText);
  if (ranges === DECLINED) return DECLINED;
  out.loadBalancerSourceRanges = ranges;
  out.externalTrafficPolicy = externalTrafficPolicy;
  out.internalTrafficPolicy = internalTrafficPolicy;
  out.sessionAffinity = sessionAffinity;
  if (!isAbsent(s.sessionAffinityConfig)) {
    const config = s.sessionAffinityConfig;
    if (!isPlainObject(config)) return DECLINED;
    const parsed: { clientIP?: { timeoutSeconds?: number } } = {};
    if (!isAbsent(config.clientIP)) {
      const clientIP = config.clientIP;
      if (!isPlainObject(clientIP)) return DECLINED;
      parsed.clientIP = {};
      if (!isAbsent(clientIP.timeoutSeconds)) {
        if (!isIntegerIn(clientIP.timeoutSeconds, 1, 86400)) return DECLINED;
        parsed.clientIP.timeoutSeconds = clientIP.timeoutSeconds;
      }
    }
    out.sessionAffinityConfig = parsed;
  }
  const healthCheckNodePort = isAbsent(s.healthCheckNodePort) ? 0 : s.healthCheckNodePort;
  if (!isIntegerIn(healthCheckNodePort, 0, 65535)) return DECLINED;
  out.healthCheckNodePort = healthCheckNodePort;
  if (!isAbsent(s.ipFamilies)) {
    const families = fastStringList(s.ipFamilies, (f) =>
      (FAMILIES as readonly string[]).includes(f) ? f : null,
    );
    if (families === DECLINED || families.length > 2) return DECLINED;
    out.ipFamilies = families;
  }
  if (ipFamilyPolicy !== undefined) out.ipFamilyPolicy = ipFamilyPolicy;
  const selector = fastStringMap(s.selector);
  if (selector === DECLINED) return DECLINED;
  out.selector = selector;
  const ports: ServiceSpec['ports'] = [];
  const rawPorts = isAbsent(s.ports) ? [] : s.ports;
  if (!Array.isArray(rawPorts)) return DECLINED;
  for (const p of rawPorts) {
    if (!isPlainObject(p)) return DECLINED;
    const name = isAbsent(p.name) ? '' : p.name;
    const protocol = fastOneOf(p.protocol, PROTOCOLS, 'TCP');
    const nodePort = isAbsent(p.nodePort) ? 0 : p.nodePort;
    if (typeof name !== 'string' || protocol === DECLINED || protocol === undefined) return DECLINED;
    if (!isIntegerIn(p.port, 1, 65535) || !isIntegerIn(nodePort, 0, 65535)) return DECLINED;
    const port: ServiceSpec['ports'][number] = { name, protocol, port: p.port, nodePort };
    const targetPort = p.targetPort;
    if (!isAbsent(targetPort)) {
      if (typeof targetPort === 'string' || (typeof targetPort === 'number' && !Number.isNaN(targetPort)))
        port.targetPort = targetPort;
      else return DECLINED;
    }
    ports.push(port);
  }
  out.ports = exactSize(ports);
  return out as ServiceSpec;
}

function fastServiceStatus(value: unknown): ServiceObject['status'] | Declined {
  const status = isAbsent(value) ? {} : value;
  if (!isPlainObject(status)) return DECLINED;
  const lb = isAbsent(status.loadBalancer) ? {} : status.loadBalancer;
  if (!isPlainObject(lb)) return DECLINED;
  const rawIngress = isAbsent(lb.ingress) ? [] : lb.ingress;
  if (!Array.isArray(rawIngress)) return DECLINED;
  const ingress: ServiceObject['status']['loadBalancer']['ingress'] = [];
  for (const item of rawIngress) {
    if (!isPlainObject(item)) return DECLINED;
    const ipMode = fastOneOf(item.ipMode, INGRESS_MODES, 'VIP');
    if (ipMode === DECLINED || ipMode === undefined) return DECLINED;
    // zod's key order: ip, hostname, ipMode.
    const out: (typeof ingress)[number] = {} as (typeof ingress)[number];
    if (!isAbsent(item.ip)) {
      const ip = typeof item.ip === 'string' ? canonicalAddress(item.ip) : null;
      if (ip === null) return DECLINED;
      out.ip = ip;
    }
    if (!isAbsent(item.hostname)) {
      if (typeof item.hostname !== 'string') return DECLINED;
      out.hostname = item.hostname;
    }
    out.ipMode = ipMode;
    ingress.push(out);
  }
  return { loadBalancer: { ingress } };
}

/** serviceSchema's result for a well-formed Service, or DECLINED. */
export function fastParseService(raw: Record<string, unknown>): ServiceObject | Declined {
  const metadata = fastNamespacedMetadata(raw.metadata);
  if (metadata === DECLINED) return DECLINED;
  if (raw.spec === null) return DECLINED; // a problem (see zodParse)
  const spec = fastServiceSpec(raw.spec);
  if (spec === DECLINED) return DECLINED;
  const status = fastServiceStatus(raw.status);
  if (status === DECLINED) return DECLINED;
  return { metadata, spec, status };
}

type SliceEndpoint = EndpointSliceObject['endpoints'][number];

function fastSliceEndpoint(value: unknown): SliceEndpoint | Declined {
  if (!isPlainObject(value)) return DECLINED;
  const addresses = fastStringList(value.addresses);
  if (addresses === DECLINED) return DECLINED;
  const rawConditions = isAbsent(value.conditions) ? {} : value.conditions;
  if (!isPlainObject(rawConditions)) return DECLINED;
  const conditions: SliceEndpoint['conditions'] = {};
  for (const key of ['ready', 'serving', 'terminating'] as const) {
    const v = rawConditions[key];
    if (isAbsent(v)) continue;
    if (typeof v !== 'boolean') return DECLINED;
    conditions[key] = v;
  }
  const out: SliceEndpoint = { addresses, conditions };
  for (const key of ['nodeName', 'zone'] as const) {
    const v = value[key];
    if (isAbsent(v)) continue;
    if (typeof v !== 'string') return DECLINED;
    out[key] = v;
  }
  if (!isAbsent(value.targetRef)) {
    const ref = value.targetRef;
    if (!isPlainObject(ref)) return DECLINED;
    out.targetRef = {};
    if (!isAbsent(ref.name)) {
      if (typeof ref.name !== 'string') return DECLINED;
      out.targetRef.name = ref.name;
    }
  }
  if (!isAbsent(value.hints)) {
    const hints = value.hints;
    if (!isPlainObject(hints)) return DECLINED;
    const forZones = fastHintList(hints.forZones);
    const forNodes = fastHintList(hints.forNodes);
    if (forZones === DECLINED || forNodes === DECLINED) return DECLINED;
    out.hints = { forZones, forNodes };
  }
  return out;
}

/** hints.forZones / hints.forNodes: a list of `{ name }`; absent = []. */
function fastHintList(value: unknown): Array<{ name: string }> | Declined {
  if (isAbsent(value)) return [];
  if (!Array.isArray(value)) return DECLINED;
  const out: Array<{ name: string }> = [];
  for (const item of value) {
    if (!isPlainObject(item) || typeof item.name !== 'string') return DECLINED;
    out.push({ name: item.name });
  }
  return exactSize(out);
}

/** endpointSliceSchema's result for a well-formed EndpointSlice, or DECLINED. */
export function fastParseEndpointSlice(raw: Record<string, unknown>): EndpointSliceObject | Declined {
  const metadata = fastNamespacedMetadata(raw.metadata);
  if (metadata === DECLINED) return DECLINED;
  const addressType = fastOneOf(raw.addressType, ADDRESS_TYPES, undefined);
  if (addressType === DECLINED || addressType === undefined) return DECLINED;
  const rawEndpoints = isAbsent(raw.endpoints) ? [] : raw.endpoints;
  const rawPorts = isAbsent(raw.ports) ? [] : raw.ports;
  if (!Array.isArray(rawEndpoints) || !Array.isArray(rawPorts)) return DECLINED;
  const endpoints: SliceEndpoint[] = [];
  for (const e of rawEndpoints) {
    const endpoint = fastSliceEndpoint(e);
    if (endpoint === DECLINED) return DECLINED;
    endpoints.push(endpoint);
  }
  const ports: EndpointSliceObject['ports'] = [];
  for (const p of rawPorts) {
    if (!isPlainObject(p)) return DECLINED;
    const name = isAbsent(p.name) ? '' : p.name;
    const protocol = fastOneOf(p.protocol, PROTOCOLS, 'TCP');
    if (typeof name !== 'string' || protocol === DECLINED || protocol === undefined) return DECLINED;
    const port: EndpointSliceObject['ports'][number] = { name, protocol };
    if (!isAbsent(p.port)) {
      if (!isIntegerIn(p.port, 0, 65535)) return DECLINED;
      port.port = p.port;
    }
    ports.push(port);
  }
  return { metadata, addressType, endpoints: exactSize(endpoints), ports: exactSize(ports) };
}

// ── Services ───────────────────────────────────────────────────────────────────────────────

export interface ServiceEntry {
  id: Identity;
  svc: ServiceObject;
  info: ServiceInfo;
  /** kube-proxy proxies it: not headless, not ExternalName, has a cluster IP, not another proxy's. */
  proxied: boolean;
}

export function readService(id: Identity, svc: ServiceObject, problems: ProblemList): ServiceEntry | null {
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
        const ip = canonicalAddress(text);
        if (ip === null)
          errors.push([
            field === 'spec.clusterIP' ? field : `${field}[${i}]`,
            notAnIPAddress(text),
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

  errors.push(...specialServiceAddresses(svc, clusterIPs, field));

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
    const badName = p.name === '' ? null : ianaSvcNameProblem(p.name);
    if (badName !== null) errors.push([`spec.ports[${i}].name`, badName]);
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
  if (metadata.creationTimestamp !== undefined) info.creationTimestamp = metadata.creationTimestamp;

  // kube-proxy's ShouldSkipService, plus its informers' label filter.
  const proxied =
    spec.type !== 'ExternalName' &&
    !headless &&
    clusterIPs.length > 0 &&
    !(LABEL_SERVICE_PROXY_NAME in metadata.labels);
  return { id, svc, info, proxied };
}

/**
 * The addresses of a Service that no Service may use (address-rules.ts): loopback, unspecified,
 * link-local, multicast, broadcast — in its cluster IPs, external IPs, requested and status
 * LoadBalancer addresses.
 */
function specialServiceAddresses(
  svc: ServiceObject,
  clusterIPs: readonly string[],
  clusterField: string,
): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const check = (ip: string, field: string): void => {
    const problem = specialAddressProblem(ip);
    if (problem !== null) out.push([field, problem]);
  };
  clusterIPs.forEach((ip, i) => check(ip, clusterField === 'spec.clusterIP' ? clusterField : `${clusterField}[${i}]`));
  svc.spec.externalIPs.forEach((ip, i) => check(ip, `spec.externalIPs[${i}]`));
  if (svc.spec.loadBalancerIP !== undefined && svc.spec.loadBalancerIP !== '')
    check(svc.spec.loadBalancerIP, 'spec.loadBalancerIP');
  svc.status.loadBalancer.ingress.forEach((ing, i) => {
    if (ing.ip !== undefined) check(ing.ip, `status.loadBalancer.ingress[${i}].ip`);
  });
  return out;
}

export function servicePortsOf(
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

export interface SliceEntry {
  name: string;
  slice: EndpointSliceObject;
  /** addresses[0] of each endpoint, canonical; null when the endpoint has no address (kube-proxy skips it). */
  firstAddresses: Array<string | null>;
}

export function readEndpointSlice(
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
  const badNames = sliceNameProblems(serviceName, slice);
  if (badNames.length > 0) {
    for (const [f, m] of badNames) problems.add(id, f, m);
    return null;
  }
  if (slice.addressType === 'FQDN') return null; // kube-proxy proxies IP slices only
  const family = slice.addressType;
  const errors: Array<[string, string]> = [];
  const firstAddresses = slice.endpoints.map((ep, i) => {
    let first: string | null = null;
    ep.addresses.forEach((text, j) => {
      const ip = canonicalAddress(text);
      if (ip === null || familyOfCanonical(ip) !== family) {
        errors.push([
          `endpoints[${i}].addresses[${j}]`,
          notAnIPAddress(text, family),
        ]);
        return;
      }
      const special = specialAddressProblem(ip);
      if (special !== null) errors.push([`endpoints[${i}].addresses[${j}]`, special]);
      else if (j === 0) first = ip;
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

/**
 * The names of a slice Kubernetes validates and portway joins by or prints: the Service it names
 * (a label value that must also be a Service name to join anything), its port names (DNS-1123
 * labels) and its endpoints' node names (DNS-1123 subdomains).
 */
function sliceNameProblems(serviceName: string, slice: EndpointSliceObject): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const serviceProblem = labelValueProblem(serviceName) ?? dns1035LabelProblem(serviceName);
  if (serviceProblem !== null)
    out.push([formatFieldPath(['metadata', 'labels', LABEL_SERVICE_NAME]), serviceProblem]);
  slice.ports.forEach((p, i) => {
    const problem = p.name === '' ? null : dns1123LabelProblem(p.name);
    if (problem !== null) out.push([`ports[${i}].name`, problem]);
  });
  slice.endpoints.forEach((ep, i) => {
    const problem = ep.nodeName === undefined ? null : dns1123SubdomainProblem(ep.nodeName);
    if (problem !== null) out.push([`endpoints[${i}].nodeName`, problem]);
  });
  return out;
}

/** Numeric value of a canonical address: a number for IPv4 (cheaper than a bigint), a bigint for IPv6. */
function addressSortKey(ip: string): number | bigint {
  if (ip.includes(':')) return ipToBigInt(ip);
  let value = 0;
  let octet = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 46) {
      value = value * 256 + octet;
      octet = 0;
    } else octet = octet * 10 + (c - 48);
  }
  return value * 256 + octet;
}

/** Sort by (family, numeric IP, port); keys are computed once per endpoint, not per comparison. */
function sortEndpoints(endpoints: Iterable<Endpoint>): Endpoint[] {
  return [...endpoints]
    .map((e) => ({ e, family: e.family === 'IPv4' ? 0 : 1, ip: addressSortKey(e.ip) }))
    .sort((a, b) => a.family - b.family || (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0) || a.e.port - b.e.port)
    .map(({ e }) => e);
}

/** The names of a hints list as a sorted set; undefined when there are none. */
function hintNames(hints: ReadonlyArray<{ name: string }> | undefined): string[] | undefined {
  if (hints === undefined || hints.length === 0) return undefined;
  const names = [...new Set(hints.map((h) => h.name))];
  return names.length === 1 ? names : names.sort(compareText);
}

/**
 * Endpoints of one service port from its slices, as kube-proxy's EndpointSliceCache merges them:
 * slice ports join by (name, protocol); a port of 0/unset and an endpoint without addresses are
 * ignored; only addresses[0] is used; an ip:port seen in several slices is kept once (the first by
 * slice name).
 */
export function endpointsFromSlices(slices: SliceEntry[], portName: string, protocol: Protocol): Endpoint[] {
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
        // kube-proxy keeps no hint set when the list is empty ("no hints", not "hinted for nothing").
        const zoneHints = hintNames(ep.hints?.forZones);
        if (zoneHints !== undefined) endpoint.zoneHints = zoneHints;
        const nodeHints = hintNames(ep.hints?.forNodes);
        if (nodeHints !== undefined) endpoint.nodeHints = nodeHints;
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
export function endpointsFromLegacy(
  endpoints: EndpointsObject,
  portName: string,
  protocol: Protocol,
): Endpoint[] {
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

export function readNode(id: Identity, node: NodeObject, problems: ProblemList): NodeInfo | null {
  const addresses: string[] = [];
  let bad = false;
  node.status.addresses.forEach((a, i) => {
    if (a.type !== 'InternalIP' && a.type !== 'ExternalIP') return; // Hostname, InternalDNS, …
    const ip = canonicalIP(a.address);
    if (ip === null) {
      problems.add(
        id,
        `status.addresses[${i}].address`,
        notAnIPAddress(a.address),
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
  const podCIDRs = readPodCIDRs(id, node, problems);
  if (podCIDRs.length > 0) info.podCIDRs = podCIDRs;
  // MetalLB's rule: only an explicit "True" on the first NetworkUnavailable condition counts.
  const network = node.status.conditions.find((c) => c.type === 'NetworkUnavailable');
  if (network?.status === 'True') info.networkUnavailable = true;
  return info;
}

/**
 * spec.podCIDRs, falling back to the legacy single spec.podCIDR (the API keeps podCIDRs[0] equal to
 * it). A malformed entry is reported and skipped: it only narrows the NodeCIDR local detector, while
 * dropping the whole Node would also take it out of layer2 election.
 */
function readPodCIDRs(id: Identity, node: NodeObject, problems: ProblemList): string[] {
  const fromList = node.spec.podCIDRs.length > 0;
  const written = fromList ? node.spec.podCIDRs : node.spec.podCIDR === '' ? [] : [node.spec.podCIDR];
  const out: string[] = [];
  written.forEach((text, i) => {
    const parsed = text.includes('/') ? parseCIDR(text) : null;
    if (parsed === null) {
      problems.add(
        id,
        fromList ? `spec.podCIDRs[${i}]` : 'spec.podCIDR',
        `not a valid CIDR (got ${showValue(text)})`,
      );
    } else if (!out.includes(parsed.text)) out.push(parsed.text);
  });
  return out;
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

export function readPool(pool: IPAddressPoolObject): AddressPool {
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
export function withoutOverlaps(pools: Parsed<AddressPool>[], problems: ProblemList): AddressPool[] {
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
    appendAll(taken, mine);
    accepted.push(pool);
  }
  return accepted;
}

export function readL2Advertisement(ad: L2AdvertisementObject): L2Advertisement {
  return {
    name: ad.metadata.name,
    ipAddressPools: [...ad.spec.ipAddressPools],
    ipAddressPoolSelectors: ad.spec.ipAddressPoolSelectors.map(selector),
    nodeSelectors: ad.spec.nodeSelectors.map(selector),
    interfaces: [...ad.spec.interfaces],
  };
}

// ── the whole picture ──────────────────────────────────────────────────────────────────────

export const byName = <T extends { name: string }>(a: T, b: T): number => compareText(a.name, b.name);
export const byNamespacedName = <T extends { namespace: string; name: string }>(a: T, b: T): number =>
  compareText(a.namespace, b.namespace) || compareText(a.name, b.name);

/**
 * Normalise raw objects into ClusterState. Pure and deterministic; objects are taken in (source,
 * document) order, so the first of two duplicates in file order wins whatever the array order.
 */
export function buildClusterState(objects: SourcedObject[]): BuildResult {
  const sources = new Map<string, string>();
  const result = buildWithConflicts(objects, sources);
  return withoutPortConflicts(result, (service) => sources.get(service) ?? '');
}

/** buildClusterState before conflicting service ports are resolved; fills `sources` (Service → file). */
function buildWithConflicts(objects: SourcedObject[], sources: Map<string, string>): BuildResult {
  const problems = new ProblemList();
  const parsed = parseObjects(objects, problems);

  const services = parsed.Service.map(({ id, value }) => readService(id, value, problems)).filter(
    (s): s is ServiceEntry => s !== null,
  );
  for (const s of services) sources.set(`${s.info.namespace}/${s.info.name}`, s.id.source);

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
    appendAll(
      servicePorts,
      servicePortsOf(entry, (name, protocol) =>
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
    ingressClasses: parsed.IngressClass.map(({ value }) => readIngressClass(value)).sort(byName),
    addressPools: withoutOverlaps(pools, problems),
    l2Advertisements: parsed.L2Advertisement.map(({ value }) => readL2Advertisement(value)).sort(byName),
    namespaceLabels,
  };
  return { state, problems: problems.items };
}
