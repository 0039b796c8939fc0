// Names of portway's per-service nftables objects. They live in portway's own table, so they need not
// match kube-proxy's; they must be stable (a changed name is a stale chain on an upgraded node) and
// readable in `nft list`: "<prefix>-<HASH8>-<namespace>/<name>/<protocol>/<portName>".
import { createHash } from 'node:crypto';
import type { ServicePort } from '../../model/cluster-state.js';
import { protocolToken } from '../naming.js';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** First 8 characters of base32(sha256(text)): 40 bits, enough to keep same-named ports apart. */
function hash8(text: string): string {
  const digest = createHash('sha256').update(text, 'utf8').digest();
  // 8 base32 characters = the first 5 bytes.
  let bits = 0n;
  for (let i = 0; i < 5; i++) bits = (bits << 8n) | BigInt(digest[i] ?? 0);
  let out = '';
  for (let i = 7; i >= 0; i--) out += BASE32[Number((bits >> BigInt(i * 5)) & 31n)];
  return out;
}

/**
 * The part every object of one service port shares: "ABCDEFGH-ns/svc/tcp/http" (an unnamed port
 * ends in "/"). Namespace, Service and port names are DNS labels and IANA names (checked at the
 * edge), so the result is an nft identifier without quoting.
 */
export function servicePortNameBase(
  sp: Pick<ServicePort, 'namespace' | 'serviceName' | 'portName' | 'protocol'>,
): string {
  const readable = `${sp.namespace}/${sp.serviceName}/${protocolToken(sp.protocol)}/${sp.portName}`;
  return `${hash8(readable)}-${readable}`;
}

/** "10.244.1.1/8080", "fd00.244..1/8080": an endpoint inside an identifier (nft names take no ':'). */
export function endpointNamePart(ip: string, port: number): string {
  return `${ip.replaceAll(':', '.')}/${port}`;
}

export const serviceChain = (base: string): string => `svc-${base}`;
export const localChain = (base: string): string => `svl-${base}`;
export const externalChain = (base: string): string => `ext-${base}`;
export const firewallChain = (base: string): string => `fw-${base}`;
export const clusterEndpointsMap = (base: string): string => `eps-${base}`;
export const localEndpointsMap = (base: string): string => `epl-${base}`;
export const allowedSourcesSet = (base: string): string => `src-${base}`;
export const endpointChain = (base: string, ep: string): string => `ep-${base}__${ep}`;
export const affinitySet = (base: string, ep: string): string => `aff-${base}__${ep}`;
