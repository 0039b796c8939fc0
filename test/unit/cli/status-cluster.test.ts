// `portway status --kubeconfig FILE` (issue 13, CLI conventions): the same report as from manifests, with
// the objects listed from a cluster — here the API stand-in, loaded with the manifests the report is
// compared with.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { StandInApiServer, writeKubeconfig } from '../../stand-in/api-server.js';
import { runPortway } from '../../fixtures/cli-process.js';
import { lbManifests } from '../lb/manifest-fixtures.js';
import { shopIngress } from '../ingress/ingress-fixture.js';

const manifests = lbManifests() + shopIngress('web');
const config = { ingress: { classes: [{ name: 'nginx', service: 'demo/web' }] } };

describe('portway status --kubeconfig', () => {
  const api = new StandInApiServer();
  const dir = mkdtempSync(join(tmpdir(), 'portway-status-cluster-'));
  const kubeconfig = join(dir, 'kubeconfig');

  beforeAll(async () => {
    await api.start();
    for (const doc of parseAllDocuments(manifests)) api.put(doc.toJS() as Record<string, unknown>);
    await writeKubeconfig(api, kubeconfig);
    writeFileSync(join(dir, 'cluster.yaml'), manifests);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  });
  afterAll(async () => {
    await api.stop();
  });

  it('reports what the manifests of the same objects report (text and json)', async () => {
    for (const output of ['text', 'json']) {
      const [live, files] = await Promise.all([
        runPortway(['status', '--kubeconfig', kubeconfig, '--config', join(dir, 'config.json'), '-o', output]),
        runPortway(['status', '-f', join(dir, 'cluster.yaml'), '--config', join(dir, 'config.json'), '-o', output]),
      ]);
      expect(live.stderr).toBe('');
      expect(live.exitCode).toBe(0);
      expect(live.stdout).toBe(files.stdout);
    }
    expect(api.requests.some((r) => r.path.startsWith('/apis/networking.k8s.io/v1/ingresses'))).toBe(true);
  });
});
