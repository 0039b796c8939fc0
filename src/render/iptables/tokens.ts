// Safe tokens for iptables-restore lines. Every value that came from a user (names, addresses) goes
// through here, so no quote, backslash, newline or other control character can split or extend a rule.
// The input checks are mode-neutral (src/proxy); re-exported here for the renderer's callers.
export { checkedCIDR, checkedIP, checkedPort, RenderInputError } from '../../proxy/input-checks.js';

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

