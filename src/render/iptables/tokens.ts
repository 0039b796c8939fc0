// Safe tokens for iptables-restore lines. Every value that came from a user (names, addresses) goes
// through here, so no quote, backslash, newline or other control character can split or extend a rule.
import type { IPFamily } from '../../model/cluster-state.js';
import { canonicalIP, ipFamilyOf, parseCIDR } from '../../model/ip.js';

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

/** xt_comment keeps at most 255 bytes; iptables-restore rejects longer comments. */
const MAX_COMMENT_BYTES = 255;
const BARE_COMMENT = /^[A-Za-z0-9._/:@+=,-]+$/;
const PLAIN_ASCII = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/**
 * The comment text as one restore token: characters that iptables-restore would interpret (`"`,
 * `\`) and control characters are dropped, the text is cut to 255 bytes, and it is quoted unless it
 * is a plain word — the same shape kube-proxy writes ("ns/svc:p80" bare, "ns/svc:p80 cluster IP" quoted).
 */
export function commentToken(text: string): string {
  // Fast path: plain printable ASCII within the limit (every comment built from valid names).
  if (text.length <= MAX_COMMENT_BYTES && PLAIN_ASCII.test(text)) {
    return text !== '' && BARE_COMMENT.test(text) ? text : `"${text}"`;
  }
  // eslint-disable-next-line no-control-regex
  let clean = text.replace(/["\\\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '');
  if (Buffer.byteLength(clean, 'utf8') > MAX_COMMENT_BYTES) {
    clean = Buffer.from(clean, 'utf8')
      .subarray(0, MAX_COMMENT_BYTES)
      .toString('utf8')
      .replace(/\uFFFD+$/, '');
  }
  return clean !== '' && BARE_COMMENT.test(clean) ? clean : `"${clean}"`;
}

export function commentArgs(text: string): string[] {
  return ['-m', 'comment', '--comment', commentToken(text)];
}

/** The comment match as one token string ("-m comment --comment …"), for hot paths. */
export function commentMatch(text: string): string {
  return '-m comment --comment ' + commentToken(text);
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

/** For error messages only: never echo control characters back into logs. */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]/g, '?');
}
