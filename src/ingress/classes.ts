// Which IngressClass an Ingress belongs to, and whether portway publishes for it. Pure.
//
// networking.k8s.io/v1 order: spec.ingressClassName, else the legacy `kubernetes.io/ingress.class`
// annotation (still honoured by controllers), else the IngressClass annotated
// `ingressclass.kubernetes.io/is-default-class: "true"` — the admission plugin writes that default into
// new Ingresses, but Ingresses created before the default existed (or from a manifest directory) carry
// no class at all, and controllers treat them as the default class's.

import type { IngressClassInfo, IngressInfo } from '../model/cluster-state.js';

export interface HandledClass {
  /** IngressClass name. */
  name: string;
  /** The controller's Service, "namespace/name". */
  service: string;
}

export type ClassSource = 'spec' | 'annotation' | 'default';

export type ClassDecision =
  | { class: string; source: ClassSource }
  | { class: null; reason: 'noClass' | 'severalDefaults'; message: string };

/** The class of `ing`, with where it came from, or why it has none. */
export function ingressClassOf(ing: IngressInfo, classes: readonly IngressClassInfo[]): ClassDecision {
  if (ing.ingressClassName !== '') return { class: ing.ingressClassName, source: 'spec' };
  if (ing.classAnnotation !== '') return { class: ing.classAnnotation, source: 'annotation' };
  const defaults = classes.filter((c) => c.isDefault);
  if (defaults.length === 1) return { class: defaults[0]!.name, source: 'default' };
  if (defaults.length === 0) {
    return { class: null, reason: 'noClass', message: 'no ingressClassName, no class annotation and no default IngressClass' };
  }
  // The admission plugin refuses to pick between several defaults; so does portway.
  return {
    class: null,
    reason: 'severalDefaults',
    message: `no ingressClassName and ${defaults.length} IngressClasses marked default (${defaults.map((c) => c.name).join(', ')})`,
  };
}
