// The agent configuration: named like kube-proxy's KubeProxyConfiguration where it has the same key.
// Parsed once at the edge (zod, strict: an unknown key is an error naming the key).
import { isIP } from 'node:net';
import { z } from 'zod';
import { dns1035LabelProblem, dns1123LabelProblem, dns1123SubdomainProblem } from '../model/names.js';

/**
 * Go-style durations as kube-proxy writes them: "1s", "30s", "1m0s", "500ms", "1h2m3.5s"; Go's "ns", "us"
 * and "µs" units too (rounded to whole milliseconds, portway's unit). Negative durations are refused.
 */
export function parseDuration(text: string): number {
  const re = /(\d+(?:\.\d+)?|\.\d+)(ns|us|µs|ms|h|m|s)/gy;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  if (text === '0') return 0;
  while ((m = re.exec(text)) !== null) {
    total += Number(m[1]) * MS_PER_UNIT[m[2]!]!;
    matched = re.lastIndex;
  }
  if (matched !== text.length || text.length === 0) throw new Error(`invalid duration "${text}"`);
  return Math.round(total);
}

const MS_PER_UNIT: Record<string, number> = {
  h: 3_600_000,
  m: 60_000,
  s: 1000,
  ms: 1,
  us: 1e-3,
  µs: 1e-3,
  ns: 1e-6,
};

/** Milliseconds as Go prints a time.Duration: "0s", "250ms", "1.5s", "1m0s", "24h0m0s". Pure. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms < 1000) return `${ms}ms`;
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor((ms % 3_600_000) / 60_000);
  const seconds = (ms % 60_000) / 1000;
  if (hours > 0) return `${hours}h${minutes}m${seconds}s`;
  if (minutes > 0) return `${minutes}m${seconds}s`;
  return `${seconds}s`;
}

/**
 * The longest duration a key may hold: Node's timers take at most 2^31-1 ms and silently turn a
 * longer delay into 1 ms, which would make a "very long" syncPeriod run full syncs back to back.
 */
export const MAX_DURATION_MS = 2 ** 31 - 1;

const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  let ms: number;
  if (typeof v === 'number') {
    ms = Math.round(v * 1000); // a bare number means seconds
  } else {
    try {
      ms = parseDuration(v);
    } catch (e) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: (e as Error).message });
      return z.NEVER;
    }
  }
  if (!Number.isFinite(ms) || ms < 0 || ms > MAX_DURATION_MS) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      message: `duration ${JSON.stringify(v)} is out of range (0 to ${MAX_DURATION_MS} ms, about 24.8 days)`,
    });
    return z.NEVER;
  }
  return ms;
});
/** A duration that must not be zero (a zero probe interval or timeout would spin or always fail). */
const positiveDuration = duration.refine((ms) => ms > 0, { message: 'must be greater than 0' });

const ipAddress = z.string().refine((s) => isIP(s) !== 0, { message: 'not an IP address' });
const cidr = z.string().refine(
  (s) => {
    const [addr, bits, extra] = s.split('/');
    if (extra !== undefined || addr === undefined || bits === undefined || !/^\d+$/.test(bits)) return false;
    const family = isIP(addr);
    return family !== 0 && Number(bits) <= (family === 4 ? 32 : 128);
  },
  { message: 'not a CIDR (address/prefix)' },
);
/**
 * What is wrong with a listen address "IP:port" ("[IPv6]:port"; an empty host = every address),
 * or null. kube-proxy's validateHostPort, with port 0 (any free port) allowed.
 */
export function bindAddressProblem(text: string): string | null {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d+)$/.exec(text);
  if (!m) return `expected host:port, got "${text}" (an IPv6 host goes in brackets: [::1]:10249)`;
  const bracketed = m[1];
  const host = bracketed ?? m[2] ?? '';
  if (bracketed !== undefined && isIP(bracketed) !== 6)
    return `"${bracketed}" in brackets is not an IPv6 address`;
  if (bracketed === undefined && host !== '' && isIP(host) !== 4) {
    return `"${host}" is not an IP address (a name is not accepted; IPv6 goes in brackets)`;
  }
  const port = Number(m[3]);
  if (m[3]!.length > 5 || port > 65535) return `port ${m[3]} is out of range (0-65535)`;
  return null;
}

const bindAddress = z.string().superRefine((s, ctx) => {
  const problem = bindAddressProblem(s);
  if (problem !== null) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
});

/**
 * kube-proxy's checks of a sync-period pair: syncPeriod > 0 (0 would never repair drift) and
 * minSyncPeriod <= syncPeriod.
 */
function checkSyncPeriods(
  v: { minSyncPeriod: number; syncPeriod: number },
  ctx: z.RefinementCtx,
  at: string[] = [],
): void {
  if (v.syncPeriod <= 0) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      path: [...at, 'syncPeriod'],
      message: 'must be greater than 0 (the periodic full sync is what repairs drift)',
    });
  } else if (v.minSyncPeriod > v.syncPeriod) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      path: [...at, 'syncPeriod'],
      message: `must be greater than or equal to minSyncPeriod (${v.syncPeriod} ms < ${v.minSyncPeriod} ms)`,
    });
  }
}

export const IptablesConfigSchema = z
  .object({
    /** Accept NodePort connections to 127.0.0.1 (IPv4 only, needs route_localnet), as kube-proxy does. */
    localhostNodePorts: z.boolean().default(true),
    /** Minimum gap between syncs (milliseconds after parsing). */
    minSyncPeriod: duration.default('1s'),
    /** Period of full resyncs that repair drift (milliseconds after parsing). */
    syncPeriod: duration.default('30s'),
    /** Use --random-fully on MASQUERADE when the kernel/tool supports it. */
    masqueradeRandomFully: z.boolean().default(true),
  })
  .strict()
  .superRefine((v, ctx) => checkSyncPeriods(v, ctx));

/** ipvsadm's scheduler flag names (-b): flag-1..3, and the names the sh and mh schedulers give them. */
export const IPVS_SCHEDULER_FLAGS = [
  'flag-1',
  'flag-2',
  'flag-3',
  'sh-fallback',
  'sh-port',
  'mh-fallback',
  'mh-port',
] as const;
export type IpvsSchedulerFlag = (typeof IPVS_SCHEDULER_FLAGS)[number];

/** The IPVS schedulers ipvsadm knows. */
export const IPVS_SCHEDULERS = ['rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'dh', 'sh', 'sed', 'nq', 'mh'] as const;
export type IpvsScheduler = (typeof IPVS_SCHEDULERS)[number];

export const IpvsConfigSchema = z
  .object({
    scheduler: z.enum(IPVS_SCHEDULERS).default('rr'),
    /**
     * Scheduler flags on every virtual server (portway's addition: kube-proxy has no such key and sets
     * only mh-port, for mh). sh-* only with sh, mh-* only with mh.
     */
    schedulerFlags: z.array(z.enum(IPVS_SCHEDULER_FLAGS)).default([]),
    /** Set arp_ignore=1 / arp_announce=2 so only the layer2 owner answers ARP for service addresses. */
    strictARP: z.boolean().default(false),
    minSyncPeriod: duration.default('1s'),
    syncPeriod: duration.default('30s'),
    /** IPVS connection timeouts (ipvsadm --set); 0 keeps the kernel's value (milliseconds after parsing). */
    tcpTimeout: duration.default('0s'),
    tcpFinTimeout: duration.default('0s'),
    udpTimeout: duration.default('0s'),
    /** Virtual servers in these CIDRs are not portway's: never deleted (kube-proxy's excludeCIDRs). */
    excludeCIDRs: z.array(cidr).default([]),
    /**
     * The longest a removed TCP real server drains at weight 0 before it is deleted with connections
     * left (portway's addition: kube-proxy waits for them without a bound). 15 minutes = IPVS's own
     * idle timeout of an established TCP connection.
     */
    gracefulTerminationTimeout: duration.default('15m'),
  })
  .strict()
  .superRefine((ipvs, ctx) => {
    ipvs.schedulerFlags.forEach((flag, i) => {
      const owner = flag.startsWith('sh-') ? 'sh' : flag.startsWith('mh-') ? 'mh' : null;
      if (owner !== null && ipvs.scheduler !== owner) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['schedulerFlags', i],
          message: `"${flag}" is a flag of the ${owner} scheduler, not of ${ipvs.scheduler}`,
        });
      }
    });
  });

/**
 * LoadBalancer addresses and layer2 announcement (src/lb, src/l2). With at least one IPAddressPool in the
 * input, portway is the load-balancer implementation: it allocates addresses and those become the
 * Services' LoadBalancer ingress IPs; without pools, status.loadBalancer.ingress is used as written.
 */
function isRegExp(text: string): boolean {
  try {
    new RegExp(text);
    return true;
  } catch {
    return false;
  }
}

export const LoadBalancerConfigSchema = z
  .object({
    /** Allocate addresses from IPAddressPools (false: use status.loadBalancer.ingress as written). */
    enabled: z.boolean().default(true),
    /** Answer ARP for owned addresses (L2Advertisements); needs the native addon and CAP_NET_RAW. */
    layer2: z.boolean().default(true),
    /** spec.loadBalancerClass served (an unset class is served too). */
    loadBalancerClass: z.string().min(1).default('portway.io/lb'),
    /** TCP port of the member-health endpoint (GET /alive) every agent serves and probes on its peers. */
    memberPort: z.number().int().min(1).max(65535).default(7473),
    /** Address the member-health endpoint listens on; '' = every address. */
    memberBindAddress: z.union([z.literal(''), ipAddress]).default(''),
    /** Gap between probes of each peer. */
    memberProbeInterval: positiveDuration.default('300ms'),
    /** Limit of one probe. */
    memberProbeTimeout: positiveDuration.default('1s'),
    /** A peer without a successful probe for this long is dead (its addresses move). */
    memberDownAfter: positiveDuration.default('1s'),
    /** After start, announce nothing for this long, so peers see this agent alive before it takes over. */
    startupHold: duration.default('1500ms'),
    /**
     * Interface names (regexps, joined like MetalLB's announcedInterfacesToExclude) never announced on
     * when an L2Advertisement names no interfaces. Unset: the list MetalLB's manifests ship
     * (src/l2/interface-choice.ts DEFAULT_EXCLUDED_INTERFACES); [] excludes nothing.
     */
    excludeInterfaces: z
      .array(z.string().min(1).refine(isRegExp, 'not a valid regular expression'))
      .optional(),
  })
  .strict();

/** kube-proxy's detectLocalMode values: how traffic from this node's pods is recognised. */
export const DETECT_LOCAL_MODES = [
  'ClusterCIDR',
  'NodeCIDR',
  'BridgeInterface',
  'InterfaceNamePrefix',
] as const;
export type DetectLocalMode = (typeof DETECT_LOCAL_MODES)[number];

/** IFNAMSIZ is 16 bytes with the terminating NUL. */
const MAX_INTERFACE_NAME_BYTES = 15;

/**
 * What is wrong with an interface name (or a name prefix) for an iptables `-i` match, or null.
 * Linux rejects "/", ":" and whitespace in names; quotes and backslashes would be read by
 * iptables-restore, and a leading "!" or "-" by the iptables option parser. A trailing "+" is
 * iptables' wildcard: a bridge name must not have one, a prefix is written without it.
 */
export function interfaceNameProblem(name: string, kind: 'name' | 'prefix'): string | null {
  if (name === '') return 'must not be empty';
  // The prefix gets a "+" appended, which counts against the same limit.
  const max = kind === 'prefix' ? MAX_INTERFACE_NAME_BYTES - 1 : MAX_INTERFACE_NAME_BYTES;
  if (Buffer.byteLength(name, 'utf8') > max) return `"${printableName(name)}" is longer than ${max} bytes`;
  if (!/^[\x21-\x7e]+$/.test(name))
    return `"${printableName(name)}" has a space, control or non-ASCII character`;
  if (/[/:"'\\]/.test(name))
    return `"${name}" has a character that is not allowed in an interface name (/ : " ' \\)`;
  if (name === '.' || name === '..') return `"${name}" is not an interface name`;
  if (name.startsWith('!') || name.startsWith('-')) return `"${name}" must not start with "!" or "-"`;
  if (name.endsWith('+')) {
    return kind === 'prefix'
      ? `"${name}" ends in "+": give the prefix alone (portway writes "-i ${name.slice(0, -1)}+")`
      : `"${name}" ends in "+", which iptables reads as a name prefix (use detectLocalMode InterfaceNamePrefix)`;
  }
  return null;
}

function printableName(name: string): string {
  // eslint-disable-next-line no-control-regex
  return name.replace(/[\u0000-\u001f\u007f]/g, '?');
}

/** kube-proxy's DetectLocalConfiguration, minus clusterCIDRs (portway keeps those at the top level). */
export const DetectLocalConfigSchema = z
  .object({
    /** detectLocalMode BridgeInterface: pods' traffic arrives on this bridge (`-i br0`). */
    bridgeInterface: z.string().default(''),
    /** detectLocalMode InterfaceNamePrefix: pods' interfaces start with this (`-i veth+`). */
    interfaceNamePrefix: z.string().default(''),
  })
  .strict();

/**
 * Ingress address publishing and backend checks (src/ingress). Each entry names an IngressClass and
 * the Service of the ingress controller serving it: Ingresses of that class get the Service's
 * LoadBalancer addresses (or, for a NodePort controller, the node addresses) in their status.
 * Classes not listed are left to their controllers.
 */
export const IngressClassConfigSchema = z
  .object({
    name: z.string().refine((v) => dns1123SubdomainProblem(v) === null, {
      message: 'must be a DNS-1123 subdomain (an IngressClass name)',
    }),
    service: z.string().refine(
      (v) => {
        const [ns, name, ...rest] = v.split('/');
        return rest.length === 0 && ns !== undefined && name !== undefined &&
          dns1123LabelProblem(ns) === null && dns1035LabelProblem(name) === null;
      },
      { message: 'must be "namespace/name" of the ingress controller\'s Service' },
    ),
  })
  .strict();

export const IngressConfigSchema = z
  .object({
    classes: z
      .array(IngressClassConfigSchema)
      .default([])
      .refine((v) => new Set(v.map((c) => c.name)).size === v.length, { message: 'a class is listed twice' }),
  })
  .strict();

export const ConfigSchema = z
  .object({
    /** This node's name (matches EndpointSlice endpoints' nodeName). Defaults to the host name. */
    nodeName: z.string().default(''),
    /** Addresses this node owns: used for NodePorts and the LOCAL address type. Empty = read from interfaces. */
    nodeIPs: z.array(ipAddress).default([]),
    mode: z.enum(['iptables', 'ipvs', 'nftables']).default('iptables'),
    /** Pod CIDRs for the local-traffic detector; empty = no detector. */
    clusterCIDRs: z.array(cidr).default([]),
    /**
     * kube-proxy's detectLocalMode: ClusterCIDR (`-s clusterCIDR`; none when clusterCIDRs has no CIDR
     * of the family), NodeCIDR (`-s` this Node's spec.podCIDRs; none for a family it has no CIDR of),
     * BridgeInterface (`-i detectLocal.bridgeInterface`), InterfaceNamePrefix (`-i prefix+`).
     */
    detectLocalMode: z.enum(DETECT_LOCAL_MODES).default('ClusterCIDR'),
    detectLocal: DetectLocalConfigSchema.default({}),
    masqueradeAll: z.boolean().default(false),
    masqueradeBit: z.number().int().min(0).max(31).default(14),
    /** CIDRs whose node addresses accept NodePorts, or ["primary"]; empty = all node addresses. */
    nodePortAddresses: z
      .array(z.union([z.literal('primary'), cidr]))
      .default([])
      .refine((v) => !v.includes('primary') || v.length === 1, {
        message: '"primary" cannot be combined with CIDRs',
      }),
    metricsBindAddress: bindAddress.default('127.0.0.1:10249'),
    healthzBindAddress: bindAddress.default('0.0.0.0:10256'),
    iptables: IptablesConfigSchema.default({}),
    ipvs: IpvsConfigSchema.default({}),
    loadBalancer: LoadBalancerConfigSchema.default({}),
    ingress: IngressConfigSchema.default({}),
  })
  .strict()
  // kube-proxy checks the ipvs periods only in ipvs mode (the iptables ones always).
  .superRefine((v, ctx) => {
    if (v.mode === 'ipvs') checkSyncPeriods(v.ipvs, ctx, ['ipvs']);
  });

export type Config = z.infer<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;

export const defaultConfig = (): Config => ConfigSchema.parse({});

/** A configuration error: names the key path and what is wrong with it. */
export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly issues: Array<{ path: string; message: string }>,
  ) {
    super(
      `${source}: invalid configuration: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`,
    );
    this.name = 'ConfigError';
  }
}

/** Validate an already-decoded configuration object. Pure. */
export function parseConfig(raw: unknown, source = 'config'): Config {
  const result = ConfigSchema.safeParse(raw ?? {});
  if (result.success) {
    const issues = [...detectLocalIssues(result.data), ...clusterCIDRIssues(result.data)];
    if (issues.length > 0) throw new ConfigError(source, issues);
    return result.data;
  }
  throw new ConfigError(
    source,
    result.error.issues.map((i) => {
      const path = i.path.join('.');
      if (i.code === z.ZodIssueCode.unrecognized_keys) {
        return {
          path: i.keys.map((k) => (path ? `${path}.${k}` : k)).join(', '),
          message: 'unknown key',
        };
      }
      return { path, message: i.message };
    }),
  );
}

/**
 * kube-proxy's clusterCIDR rule: one CIDR, or two of different families (dual-stack). Checked, as
 * kube-proxy does, only when the ClusterCIDR detector uses them. Pure.
 */
export function clusterCIDRIssues(
  config: Pick<Config, 'detectLocalMode' | 'clusterCIDRs'>,
): Array<{ path: string; message: string }> {
  if (config.detectLocalMode !== 'ClusterCIDR') return [];
  const families = config.clusterCIDRs.map((c) => isIP(c.split('/')[0] ?? ''));
  if (families.length > 2 || (families.length === 2 && families[0] === families[1])) {
    return [
      {
        path: 'clusterCIDRs',
        message:
          `at most one CIDR per family (one, or one IPv4 and one IPv6), got ${config.clusterCIDRs.join(', ')}: ` +
          'the local-traffic detector matches one pod CIDR per family',
      },
    ];
  }
  return [];
}

/**
 * The detectLocal settings the chosen detectLocalMode needs (kube-proxy's validateDetectLocalConfiguration:
 * the interface of BridgeInterface / the prefix of InterfaceNamePrefix must be given). Settings of
 * other modes are ignored, as kube-proxy ignores them. Pure.
 */
export function detectLocalIssues(
  config: Pick<Config, 'detectLocalMode' | 'detectLocal'>,
): Array<{ path: string; message: string }> {
  const check = (
    path: string,
    value: string,
    kind: 'name' | 'prefix',
  ): Array<{ path: string; message: string }> => {
    const problem = interfaceNameProblem(value, kind);
    if (problem === null) return [];
    const message = value === '' ? `must be set when detectLocalMode is ${config.detectLocalMode}` : problem;
    return [{ path, message }];
  };
  switch (config.detectLocalMode) {
    case 'BridgeInterface':
      return check('detectLocal.bridgeInterface', config.detectLocal.bridgeInterface, 'name');
    case 'InterfaceNamePrefix':
      return check('detectLocal.interfaceNamePrefix', config.detectLocal.interfaceNamePrefix, 'prefix');
    default:
      return [];
  }
}
