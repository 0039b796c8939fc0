// Large input (issue 9): a 125k-object `kind: List` used to end render, diff, status and trace with
// "RangeError: Maximum call stack size exceeded" (push(...all objects) in the loader, push(...all
// chains) in the planner). Every command's path now walks it with loops. The 1M-object case is
// `npm run bench:large` (time and peak RSS).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../../src/config/config.js';
import { bigListJson, runCommandPaths } from '../../fixtures/large-list.js';

const OBJECTS = 125_000;

describe('a 125k-object List through render, diff, status, trace and run (issue 9)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portway-large-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('every path completes without a stack overflow', async () => {
    const file = join(dir, 'list.json');
    await writeFile(file, bigListJson({ objects: OBJECTS, endpoints: 1 }));
    const config = parseConfig({ nodeName: 'node-a', nodeIPs: ['172.16.0.1'] });
    const r = await runCommandPaths(file, config);
    const services = Math.floor((OBJECTS - 3) / 2);
    expect(r.problems).toBe(0);
    expect(r.services).toBe(services);
    expect(r.incrementalServicePorts).toBe(services);
    // A KUBE-SVC and a KUBE-SEP chain per Service, at least: more than the argument limit of a call.
    expect(r.changedChains).toBeGreaterThan(2 * services);
    expect(r.restoreLines).toBeGreaterThan(4 * services);
    expect(r.diffText).toContain(`ns${(services - 1) % 100}/svc${services - 1}`);
    expect(r.statusText).toContain('ns0/svc0');
    // svc0's cluster IP is 10.0.0.1; its one endpoint 11.0.0.1.
    expect(r.trace.endpoints).toEqual(['11.0.0.1:8080']);
  }, 600_000); // tens of seconds alone; minutes on a loaded 2-core CI box
});
