// Checks of the values a renderer turns into kernel input: every mode meets the same bad input (an
// address of the wrong family, a port out of range) and reports it the same way, naming the object
// and field, before any text is written.
import type { IPFamily } from '../model/cluster-state.js';
import { canonicalIP, ipFamilyOf, parseCIDR } from '../model/ip.js';

/** A ClusterState or option value the renderer cannot turn into a rule; names the object and field. */
export class RenderInputError extends Error {
  constructor(
    readonly object: string,
    readonly field: string,
    readonly detail: string,
  ) {
    super(`${object}: ${field}: ${detail}`);
    this.name = 'RenderInputError';
  }
}

/** The address exactly as the model promises it (canonical, of the family), or a RenderInputError. */
const CANONICAL_IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

export function checkedIP(ip: string, family: IPFamily, object: string, field: string): string {
  if (family === 'IPv4' && CANONICAL_IPV4.test(ip)) return ip;
  if (canonicalIP(ip) !== ip || ipFamilyOf(ip) !== family) {
    throw new RenderInputError(object, field, `"${printable(ip)}" is not a canonical ${family} address`);
  }
  return ip;
}

/** A masked CIDR of the family, or a RenderInputError. */
export function checkedCIDR(cidr: string, family: IPFamily, object: string, field: string): string {
  const parsed = parseCIDR(cidr);
  if (parsed === null || parsed.family !== family) {
    throw new RenderInputError(object, field, `"${printable(cidr)}" is not an ${family} CIDR`);
  }
  return parsed.text;
}

export function checkedPort(port: number, object: string, field: string, allowZero = false): number {
  if (!Number.isInteger(port) || port < (allowZero ? 0 : 1) || port > 65535) {
    throw new RenderInputError(object, field, `${String(port)} is not a port number`);
  }
  return port;
}

/** The fwmark bit used to mark packets for masquerade (kube-proxy's masqueradeBit, 0..31), checked. */
export function checkedMasqueradeBit(bit: number): number {
  if (!Number.isInteger(bit) || bit < 0 || bit > 31) {
    throw new RenderInputError('options', 'masqueradeBit', `${String(bit)} is not a bit number 0..31`);
  }
  return bit;
}

/** For error messages only: never echo control characters back into logs. */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]/g, '?');
}
