// Child process for the netns e2e test: runs a ServiceHealthServer in whatever network namespace it
// was started in. Each stdin line is a ClusterState (JSON) to sync; it answers "synced N" per line.
import { createInterface } from 'node:readline';
import type { ClusterState } from '../../../src/model/cluster-state.js';
import { ServiceHealthServer } from '../../../src/observe/service-health.js';

const nodeName = process.argv[2] ?? 'n1';
const server = new ServiceHealthServer({ nodeName });
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  void server.sync(JSON.parse(line) as ClusterState).then(() => {
    process.stdout.write(`synced ${server.served().length}\n`);
  });
});
lines.on('close', () => {
  void server.stop().then(() => process.exit(0));
});
process.stdout.write('ready\n');
