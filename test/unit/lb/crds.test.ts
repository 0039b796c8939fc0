// The CRDs must describe exactly what the model parses: same group/version/scope, same spec fields.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { KIND_VERSIONS, ipAddressPoolSchema, l2AdvertisementSchema } from '../../../src/model/k8s-schemas.js';

const crdDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../../charts/portway/charts/crds/files');
interface Crd {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: {
    group: string;
    scope: string;
    names: { kind: string; plural: string };
    versions: Array<{
      name: string;
      served: boolean;
      storage: boolean;
      schema: { openAPIV3Schema: { properties: { spec: { properties: Record<string, unknown> } } } };
    }>;
  };
}
const load = (file: string) => YAML.parse(readFileSync(resolve(crdDir, file), 'utf8')) as Crd;

describe.each([
  ['portway.io_ipaddresspools.yaml', 'IPAddressPool', Object.keys(ipAddressPoolSchema.shape.spec.shape)],
  [
    'portway.io_l2advertisements.yaml',
    'L2Advertisement',
    Object.keys(l2AdvertisementSchema.shape.spec.removeDefault().shape),
  ],
] as const)('%s', (file, kind, modelFields) => {
  const crd = load(file);
  const want = KIND_VERSIONS[kind];

  test('is an apiextensions.k8s.io/v1 CRD for the group, version and scope the model reads', () => {
    expect(crd.apiVersion).toBe('apiextensions.k8s.io/v1');
    expect(crd.kind).toBe('CustomResourceDefinition');
    expect(crd.spec.group).toBe(want.group);
    expect(crd.spec.names.kind).toBe(kind);
    expect(crd.metadata.name).toBe(`${crd.spec.names.plural}.${want.group}`);
    expect(crd.spec.scope).toBe(want.namespaced ? 'Namespaced' : 'Cluster');
    expect(crd.spec.versions.map((v) => [v.name, v.served, v.storage])).toEqual([[want.version, true, true]]);
  });

  test('spec fields match the model schema', () => {
    const fields = Object.keys(crd.spec.versions[0]?.schema.openAPIV3Schema.properties.spec.properties ?? {});
    expect(fields.sort()).toEqual([...modelFields].sort());
  });
});
