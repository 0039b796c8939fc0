// Backend checks of every Ingress rule path and defaultBackend: the Service exists, the port exists
// (by number or by name), and it has ready endpoints. Each check returns a state and a reason a person
// can act on, never a bare boolean (DESIGN §4.7). Pure.

import type { ClusterState, IngressBackend, IngressInfo, IngressPathType, ServiceInfo, ServicePort } from '../model/cluster-state.js';

export type BackendState = 'ok' | 'noService' | 'noPort' | 'noEndpoints' | 'notChecked';
export const BACKEND_STATES: readonly BackendState[] = ['ok', 'noService', 'noPort', 'noEndpoints', 'notChecked'];

export interface BackendCheck {
  state: BackendState;
  /** "ns/name:port" of the backend Service as written, or "Kind/name" of a resource backend. */
  target: string;
  /** Ready endpoints (state ok), 0 otherwise. */
  endpoints: number;
  /** Why the state is not ok ('' when ok). */
  reason: string;
}

export interface IngressBackendCheck extends BackendCheck {
  /** The rule host ('' for no host or the defaultBackend). */
  host: string;
  /** The rule path, or null for the defaultBackend. */
  path: { path: string; pathType: IngressPathType } | null;
}

export interface ServiceIndex {
  services: Map<string, ServiceInfo>;
  ports: Map<string, ServicePort[]>;
}

/** Services and their proxied ports by "ns/name", built once per state. */
export function indexServices(state: Pick<ClusterState, 'services' | 'servicePorts'>): ServiceIndex {
  const services = new Map(state.services.map((s) => [`${s.namespace}/${s.name}`, s]));
  const ports = new Map<string, ServicePort[]>();
  for (const sp of state.servicePorts) {
    const key = `${sp.namespace}/${sp.serviceName}`;
    const list = ports.get(key);
    if (list) list.push(sp);
    else ports.set(key, [sp]);
  }
  return { services, ports };
}

/** Check one backend of an Ingress in `namespace`. */
export function checkBackend(namespace: string, backend: IngressBackend, index: ServiceIndex): BackendCheck {
  if ('resource' in backend) {
    const r = backend.resource;
    const target = `${r.apiGroup === '' ? '' : `${r.apiGroup}/`}${r.kind}/${r.name}`;
    return { state: 'notChecked', target, endpoints: 0, reason: 'resource backend: not a Service, portway cannot check it' };
  }
  const { name, port } = backend.service;
  const key = `${namespace}/${name}`;
  const target = `${key}:${port}`;
  const svc = index.services.get(key);
  if (!svc) return { state: 'noService', target, endpoints: 0, reason: `Service ${key} not found` };
  if (svc.type === 'ExternalName') {
    return { state: 'notChecked', target, endpoints: 0, reason: `Service ${key} is ExternalName: resolved by DNS, no endpoints to check` };
  }
  const servicePort = svc.ports.find((p) => (typeof port === 'number' ? p.port === port : p.name === port));
  if (!servicePort) {
    const have = svc.ports.map((p) => (p.name === '' ? `${p.port}` : `${p.name}(${p.port})`)).join(', ') || 'none';
    const what = typeof port === 'number' ? `port number ${port}` : `port name "${port}"`;
    return { state: 'noPort', target, endpoints: 0, reason: `Service ${key} has no ${what} (ports: ${have})` };
  }
  if (servicePort.protocol !== 'TCP') {
    return { state: 'noPort', target, endpoints: 0, reason: `Service ${key} port ${servicePort.port} is ${servicePort.protocol}, HTTP needs TCP` };
  }
  const proxied = index.ports.get(key)?.find((sp) => sp.portName === servicePort.name && sp.protocol === 'TCP');
  if (!proxied) {
    // Headless Services (and service-proxy-name ones) get no proxy records: their endpoints are not tracked here.
    return { state: 'notChecked', target, endpoints: 0, reason: `Service ${key} is headless or not proxied by portway: endpoints not tracked` };
  }
  const ready = proxied.endpoints.filter((e) => e.ready).length;
  if (ready === 0) {
    const terminating = proxied.endpoints.filter((e) => e.serving && e.terminating).length;
    const extra = terminating > 0 ? ` (${terminating} terminating)` : '';
    return { state: 'noEndpoints', target, endpoints: 0, reason: `Service ${key} port ${servicePort.port} has no ready endpoints${extra}` };
  }
  return { state: 'ok', target, endpoints: ready, reason: '' };
}

/** Every backend of `ing`: the defaultBackend first, then each rule path in order. */
export function checkIngressBackends(ing: IngressInfo, index: ServiceIndex): IngressBackendCheck[] {
  const out: IngressBackendCheck[] = [];
  if (ing.defaultBackend) out.push({ host: '', path: null, ...checkBackend(ing.namespace, ing.defaultBackend, index) });
  for (const rule of ing.rules)
    for (const p of rule.paths)
      out.push({ host: rule.host, path: { path: p.path, pathType: p.pathType }, ...checkBackend(ing.namespace, p.backend, index) });
  return out;
}
