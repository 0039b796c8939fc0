// A reader of `ipvsadm-save -n` / `ipvsadm-restore` lines: what a virtual-server table holds, so the
// rendered part can be checked without IPVS in the kernel and the apply side can read the kernel's.
import { isIP } from 'node:net';
import { IPVS_SCHEDULER_FLAGS, IPVS_SCHEDULERS } from '../../config/config.js';
import type { IpvsProtocol, IpvsScheduler, IpvsSchedulerFlag, IpvsTimeouts } from './types.js';

export interface ParsedRealServer {
  address: string;
  port: number;
  weight: number;
  forwarding: 'masquerade' | 'gatewaying' | 'ipip';
}

export interface ParsedVirtualServer {
  protocol: IpvsProtocol;
  address: string;
  port: number;
  scheduler: IpvsScheduler;
  flags: IpvsSchedulerFlag[];
  persistenceTimeoutSeconds: number | null;
  realServers: ParsedRealServer[];
}

export interface ParsedIpvsTable {
  virtualServers: ParsedVirtualServer[];
  timeouts: IpvsTimeouts | null;
}

/** A line the reader cannot take, with its number (1-based) and text. */
export class IpvsadmParseError extends Error {
  constructor(
    readonly line: number,
    readonly text: string,
    readonly detail: string,
  ) {
    super(`ipvsadm rules line ${line}: ${detail}: ${text}`);
    this.name = 'IpvsadmParseError';
  }
}

const SCHEDULERS = new Set<string>(IPVS_SCHEDULERS);
const FLAGS = new Set<string>(IPVS_SCHEDULER_FLAGS);
const PROTOCOLS: Record<string, IpvsProtocol> = {
  '-t': 'TCP',
  '--tcp-service': 'TCP',
  '-u': 'UDP',
  '--udp-service': 'UDP',
  '--sctp-service': 'SCTP',
};

/** "10.0.0.1:80" or "[fd00::1]:80" → address and port; null when malformed. Also reads `ipvsadm -Ln` (src/dataplane/ipvs-live.ts). */
export function splitHostPort(text: string): { address: string; port: number } | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(text);
  if (m === null) return null;
  const address = m[1] ?? m[2] ?? '';
  const port = Number(m[3]);
  const family = isIP(address);
  if (family === 0 || (m[1] !== undefined) !== (family === 6) || port > 65535) return null;
  return { address, port };
}

/** Parse ipvsadm-save -n output (or ipvsadm-restore input). Throws IpvsadmParseError on any bad line. */
export function parseIpvsadmRules(text: string): ParsedIpvsTable {
  const byKey = new Map<string, ParsedVirtualServer>();
  let timeouts: IpvsTimeouts | null = null;
  const lines = text.split('\n');
  lines.forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fail = (detail: string): never => {
      throw new IpvsadmParseError(index + 1, raw, detail);
    };
    const words = line.split(/\s+/);
    const command = words[0];
    if (command === '--set') {
      const values = words.slice(1).map(Number);
      if (values.length !== 3 || values.some((v) => !Number.isInteger(v) || v < 0))
        fail('--set takes tcp tcpfin udp seconds');
      timeouts = { tcpSeconds: values[0]!, tcpFinSeconds: values[1]!, udpSeconds: values[2]! };
      return;
    }
    if (command !== '-A' && command !== '-a') fail(`unknown command ${command ?? ''}`);
    let protocol: IpvsProtocol | undefined;
    let service: { address: string; port: number } | null = null;
    let scheduler: string | undefined;
    let flags: IpvsSchedulerFlag[] = [];
    let persistence: number | null = null;
    let server: { address: string; port: number } | null = null;
    let weight: number | undefined;
    let forwarding: ParsedRealServer['forwarding'] | undefined;
    for (let i = 1; i < words.length; i++) {
      const word = words[i]!;
      const value = (): string => words[++i] ?? fail(`${word} needs a value`);
      if (PROTOCOLS[word] !== undefined) {
        protocol = PROTOCOLS[word];
        service = splitHostPort(value()) ?? fail('a service address is host:port ([v6]:port)');
      } else if (word === '-s' || word === '--scheduler') {
        scheduler = value();
        if (!SCHEDULERS.has(scheduler)) fail(`unknown scheduler ${scheduler}`);
      } else if (word === '-b' || word === '--sched-flags') {
        flags = value().split(',') as IpvsSchedulerFlag[];
        for (const f of flags) if (!FLAGS.has(f)) fail(`unknown scheduler flag ${f}`);
      } else if (word === '-p' || word === '--persistent') {
        persistence = Number(value());
        if (!Number.isInteger(persistence) || persistence < 0) fail('-p takes seconds');
      } else if (word === '-r' || word === '--real-server') {
        server = splitHostPort(value()) ?? fail('a real server is host:port ([v6]:port)');
      } else if (word === '-w' || word === '--weight') {
        weight = Number(value());
        if (!Number.isInteger(weight) || weight < 0 || weight > 65535) fail('-w takes 0..65535');
      } else if (word === '-m' || word === '--masquerading') {
        forwarding = 'masquerade';
      } else if (word === '-g' || word === '--gatewaying') {
        forwarding = 'gatewaying';
      } else if (word === '-i' || word === '--ipip') {
        forwarding = 'ipip';
      } else {
        fail(`unknown option ${word}`);
      }
    }
    if (protocol === undefined || service === null) return fail('no service (-t, -u or --sctp-service)');
    const key = `${protocol} ${service.address} ${service.port}`;
    if (command === '-A') {
      if (byKey.has(key)) fail('virtual server added twice');
      byKey.set(key, {
        protocol,
        address: service.address,
        port: service.port,
        scheduler: (scheduler ?? 'wlc') as IpvsScheduler, // ipvsadm's default scheduler
        flags,
        persistenceTimeoutSeconds: persistence,
        realServers: [],
      });
      return;
    }
    const vs = byKey.get(key) ?? fail('real server of a virtual server not added before');
    if (server === null) return fail('no real server (-r)');
    if (vs.realServers.some((r) => r.address === server.address && r.port === server.port))
      fail('real server added twice');
    vs.realServers.push({
      address: server.address,
      port: server.port,
      weight: weight ?? 1,
      forwarding: forwarding ?? 'gatewaying',
    });
  });
  return { virtualServers: [...byKey.values()], timeouts };
}
