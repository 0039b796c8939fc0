// Names as Kubernetes validates them, and quoting for names that are not. Pure.
//
// Every name portway reads ends up in rule comments, diff tables, pull-request comments, logs and
// metrics. Kubernetes would never store an object whose name holds a newline, a quote or markup, so
// portway refuses such objects too (reported and skipped): names it prints are then plain words,
// and two different (namespace, name, port) triples can never print or hash the same.
// The rules are apimachinery's (k8s.io/apimachinery/pkg/util/validation): IsDNS1123Label,
// IsDNS1123Subdomain, IsDNS1035Label, IsValidPortName (IANA_SVC_NAME) and IsValidLabelValue.
import type { KnownKind } from './k8s-schemas.js';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const IANA_SVC_NAME = /^[-a-z0-9]+$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** A message saying why `name` is not a DNS-1123 label (namespaces), or null when it is one. */
export function dns1123LabelProblem(name: string): string | null {
  if (name.length <= 63 && DNS1123_LABEL.test(name)) return null;
  return (
    `must be a DNS-1123 label: at most 63 characters of a-z, 0-9 and '-', ` +
    `starting and ending with a letter or digit (got ${quoteText(name)})`
  );
}

/** A message saying why `name` is not a DNS-1123 subdomain (EndpointSlice, Node, Ingress, pool names …), or null. */
export function dns1123SubdomainProblem(name: string): string | null {
  if (name.length <= 253 && DNS1123_SUBDOMAIN.test(name)) return null;
  return (
    `must be a DNS-1123 subdomain: at most 253 characters of a-z, 0-9, '-' and '.', ` +
    `each dot-separated part starting and ending with a letter or digit (got ${quoteText(name)})`
  );
}

/** A message saying why `name` is not a DNS-1035 label (Service names), or null. */
export function dns1035LabelProblem(name: string): string | null {
  if (name.length <= 63 && DNS1035_LABEL.test(name)) return null;
  return (
    `must be a DNS-1035 label: at most 63 characters of a-z, 0-9 and '-', ` +
    `starting with a letter and ending with a letter or digit (got ${quoteText(name)})`
  );
}

/**
 * A message saying why `name` is not an IANA_SVC_NAME (Service port names, Ingress backend port
 * names), or null: at most 15 characters of a-z, 0-9 and '-', at least one letter, no '-' at either
 * end and no "--".
 */
export function ianaSvcNameProblem(name: string): string | null {
  if (
    name.length >= 1 &&
    name.length <= 15 &&
    IANA_SVC_NAME.test(name) &&
    /[a-z]/.test(name) &&
    !name.startsWith('-') &&
    !name.endsWith('-') &&
    !name.includes('--')
  )
    return null;
  return (
    `must be an IANA service name: at most 15 characters of a-z, 0-9 and '-', with at least one ` +
    `letter, no '-' at either end and no "--" (got ${quoteText(name)})`
  );
}

/** A message saying why `value` is not a label value (may be empty), or null. */
export function labelValueProblem(value: string): string | null {
  if (value.length <= 63 && LABEL_VALUE.test(value)) return null;
  return (
    `must be a label value: at most 63 characters of A-Z, a-z, 0-9, '-', '_' and '.', ` +
    `starting and ending with a letter or digit (got ${quoteText(value)})`
  );
}

/**
 * A message saying why `name` is not a Linux network interface name, or null: 1-15 bytes, not "."
 * or "..", no '/', ':', whitespace or control characters (the kernel's dev_valid_name, plus ':'
 * which `ip` reads as an alias separator).
 */
export function interfaceNameProblem(name: string): string | null {
  // eslint-disable-next-line no-control-regex
  const bad = /[/:\s\u0000-\u001f\u007f]/.test(name) || name === '.' || name === '..';
  if (!bad && name.length >= 1 && Buffer.byteLength(name, 'utf8') <= 15) return null;
  return `must be an interface name: 1-15 bytes without '/', ':' or spaces (got ${quoteText(name)})`;
}

/** Characters JSON leaves as they are but a terminal or a reader would act on: C1 controls, bidi and invisible marks. */
const INVISIBLE = /[\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;
const CONTROL_OR_INVISIBLE =
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

const unicodeEscape = (c: string): string => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0');

/** A string as a JSON string literal in which every control, bidi or invisible character is escaped. */
export function quoteText(text: string): string {
  return JSON.stringify(text).replace(INVISIBLE, unicodeEscape);
}

/** Text for one line of terminal or log output: control, bidi and invisible characters become \uXXXX. */
export function printableLine(text: string): string {
  return text.replace(CONTROL_OR_INVISIBLE, unicodeEscape);
}

/** A multi-line text output with every line made printable (printableLine), ending in one newline. */
export function printableLines(text: string): string {
  return text.replace(/\n$/, '').split('\n').map(printableLine).join('\n') + '\n';
}

/** A name as it may be printed inside a label such as "ns/name": as is when plain, quoted otherwise. */
export function printableName(name: string): string {
  return /^[A-Za-z0-9._-]+$/.test(name) ? name : quoteText(name);
}

/** How Kubernetes validates metadata.name of each kind portway reads. */
const NAME_RULES: Record<KnownKind, (name: string) => string | null> = {
  Service: dns1035LabelProblem,
  EndpointSlice: dns1123SubdomainProblem,
  Endpoints: dns1123SubdomainProblem,
  Node: dns1123SubdomainProblem,
  Namespace: dns1123LabelProblem,
  Ingress: dns1123SubdomainProblem,
  IngressClass: dns1123SubdomainProblem,
  // Custom resources: the API server validates their names as DNS-1123 subdomains.
  IPAddressPool: dns1123SubdomainProblem,
  L2Advertisement: dns1123SubdomainProblem,
};

/**
 * (field, message) for a metadata.name or metadata.namespace that Kubernetes would refuse. A missing,
 * empty or non-string name or namespace is left to the schema, which words that already.
 */
export function metadataNameProblems(kind: KnownKind, metadata: unknown): Array<[string, string]> {
  if (typeof metadata !== 'object' || metadata === null) return [];
  const { name, namespace } = metadata as Record<string, unknown>;
  const out: Array<[string, string]> = [];
  if (typeof name === 'string' && name !== '') {
    const problem = NAME_RULES[kind](name);
    if (problem !== null) out.push(['metadata.name', problem]);
  }
  if (typeof namespace === 'string' && namespace !== '') {
    const problem = dns1123LabelProblem(namespace);
    if (problem !== null) out.push(['metadata.namespace', problem]);
  }
  return out;
}
