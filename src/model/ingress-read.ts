// Ingress and IngressClass objects (schema-checked) turned into the model's IngressInfo /
// IngressClassInfo. Kept apart from normalise.ts: the Ingress logic in src/ingress/ is their only reader.

import type { IngressBackend, IngressClassInfo, IngressInfo } from './cluster-state.js';
import type { IngressClassObject, IngressObject } from './k8s-schemas.js';

export const ANNOTATION_INGRESS_CLASS = 'kubernetes.io/ingress.class';
export const ANNOTATION_DEFAULT_INGRESS_CLASS = 'ingressclass.kubernetes.io/is-default-class';

type SchemaBackend = NonNullable<IngressObject['spec']['defaultBackend']>;

function readBackend(backend: SchemaBackend): IngressBackend {
  if (backend.service) {
    const { name, port } = backend.service;
    return { service: { name, port: port.number ?? port.name ?? '' } };
  }
  // The schema guarantees exactly one of service and resource.
  const resource = backend.resource!;
  return { resource: { apiGroup: resource.apiGroup, kind: resource.kind, name: resource.name } };
}

export function readIngress(ing: IngressObject): IngressInfo {
  const info: IngressInfo = {
    namespace: ing.metadata.namespace,
    name: ing.metadata.name,
    ingressClassName: ing.spec.ingressClassName ?? '',
    classAnnotation: ing.metadata.annotations[ANNOTATION_INGRESS_CLASS] ?? '',
    rules: ing.spec.rules.map((rule) => ({
      host: rule.host,
      paths: (rule.http?.paths ?? []).map((p) => ({ path: p.path, pathType: p.pathType, backend: readBackend(p.backend) })),
    })),
    statusIngress: ing.status.loadBalancer.ingress
      .filter((i): i is typeof i & { ip: string } => i.ip !== undefined)
      .map((i) =>
        i.ports.length > 0
          ? { ip: i.ip, ports: i.ports.map((p) => ({ port: p.port, protocol: p.protocol })) }
          : { ip: i.ip },
      ),
    statusHostnames: ing.status.loadBalancer.ingress
      .filter((i) => i.ip === undefined && i.hostname !== undefined && i.hostname !== '')
      .map((i) => i.hostname!),
  };
  if (ing.metadata.uid !== undefined) info.uid = ing.metadata.uid;
  if (ing.spec.defaultBackend) info.defaultBackend = readBackend(ing.spec.defaultBackend);
  return info;
}

export function readIngressClass(cls: IngressClassObject): IngressClassInfo {
  return {
    name: cls.metadata.name,
    controller: cls.spec.controller,
    // The API machinery compares the annotation value with "true" exactly.
    isDefault: cls.metadata.annotations[ANNOTATION_DEFAULT_INGRESS_CLASS] === 'true',
  };
}
