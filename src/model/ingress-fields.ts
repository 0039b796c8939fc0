// Field checks of networking.k8s.io/v1 Ingress that the API server makes (apis/networking/validation):
// an Ingress from a manifest directory has not been through it, and an Ingress whose host or path
// could never match anything must be reported, not silently published.

import { dns1123SubdomainProblem } from './names.js';
import { canonicalIP } from './ip.js';

/** Why `host` is not a valid Ingress rule host (a DNS-1123 subdomain, optionally `*.` + one), or null. */
export function ingressHostProblem(host: string): string | null {
  if (host === '') return null; // no host: the rule matches every host
  if (canonicalIP(host) !== null) return `must be a DNS name, not an IP address (got ${JSON.stringify(host)})`;
  const name = host.startsWith('*.') ? host.slice(2) : host;
  if (name.includes('*')) {
    return `a wildcard host must start with "*." followed by a DNS-1123 subdomain (got ${JSON.stringify(host)})`;
  }
  return dns1123SubdomainProblem(name);
}

const INVALID_SEQUENCES = ['//', '/./', '/../', '%2f', '%2F'];
const INVALID_SUFFIXES = ['/..', '/.'];

/** Why `path` is not valid for `pathType`, or null. */
export function ingressPathProblem(path: string, pathType: 'Exact' | 'Prefix' | 'ImplementationSpecific'): string | null {
  if (pathType === 'ImplementationSpecific') {
    return path === '' || path.startsWith('/') ? null : `must be an absolute path (got ${JSON.stringify(path)})`;
  }
  if (!path.startsWith('/')) return `must be an absolute path for pathType ${pathType} (got ${JSON.stringify(path)})`;
  const seq = INVALID_SEQUENCES.find((s) => path.includes(s));
  if (seq !== undefined) return `must not contain ${JSON.stringify(seq)} (got ${JSON.stringify(path)})`;
  const suffix = INVALID_SUFFIXES.find((s) => path.endsWith(s));
  if (suffix !== undefined) return `must not end with ${JSON.stringify(suffix)} (got ${JSON.stringify(path)})`;
  return null;
}
