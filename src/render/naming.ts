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

// RFC 4648 base32 alphabet (Go's base32.StdEncoding), as byte codes.
const BASE32_ALPHABET = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 'latin1');
/** 16 base32 characters encode exactly the first 10 bytes (80 bits) of the digest. */
const HASH_CHARS = 16;
/** Longest prefix written in front of a hash (KUBE-SVC-, KUBE-SEP-, …). */
const MAX_PREFIX_BYTES = 16;
// Scratch space for one name: the prefix is copied in, the 16 hash characters encoded after it, and
// one latin1 decode yields a flat string. Building the name with `+=` would leave a rope of one-char
// strings behind every chain name (~160 bytes instead of ~48, for ~110k names at 10k Services).
const nameScratch = Buffer.alloc(MAX_PREFIX_BYTES + HASH_CHARS);

// crypto.hash (Node ≥ 20.12) is a one-shot digest, and its hex output is a plain JS string: about
// 2× faster than asking for a Buffer (whose backing store is allocated outside the JS heap per call)
// and much faster than createHash. Rendering 10k Services hashes ~120k names.
const oneShotHash = (crypto as { hash?: (alg: string, data: string, enc: 'hex') => string }).hash;

function sha256Hex(input: string): string {
  return oneShotHash !== undefined
    ? oneShotHash('sha256', input, 'hex')
    : crypto.createHash('sha256').update(input, 'utf8').digest('hex');
}

/** Value of one lower-case hex digit's char code. */
function hexDigit(code: number): number {
  return code <= 57 ? code - 48 : code - 87;
}

/** prefix + first 16 chars of base32(sha256(input)), as one flat string. */
function hashedName(prefix: string, input: string): string {
  const hex = sha256Hex(input);
  const a = BASE32_ALPHABET;
  let o = nameScratch.write(prefix, 0, MAX_PREFIX_BYTES, 'latin1');
  // 16 base32 characters = 80 bits = the first 20 hex digits; 5 hex digits make 4 characters.
  for (let h = 0; h < 20; h += 5) {
    const v =
      (hexDigit(hex.charCodeAt(h)) << 16) |
      (hexDigit(hex.charCodeAt(h + 1)) << 12) |
      (hexDigit(hex.charCodeAt(h + 2)) << 8) |
      (hexDigit(hex.charCodeAt(h + 3)) << 4) |
      hexDigit(hex.charCodeAt(h + 4));
    nameScratch[o++] = a[(v >> 15) & 31] ?? 0;
    nameScratch[o++] = a[(v >> 10) & 31] ?? 0;
    nameScratch[o++] = a[(v >> 5) & 31] ?? 0;
    nameScratch[o++] = a[v & 31] ?? 0;
  }
  return nameScratch.toString('latin1', 0, o);
}

function hash16(input: string): string {
  return hashedName('', input);
}

/** kube-proxy's lower-cased protocol as used in hashes and `-p`/`-m` arguments. */
export function protocolToken(protocol: Protocol): 'tcp' | 'udp' | 'sctp' {
  return protocol === 'TCP' ? 'tcp' : protocol === 'UDP' ? 'udp' : 'sctp';
}

/** portProtoHash: first 16 chars of base32(sha256(servicePortName + lower-case protocol)). */
export function portProtoHash(servicePortName: string, protocol: Protocol): string {
  return hash16(servicePortName + protocolToken(protocol));
}

/**
 * The per-service chain names (SVC, SVL, EXT, FW) share one portProtoHash: hash once, then
 * `withHash` builds each name as a flat string (no rope of prefix + hash).
 */
export function perServiceChainNames(
  servicePortName: string,
  protocol: Protocol,
): { hash: string; service: string; localService: string; external: string; firewall: string } {
  const hash = portProtoHash(servicePortName, protocol);
  return {
    hash,
    service: withHash(SERVICE_CHAIN_PREFIX, hash),
    localService: withHash(LOCAL_SERVICE_CHAIN_PREFIX, hash),
    external: withHash(EXTERNAL_CHAIN_PREFIX, hash),
    firewall: withHash(FIREWALL_CHAIN_PREFIX, hash),
  };
}

/** prefix + hash as one flat string (a short "+" of ≥13 characters would make a two-piece rope). */
function withHash(prefix: string, hash: string): string {
  let o = nameScratch.write(prefix, 0, MAX_PREFIX_BYTES, 'latin1');
  o += nameScratch.write(hash, o, HASH_CHARS, 'latin1');
  return nameScratch.toString('latin1', 0, o);
}

export const serviceChainName = (servicePortName: string, protocol: Protocol): string =>
  withHash(SERVICE_CHAIN_PREFIX, portProtoHash(servicePortName, protocol));
export const localServiceChainName = (servicePortName: string, protocol: Protocol): string =>
  withHash(LOCAL_SERVICE_CHAIN_PREFIX, portProtoHash(servicePortName, protocol));
export const firewallChainName = (servicePortName: string, protocol: Protocol): string =>
  withHash(FIREWALL_CHAIN_PREFIX, portProtoHash(servicePortName, protocol));
export const externalChainName = (servicePortName: string, protocol: Protocol): string =>
  withHash(EXTERNAL_CHAIN_PREFIX, portProtoHash(servicePortName, protocol));

/**
 * KUBE-SEP- + base32(sha256(servicePortName + protocol + endpoint)) where endpoint is
 * "ip:port" or "[ipv6]:port" (joinHostPort).
 */
export function endpointChainName(servicePortName: string, protocol: Protocol, endpoint: string): string {
  return hashedName(ENDPOINT_CHAIN_PREFIX, servicePortName + protocolToken(protocol) + endpoint);
}

/** The owner key diff/trace use for per-service chains: "ns/svc:port/tcp". */
export function chainOwner(sp: Pick<ServicePort, 'id' | 'protocol'>): string {
  return `${sp.id}/${protocolToken(sp.protocol)}`;
}

/** True for the per-service chain names portway (and kube-proxy) create and may delete. */
export function isServiceChainName(name: string): boolean {
  return PER_SERVICE_PREFIXES.some((p) => name.startsWith(p));
}
