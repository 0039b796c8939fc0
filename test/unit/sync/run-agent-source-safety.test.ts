// runAgent in manifest mode when the input is missing, unreadable, empty or replaced (issue 9, "a missing or
// empty input wipes the node" and "a recreated watched directory is never read again"), over the fake
// dataplane: the rules a node already has must survive a source that cannot be believed.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdir, mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAgent, type RunAgentOptions } from '../../../src/cli/commands/run.js';
import { createFakeDataplane, FakeIpLinks, type FakeDataplane } from '../../../src/dataplane/index.js';
import { RecordingLogger } from '../../../src/observe/logger.js';
import { httpGetOrDown } from '../../fixtures/loopback-http.js';
import { eventually } from '../../fixtures/polling.js';

const web = (name: string, clusterIP: string, endpoint: string) => `
apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: demo }
spec:
  clusterIP: ${clusterIP}
  ports: [{ name: http, port: 80, targetPort: 8080 }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: ${name}-1, namespace: demo, labels: { kubernetes.io/service-name: ${name} } }
addressType: IPv4
ports: [{ name: http, port: 8080, protocol: TCP }]
endpoints: [{ addresses: [${endpoint}], conditions: { ready: true } }]
`;

/** One field of a log record. */
const fieldOf = (record: { fields?: object } | undefined, name: string): unknown =>
  (record?.fields as Record<string, unknown> | undefined)?.[name];

describe('runAgent: a manifest source that cannot be believed leaves the rules alone', () => {
  let base: string;
  let dir: string;
  let stateDir: string;
  let dp: FakeDataplane;
  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'portway-safety-'));
    dir = join(base, 'manifests');
    stateDir = join(base, 'state');
    await mkdir(stateDir);
    await writeFile(join(base, 'config.yaml'), 'iptables: { minSyncPeriod: 10ms, syncPeriod: 30s }\n');
    dp = createFakeDataplane({ families: ['IPv4'] });
  });
  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  const options = (logger: RecordingLogger, extra: Partial<RunAgentOptions> = {}): RunAgentOptions => ({
    manifests: dir,
    configPath: join(base, 'config.yaml'),
    logger,
    stateDir,
    once: true,
    handleSignals: false,
    hostname: 'node-a',
    ipLinks: new FakeIpLinks({ lo: ['127.0.0.1/8'], eth0: ['192.168.50.2/24'] }),
    createDataplane: async () => dp,
    ...extra,
  });
  const dump = () => dp.iptables.IPv4!.dump();

  /** A node programmed from a directory with one Service (10.96.0.10 → 10.244.1.5). */
  const programmed = async (): Promise<string> => {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'web.yaml'), web('web', '10.96.0.10', '10.244.1.5'));
    expect(await runAgent(options(new RecordingLogger()))).toBe(0);
    const rules = dump();
    expect(rules).toContain('10.244.1.5');
    return rules;
  };

  it('--once on a path that does not exist exits 2 and changes no rule', async () => {
    const before = await programmed();
    const restores = dp.iptables.IPv4!.restores().length;
    const logger = new RecordingLogger();
    expect(await runAgent(options(logger, { manifests: join(base, 'nonexistent') }))).toBe(2);
    expect(dump()).toBe(before);
    expect(dp.iptables.IPv4!.restores()).toHaveLength(restores);
    const error = logger.records.find((r) => r.level === 'error');
    expect(error?.message).toMatch(/not syncing: the source cannot be believed/);
    expect(String(fieldOf(error, 'err'))).toMatch(/nonexistent: cannot read: ENOENT/);
  });

  it('--once on an empty directory or a file with no object exits 2 unless --allow-empty says it is meant', async () => {
    const before = await programmed();
    await unlink(join(dir, 'web.yaml'));
    const logger = new RecordingLogger();
    expect(await runAgent(options(logger))).toBe(2);
    expect(dump()).toBe(before);
    expect(
      String(
        fieldOf(
          logger.records.find((r) => r.level === 'error'),
          'err',
        ),
      ),
    ).toMatch(/no Service in it \(0 object\(s\) read\).*--allow-empty/);
    // A file given as the source, with only comments in it (or objects that are not Services).
    await writeFile(join(base, 'empty.yaml'), '# nothing here yet\n');
    expect(await runAgent(options(new RecordingLogger(), { manifests: join(base, 'empty.yaml') }))).toBe(2);
    expect(dump()).toBe(before);
    // The operator means it: every Service rule goes (loudly).
    expect(await runAgent(options(new RecordingLogger(), { allowEmpty: true }))).toBe(0);
    expect(dump()).not.toContain('10.244.1.5');
  });

  it('--manifests may name one file', async () => {
    await writeFile(join(base, 'web.yaml'), web('web', '10.96.0.10', '10.244.1.5'));
    expect(await runAgent(options(new RecordingLogger(), { manifests: join(base, 'web.yaml') }))).toBe(0);
    expect(dump()).toContain('10.244.1.5');
  });

  /** The long-running agent with its health server on a loopback port. */
  const running = async (logger: RecordingLogger, extra: Partial<RunAgentOptions> = {}) => {
    const abort = new AbortController();
    let syncs = 0;
    let port = 0;
    const done = runAgent(
      options(logger, {
        once: false,
        signal: abort.signal,
        metricsBindAddress: '127.0.0.1:0',
        healthzBindAddress: '127.0.0.1:0',
        manifestRootCheckMs: 50,
        onSync: () => syncs++,
        onServing: (p) => (port = p.healthzPort),
        ...extra,
      }),
    );
    await eventually('health server', () => port !== 0);
    const status = async (path: string) => (await httpGetOrDown(port, path)).status;
    return { done, abort, syncs: () => syncs, status, get: (path: string) => httpGetOrDown(port, path) };
  };

  it('started on a missing directory: no sync, /readyz and /healthz 503 with the reason, until the directory appears', async () => {
    const before = await programmed();
    await rm(dir, { recursive: true });
    const syncsBefore = dp.iptables.IPv4!.restores().length;
    const logger = new RecordingLogger();
    const agent = await running(logger);
    try {
      await eventually('the reason logged', () =>
        logger.records.some((r) => r.level === 'error' && /cannot be believed/.test(r.message)),
      );
      expect(await agent.status('/readyz')).toBe(503);
      const healthz = await agent.get('/healthz');
      expect(healthz.status).toBe(503);
      expect(healthz.body).toMatch(/"sourceProblem": ".*manifests: cannot read: ENOENT/);
      // Time for a sync that must not happen (several root checks and debounce windows).
      await new Promise((r) => setTimeout(r, 300));
      expect(agent.syncs()).toBe(0);
      expect(dp.iptables.IPv4!.restores()).toHaveLength(syncsBefore);
      expect(dump()).toBe(before);

      // It appears, filled in one go (renamed in): watched, read, synced, ready.
      await mkdir(join(base, 'staging'));
      await writeFile(join(base, 'staging', 'web.yaml'), web('web', '10.96.0.10', '10.244.1.6'));
      await rename(join(base, 'staging'), dir);
      await eventually('the sync from the directory that appeared', () => dump().includes('10.244.1.6'));
      await eventually('ready', async () => (await agent.status('/readyz')) === 200);
      expect(await agent.status('/healthz')).toBe(200);
    } finally {
      agent.abort.abort();
      expect(await agent.done).toBe(0);
    }
  });

  it('started on an empty directory: not ready and no sync until a Service is written; then it follows the directory', async () => {
    const before = await programmed();
    await unlink(join(dir, 'web.yaml'));
    const logger = new RecordingLogger();
    const agent = await running(logger);
    try {
      await eventually('the reason logged', () =>
        logger.records.some(
          (r) => r.level === 'error' && /no Service in it/.test(String(fieldOf(r, 'problem'))),
        ),
      );
      await new Promise((r) => setTimeout(r, 200));
      expect(agent.syncs()).toBe(0);
      expect(dump()).toBe(before);
      expect(await agent.status('/readyz')).toBe(503);
      await writeFile(join(base, 'web.yaml'), web('web', '10.96.0.10', '10.244.1.7'));
      await rename(join(base, 'web.yaml'), join(dir, 'web.yaml'));
      await eventually('synced', () => dump().includes('10.244.1.7'));
      await eventually('ready', async () => (await agent.status('/readyz')) === 200);
    } finally {
      agent.abort.abort();
      await agent.done;
    }
  });

  it('a recreated directory (rm -rf; mkdir; cp) is watched again: 503 while it is missing, later changes are seen', async () => {
    await mkdir(dir);
    await writeFile(join(dir, 'web.yaml'), web('web', '10.96.0.10', '10.244.1.5'));
    const logger = new RecordingLogger();
    const agent = await running(logger);
    try {
      await eventually('first sync', () => agent.syncs() >= 1);
      await eventually('ready', async () => (await agent.status('/readyz')) === 200);
      await rm(dir, { recursive: true });
      await eventually('503 while missing', async () => (await agent.status('/healthz')) === 503);
      expect(await agent.status('/readyz')).toBe(503);
      expect(dump()).toContain('10.244.1.5'); // the last good rules stay
      await mkdir(dir);
      await writeFile(join(dir, 'web.yaml'), web('web', '10.96.0.10', '10.244.1.8'));
      await eventually('the recreated directory read', () => dump().includes('10.244.1.8'));
      await eventually('healthy again', async () => (await agent.status('/healthz')) === 200);
      // And it is watched, not just read once: a later change is synced too.
      await writeFile(join(base, 'other.yaml'), web('other', '10.96.0.11', '10.244.1.9'));
      await rename(join(base, 'other.yaml'), join(dir, 'other.yaml'));
      await eventually('a later change in the recreated directory', () => dump().includes('10.244.1.9'));
    } finally {
      agent.abort.abort();
      await agent.done;
    }
  });

  it('a watched directory emptied file by file is believed, with a loud warning naming the counts', async () => {
    await mkdir(dir);
    await writeFile(join(dir, 'web.yaml'), web('web', '10.96.0.10', '10.244.1.5'));
    await writeFile(join(dir, 'other.yaml'), web('other', '10.96.0.11', '10.244.1.9'));
    const logger = new RecordingLogger();
    const agent = await running(logger);
    try {
      await eventually('first sync', () => dump().includes('10.244.1.9'));
      await unlink(join(dir, 'web.yaml'));
      await unlink(join(dir, 'other.yaml'));
      await eventually(
        'the rules removed',
        () => !dump().includes('10.244.1.5') && !dump().includes('10.244.1.9'),
      );
      const warning = logger.records.find((r) => /every Service is gone/.test(r.message));
      expect(warning?.level).toBe('warn');
      expect(warning?.fields).toMatchObject({ servicesAfter: 0, manifests: dir });
      expect(fieldOf(warning, 'servicesBefore')).toBeGreaterThanOrEqual(1);
      expect(await agent.status('/healthz')).toBe(200);
    } finally {
      agent.abort.abort();
      await agent.done;
    }
  });
});
