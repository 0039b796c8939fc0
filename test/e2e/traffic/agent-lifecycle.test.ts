// The agent process over time, with real traffic: restarting it loses no request; a malformed manifest
// is reported and skipped while other Services keep flowing; rules flushed behind its back are repaired
// by the next periodic full sync (and reported as drift); a failing iptables-restore leaves the previous
// rules in force and is retried as a full sync.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execa } from 'execa';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pollFor } from '../../fixtures/polling.js';
import { ECHO_TCP_PORT, type NodeInfo, type PodInfo } from '../harness/topology.js';
import {
  echoHttpPort,
  okCount,
  podsHit,
  RULES_APPLIED,
  TrafficEnv,
  type AgentProcess,
  type EndpointSpec,
  type ServiceSpec,
  type TrafficClient,
} from './traffic-env.js';

/** Short full-sync period so drift repair and retries happen within the test. */
const SYNC_PERIOD_MS = 1500;

let env: TrafficEnv;
let node: NodeInfo;
let pods: PodInfo[];
let client: TrafficClient;
let nodeClient: TrafficClient;
let agent: AgentProcess;
let configPath: string;
let faultEnv: NodeJS.ProcessEnv;
let failFlag: string;

const web: ServiceSpec = {
  name: 'web',
  type: 'NodePort',
  clusterIP: '10.96.2.10',
  ports: [echoHttpPort(30100)],
};
const other: ServiceSpec = { name: 'other', clusterIP: '10.96.2.11', ports: [echoHttpPort()] };
const ep = (pod: PodInfo): EndpointSpec => ({ ip: pod.ip, node: 'node1', pod: pod.name });

beforeAll(async () => {
  env = await TrafficEnv.create({ nodes: 1, podsPerNode: [2], tag: 'lifecycle' });
  node = env.topo.node(1);
  pods = node.pods;
  await execa('ip', ['-n', node.netns, 'route', 'add', 'default', 'dev', 'eth0']);
  await env.writeService(web, pods.map(ep));
  await env.writeService(other, pods.map(ep));
  configPath = await env.writeConfig(node, { syncPeriod: `${SYNC_PERIOD_MS}ms` });
  // Every agent of this file finds a wrapper of iptables-*-restore first on its PATH: it runs the real
  // tool, or fails while the flag file exists.
  const fault = await env.failingRestoreDir();
  failFlag = fault.flag;
  faultEnv = { PATH: `${fault.pathDir}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}` };
  agent = await env.startAgentAndSync(node, configPath, faultEnv);
  [client, nodeClient] = await Promise.all([env.client(env.topo.client.netns), env.client(node.netns)]);
}, 60_000);

afterAll(async () => {
  await env?.teardown();
});

const allPods = () => pods.map((p) => p.name).sort();

describe('restarting the agent', () => {
  it('loses no request of a client looping through a NodePort and a ClusterIP', async () => {
    let stop = false;
    const results: Array<{ ok: boolean; error?: string }> = [];
    const loop = async (c: TrafficClient, host: string, port: number) => {
      while (!stop) results.push(await c.request('tcp', host, port, { timeoutMs: 2000 }));
    };
    const loops = [loop(client, node.ip, 30100), loop(nodeClient, web.clusterIP, 80)];
    await new Promise((r) => setTimeout(r, 300));
    expect(await agent.stop()).toBe(0);
    await new Promise((r) => setTimeout(r, 300)); // no agent at all for a moment: the rules stay
    agent = await env.startAgentAndSync(node, configPath, faultEnv);
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await Promise.all(loops);
    expect(results.length).toBeGreaterThan(20);
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(agent.records().find((r) => RULES_APPLIED.test(r.msg))).toMatchObject({ full: true });
  });
});

describe('SIGTERM while a tool the agent started is still running', () => {
  it('stops the agent cleanly (exit 0, "stopping" logged), not by the signal', async () => {
    // ipvsadm, ipset and conntrack (what an iptables-mode agent runs after its first sync: the other
    // mode's leftovers, the UDP conntrack cleanup) take 1 s each here, so the stop meets one running.
    // While a child runs, execa's signal-exit listens for SIGTERM too and re-raises it when it finds no
    // other listener: the agent's own listener must still be there when it looks.
    const slowDir = join(env.dir, 'slow-bin');
    await mkdir(slowDir, { recursive: true });
    for (const tool of ['ipvsadm', 'ipset', 'conntrack']) {
      const real = (await execa('sh', ['-c', `command -v ${tool}`])).stdout.trim();
      await writeFile(join(slowDir, tool), `#!/bin/sh\nsleep 1\nexec ${real} "$@"\n`);
      await chmod(join(slowDir, tool), 0o755);
    }
    expect(await agent.stop()).toBe(0);
    agent = await env.startAgentAndSync(node, configPath, {
      PATH: `${slowDir}:${faultEnv.PATH ?? ''}`,
    });
    await new Promise((r) => setTimeout(r, 200));
    const code = await agent.stop();
    expect({ code, signal: agent.child.signalCode }).toEqual({ code: 0, signal: null });
    expect(agent.count('stopping; rules stay in place')).toBe(1);
    agent = await env.startAgentAndSync(node, configPath, faultEnv);
  }, 60_000);
});

describe('a malformed manifest', () => {
  const broken: ServiceSpec = {
    name: 'broken',
    clusterIP: '10.96.2.12',
    ports: [{ name: 'http', port: 70000, targetPort: ECHO_TCP_PORT }],
  };
  const fixed: ServiceSpec = { ...broken, ports: [echoHttpPort()] };

  it('is reported (file, object, field) and skipped; other Services keep flowing; fixing it restores the Service', async () => {
    await env.writeService(broken, pods.map(ep));
    await agent.waitForCount(/broken\.yaml: Service default\/broken: spec\.ports\[0\]\.port/, 1);
    const warn = agent.records().find((r) => /Service default\/broken/.test(r.msg))!;
    expect(warn).toMatchObject({ level: 40, object: 'default/broken', field: 'spec.ports[0].port' });
    expect(warn.msg).toMatch(/\(skipped\)$/);

    const counts = await nodeClient.spread('tcp', web.clusterIP, 80, 12);
    expect(okCount(counts)).toBe(12);
    expect((await nodeClient.request('tcp', broken.clusterIP, 80, { timeoutMs: 500 })).ok).toBe(false);

    await env.writeService(fixed, pods.map(ep));
    await agent.waitForCount('manifest problem resolved', 1);
    await env.waitForRules(node, 'a rule for 10.96.2.12', (nat) => nat.includes('-d 10.96.2.12/32'));
    const healed = await nodeClient.spread('tcp', fixed.clusterIP, 80, 20);
    expect(okCount(healed)).toBe(20);
    expect(podsHit(healed)).toEqual(allPods());
  });

  it('a file that stops parsing keeps its last good version in force', async () => {
    await env.writeManifest('other.yaml', 'kind: Service\nmetadata: {name: other\n  this is: [not yaml');
    await agent.waitForCount(/keeping the last good version of the file/, 1);
    const counts = await nodeClient.spread('tcp', other.clusterIP, 80, 12);
    expect(okCount(counts)).toBe(12);
    await env.writeService(other, pods.map(ep));
  });

  it('an existing Service edited into an invalid version (port 0) keeps its last good version in force', async () => {
    await env.writeService({ ...other, ports: [{ ...echoHttpPort(), port: 0 }] }, pods.map(ep));
    await agent.waitForCount(
      /Service default\/other: spec\.ports\[0\]\.port: .*\(keeping the last good version of the object\)$/,
      1,
    );
    const counts = await nodeClient.spread('tcp', other.clusterIP, 80, 12);
    expect(okCount(counts)).toBe(12);
    await env.writeService(other, pods.map(ep));
  });
});

describe('the manifest directory replaced (rm -rf; mkdir; write)', () => {
  it('while it is missing nothing is synced and traffic flows; the new directory is watched and followed', async () => {
    const refusedBefore = agent.count(/cannot be believed/);
    await rm(env.manifests, { recursive: true });
    await agent.waitForCount(/cannot be believed/, refusedBefore + 1);
    expect(okCount(await nodeClient.spread('tcp', web.clusterIP, 80, 12))).toBe(12);
    await mkdir(env.manifests);
    await env.writeService(web, [ep(pods[0]!)]);
    await env.writeService(other, pods.map(ep));
    await agent.waitForCount('the manifest source is usable again', 1);
    // The recreated directory's content is what is programmed (web: one endpoint) …
    await pollFor('web served by its one endpoint', 10_000, async () => {
      const hit = podsHit(await nodeClient.spread('tcp', web.clusterIP, 80, 12));
      return hit.length === 1 && hit[0] === pods[0]!.name ? hit : null;
    });
    // … and it is followed, not read once: a change after the recreation is programmed too.
    await env.writeService(web, pods.map(ep));
    await pollFor('web served by both endpoints again', 10_000, async () => {
      const hit = podsHit(await nodeClient.spread('tcp', web.clusterIP, 80, 20));
      return hit.length === pods.length ? hit : null;
    });
  });
});

describe('rules changed behind the agent’s back', () => {
  it('`iptables -t nat -F KUBE-SERVICES` is repaired by the next full sync, which logs drift', async () => {
    const driftBefore = agent.count(/rules changed behind portway/);
    // Flush right after a sync ends, so the next periodic full sync is ~SYNC_PERIOD_MS away: one that
    // ran between the flush and the request below would answer it, and one whose save preceded the
    // flush but whose restore followed it would repair it without reporting drift.
    const syncsBefore = agent.count(RULES_APPLIED);
    await agent.waitForCount(RULES_APPLIED, syncsBefore + 1, SYNC_PERIOD_MS * 4);
    await execa('ip', ['netns', 'exec', node.netns, 'iptables', '-t', 'nat', '-F', 'KUBE-SERVICES']);
    // The ClusterIP has no rule now: nothing translates it.
    expect((await nodeClient.request('tcp', web.clusterIP, 80, { timeoutMs: 300 })).ok).toBe(false);
    const flushedAt = Date.now();
    await agent.waitForCount(/rules changed behind portway/, driftBefore + 1, SYNC_PERIOD_MS * 4);
    const drift = agent
      .records()
      .filter((r) => /rules changed behind portway/.test(r.msg))
      .at(-1) as { drift?: Array<{ chain: string }> };
    expect(drift.drift?.map((d) => d.chain)).toContain('KUBE-SERVICES');
    await env.waitForRules(node, 'KUBE-SERVICES rules back', (nat) =>
      nat.includes('-A KUBE-SERVICES -d 10.96.2.10/32'),
    );
    expect(Date.now() - flushedAt).toBeLessThan(SYNC_PERIOD_MS * 4);
    const counts = await nodeClient.spread('tcp', web.clusterIP, 80, 12);
    expect(okCount(counts)).toBe(12);
  });
});

describe('a failing iptables-restore', () => {
  it('leaves the previous rules in force and is retried as a full sync', async () => {
    const { writeFile, rm } = await import('node:fs/promises');
    const failedBefore = agent.count('iptables sync failed; previous rules stay in force, next sync is full');
    const retriesBefore = agent.count('sync failed; retrying with a full sync');
    await writeFile(failFlag, '');
    try {
      await env.writeService(web, [ep(pods[0]!)]); // drop pods[1]
      await agent.waitForCount(
        'iptables sync failed; previous rules stay in force, next sync is full',
        failedBefore + 1,
      );
      await agent.waitForCount('sync failed; retrying with a full sync', retriesBefore + 1);
      const failure = agent
        .records()
        .filter((r) => r.msg === 'sync failed; retrying with a full sync')
        .at(-1)!;
      expect(String(failure.reason)).toMatch(/injected failure/);
      // The previous rules are in force: both pods still answer.
      const counts = await client.spread('tcp', node.ip, 30100, 30);
      expect(okCount(counts)).toBe(30);
      expect(podsHit(counts)).toEqual(allPods());
    } finally {
      await rm(failFlag, { force: true });
    }
    const appliedBefore = agent.count(RULES_APPLIED);
    await agent.waitForCount(RULES_APPLIED, appliedBefore + 1, SYNC_PERIOD_MS * 4);
    const retry = agent
      .records()
      .filter((r) => RULES_APPLIED.test(r.msg))
      .at(appliedBefore)!;
    expect(retry).toMatchObject({ full: true });
    const counts = await client.spread('tcp', node.ip, 30100, 20);
    expect(okCount(counts)).toBe(20);
    expect(podsHit(counts)).toEqual([pods[0]!.name]);
  });
});
