// kube-proxy's hashed chain names (pkg/proxy/iptables/proxier.go). Pure.
// These names are the contract with every node already programmed by kube-proxy or by an
// older portway: a changed name leaves stale chains behind, so tests pin literal values.
import * as crypto from 'node:crypto';
import type { Protocol, ServicePort } from '../model/cluster-state.js';

export const SERVICE_CHAIN_PREFIX = 'KUBE-SVC-';
export const LOCAL_SERVICE_CHAIN_PREFIX = 'KUBE-SVL-';
export const FIREWALL_CHAIN_PREFIX = 'KUBE-FW-';
export const EXTERNAL_CHAIN_PREFIX = 'KUBE-EXT-';
export const ENDPOINT_CHAIN_PREFIX = 'KUBE-SEP-';

const PER_SERVICE_PREFIXES = [
  SERVICE_CHAIN_PREFIX,
  LOCAL_SERVICE_CHAIN_PREFIX,
  ENDPOINT_CHAIN_PREFIX,
  FIREWALL_CHAIN_PREFIX,
  EXTERNAL_CHAIN_PREFIX,
];

const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 (Go's base32.StdEncoding) of the first bytes needed for `chars` output characters. */
function base32Prefix(bytes: Uint8Array, chars: number): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (let i = 0; i < bytes.length && out.length < chars; i++) {
    buffer = ((buffer << 8) | (bytes[i] ?? 0)) & 0xffff;
    bits += 8;
    while (bits >= 5 && out.length < chars) {
      out += BASE32_ALPHABET[(buffer >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}

// crypto.hash (Node ≥ 20.12) is a one-shot digest about 3× faster than createHash; rendering 10k
// Services hashes ~120k names.
const oneShotHash = (crypto as { hash?: (alg: string, data: string, enc: 'buffer') => Buffer }).hash;

function sha256(input: string): Uint8Array {
  return oneShotHash !== undefined
    ? oneShotHash('sha256', input, 'buffer')
    : crypto.createHash('sha256').update(input, 'utf8').digest();
}

function hash16(input: string): string {
  return base32Prefix(sha256(input), 16);
}

/** kube-proxy's lower-cased protocol as used in hashes and `-p`/`-m` arguments. */
export function protocolToken(protocol: Protocol): 'tcp' | 'udp' | 'sctp' {
  return protocol === 'TCP' ? 'tcp' : protocol === 'UDP' ? 'udp' : 'sctp';
}

/** portProtoHash: first 16 chars of base32(sha256(servicePortName + lower-case protocol)). */
export function portProtoHash(servicePortName: string, protocol: Protocol): string {
  return hash16(servicePortName + protocolToken(protocol));
}

export const serviceChainName = (servicePortName: string, protocol: Protocol): string =>
  SERVICE_CHAIN_PREFIX + portProtoHash(servicePortName, protocol);
export const localServiceChainName = (servicePortName: string, protocol: Protocol): string =>
  LOCAL_SERVICE_CHAIN_PREFIX + portProtoHash(servicePortName, protocol);
export const firewallChainName = (servicePortName: string, protocol: Protocol): string =>
  FIREWALL_CHAIN_PREFIX + portProtoHash(servicePortName, protocol);
export const externalChainName = (servicePortName: string, protocol: Protocol): string =>
  EXTERNAL_CHAIN_PREFIX + portProtoHash(servicePortName, protocol);

/**
 * KUBE-SEP- + base32(sha256(servicePortName + protocol + endpoint)) where endpoint is
 * "ip:port" or "[ipv6]:port" (joinHostPort).
 */
export function endpointChainName(servicePortName: string, protocol: Protocol, endpoint: string): string {
  return ENDPOINT_CHAIN_PREFIX + hash16(servicePortName + protocolToken(protocol) + endpoint);
}

/** The owner key diff/trace use for per-service chains: "ns/svc:port/tcp". */
export function chainOwner(sp: Pick<ServicePort, 'id' | 'protocol'>): string {
  return `${sp.id}/${protocolToken(sp.protocol)}`;
}

/** True for the per-service chain names portway (and kube-proxy) create and may delete. */
export function isServiceChainName(name: string): boolean {
  return PER_SERVICE_PREFIXES.some((p) => name.startsWith(p));
}
