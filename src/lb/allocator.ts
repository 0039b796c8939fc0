// The LoadBalancer address allocator, with MetalLB's semantics (internal/allocator). Pure and
// deterministic: a full recompute from (services, pools, namespace labels, previous result) that every
// node reaches identically, so manifest mode needs no coordination.
//
// Order of processing: Services that already hold addresses (previous result, else status) first, so
// they keep them across restarts and pool edits while still valid; then the others; each group by
// namespace/name. Among holders, those whose sharing terms are unchanged since the previous result come
// before those known only from status and those whose terms changed, so an edit that breaks sharing
// moves the edited Service, not its unchanged partner (MetalLB keeps the address with its holder). Within a pool, addresses are tried range by range, lowest first ("first free").
import type { AddressPool, IPFamily, InputProblem, ServiceInfo } from '../model/cluster-state.js';
import { bigIntToIP, canonicalIP, ipFamilyOf, ipToBigInt } from '../model/ip.js';
import { matchesAnySelector } from './label-selector.js';
import { type CompiledPool, isBuggyIPv4, validatePools } from './pools.js';

export const ANNOTATION_LOAD_BALANCER_IPS = 'portway.io/loadBalancerIPs';
export const ANNOTATION_ADDRESS_POOL = 'portway.io/address-pool';
export const ANNOTATION_ALLOW_SHARED_IP = 'portway.io/allow-shared-ip';
/**
 * The same annotations under MetalLB's names, so Services written for MetalLB keep their meaning: the
 * current `metallb.io/` form, then the deprecated `metallb.universe.tf/` one. portway's own name wins
 * over both; of MetalLB's, the first present wins even when empty (MetalLB's valueForAnnotation).
 */
export const METALLB_ANNOTATION_PREFIXES = ['metallb.io/', 'metallb.universe.tf/'] as const;

/** The annotation `name` (a portway.io/ key) or its MetalLB alias, as written, and the key it came from. */
export function serviceAnnotation(
  annotations: Record<string, string>,
  name: string,
): { value: string; key: string } | null {
  const suffix = name.slice(name.indexOf('/') + 1);
  for (const key of [name, ...METALLB_ANNOTATION_PREFIXES.map((p) => `${p}${suffix}`)]) {
    const value = annotations[key];
    if (value !== undefined) return { value, key };
  }
  return null;
}

const annotationValue = (svc: ServiceInfo, name: string): string =>
  serviceAnnotation(svc.annotations, name)?.value.trim() ?? '';

/** spec.loadBalancerClass that portway serves; an unset class is served too. */
export const PORTWAY_LOAD_BALANCER_CLASS = 'portway.io/lb';

export interface Assignment {
  /** One address per family, in the Service's ipFamilies order. */
  ips: string[];
  pool: string;
}

export interface AllocationResult {
  /** "namespace/name" → addresses. */
  assignments: Map<string, Assignment>;
  /** "namespace/name" → why it has no addresses (only for Services portway is responsible for). */
  reasons: Map<string, string>;
  /** Pools left out (malformed, overlapping), each naming the pool and the field. */
  problems: InputProblem[];
  /**
   * "namespace/name" → the sharing terms each assignment was made under. With the next computation's
   * `previous`, they tell a Service that changed its terms from one that did not: when two sharers can
   * no longer share, the unchanged one (the incumbent) keeps the address, as in MetalLB.
   */
  terms?: Map<string, SharingTerms>;
}

/** What decides whether two Services may share an address (MetalLB's sharing key, backend key and ports). */
export interface SharingTerms {
  sharingKey: string;
  backendKey: string;
  /** "TCP/80", in the Service's order. */
  ports: string[];
}

const sameTerms = (a: SharingTerms, b: SharingTerms): boolean =>
  a.sharingKey === b.sharingKey &&
  a.backendKey === b.backendKey &&
  a.ports.length === b.ports.length &&
  a.ports.every((p, i) => p === b.ports[i]);

export interface AllocateOptions {
  loadBalancerClass?: string;
}

export const serviceKey = (svc: { namespace: string; name: string }): string =>
  `${svc.namespace}/${svc.name}`;

/** True for Services whose address portway assigns: type LoadBalancer and no other load-balancer class. */
export function isPortwayLoadBalancer(
  svc: ServiceInfo,
  loadBalancerClass = PORTWAY_LOAD_BALANCER_CLASS,
): boolean {
  return (
    svc.type === 'LoadBalancer' &&
    (svc.loadBalancerClass === '' || svc.loadBalancerClass === loadBalancerClass)
  );
}

// ---------------------------------------------------------------------------------------------------------
// Address book: who uses which address, with which sharing key and ports.

interface AddressUse {
  sharingKey: string;
  backendKey: string;
  /** "TCP/80" → service key */
  ports: Map<string, string>;
  services: Set<string>;
}

interface Request {
  key: string;
  sharingKey: string;
  backendKey: string;
  ports: string[];
  namespace: string;
  labels: Record<string, string>;
}

class AddressBook {
  readonly uses = new Map<string, AddressUse>();
  /** sharing key → addresses using it, for finding a shareable address without scanning pools. */
  readonly bySharingKey = new Map<string, Set<string>>();

  /** '' when `req` may use `ip`, else why not. */
  conflict(ip: string, req: Request): string {
    const use = this.uses.get(ip);
    if (!use) return '';
    const others = [...use.services].filter((s) => s !== req.key);
    if (others.length === 0) return '';
    const list = others.sort().join(', ');
    if (use.sharingKey === '' || req.sharingKey === '')
      return `address ${ip} is in use by ${list} and sharing needs ${ANNOTATION_ALLOW_SHARED_IP} on both`;
    if (use.sharingKey !== req.sharingKey)
      return `address ${ip} is in use by ${list} with sharing key "${use.sharingKey}", not "${req.sharingKey}"`;
    if (use.backendKey !== req.backendKey) {
      return `address ${ip} is shared by ${list} with a different externalTrafficPolicy or (for Local) selector`;
    }
    for (const port of req.ports) {
      const holder = use.ports.get(port);
      if (holder !== undefined && holder !== req.key)
        return `port ${port} on ${ip} is already used by ${holder}`;
    }
    return '';
  }

  take(ip: string, req: Request): void {
    let use = this.uses.get(ip);
    if (!use) {
      use = { sharingKey: req.sharingKey, backendKey: req.backendKey, ports: new Map(), services: new Set() };
      this.uses.set(ip, use);
      if (req.sharingKey !== '') {
        let set = this.bySharingKey.get(req.sharingKey);
        if (!set) this.bySharingKey.set(req.sharingKey, (set = new Set()));
        set.add(ip);
      }
    }
    use.services.add(req.key);
    for (const port of req.ports) use.ports.set(port, req.key);
  }
}

// ---------------------------------------------------------------------------------------------------------

interface PoolIndex {
  pools: CompiledPool[];
  byName: Map<string, CompiledPool>;
  /** (pool name, range index) → offset below which every usable address is taken. */
  cursors: Map<string, bigint>;
}

function poolOf(
  index: PoolIndex,
  ip: string,
): { pool: CompiledPool; rangeIdx: number; value: bigint } | null {
  const family = ipFamilyOf(ip);
  if (family === null) return null;
  const value = ipToBigInt(ip);
  for (const pool of index.pools) {
    for (const [rangeIdx, r] of pool.ranges.entries()) {
      if (r.family === family && r.first <= value && value <= r.last) {
        // An avoided address belongs to no pool (MetalLB's poolFor skips it).
        if (pool.pool.avoidBuggyIPs && isBuggyIPv4(value, family)) return null;
        return { pool, rangeIdx, value };
      }
    }
  }
  return null;
}

/** Does the pool's serviceAllocation admit this Service? Pools without one admit every Service. */
function poolAdmits(
  pool: AddressPool,
  svc: ServiceInfo,
  namespaceLabels: Record<string, Record<string, string>>,
): boolean {
  const sa = pool.serviceAllocation;
  if (!sa) return true;
  const nsRestricted = sa.namespaces.length > 0 || sa.namespaceSelectors.length > 0;
  if (nsRestricted) {
    const inList = sa.namespaces.includes(svc.namespace);
    const bySelector = matchesAnySelector(sa.namespaceSelectors, namespaceLabels[svc.namespace] ?? {});
    if (!inList && !bySelector) return false;
  }
  if (sa.serviceSelectors.length > 0 && !matchesAnySelector(sa.serviceSelectors, svc.labels)) return false;
  return true;
}

/**
 * Order in which auto-assigning pools are tried: pools with serviceAllocation first by priority (a lower
 * number first; an unset or zero priority after every set one), then pools without serviceAllocation;
 * ties by name. MetalLB picks randomly among equal priorities: a name order keeps nodes in agreement.
 */
function comparePoolOrder(a: CompiledPool, b: CompiledPool): number {
  const rank = (p: CompiledPool): [number, number] => {
    const sa = p.pool.serviceAllocation;
    if (!sa) return [2, 0];
    if (sa.priority !== undefined && sa.priority > 0) return [0, sa.priority];
    return [1, 0];
  };
  const [ga, pa] = rank(a);
  const [gb, pb] = rank(b);
  if (ga !== gb) return ga - gb;
  if (pa !== pb) return pa - pb;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** First address of `family` in `pool` that `req` may use, in pool order, or null. */
function firstUsable(
  index: PoolIndex,
  book: AddressBook,
  pool: CompiledPool,
  family: IPFamily,
  req: Request,
): string | null {
  // A shareable address already in use wins over a free one only if it comes earlier in the pool.
  let bestShared: { rangeIdx: number; value: bigint; ip: string } | null = null;
  if (req.sharingKey !== '') {
    for (const ip of book.bySharingKey.get(req.sharingKey) ?? []) {
      const at = poolOf(index, ip);
      if (!at || at.pool !== pool || ipFamilyOf(ip) !== family) continue;
      if (book.conflict(ip, req) !== '') continue;
      if (
        !bestShared ||
        at.rangeIdx < bestShared.rangeIdx ||
        (at.rangeIdx === bestShared.rangeIdx && at.value < bestShared.value)
      ) {
        bestShared = { rangeIdx: at.rangeIdx, value: at.value, ip };
      }
    }
  }
  for (const [rangeIdx, r] of pool.ranges.entries()) {
    if (r.family !== family) continue;
    if (bestShared && bestShared.rangeIdx < rangeIdx) return bestShared.ip;
    const cursorKey = `${pool.name}\u0000${rangeIdx}`;
    let offset = index.cursors.get(cursorKey) ?? 0n;
    const size = r.last - r.first;
    // Nothing is ever released during one computation, so the cursor only moves forward.
    while (offset <= size) {
      const value = r.first + offset;
      if (
        !(pool.pool.avoidBuggyIPs && isBuggyIPv4(value, family)) &&
        !book.uses.has(bigIntToIP(value, family))
      )
        break;
      offset++;
    }
    index.cursors.set(cursorKey, offset);
    const free = offset <= size ? r.first + offset : null;
    if (bestShared && bestShared.rangeIdx === rangeIdx && (free === null || bestShared.value < free))
      return bestShared.ip;
    if (free !== null) return bigIntToIP(free, family);
  }
  return bestShared ? bestShared.ip : null;
}

// ---------------------------------------------------------------------------------------------------------

/** The address families a Service wants, primary first, and whether it may fall back to the primary only. */
function wantedFamilies(svc: ServiceInfo): {
  families: IPFamily[];
  fallbackToPrimary: boolean;
  error: string;
} {
  let families: IPFamily[] = [...svc.ipFamilies];
  if (families.length === 0) {
    families = svc.clusterIPs.map((ip) => ipFamilyOf(ip)).filter((f): f is IPFamily => f !== null);
  }
  if (families.length === 0) families = ['IPv4'];
  families = families.filter((f, i) => families.indexOf(f) === i);
  const primary = families[0] as IPFamily;
  if (svc.ipFamilyPolicy === 'SingleStack')
    return { families: [primary], fallbackToPrimary: false, error: '' };
  if (svc.ipFamilyPolicy === 'RequireDualStack' && families.length < 2) {
    return {
      families,
      fallbackToPrimary: false,
      error: 'ipFamilyPolicy RequireDualStack but spec.ipFamilies lists one family',
    };
  }
  return {
    families,
    fallbackToPrimary: svc.ipFamilyPolicy === 'PreferDualStack' && families.length === 2,
    error: '',
  };
}

/** Requested addresses: the annotation, else spec.loadBalancerIP. */
function requestedIPs(svc: ServiceInfo): { ips: string[]; error: string } {
  const found = serviceAnnotation(svc.annotations, ANNOTATION_LOAD_BALANCER_IPS);
  const annotation = found?.value.trim() ?? '';
  const annotationKey = found?.key ?? ANNOTATION_LOAD_BALANCER_IPS;
  if (annotation !== '' && svc.loadBalancerIP !== '') {
    return {
      ips: [],
      error: `both spec.loadBalancerIP and annotation ${annotationKey} are set; use one`,
    };
  }
  const texts =
    annotation !== ''
      ? annotation
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '')
      : svc.loadBalancerIP !== ''
        ? [svc.loadBalancerIP]
        : [];
  const field = annotation !== '' ? `annotation ${annotationKey}` : 'spec.loadBalancerIP';
  const ips: string[] = [];
  for (const t of texts) {
    const ip = canonicalIP(t);
    if (ip === null) return { ips: [], error: `${field}: "${t}" is not an IP address` };
    ips.push(ip);
  }
  const families = ips.map((ip) => ipFamilyOf(ip));
  if (new Set(families).size !== families.length)
    return { ips: [], error: `${field}: more than one address of the same family` };
  return { ips, error: '' };
}

function portKeys(svc: ServiceInfo): string[] {
  return svc.ports.map((p) => `${p.protocol}/${p.port}`);
}

function backendKeyOf(svc: ServiceInfo): string {
  if (svc.externalTrafficPolicy !== 'Local') return 'Cluster';
  // Local traffic is only answered where the pods are: sharers must select the same pods.
  const selector = Object.keys(svc.selector)
    .sort()
    .map((k) => `${k}=${svc.selector[k]}`)
    .join(',');
  return `Local:${selector}`;
}

/**
 * Allocate addresses to every LoadBalancer Service portway serves. `previous` is the last result
 * (kept in memory by the caller): with it, assignments survive even before status has been written.
 */
export function allocate(
  services: ServiceInfo[],
  pools: AddressPool[],
  namespaceLabels: Record<string, Record<string, string>>,
  previous?: AllocationResult,
  options: AllocateOptions = {},
): AllocationResult {
  const lbClass = options.loadBalancerClass ?? PORTWAY_LOAD_BALANCER_CLASS;
  const { pools: compiled, problems } = validatePools(pools);
  const index: PoolIndex = {
    pools: compiled,
    byName: new Map(compiled.map((p) => [p.name, p])),
    cursors: new Map(),
  };
  const autoPoolsInOrder = compiled.filter((p) => p.pool.autoAssign).sort(comparePoolOrder);
  const book = new AddressBook();
  const assignments = new Map<string, Assignment>();
  const reasons = new Map<string, string>();
  const terms = new Map<string, SharingTerms>();

  const existingOf = (svc: ServiceInfo): string[] => {
    const prev = previous?.assignments.get(serviceKey(svc));
    if (prev) return prev.ips;
    return svc.statusIngress.map((i) => canonicalIP(i.ip)).filter((ip): ip is string => ip !== null);
  };
  const ours = services.filter((s) => isPortwayLoadBalancer(s, lbClass));
  const byName = (a: ServiceInfo, b: ServiceInfo) => {
    const ka = serviceKey(a);
    const kb = serviceKey(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  };
  // Holders in incumbency order, each group by name: those that kept their sharing terms since the
  // previous result, then those known only from status, then those whose terms changed. When holders
  // can no longer share an address, the one that comes first keeps it; MetalLB's allocator likewise
  // keeps the Service already holding the address and refuses the one whose update conflicts with it.
  const incumbency = (svc: ServiceInfo): number => {
    const key = serviceKey(svc);
    if (!previous?.assignments.has(key)) return 1;
    const before = previous.terms?.get(key);
    return before === undefined || sameTerms(before, requestOf(svc)) ? 0 : 2;
  };
  const holding = ours
    .filter((s) => existingOf(s).length > 0)
    .map((svc) => ({ svc, rank: incumbency(svc) }))
    .sort((a, b) => a.rank - b.rank || byName(a.svc, b.svc))
    .map((h) => h.svc);
  const fresh = ours.filter((s) => existingOf(s).length === 0).sort(byName);

  const record = (svc: ServiceInfo, outcome: Outcome) => {
    const key = serviceKey(svc);
    if ('reason' in outcome) {
      reasons.set(key, outcome.reason);
      return;
    }
    const req = requestOf(svc);
    for (const ip of outcome.ips) book.take(ip, req);
    assignments.set(key, outcome);
    terms.set(key, { sharingKey: req.sharingKey, backendKey: req.backendKey, ports: req.ports });
  };
  // Phase 1: every holder whose addresses are still valid keeps them, before anyone is allocated anew,
  // so a holder that must move cannot take a still-valid address of a holder later in the order.
  const moving: ServiceInfo[] = [];
  const singleOfDual: ServiceInfo[] = [];
  for (const svc of holding) {
    const kept = keepExisting(svc, existingOf(svc), index, book, namespaceLabels);
    if (kept) {
      record(svc, kept);
      if (kept.ips.length < wantedFamilies(svc).families.length) singleOfDual.push(svc);
    } else moving.push(svc);
  }
  // Phase 1b: a PreferDualStack holder kept with one family gets the other from the same pool when the
  // pool has one free, keeping the address it has (MetalLB's AllocateFromPoolForAdditionalFamily). After
  // every holder is recorded, so it cannot take an address another holder still holds.
  for (const svc of singleOfDual) {
    const key = serviceKey(svc);
    const held = assignments.get(key);
    const pool = held ? index.byName.get(held.pool) : undefined;
    // Requested addresses stay as asked: a second one would differ from the request and move it next time.
    if (!held || !pool || requestedIPs(svc).ips.length > 0) continue;
    const { families } = wantedFamilies(svc);
    const missing = families.find((f) => !held.ips.some((ip) => ipFamilyOf(ip) === f));
    if (missing === undefined || !pool.ranges.some((r) => r.family === missing)) continue;
    const req = requestOf(svc);
    const ip = firstUsable(index, book, pool, missing, req);
    if (ip === null) continue;
    book.take(ip, req);
    assignments.set(key, { ips: inFamilyOrder([...held.ips, ip], families), pool: held.pool });
  }
  // Phase 2: new Services and holders that must move, by namespace/name.
  for (const svc of [...moving, ...fresh].sort(byName)) {
    record(svc, allocateOne(svc, index, autoPoolsInOrder, book, namespaceLabels));
  }
  return { assignments, reasons, problems, terms };
}

function requestOf(svc: ServiceInfo): Request {
  return {
    key: serviceKey(svc),
    sharingKey: annotationValue(svc, ANNOTATION_ALLOW_SHARED_IP),
    backendKey: backendKeyOf(svc),
    ports: portKeys(svc),
    namespace: svc.namespace,
    labels: svc.labels,
  };
}

type Outcome = Assignment | { reason: string };

const sameFamilies = (ips: string[], families: IPFamily[]): boolean => {
  const got = ips.map((ip) => ipFamilyOf(ip));
  return got.length === families.length && families.every((f) => got.includes(f));
};
const inFamilyOrder = (ips: string[], families: IPFamily[]): string[] =>
  families.map((f) => ips.find((ip) => ipFamilyOf(ip) === f) as string);

/** A concrete set of addresses for `svc`: each in a pool that admits it, all in one pool, each free or shareable. */
function checkAddressSet(
  ips: string[],
  svc: ServiceInfo,
  poolName: string,
  index: PoolIndex,
  book: AddressBook,
  namespaceLabels: Record<string, Record<string, string>>,
): Outcome {
  const req = requestOf(svc);
  let pool: CompiledPool | undefined;
  for (const ip of ips) {
    const at = poolOf(index, ip);
    if (!at) return { reason: `address ${ip} is not in any address pool` };
    if (pool && at.pool !== pool)
      return { reason: `addresses ${ips.join(', ')} are in different pools (${pool.name}, ${at.pool.name})` };
    pool = at.pool;
    if (!poolAdmits(at.pool.pool, svc, namespaceLabels)) {
      return {
        reason: `address ${ip} is in pool ${at.pool.name}, whose serviceAllocation does not admit this Service`,
      };
    }
    if (poolName !== '' && at.pool.name !== poolName) {
      return {
        reason: `address ${ip} is in pool ${at.pool.name}, not in the pool ${poolName} the annotation asks for`,
      };
    }
    const conflict = book.conflict(ip, req);
    if (conflict !== '') return { reason: conflict };
  }
  return { ips, pool: (pool as CompiledPool).name };
}

/** The addresses `svc` already holds, if they still fit its families, its request, its pool annotation and the pools. */
function keepExisting(
  svc: ServiceInfo,
  existing: string[],
  index: PoolIndex,
  book: AddressBook,
  namespaceLabels: Record<string, Record<string, string>>,
): Assignment | null {
  const want = wantedFamilies(svc);
  const requested = requestedIPs(svc);
  if (want.error !== '' || requested.error !== '') return null;
  const fams = sameFamilies(existing, want.families)
    ? want.families
    : want.fallbackToPrimary && sameFamilies(existing, want.families.slice(0, 1))
      ? want.families.slice(0, 1)
      : null;
  if (fams === null) return null;
  if (requested.ips.length > 0 && [...requested.ips].sort().join() !== [...existing].sort().join())
    return null;
  const poolName = annotationValue(svc, ANNOTATION_ADDRESS_POOL);
  const kept = checkAddressSet(inFamilyOrder(existing, fams), svc, poolName, index, book, namespaceLabels);
  return 'reason' in kept ? null : kept;
}

function allocateOne(
  svc: ServiceInfo,
  index: PoolIndex,
  autoPools: CompiledPool[],
  book: AddressBook,
  namespaceLabels: Record<string, Record<string, string>>,
): Outcome {
  const req = requestOf(svc);
  const want = wantedFamilies(svc);
  if (want.error !== '') return { reason: want.error };
  const requested = requestedIPs(svc);
  if (requested.error !== '') return { reason: requested.error };
  const poolName = annotationValue(svc, ANNOTATION_ADDRESS_POOL);

  const checkAddresses = (ips: string[]) => checkAddressSet(ips, svc, poolName, index, book, namespaceLabels);

  // 1. Requested addresses (holders that still fit were kept by keepExisting).
  if (requested.ips.length > 0) {
    const ok =
      sameFamilies(requested.ips, want.families) ||
      (want.fallbackToPrimary && sameFamilies(requested.ips, want.families.slice(0, 1)));
    if (!ok) {
      return {
        reason: `requested ${requested.ips.join(', ')} but the Service's families are ${want.families.join(', ')} (wrong family)`,
      };
    }
    const fams = sameFamilies(requested.ips, want.families) ? want.families : want.families.slice(0, 1);
    return checkAddresses(inFamilyOrder(requested.ips, fams));
  }

  const fromPool = (pool: CompiledPool, families: IPFamily[]): string[] | null => {
    const ips: string[] = [];
    for (const f of families) {
      const ip = firstUsable(index, book, pool, f, req);
      if (ip === null) return null;
      ips.push(ip);
    }
    return ips;
  };
  const familySets = want.fallbackToPrimary ? [want.families, want.families.slice(0, 1)] : [want.families];

  // 2. A pool named by annotation (autoAssign does not matter).
  if (poolName !== '') {
    const pool = index.byName.get(poolName);
    if (!pool)
      return {
        reason: `annotation ${ANNOTATION_ADDRESS_POOL}: pool ${poolName} does not exist (or is invalid)`,
      };
    if (!poolAdmits(pool.pool, svc, namespaceLabels)) {
      return { reason: `pool ${poolName}'s serviceAllocation does not admit this Service` };
    }
    for (const families of familySets) {
      if (!families.every((f) => pool.ranges.some((r) => r.family === f))) continue;
      const ips = fromPool(pool, families);
      if (ips) return { ips, pool: pool.name };
    }
    const hasFamilies = familySets.some((families) =>
      families.every((f) => pool.ranges.some((r) => r.family === f)),
    );
    if (!hasFamilies)
      return { reason: `pool ${poolName} has no ${want.families.join('+')} addresses (wrong family)` };
    return {
      reason: `no available addresses in pool ${poolName} (exhausted, or every address conflicts with its sharers)`,
    };
  }

  // 3. Any auto-assigning pool that admits the Service, in priority order.
  const candidates = autoPools.filter((p) => poolAdmits(p.pool, svc, namespaceLabels));
  if (candidates.length === 0) return { reason: 'no auto-assigning address pool admits this Service' };
  for (const families of familySets) {
    for (const pool of candidates) {
      if (!families.every((f) => pool.ranges.some((r) => r.family === f))) continue;
      const ips = fromPool(pool, families);
      if (ips) return { ips, pool: pool.name };
    }
  }
  const withFamilies = candidates.filter((p) =>
    familySets.some((fs) => fs.every((f) => p.ranges.some((r) => r.family === f))),
  );
  if (withFamilies.length === 0)
    return {
      reason: `no address pool admitting this Service has ${want.families.join('+')} addresses (wrong family)`,
    };
  return {
    reason: `no available addresses: pools ${withFamilies.map((p) => p.name).join(', ')} are exhausted (or conflict with sharers)`,
  };
}
