// kube-proxy's KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1), as kubeadm's `kube-proxy`
// ConfigMap holds it, translated into portway's configuration. Pure: no file, no clock, no environment.
//
// The translation first applies kube-proxy's own defaulting (an empty or null field means kube-proxy's
// default, as in pkg/proxy/apis/config/v1alpha1/defaults.go), then maps each field onto the portway key
// with the same meaning. The result is a raw portway document that parseConfig (config.ts, the one
// schema) validates; its errors are renamed back to the kube-proxy field the user wrote. Fields portway
// does not implement are warned about one by one, with their value, and never stop the agent: a
// migration must be able to start from the ConfigMap as it is.
import { isIP } from 'node:net';
import { parse as parseYaml } from 'yaml';
import {
  ConfigError,
  DETECT_LOCAL_MODES,
  formatDuration,
  parseConfig,
  parseDuration,
  type Config,
} from './config.js';

export const KUBE_PROXY_API_GROUP = 'kubeproxy.config.k8s.io';
export const KUBE_PROXY_API_VERSION = `${KUBE_PROXY_API_GROUP}/v1alpha1`;
/** The key of kubeadm's `kube-proxy` ConfigMap that holds the KubeProxyConfiguration. */
export const KUBEADM_CONFIG_KEY = 'config.conf';

/** kube-proxy's ports (pkg/cluster/ports): ProxyHealthzPort and ProxyStatusPort. */
const HEALTHZ_PORT = 10256;
const METRICS_PORT = 10249;

/** A portway configuration document (what a portway --config file holds), JSON/YAML-ready. */
export type PortwayDocument = Record<string, unknown>;

export interface KubeProxyConversion {
  /** The equivalent portway configuration, every key kube-proxy's file decides written out. */
  document: PortwayDocument;
  /** One line per kube-proxy field portway does not implement: "field: value: what happens". */
  warnings: string[];
}

/** What a decoded --config document is: portway's own, a KubeProxyConfiguration, or a ConfigMap holding one. */
export function configDocumentKind(raw: unknown): 'portway' | 'KubeProxyConfiguration' | 'ConfigMap' {
  if (!isRecord(raw)) return 'portway';
  if (raw.kind === 'KubeProxyConfiguration') return 'KubeProxyConfiguration';
  if (raw.kind === 'ConfigMap' && (raw.apiVersion === 'v1' || raw.apiVersion === undefined))
    return 'ConfigMap';
  return 'portway';
}

/**
 * Translate a decoded KubeProxyConfiguration, or a ConfigMap whose `config.conf` holds one, into
 * portway's configuration. Throws ConfigError naming the kube-proxy field of every invalid value.
 */
export function convertKubeProxyDocument(raw: unknown, source: string): KubeProxyConversion {
  if (configDocumentKind(raw) === 'ConfigMap') {
    const data = (raw as Record<string, unknown>).data;
    const text = isRecord(data) ? data[KUBEADM_CONFIG_KEY] : undefined;
    if (typeof text !== 'string') {
      throw new ConfigError(source, [
        {
          path: `data["${KUBEADM_CONFIG_KEY}"]`,
          message:
            'missing: a ConfigMap is read as kubeadm\'s kube-proxy ConfigMap, whose "config.conf" holds the KubeProxyConfiguration',
        },
      ]);
    }
    let inner: unknown;
    try {
      inner = parseYaml(text);
    } catch (e) {
      throw new ConfigError(source, [
        { path: `data["${KUBEADM_CONFIG_KEY}"]`, message: `not valid YAML: ${(e as Error).message}` },
      ]);
    }
    if (configDocumentKind(inner) !== 'KubeProxyConfiguration') {
      throw new ConfigError(source, [
        { path: `data["${KUBEADM_CONFIG_KEY}"].kind`, message: 'must be KubeProxyConfiguration' },
      ]);
    }
    return convertKubeProxyConfiguration(inner, `${source} (${KUBEADM_CONFIG_KEY})`);
  }
  return convertKubeProxyConfiguration(raw, source);
}

/** Translate a decoded KubeProxyConfiguration (see convertKubeProxyDocument). */
export function convertKubeProxyConfiguration(raw: unknown, source: string): KubeProxyConversion {
  const r = new FieldReader(isRecord(raw) ? raw : {});
  const apiVersion = r.string('apiVersion');
  r.string('kind');
  if (apiVersion !== KUBE_PROXY_API_VERSION) {
    r.issue(
      'apiVersion',
      `portway reads KubeProxyConfiguration as ${KUBE_PROXY_API_VERSION} (got ${show(apiVersion)})`,
    );
  }
  const doc: PortwayDocument = {};

  // ── identity and addresses ──
  const hostname = r.string('hostnameOverride')?.trim().toLowerCase() ?? '';
  if (hostname !== '') doc.nodeName = hostname; // kube-proxy trims and lowercases it too

  const bindAddress = r.string('bindAddress') ?? '';
  if (bindAddress !== '' && isIP(bindAddress) === 0)
    r.issue('bindAddress', `not an IP address (got ${show(bindAddress)})`);
  const ipv6Bind = isIP(bindAddress) === 6;
  if (isIP(bindAddress) !== 0 && !isUnspecified(bindAddress)) {
    r.warn(
      'bindAddress',
      bindAddress,
      "kube-proxy takes it as this node's primary IP; portway reads the node's addresses from its interfaces " +
        '(the first global address of a family is primary): set nodeIPs if that picks another address',
    );
  }
  // false lets kube-proxy run on when it cannot bind a port; portway always stops (exit 2). Only a
  // failure tells them apart, so it is read (type-checked) and not warned about.
  r.bool('bindAddressHardFail');
  doc.healthzBindAddress = listenAddress(
    r,
    'healthzBindAddress',
    ipv6Bind ? '[::]' : '0.0.0.0',
    HEALTHZ_PORT,
  );
  doc.metricsBindAddress = listenAddress(
    r,
    'metricsBindAddress',
    ipv6Bind ? '[::1]' : '127.0.0.1',
    METRICS_PORT,
  );

  // ── mode ──
  const mode = r.string('mode') ?? '';
  if (mode === '' || mode === 'iptables') doc.mode = 'iptables';
  else if (mode === 'ipvs') doc.mode = 'ipvs';
  else if (mode === 'nftables') {
    r.issue(
      'mode',
      'nftables is not supported by portway (it programs iptables or ipvs): pick iptables or ipvs',
    );
  } else if (mode === 'kernelspace') {
    r.issue('mode', 'kernelspace is the Windows proxy: portway runs on Linux (iptables or ipvs)');
  } else
    r.issue(
      'mode',
      `unknown mode ${show(mode)} (kube-proxy's are "", iptables, ipvs, nftables, kernelspace)`,
    );

  // ── local traffic detection ──
  const clusterCIDR = r.string('clusterCIDR') ?? '';
  doc.clusterCIDRs = clusterCIDR
    .split(',')
    .map((c) => c.trim())
    .filter((c) => c !== '');
  const detectLocalMode = r.string('detectLocalMode') ?? '';
  if (detectLocalMode !== '' && !(DETECT_LOCAL_MODES as readonly string[]).includes(detectLocalMode)) {
    r.issue(
      'detectLocalMode',
      `must be one of ${DETECT_LOCAL_MODES.join(', ')} (got ${show(detectLocalMode)})`,
    );
  }
  doc.detectLocalMode = detectLocalMode === '' ? 'ClusterCIDR' : detectLocalMode;
  doc.detectLocal = {
    bridgeInterface: r.string('detectLocal.bridgeInterface') ?? '',
    interfaceNamePrefix: r.string('detectLocal.interfaceNamePrefix') ?? '',
  };

  // ── iptables ──
  doc.masqueradeAll = r.bool('iptables.masqueradeAll') ?? false;
  doc.masqueradeBit = r.integer('iptables.masqueradeBit') ?? 14;
  doc.iptables = {
    localhostNodePorts: r.bool('iptables.localhostNodePorts') ?? true,
    minSyncPeriod: r.durationOr('iptables.minSyncPeriod', 1000),
    syncPeriod: r.durationOr('iptables.syncPeriod', 30_000),
  };

  // ── ipvs (kube-proxy defaults only its syncPeriod; minSyncPeriod 0 means no gap) ──
  const scheduler = r.string('ipvs.scheduler') ?? '';
  const strictARP = r.bool('ipvs.strictARP') ?? false;
  doc.ipvs = {
    scheduler: scheduler === '' ? 'rr' : scheduler,
    strictARP,
    minSyncPeriod: formatDuration(r.duration('ipvs.minSyncPeriod') ?? 0),
    syncPeriod: r.durationOr('ipvs.syncPeriod', 30_000),
    tcpTimeout: formatDuration(r.duration('ipvs.tcpTimeout') ?? 0),
    tcpFinTimeout: formatDuration(r.duration('ipvs.tcpFinTimeout') ?? 0),
    udpTimeout: formatDuration(r.duration('ipvs.udpTimeout') ?? 0),
    excludeCIDRs: r.stringList('ipvs.excludeCIDRs') ?? [],
  };
  if (strictARP && mode !== 'ipvs') {
    r.warn(
      'ipvs.strictARP',
      true,
      'kube-proxy applies it in ipvs mode only; portway sets arp_ignore=1/arp_announce=2 whenever it is true, ' +
        'in iptables mode too',
    );
  }

  // ── nftables: used by kube-proxy's nftables mode only, which portway refuses above; checked, not used ──
  r.bool('nftables.masqueradeAll');
  r.integer('nftables.masqueradeBit');
  r.duration('nftables.minSyncPeriod');
  r.duration('nftables.syncPeriod');

  doc.nodePortAddresses = r.stringList('nodePortAddresses') ?? [];

  readUnimplemented(r);

  const unknown = r.unreadKeys();
  for (const key of unknown) {
    r.warn(
      key,
      r.valueAt(key),
      `not a KubeProxyConfiguration ${KUBE_PROXY_API_VERSION} field portway knows; ignored`,
    );
  }
  if (r.issues.length > 0) {
    // Name every invalid field at once: also what portway's schema finds in the rest of the translation.
    const more = schemaIssues(doc, source).filter((i) => !r.issues.some((j) => j.path === i.path));
    throw new ConfigError(source, [...r.issues, ...more]);
  }
  return { document: doc, warnings: r.warnings };
}

/**
 * The KubeProxyConfiguration as a portway Config, validated by portway's schema; an invalid value is
 * reported under the kube-proxy field it came from.
 */
export function parseKubeProxyDocument(
  raw: unknown,
  source: string,
): KubeProxyConversion & { config: Config } {
  const { document, warnings } = convertKubeProxyDocument(raw, source);
  const issues = schemaIssues(document, source);
  if (issues.length > 0) throw new ConfigError(source, issues);
  return { config: parseConfig(document, source), document, warnings };
}

/** What portway's schema refuses in a translated document, named by the kube-proxy field. */
function schemaIssues(document: PortwayDocument, source: string): Array<{ path: string; message: string }> {
  try {
    parseConfig(document, source);
    return [];
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.issues.map((issue) => ({ path: kubeProxyFieldOf(issue.path), message: issue.message }));
  }
}

/** Portway key path (as parseConfig names it) → the KubeProxyConfiguration field it was translated from. */
const FIELD_OF_KEY: Array<[RegExp, string]> = [
  [/^clusterCIDRs(\.\d+)?$/, 'clusterCIDR'],
  [/^nodeName$/, 'hostnameOverride'],
  [/^masqueradeAll$/, 'iptables.masqueradeAll'],
  [/^masqueradeBit$/, 'iptables.masqueradeBit'],
  [/^nodePortAddresses\.(\d+)$/, 'nodePortAddresses[$1]'],
  [/^ipvs\.excludeCIDRs\.(\d+)$/, 'ipvs.excludeCIDRs[$1]'],
];

export function kubeProxyFieldOf(path: string): string {
  for (const [re, field] of FIELD_OF_KEY) if (re.test(path)) return path.replace(re, field);
  return path;
}

/**
 * Fields of behaviour portway does not have. Each is warned about when its value — after kube-proxy's
 * defaulting — asks kube-proxy to do something; a field at a value that does nothing stays silent.
 */
function readUnimplemented(r: FieldReader): void {
  // conntrack: kube-proxy writes these sysctls at start; portway leaves conntrack's sysctls alone.
  const sysctlNote = (name: string) =>
    `kube-proxy sets ${name}; portway does not change conntrack sysctls (set it on the node, e.g. in /etc/sysctl.d, if it matters)`;
  const maxPerCore = r.integer('conntrack.maxPerCore');
  const effectiveMaxPerCore = maxPerCore ?? 32 * 1024;
  if (effectiveMaxPerCore !== 0) {
    r.warn(
      'conntrack.maxPerCore',
      orDefault(maxPerCore, effectiveMaxPerCore),
      sysctlNote('net.netfilter.nf_conntrack_max (maxPerCore × CPUs, at least conntrack.min)'),
    );
  }
  const min = r.integer('conntrack.min');
  if (effectiveMaxPerCore !== 0) {
    r.warn(
      'conntrack.min',
      orDefault(min, 128 * 1024),
      sysctlNote('the floor of net.netfilter.nf_conntrack_max'),
    );
  }
  r.warnUnlessZero('conntrack.max', 'number', sysctlNote('net.netfilter.nf_conntrack_max')); // older releases' field
  for (const [field, sysctl, defaultMs] of [
    ['conntrack.tcpEstablishedTimeout', 'net.netfilter.nf_conntrack_tcp_timeout_established', 86_400_000],
    ['conntrack.tcpCloseWaitTimeout', 'net.netfilter.nf_conntrack_tcp_timeout_close_wait', 3_600_000],
  ] as const) {
    const value = r.duration(field);
    if ((value ?? defaultMs) !== 0) {
      const shown =
        value === undefined ? orDefault(undefined, formatDuration(defaultMs)) : formatDuration(value);
      r.warn(field, shown, sysctlNote(sysctl));
    }
  }
  r.warnUnlessZero(
    'conntrack.tcpBeLiberal',
    'boolean',
    sysctlNote('net.netfilter.nf_conntrack_tcp_be_liberal=1'),
  );
  r.warnUnlessZero('conntrack.udpTimeout', 'duration', sysctlNote('net.netfilter.nf_conntrack_udp_timeout'));
  r.warnUnlessZero(
    'conntrack.udpStreamTimeout',
    'duration',
    sysctlNote('net.netfilter.nf_conntrack_udp_timeout_stream'),
  );

  const kubeconfig = r.string('clientConnection.kubeconfig') ?? '';
  if (kubeconfig !== '') {
    r.warn(
      'clientConnection.kubeconfig',
      kubeconfig,
      `portway takes its API connection from the command line: run it with --kubeconfig ${kubeconfig} (or in-cluster config in a pod)`,
    );
  }
  const json = 'portway talks JSON to the API server; ignored';
  r.warnUnlessZero('clientConnection.acceptContentTypes', 'string', json);
  r.warnUnlessZero('clientConnection.contentType', 'string', json);
  const unlimited = 'portway does not rate-limit its API client (it lists once and watches); ignored';
  r.warnUnlessZero('clientConnection.qps', 'number', unlimited);
  r.warnUnlessZero('clientConnection.burst', 'number', unlimited);

  const featureGates = r.booleanMap('featureGates');
  for (const [gate, on] of Object.entries(featureGates ?? {})) {
    r.warn(
      `featureGates.${gate}`,
      on,
      'portway has no feature gates: it behaves as kube-proxy with every gate at its default; ignored',
    );
  }

  r.warnUnlessZero(
    'configSyncPeriod',
    'duration',
    "portway's informers do not resync (its periodic full sync repairs drift); ignored",
  );
  const oomScoreAdj = r.integer('oomScoreAdj');
  if (oomScoreAdj !== 0) {
    r.warn(
      'oomScoreAdj',
      orDefault(oomScoreAdj, -999),
      'kube-proxy sets its own OOM score; portway does not (run it with priorityClassName system-node-critical, as the chart does)',
    );
  }
  const userspace = 'a setting of the removed userspace proxy; ignored, as kube-proxy ignores it';
  r.warnUnlessZero('portRange', 'string', userspace);
  r.warnUnlessZero('udpIdleTimeout', 'duration', userspace);
  r.warnUnlessZero('showHiddenMetricsForVersion', 'string', 'portway has no hidden metrics; ignored');
  r.warnUnlessZero('enableProfiling', 'boolean', 'portway serves no /debug/pprof; ignored');

  const windows = 'a Windows setting; ignored';
  for (const field of ['winkernel.networkName', 'winkernel.sourceVip', 'winkernel.rootHnsEndpointName']) {
    r.warnUnlessZero(field, 'string', windows);
  }
  for (const field of ['winkernel.enableDSR', 'winkernel.forwardHealthCheckVip']) {
    r.warnUnlessZero(field, 'boolean', windows);
  }

  const format = r.string('logging.format') ?? '';
  if (format !== '' && format !== 'text') {
    r.warn('logging.format', format, 'portway logs JSON lines to stderr whatever this says; ignored');
  }
  r.warnUnlessZero(
    'logging.verbosity',
    'number',
    "set portway's level with --log-level (debug, info, warn, error); ignored",
  );
  const vmodule = r.valueAt('logging.vmodule');
  r.skipSubtree('logging.vmodule');
  if (vmodule !== undefined && vmodule !== null && !(Array.isArray(vmodule) && vmodule.length === 0)) {
    r.warn('logging.vmodule', vmodule, 'portway has no per-file verbosity; ignored');
  }
  // How often klog flushes, and its buffer options: no behaviour a user would miss.
  r.skipSubtree('logging.flushFrequency');
  r.skipSubtree('logging.options');
}

/** healthzBindAddress / metricsBindAddress as kube-proxy defaults them: "" → its default, a bare IP gets the port. */
function listenAddress(r: FieldReader, field: string, defaultHost: string, port: number): string {
  const value = r.string(field) ?? '';
  if (value === '') return `${defaultHost}:${port}`;
  const family = isIP(value);
  if (family === 4) return `${value}:${port}`;
  if (family === 6) return `[${value}]:${port}`;
  return value; // host:port, checked by portway's schema (an error names this field)
}

function isUnspecified(ip: string): boolean {
  return ip === '0.0.0.0' || /^[0:]+$/.test(ip);
}

/** A value shown in a warning: what the file holds, and kube-proxy's default when it is unset. */
function orDefault(value: unknown, fallback: unknown): string {
  return value === undefined ? `null (kube-proxy's default ${String(fallback)})` : String(value);
}

function show(value: unknown): string {
  return value === undefined ? 'nothing' : JSON.stringify(value);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Reads dotted fields of the decoded document, type-checking each (an issue names the field) and
 * remembering which were read, so that every other key can be warned about by name.
 */
class FieldReader {
  readonly issues: Array<{ path: string; message: string }> = [];
  readonly warnings: string[] = [];
  private readonly read = new Set<string>();

  constructor(private readonly root: Record<string, unknown>) {}

  issue(path: string, message: string): void {
    this.issues.push({ path, message });
  }

  warn(path: string, value: unknown, why: string): void {
    const shown = typeof value === 'string' ? value : JSON.stringify(value);
    this.warnings.push(`${path}: ${shown}: ${why}`);
  }

  /** The raw value at a dotted path; undefined when absent. Null means unset, as in Kubernetes JSON. */
  valueAt(path: string): unknown {
    let at: unknown = this.root;
    for (const part of path.split('.')) {
      if (!isRecord(at)) return undefined;
      at = at[part];
    }
    return at;
  }

  private take(path: string): unknown {
    this.read.add(path);
    const value = this.valueAt(path);
    return value === null ? undefined : value;
  }

  /** Mark a whole subtree read without checking it. */
  skipSubtree(path: string): void {
    this.read.add(path);
  }

  string(path: string): string | undefined {
    const value = this.take(path);
    if (value === undefined || typeof value === 'string') return value;
    this.issue(path, `must be a string (got ${show(value)})`);
    return undefined;
  }

  bool(path: string): boolean | undefined {
    const value = this.take(path);
    if (value === undefined || typeof value === 'boolean') return value;
    this.issue(path, `must be true or false (got ${show(value)})`);
    return undefined;
  }

  number(path: string): number | undefined {
    const value = this.take(path);
    if (value === undefined || (typeof value === 'number' && Number.isFinite(value))) return value;
    this.issue(path, `must be a number (got ${show(value)})`);
    return undefined;
  }

  integer(path: string): number | undefined {
    const value = this.number(path);
    if (value === undefined || Number.isInteger(value)) return value;
    this.issue(path, `must be a whole number (got ${value})`);
    return undefined;
  }

  /** A Go duration string ("30s", "1m0s", "0s"), in milliseconds. */
  duration(path: string): number | undefined {
    const value = this.take(path);
    if (value === undefined) return undefined;
    if (typeof value !== 'string') {
      this.issue(path, `must be a duration string such as "30s" or "1m0s" (got ${show(value)})`);
      return undefined;
    }
    try {
      return parseDuration(value);
    } catch (e) {
      this.issue(path, (e as Error).message);
      return undefined;
    }
  }

  /** A duration whose zero means kube-proxy's default (Go cannot tell 0s from unset), as a portway string. */
  durationOr(path: string, defaultMs: number): string {
    const ms = this.duration(path);
    return formatDuration(ms === undefined || ms === 0 ? defaultMs : ms);
  }

  stringList(path: string): string[] | undefined {
    const value = this.take(path);
    if (value === undefined) return undefined;
    if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
    this.issue(path, `must be a list of strings (got ${show(value)})`);
    return undefined;
  }

  booleanMap(path: string): Record<string, boolean> | undefined {
    const value = this.take(path);
    if (value === undefined) return undefined;
    if (isRecord(value) && Object.values(value).every((v) => typeof v === 'boolean')) {
      return value as Record<string, boolean>;
    }
    this.issue(path, `must be a map of feature names to true/false (got ${show(value)})`);
    return undefined;
  }

  /**
   * Read a field of a kube-proxy feature portway lacks and warn, with its value, unless it is unset or
   * at the value that asks kube-proxy for nothing ("", 0, false, "0s").
   */
  warnUnlessZero(path: string, type: 'string' | 'number' | 'boolean' | 'duration', why: string): void {
    if (type === 'duration') {
      const ms = this.duration(path);
      if (ms !== undefined && ms !== 0) this.warn(path, formatDuration(ms), why);
      return;
    }
    const value =
      type === 'string' ? this.string(path) : type === 'number' ? this.number(path) : this.bool(path);
    if (value !== undefined && value !== '' && value !== 0 && value !== false) this.warn(path, value, why);
  }

  /** Leaf keys (dotted) of the document that no read covered, in document order. */
  unreadKeys(): string[] {
    const out: string[] = [];
    const walk = (value: unknown, prefix: string) => {
      if (prefix !== '' && this.read.has(prefix)) return;
      if (isRecord(value) && (prefix === '' || this.hasReadBelow(prefix))) {
        for (const [k, v] of Object.entries(value)) walk(v, prefix === '' ? k : `${prefix}.${k}`);
        return;
      }
      if (prefix !== '') out.push(prefix);
    };
    walk(this.root, '');
    return out;
  }

  private hasReadBelow(prefix: string): boolean {
    for (const path of this.read) if (path.startsWith(`${prefix}.`)) return true;
    return false;
  }
}
