// An incremental buildClusterState for cluster mode: objects arrive one change at a time (50/s in a
// busy cluster) and each change must become a new ClusterState in milliseconds, where the full
// normalisation of 10k Services costs hundreds. The builder keeps every object's parsed result and
// every Service's joined ServicePorts, and on build() recomputes only the Services whose Service,
// EndpointSlices (joined by the kubernetes.io/service-name label) or Endpoints changed.
//
// The output is identical to buildClusterState over the same objects taken in the builder's order
// (compareSourcedObjects) — problems included, in the same order — and a property test holds it to
// that. Unchanged ServicePort and ServiceInfo objects are the same objects as in the previous
// build, so a renderer can skip unchanged services by identity; lists that did not change are the
// same arrays. Returned states are never mutated afterwards (every change copies first).
//
// With keepLastGood (what the agent's sources use), an object replaced by a version that fails
// validation keeps contributing its last good version, and the new version's problems are reported
// with `kept: true`: an edit that breaks a Service (a `port: 0`) then does what a YAML syntax error in
// its file does — the rules stay until it is fixed or deleted — instead of taking the Service's rules
// down. Only then does the output differ from buildClusterState (which has no history).
import {
  emptyClusterState,
  type AddressPool,
  type ClusterState,
  type IngressInfo,
  type IngressClassInfo,
  type InputProblem,
  type L2Advertisement,
  type NodeInfo,
  type ServiceInfo,
  type ServicePort,
} from './cluster-state.js';
import type { EndpointsObject, KnownKind, NodeObject, ServiceObject } from './k8s-schemas.js';
import { KIND_VERSIONS } from './k8s-schemas.js';
import type { SourcedObject } from './load.js';
import {
  addDuplicateProblem,
  byName,
  byNamespacedName,
  compareText,
  endpointsFromLegacy,
  endpointsFromSlices,
  parseKnownObject,
  ProblemList,
  readEndpointSlice,
  readIngress,
  readIngressClass,
  readL2Advertisement,
  readNode,
  readPool,
  readService,
  servicePortsOf,
  triageObject,
  withoutOverlaps,
  type BuildResult,
  type Identity,
  type Parsed,
  type ParseOutcome,
  type ServiceEntry,
  type SliceEntry,
  type Triage,
} from './normalise.js';
import { withoutPortConflicts } from './port-conflicts.js';
import { sameData } from './same-data.js';

// ── object identity and order ─────────────────────────────────────────────────────────────

/** metadata.namespace / metadata.name of a raw object as written ("" when missing or not a string). */
export function metadataField(object: unknown, field: 'namespace' | 'name'): string {
  if (typeof object !== 'object' || object === null) return '';
  const metadata = (object as { metadata?: unknown }).metadata;
  if (typeof metadata !== 'object' || metadata === null) return '';
  const value = (metadata as Record<string, unknown>)[field];
  return typeof value === 'string' ? value : '';
}

/** The raw object's kind ("" when missing or not a string). */
export function kindOf(object: unknown): string {
  if (typeof object !== 'object' || object === null) return '';
  const kind = (object as { kind?: unknown }).kind;
  return typeof kind === 'string' ? kind : '';
}

/**
 * The key the builder stores an object under: its kind, metadata.namespace and metadata.name as
 * written (a missing or non-string field counts as ""). Like an informer's store, the builder holds
 * one object per key: upserting another object with the same key replaces it.
 */
export function objectStoreKey(kind: string, namespace: string, name: string): string {
  return `${kind}\u0000${namespace}\u0000${name}`;
}

export function sourcedObjectKey(object: unknown): string {
  return objectStoreKey(kindOf(object), metadataField(object, 'namespace'), metadataField(object, 'name'));
}

const KIND_RANK = new Map<string, number>(Object.keys(KIND_VERSIONS).map((k, i) => [k, i]));
const UNKNOWN_KIND_RANK = KIND_RANK.size;

interface OrderKey {
  source: string;
  document: number;
  kindRank: number;
  kind: string;
  namespace: string;
  name: string;
}

function orderKeyOf(sourced: SourcedObject): OrderKey {
  const kind = kindOf(sourced.object);
  return {
    source: sourced.source,
    document: sourced.document ?? 0,
    kindRank: KIND_RANK.get(kind) ?? UNKNOWN_KIND_RANK,
    kind,
    namespace: metadataField(sourced.object, 'namespace'),
    name: metadataField(sourced.object, 'name'),
  };
}

function compareOrderKeys(a: OrderKey, b: OrderKey): number {
  return (
    compareText(a.source, b.source) ||
    a.document - b.document ||
    a.kindRank - b.kindRank ||
    compareText(a.kind, b.kind) ||
    compareText(a.namespace, b.namespace) ||
    compareText(a.name, b.name)
  );
}

/**
 * The builder's order of objects: (source, document) as buildClusterState takes them, then kind
 * (Services first, in the order of KIND_VERSIONS), namespace and name in code-point order. It decides
 * which of two duplicates wins and the order of problems.
 */
export function compareSourcedObjects(a: SourcedObject, b: SourcedObject): number {
  return compareOrderKeys(orderKeyOf(a), orderKeyOf(b));
}

// ── per-object and per-identity records ────────────────────────────────────────────────────

interface Entry {
  sourced: SourcedObject;
  order: OrderKey;
  triage: Triage;
  /** The group this entry belongs to (known kinds only). */
  groupKey: string | null;
  /** Schema result, computed when the entry first wins its group. */
  parsed?: ParseOutcome;
  /** Problems of the parse stage: rejected, duplicate or schema. */
  problems: InputProblem[];
  /** keepLastGood: the value the previous version under this store key contributed while valid. */
  lastGoodValue?: unknown;
  /** keepLastGood: the (schema-parsed) value this entry contributes while it reads without error. */
  goodValue?: unknown;
}

/** The same problems, marked as reported while the object's last good version stays in effect. */
function markKept(problems: InputProblem[]): InputProblem[] {
  return problems.map((p) => ({ ...p, kept: true }));
}

const compareEntries = (a: Entry, b: Entry): number => compareOrderKeys(a.order, b.order);

/** A record that may carry problems of the read stage, ordered by the entry it came from. */
interface Reported {
  entry: Entry;
  problems: InputProblem[];
}

interface ServiceRecord extends Reported {
  serviceKey: string;
  service: ServiceEntry | null;
}

interface SliceRecord extends Reported {
  serviceKey: string | null;
  slice: SliceEntry | null;
}

interface NodeRecord extends Reported {
  node: NodeInfo | null;
}

/** What one Service currently contributes to the state. */
interface ServiceOutput {
  info: ServiceInfo | null;
  ports: ServicePort[];
  owner: Entry | null;
}

const NO_OUTPUT: ServiceOutput = { info: null, ports: [], owner: null };

export interface ClusterStateBuilderOptions {
  /**
   * Above this many changed Services a build re-sorts the whole lists instead of splicing each
   * change into copies of them (a splice moves the tail of a 10k list: cheap one by one, not by thousands).
   */
  bulkThreshold?: number;
  /**
   * An object updated to a version that fails validation keeps its last good version in effect (its
   * problems are reported with `kept: true`). Off by default: the output then equals buildClusterState.
   */
  keepLastGood?: boolean;
}

function comparePortKeys(a: ServicePort, b: ServicePort): number {
  return compareText(a.id, b.id) || compareText(a.protocol, b.protocol);
}

/** First index whose element is not before `item` by `compare`. */
function lowerBound<T>(list: readonly T[], item: T, compare: (x: T, y: T) => number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compare(list[mid]!, item) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class ClusterStateBuilder {
  private readonly entries = new Map<string, Entry>();
  /** Entries of known kinds by identity key (see identityKey), in the builder's order: [0] wins. */
  private readonly groups = new Map<string, Entry[]>();
  private readonly touchedGroups = new Set<string>();
  /** Winning, schema-valid entry per group, with its kind. */
  private readonly effective = new Map<string, { entry: Entry; kind: KnownKind; value: unknown }>();

  private readonly parseProblems = new Set<Entry>();

  private readonly serviceRecords = new Map<string, ServiceRecord>();
  private readonly serviceByKey = new Map<string, ServiceRecord>();
  private readonly sliceRecords = new Map<string, SliceRecord>();
  private readonly slicesByService = new Map<string, Map<string, SliceEntry>>();
  private readonly legacyRecords = new Map<string, { serviceKey: string; value: EndpointsObject }>();
  private readonly legacyByService = new Map<string, EndpointsObject>();
  private readonly nodeRecords = new Map<string, NodeRecord>();
  private readonly namespaces = new Map<string, { name: string; labels: Record<string, string> }>();
  private readonly ingresses = new Map<string, IngressInfo>();
  private readonly ingressClasses = new Map<string, IngressClassInfo>();
  private readonly pools = new Map<string, Parsed<AddressPool>>();
  private readonly l2Advertisements = new Map<string, L2Advertisement>();
  private readonly readProblems = {
    Service: new Set<Reported>(),
    EndpointSlice: new Set<Reported>(),
    Node: new Set<Reported>(),
  };

  private readonly dirtyServices = new Set<string>();
  private readonly dirtyKinds = new Set<KnownKind>();
  private problemsDirty = true;

  private readonly outputs = new Map<string, ServiceOutput>();
  private readonly portOwner = new WeakMap<ServicePort, Entry>();
  private last: BuildResult = { state: emptyClusterState(), problems: [] };
  private lastUnresolved: BuildResult | null = null;
  private lastResolved: BuildResult = this.last;
  private poolProblems: InputProblem[] = [];
  private built = false;
  private readonly bulkThreshold: number;
  private readonly keepLastGood: boolean;

  constructor(options: ClusterStateBuilderOptions = {}) {
    this.bulkThreshold = options.bulkThreshold ?? 64;
    this.keepLastGood = options.keepLastGood ?? false;
  }

  /** Add an object or replace the one stored under the same (kind, namespace, name). */
  upsert(sourced: SourcedObject): void {
    const storeKey = sourcedObjectKey(sourced.object);
    const old = this.entries.get(storeKey);
    if (
      old &&
      old.sourced.object === sourced.object &&
      old.sourced.source === sourced.source &&
      old.sourced.document === sourced.document
    )
      return;
    const triage = triageObject(sourced);
    const entry: Entry = {
      sourced,
      order: orderKeyOf(sourced),
      triage,
      groupKey: triage.type === 'known' ? (triage.identityKey ?? `\u0000unnamed\u0000${storeKey}`) : null,
      problems: triage.type === 'rejected' ? triage.problems : [],
    };
    if (old && this.keepLastGood && entry.groupKey !== null && entry.groupKey === old.groupKey) {
      // Only the value is carried over (never the old entry): versions do not chain up in memory.
      const lastGood = old.goodValue ?? old.lastGoodValue;
      if (lastGood !== undefined) entry.lastGoodValue = lastGood;
    }
    if (old) this.detach(old);
    this.entries.set(storeKey, entry);
    this.attach(entry);
  }

  /** Forget the object stored under (kind, namespace, name); false when there is none. */
  remove(kind: string, namespace: string, name: string): boolean {
    const storeKey = objectStoreKey(kind, namespace, name);
    const old = this.entries.get(storeKey);
    if (!old) return false;
    this.entries.delete(storeKey);
    this.detach(old);
    return true;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The stored objects in the builder's order (buildClusterState of these equals build()). */
  objects(): SourcedObject[] {
    return [...this.entries.values()].sort(compareEntries).map((e) => e.sourced);
  }

  private attach(entry: Entry): void {
    if (entry.problems.length > 0) {
      this.parseProblems.add(entry);
      this.problemsDirty = true;
    }
    if (entry.groupKey === null) return;
    const group = this.groups.get(entry.groupKey);
    if (!group) this.groups.set(entry.groupKey, [entry]);
    else group.splice(lowerBound(group, entry, compareEntries), 0, entry);
    this.touchedGroups.add(entry.groupKey);
  }

  private detach(entry: Entry): void {
    if (this.parseProblems.delete(entry)) this.problemsDirty = true;
    if (entry.groupKey === null) return;
    const group = this.groups.get(entry.groupKey);
    const at = group ? group.indexOf(entry) : -1;
    if (group && at >= 0) {
      group.splice(at, 1);
      if (group.length === 0) this.groups.delete(entry.groupKey);
    }
    this.touchedGroups.add(entry.groupKey);
  }

  /** Decide the winner of a group, the duplicates' and the schema's problems, and the effective value. */
  private resolveGroup(groupKey: string): void {
    const group = this.groups.get(groupKey) ?? [];
    const winner = group[0];
    for (let i = 0; i < group.length; i++) {
      const member = group[i]!;
      if (member.triage.type !== 'known') continue;
      const problems = new ProblemList();
      if (i > 0) addDuplicateProblem(problems, member.triage.id, winner!.sourced);
      else {
        member.parsed ??= parseKnownObject(member.triage.kind, member.triage.raw);
        if (!member.parsed.success)
          for (const issue of member.parsed.issues)
            problems.add(member.triage.id, issue.field, issue.message);
      }
      if (problems.items.length > 0 || member.problems.length > 0) this.problemsDirty = true;
      member.problems =
        i === 0 && member.lastGoodValue !== undefined && member.parsed?.success === false
          ? markKept(problems.items) // the last good version stays in effect (below)
          : problems.items;
      if (member.problems.length > 0) this.parseProblems.add(member);
      else this.parseProblems.delete(member);
    }
    const before = this.effective.get(groupKey);
    let after: { entry: Entry; kind: KnownKind; value: unknown } | undefined;
    if (winner && winner.triage.type === 'known') {
      if (winner.parsed?.success) after = { entry: winner, kind: winner.triage.kind, value: winner.parsed.data };
      else if (winner.lastGoodValue !== undefined)
        after = { entry: winner, kind: winner.triage.kind, value: winner.lastGoodValue };
    }
    if (before?.entry === after?.entry) return;
    if (after) this.effective.set(groupKey, after);
    else this.effective.delete(groupKey);
    if (before) this.withdraw(groupKey, before.kind);
    if (after) this.contribute(groupKey, after.kind, after.entry, after.value);
  }

  /** Take back what a group's previous winner contributed. */
  private withdraw(groupKey: string, kind: KnownKind): void {
    switch (kind) {
      case 'Service': {
        const record = this.serviceRecords.get(groupKey);
        if (!record) return;
        this.serviceRecords.delete(groupKey);
        if (this.serviceByKey.get(record.serviceKey) === record) this.serviceByKey.delete(record.serviceKey);
        this.dirtyServices.add(record.serviceKey);
        this.dropReported('Service', record);
        return;
      }
      case 'EndpointSlice': {
        const record = this.sliceRecords.get(groupKey);
        if (!record) return;
        this.sliceRecords.delete(groupKey);
        if (record.serviceKey !== null) {
          const slices = this.slicesByService.get(record.serviceKey);
          slices?.delete(groupKey);
          if (slices?.size === 0) this.slicesByService.delete(record.serviceKey);
          this.dirtyServices.add(record.serviceKey);
        }
        this.dropReported('EndpointSlice', record);
        return;
      }
      case 'Endpoints': {
        const record = this.legacyRecords.get(groupKey);
        if (!record) return;
        this.legacyRecords.delete(groupKey);
        if (this.legacyByService.get(record.serviceKey) === record.value)
          this.legacyByService.delete(record.serviceKey);
        this.dirtyServices.add(record.serviceKey);
        return;
      }
      case 'Node': {
        const record = this.nodeRecords.get(groupKey);
        if (!record) return;
        this.nodeRecords.delete(groupKey);
        this.dropReported('Node', record);
        break;
      }
      case 'Namespace':
        this.namespaces.delete(groupKey);
        break;
      case 'Ingress':
        this.ingresses.delete(groupKey);
        break;
      case 'IngressClass':
        this.ingressClasses.delete(groupKey);
        break;
      case 'IPAddressPool':
        this.pools.delete(groupKey);
        break;
      case 'L2Advertisement':
        this.l2Advertisements.delete(groupKey);
        break;
    }
    this.dirtyKinds.add(kind);
  }

  private contribute(groupKey: string, kind: KnownKind, entry: Entry, value: unknown): void {
    if (entry.triage.type !== 'known') return;
    const id: Identity = entry.triage.id;
    let problems = new ProblemList();
    /**
     * Read `value`; when that fails with problems and a last good version exists, read that instead
     * (its problems are then reported as kept). Records the value in effect as the entry's good one.
     */
    const readOrKeep = <T>(read: (v: unknown, p: ProblemList) => T | null): T | null => {
      const result = read(value, problems);
      if (result === null && problems.items.length > 0 && entry.lastGoodValue !== undefined && value !== entry.lastGoodValue) {
        const kept = read(entry.lastGoodValue, new ProblemList());
        if (kept !== null) {
          const reported = new ProblemList();
          reported.items.push(...markKept(problems.items));
          problems = reported;
          value = entry.lastGoodValue;
          entry.goodValue = value;
          return kept;
        }
      }
      if (result !== null || problems.items.length === 0) this.noteGood(entry, value);
      return result;
    };
    switch (kind) {
      case 'Service': {
        const service = readOrKeep((v, p) => readService(id, v as ServiceObject, p));
        const svc = value as ServiceObject;
        const record: ServiceRecord = {
          entry,
          problems: problems.items,
          serviceKey: `${svc.metadata.namespace}/${svc.metadata.name}`,
          service,
        };
        this.serviceRecords.set(groupKey, record);
        this.serviceByKey.set(record.serviceKey, record);
        this.dirtyServices.add(record.serviceKey);
        this.addReported('Service', record);
        return;
      }
      case 'EndpointSlice': {
        const read = readOrKeep((v, p) => readEndpointSlice(id, v as Parameters<typeof readEndpointSlice>[1], p));
        const record: SliceRecord = {
          entry,
          problems: problems.items,
          serviceKey: read?.service ?? null,
          slice: read?.entry ?? null,
        };
        this.sliceRecords.set(groupKey, record);
        if (read) {
          let slices = this.slicesByService.get(read.service);
          if (!slices) this.slicesByService.set(read.service, (slices = new Map()));
          slices.set(groupKey, read.entry);
          this.dirtyServices.add(read.service);
        }
        this.addReported('EndpointSlice', record);
        return;
      }
      case 'Endpoints': {
        this.noteGood(entry, value);
        const endpoints = value as EndpointsObject;
        const serviceKey = `${endpoints.metadata.namespace}/${endpoints.metadata.name}`;
        this.legacyRecords.set(groupKey, { serviceKey, value: endpoints });
        this.legacyByService.set(serviceKey, endpoints);
        this.dirtyServices.add(serviceKey);
        return;
      }
      case 'Node': {
        const node = readOrKeep((v, p) => readNode(id, v as NodeObject, p));
        const record: NodeRecord = { entry, problems: problems.items, node };
        this.nodeRecords.set(groupKey, record);
        this.addReported('Node', record);
        break;
      }
      case 'Namespace': {
        this.noteGood(entry, value);
        const ns = value as { metadata: { name: string; labels: Record<string, string> } };
        this.namespaces.set(groupKey, { name: ns.metadata.name, labels: ns.metadata.labels });
        break;
      }
      case 'Ingress':
        this.noteGood(entry, value);
        this.ingresses.set(groupKey, readIngress(value as Parameters<typeof readIngress>[0]));
        break;
      case 'IngressClass':
        this.ingressClasses.set(groupKey, readIngressClass(value as Parameters<typeof readIngressClass>[0]));
        break;
      case 'IPAddressPool':
        this.noteGood(entry, value);
        this.pools.set(groupKey, { id, value: readPool(value as Parameters<typeof readPool>[0]) });
        break;
      case 'L2Advertisement':
        this.noteGood(entry, value);
        this.l2Advertisements.set(
          groupKey,
          readL2Advertisement(value as Parameters<typeof readL2Advertisement>[0]),
        );
        break;
    }
    this.dirtyKinds.add(kind);
  }

  /** keepLastGood: `value` is what this entry contributes while valid (a later bad version falls back to it). */
  private noteGood(entry: Entry, value: unknown): void {
    if (!this.keepLastGood) return;
    entry.goodValue = value;
    if (value !== entry.lastGoodValue) delete entry.lastGoodValue; // its own version is good: no history needed
  }

  private addReported(kind: keyof ClusterStateBuilder['readProblems'], record: Reported): void {
    if (record.problems.length === 0) return;
    this.readProblems[kind].add(record);
    this.problemsDirty = true;
  }

  private dropReported(kind: keyof ClusterStateBuilder['readProblems'], record: Reported): void {
    if (this.readProblems[kind].delete(record)) this.problemsDirty = true;
  }

  /** The state of the objects now stored; cheap when little changed since the last build. */
  build(): BuildResult {
    const unresolved = this.buildWithConflicts();
    if (unresolved !== this.lastUnresolved) {
      this.lastUnresolved = unresolved;
      // As buildClusterState: conflicting service ports left out and reported (port-conflicts.ts).
      this.lastResolved = withoutPortConflicts(
        unresolved,
        (service) => this.serviceByKey.get(service)?.entry.sourced.source ?? '',
      );
    }
    return this.lastResolved;
  }

  /** build() before conflicting service ports are resolved: the state the next build starts from. */
  private buildWithConflicts(): BuildResult {
    for (const groupKey of this.touchedGroups) this.resolveGroup(groupKey);
    this.touchedGroups.clear();
    const previous = this.last.state;
    const state: ClusterState = { ...previous };
    let changed = !this.built;

    if (this.dirtyServices.size > 0) {
      this.rebuildServices(state);
      changed = true;
    }
    if (this.dirtyKinds.has('Node')) {
      state.nodes = [...this.nodeRecords.values()]
        .map((r) => r.node)
        .filter((n): n is NodeInfo => n !== null)
        .sort(byName);
    }
    if (this.dirtyKinds.has('Ingress')) state.ingresses = [...this.ingresses.values()].sort(byNamespacedName);
    if (this.dirtyKinds.has('IngressClass')) state.ingressClasses = [...this.ingressClasses.values()].sort(byName);
    if (this.dirtyKinds.has('IPAddressPool')) {
      const problems = new ProblemList();
      const pools = [...this.pools.values()].sort((a, b) => byName(a.value, b.value));
      state.addressPools = withoutOverlaps(pools, problems);
      this.poolProblems = problems.items;
      this.problemsDirty = true;
    }
    if (this.dirtyKinds.has('L2Advertisement'))
      state.l2Advertisements = [...this.l2Advertisements.values()].sort(byName);
    if (this.dirtyKinds.has('Namespace')) {
      const namespaceLabels: Record<string, Record<string, string>> = {};
      for (const ns of [...this.namespaces.values()].sort(byName)) namespaceLabels[ns.name] = ns.labels;
      state.namespaceLabels = namespaceLabels;
    }
    if (this.dirtyKinds.size > 0) changed = true;
    this.dirtyKinds.clear();

    let problems = this.last.problems;
    if (this.problemsDirty) {
      problems = [
        ...[...this.parseProblems].sort(compareEntries).flatMap((e) => e.problems),
        ...this.problemsOf(this.readProblems.Service),
        ...this.problemsOf(this.readProblems.EndpointSlice),
        ...this.problemsOf(this.readProblems.Node),
        ...this.poolProblems,
      ];
      this.problemsDirty = false;
      changed = true;
    }
    this.built = true;
    if (changed) this.last = { state, problems };
    return this.last;
  }

  private problemsOf(records: Set<Reported>): InputProblem[] {
    if (records.size === 0) return [];
    return [...records].sort((a, b) => compareEntries(a.entry, b.entry)).flatMap((r) => r.problems);
  }

  /** Recompute the dirty Services' info and ports, and fold them into sorted copies of the lists. */
  private rebuildServices(state: ClusterState): void {
    const bulk = this.dirtyServices.size > this.bulkThreshold;
    // Copy on first write: a list handed out in an earlier state is never changed.
    let services: ServiceInfo[] | null = null;
    let ports: ServicePort[] | null = null;
    for (const serviceKey of this.dirtyServices) {
      const before = this.outputs.get(serviceKey) ?? NO_OUTPUT;
      const after = this.computeOutput(serviceKey, before);
      if (after === before) continue;
      if (after.info === null && after.ports.length === 0) this.outputs.delete(serviceKey);
      else this.outputs.set(serviceKey, after);
      if (bulk) continue;
      if (after.info !== before.info) {
        services ??= state.services.slice();
        if (before.info) services.splice(lowerBound(services, before.info, byNamespacedName), 1);
        if (after.info) services.splice(lowerBound(services, after.info, byNamespacedName), 0, after.info);
      }
      const samePorts =
        after.owner === before.owner &&
        after.ports.length === before.ports.length &&
        after.ports.every((p, i) => p === before.ports[i]);
      if (!samePorts) {
        ports ??= state.servicePorts.slice();
        for (const p of before.ports) this.removePort(ports, p);
        for (const p of after.ports) this.insertPort(ports, p, after.owner!);
      }
    }
    this.dirtyServices.clear();
    if (bulk) this.sortAllServices(state);
    else {
      if (services) state.services = services;
      if (ports) state.servicePorts = ports;
    }
  }

  /** Both lists from every Service's output, sorted afresh (the first build, or many changes at once). */
  private sortAllServices(state: ClusterState): void {
    const services: ServiceInfo[] = [];
    const owned: Array<{ port: ServicePort; owner: Entry }> = [];
    for (const output of this.outputs.values()) {
      if (output.info) services.push(output.info);
      for (const port of output.ports) {
        owned.push({ port, owner: output.owner! });
        this.portOwner.set(port, output.owner!);
      }
    }
    state.services = services.sort(byNamespacedName);
    // Ties in (id, protocol) — possible only between oddly named Services — keep the Services' order.
    owned.sort((a, b) => comparePortKeys(a.port, b.port) || compareEntries(a.owner, b.owner));
    state.servicePorts = owned.map((o) => o.port);
  }

  private removePort(ports: ServicePort[], port: ServicePort): void {
    for (let i = lowerBound(ports, port, comparePortKeys); i < ports.length; i++) {
      if (ports[i] === port) {
        ports.splice(i, 1);
        return;
      }
      if (comparePortKeys(ports[i]!, port) !== 0) break;
    }
    throw new Error(
      `ClusterStateBuilder: service port ${port.id}/${port.protocol} missing from the sorted list`,
    );
  }

  private insertPort(ports: ServicePort[], port: ServicePort, owner: Entry): void {
    let i = lowerBound(ports, port, comparePortKeys);
    while (
      i < ports.length &&
      comparePortKeys(ports[i]!, port) === 0 &&
      compareEntries(this.portOwner.get(ports[i]!)!, owner) < 0
    )
      i++;
    ports.splice(i, 0, port);
    this.portOwner.set(port, owner);
  }

  /** One Service's info and ports from its records; unchanged pieces are the previous objects. */
  private computeOutput(serviceKey: string, before: ServiceOutput): ServiceOutput {
    const record = this.serviceByKey.get(serviceKey);
    const entry = record?.service ?? null;
    if (!record || !entry) return before.info === null && before.ports.length === 0 ? before : NO_OUTPUT;
    const sliceMap = this.slicesByService.get(serviceKey);
    const slices = sliceMap ? [...sliceMap.values()].sort(byName) : undefined;
    const legacy = this.legacyByService.get(serviceKey);
    const fresh = servicePortsOf(entry, (name, protocol) =>
      slices
        ? endpointsFromSlices(slices, name, protocol)
        : legacy
          ? endpointsFromLegacy(legacy, name, protocol)
          : [],
    );
    const ports = fresh.map((port) => {
      const old = before.ports.find((p) => comparePortKeys(p, port) === 0);
      return old && sameData(old, port) ? old : port;
    });
    const info = before.info && sameData(before.info, entry.info) ? before.info : entry.info;
    const owner = record.entry;
    if (
      info === before.info &&
      owner === before.owner &&
      ports.length === before.ports.length &&
      ports.every((p, i) => p === before.ports[i])
    )
      return before;
    return { info, ports, owner };
  }
}
