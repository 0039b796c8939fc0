// The parsed Services and EndpointSlices live as long as the objects do (the cluster-state builder
// keeps them), so their lists must not carry the spare room an array filled by push() keeps (17
// elements or more: a one-address list cost 184 bytes instead of 40, ~19 MB at 10k slices × 10
// endpoints). V8 shows an array's backing store only to natives syntax, so this runs in a child node
// with --allow-natives-syntax and reads %DebugPrint's "elements: <FixedArray[N]>".
import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

const SCRIPT = `
import { parseKnownObject } from './src/model/normalise.js';
const print = new Function('a', '%DebugPrint(a)');
const slice = parseKnownObject('EndpointSlice', {
  metadata: { name: 's-abcde', namespace: 'ns', labels: { 'kubernetes.io/service-name': 's' } },
  addressType: 'IPv4',
  endpoints: [
    { addresses: ['10.0.0.1'], conditions: { ready: true }, nodeName: 'a', hints: { forZones: [{ name: 'z' }] } },
    { addresses: ['10.0.0.2'], nodeName: 'b' },
  ],
  ports: [{ name: 'http', port: 80, protocol: 'TCP' }],
}).data;
const service = parseKnownObject('Service', {
  metadata: { name: 's', namespace: 'ns' },
  spec: { clusterIP: '10.96.0.1', clusterIPs: ['10.96.0.1'], ipFamilies: ['IPv4'], ports: [{ name: 'http', port: 80 }] },
}).data;
const lists = {
  'slice.endpoints': slice.endpoints,
  'slice.endpoints[0].addresses': slice.endpoints[0].addresses,
  'slice.endpoints[0].hints.forZones': slice.endpoints[0].hints.forZones,
  'slice.ports': slice.ports,
  'service.spec.clusterIPs': service.spec.clusterIPs,
  'service.spec.ipFamilies': service.spec.ipFamilies,
  'service.spec.ports': service.spec.ports,
};
for (const [name, list] of Object.entries(lists)) {
  // A marker through %DebugPrint too (its output and process.stdout's would not interleave in order).
  print(['LIST', name, String(list.length)].join(' '));
  print(list);
}
`;

describe('parsed objects keep no spare room in their lists', () => {
  it('every list of a parsed EndpointSlice and Service has a backing store of exactly its length', () => {
    // Into a file: node makes a stdout pipe non-blocking, and %DebugPrint's writes then get lost.
    const dir = mkdtempSync(join(tmpdir(), 'portway-list-size-'));
    let out: string;
    try {
      const fd = openSync(join(dir, 'out'), 'w');
      try {
        execFileSync(
          process.execPath,
          ['--allow-natives-syntax', '--import', 'tsx', '--input-type=module', '-e', SCRIPT],
          { cwd: ROOT, stdio: ['ignore', fd, 'inherit'] },
        );
      } finally {
        closeSync(fd);
      }
      out = readFileSync(join(dir, 'out'), 'utf8');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const found: Record<string, { length: number; capacity: number }> = {};
    let current: string | null = null;
    for (const line of out.split('\n')) {
      const list = /LIST (\S+) (\d+)/.exec(line);
      if (list) {
        current = list[1]!;
        found[current] = { length: Number(list[2]), capacity: NaN };
        continue;
      }
      const elements = /^ - elements: \S+ <FixedArray\[(\d+)\]>/.exec(line);
      if (elements && current !== null && Number.isNaN(found[current]!.capacity))
        found[current]!.capacity = Number(elements[1]);
    }
    expect(Object.keys(found)).toHaveLength(7);
    for (const [name, { length, capacity }] of Object.entries(found))
      expect({ name, capacity }).toEqual({ name, capacity: length });
  });
});
