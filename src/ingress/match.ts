// Which Ingress path (and backend) an ingress controller picks for a request's host and path, as
// networking.k8s.io/v1 specifies it. Pure.
//
// - Host: an exact host rule wins over a wildcard `*.example.com` (which matches exactly one label in
//   front: a.example.com, not example.com nor a.b.example.com), which wins over a rule with no host.
//   The rules of every Ingress of the class for the chosen host are merged, as controllers do.
// - Path: Exact is equality; Prefix compares path elements split by '/' (trailing slash ignored, /foo
//   does not match /foobar). ImplementationSpecific is up to the controller: portway matches it as
//   Prefix (what ingress-nginx does for a path without regex) and says so in the result.
// - Among matching paths the longest wins; at equal length Exact beats Prefix; then the first Ingress
//   in (namespace, name) order.
// - No path matches: the defaultBackend of an Ingress of the class (the first, in that order), else
//   the controller's own default (usually a 404).

import type { IngressBackend, IngressInfo, IngressPathType } from '../model/cluster-state.js';

export type HostMatch = 'exact' | 'wildcard' | 'any';

export interface RouteMatch {
  ingress: { namespace: string; name: string };
  /** The rule host that matched ('' for a rule with no host or the defaultBackend). */
  host: string;
  hostMatch: HostMatch;
  /** The matching path, or null for the defaultBackend. */
  path: { path: string; pathType: IngressPathType } | null;
  backend: IngressBackend;
  /** Set when the match rests on a guess about the controller (ImplementationSpecific). */
  note?: string;
}

/** Does rule host `ruleHost` match request host `host` (lower-cased, without port), and how. */
export function matchHost(ruleHost: string, host: string): HostMatch | null {
  if (ruleHost === '') return 'any';
  if (ruleHost === host) return 'exact';
  if (ruleHost.startsWith('*.')) {
    const suffix = ruleHost.slice(1); // ".example.com"
    if (!host.endsWith(suffix)) return null;
    const label = host.slice(0, host.length - suffix.length);
    return label !== '' && !label.includes('.') ? 'wildcard' : null;
  }
  return null;
}

function elements(path: string): string[] {
  return path.split('/').filter((e) => e !== '');
}

/** Does an Ingress path of `pathType` match request path `requestPath`. */
export function matchPath(path: string, pathType: IngressPathType, requestPath: string): boolean {
  if (pathType === 'Exact') return path === requestPath;
  const want = elements(path === '' ? '/' : path);
  const got = elements(requestPath);
  return want.length <= got.length && want.every((e, i) => got[i] === e);
}

/** Request host as controllers compare it: lower-case, without a port. */
export function normaliseRequestHost(host: string): string {
  const h = host.toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const colon = h.lastIndexOf(':');
  return colon >= 0 && h.indexOf(':') === colon ? h.slice(0, colon) : h;
}

const HOST_RANK: Record<HostMatch, number> = { exact: 0, wildcard: 1, any: 2 };

/**
 * The route the controller picks for `host` and `requestPath` among `ingresses` (all of one class), or
 * null when nothing — not even a defaultBackend — applies.
 */
export function matchRoute(ingresses: readonly IngressInfo[], host: string, requestPath: string): RouteMatch | null {
  const wanted = normaliseRequestHost(host);
  const ordered = [...ingresses].sort((a, b) =>
    a.namespace === b.namespace ? (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) : a.namespace < b.namespace ? -1 : 1,
  );
  // The most specific host kind present decides which merged rule set is used.
  let best: HostMatch | null = null;
  for (const ing of ordered)
    for (const rule of ing.rules) {
      const m = matchHost(rule.host, wanted);
      if (m !== null && rule.paths.length > 0 && (best === null || HOST_RANK[m] < HOST_RANK[best])) best = m;
    }
  let chosen: RouteMatch | null = null;
  let chosenLength = -1;
  if (best !== null) {
    for (const ing of ordered)
      for (const rule of ing.rules) {
        if (matchHost(rule.host, wanted) !== best) continue;
        for (const p of rule.paths) {
          if (!matchPath(p.path, p.pathType, requestPath)) continue;
          const length = p.path === '' ? 1 : p.path.replace(/\/+$/, '').length || 1;
          const better =
            length > chosenLength ||
            (length === chosenLength && p.pathType === 'Exact' && chosen?.path?.pathType !== 'Exact');
          if (!better) continue;
          chosenLength = length;
          chosen = {
            ingress: { namespace: ing.namespace, name: ing.name },
            host: rule.host,
            hostMatch: best,
            path: { path: p.path, pathType: p.pathType },
            backend: p.backend,
          };
          if (p.pathType === 'ImplementationSpecific') {
            chosen.note = 'ImplementationSpecific path matched as Prefix; the controller may match it differently';
          }
        }
      }
  }
  if (chosen) return chosen;
  const fallback = ordered.find((i) => i.defaultBackend !== undefined);
  if (!fallback) return null;
  return {
    ingress: { namespace: fallback.namespace, name: fallback.name },
    host: '',
    hostMatch: 'any',
    path: null,
    backend: fallback.defaultBackend!,
  };
}
