// Where the agent's memory goes, phase by phase, in one process (no API, no kernel): the objects of
// N Services × E endpoints as an informer holds them (parsed from JSON), the ClusterState builder, the
// change tracker's views, the render with its cache, the full restore plan, the drift printouts.
// After each phase a full GC, then the live heap and what the phase added.
//
//   node --expose-gc --import tsx hack/bench/memory-phases.ts [--services N] [--endpoints E]
import { defaultConfig } from '../../src/config/config.js';
import { ClusterStateBuilder } from '../../src/model/incremental.js';
import { planFullRestoreStreamed } from '../../src/plan/iptables-plan.js';
import {
  IptablesRenderCache,
  renderIptables,
  renderOptionsFromConfig,
} from '../../src/render/iptables/index.js';
import { changeEventFromRaw, ObjectChangeTracker } from '../../src/sync/agent-change-tracker.js';
import { prepareExpectedSaveTexts } from '../../src/sync/drift.js';
import { httpEndpointSlice, httpService, readyAddress } from '../../test/fixtures/k8s-objects.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? dflt : Number(process.argv[i + 1]);
};
const services = arg('services', 10_000);
const endpoints = arg('endpoints', 10);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

let lastHeap = 0;
const mb = (n: number) => (n / 1048576).toFixed(1).padStart(6);
function phase(name: string): void {
  gc!();
  gc!();
  const m = process.memoryUsage();
  process.stdout.write(
    `${name.padEnd(44)} heap ${mb(m.heapUsed)} MB (+${mb(m.heapUsed - lastHeap)})  rss ${mb(m.rss)}  external ${mb(m.external)}\n`,
  );
  lastHeap = m.heapUsed;
}

function ip(base: [number, number], offset: number): string {
  const v = offset + 1;
  return `${base[0]}.${base[1] + (v >> 16)}.${(v >> 8) & 255}.${v & 255}`;
}

phase('modules loaded');
const raw: Array<Record<string, unknown>> = [];
// Through JSON, as the informer's objects come: no string or object shared with the generator.
const asReceived = (o: object) => JSON.parse(JSON.stringify(o)) as Record<string, unknown>;
for (let i = 0; i < services; i++) {
  raw.push(asReceived(httpService('bench', `svc-${i}`, ip([10, 96], i))));
  raw.push(
    asReceived(
      httpEndpointSlice({
        namespace: 'bench',
        name: `svc-${i}-abcde`,
        service: `svc-${i}`,
        endpoints: Array.from({ length: endpoints }, (_, k) =>
          readyAddress(ip([10, 128], i * endpoints + k), k % 2 === 0 ? 'node-a' : 'node-b'),
        ),
      }),
    ),
  );
}
phase(`raw objects (${services} Services + slices × ${endpoints})`);

const builder = new ClusterStateBuilder({ keepLastGood: true });
for (const object of raw) builder.upsert({ source: 'api', object });
const { state } = builder.build();
phase('ClusterStateBuilder + ClusterState');

const tracker = new ObjectChangeTracker(0);
for (const object of raw) {
  const e = changeEventFromRaw({ kind: object.kind as string, current: object });
  if (e) tracker.record([e]);
}
phase('change tracker views');

const config = { ...defaultConfig(), nodeName: 'bench-node' };
const cache = new IptablesRenderCache();
const desired = renderIptables(state, renderOptionsFromConfig(config, 'IPv4', ['10.97.0.2']), cache);
phase('rendered rule set (+ render cache)');

let plan: ReturnType<typeof planFullRestoreStreamed> | null = planFullRestoreStreamed(desired, null);
let headChars = 0;
for (const chunk of plan.headChunks) headChars += chunk.length;
// A sync writes the head in chunks; joined, it would be one more string of this size.
phase(`full restore plan (head: ${(headChars / 1e6).toFixed(1)} MB in chunks)`);

plan = null;
phase('plan dropped (what stays is cached per chain)');

await prepareExpectedSaveTexts(desired);
phase('drift printouts of the applied chains');
void [raw.length, builder.size, tracker, desired];
