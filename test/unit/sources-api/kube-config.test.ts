// Where the API address and credentials come from: --kubeconfig, --master, in-cluster.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { emptyClusterState } from '../../../src/model/cluster-state.js';
import { ApiSource, WATCHED_RESOURCES } from '../../../src/sources/api/api-source.js';
import { ApiConfigError, apiServerUrl, loadKubeConfig } from '../../../src/sources/api/kube-config.js';
import { StandInApiServer, writeKubeconfig } from '../../stand-in/api-server.js';

describe('loadKubeConfig', () => {
  let server: StandInApiServer;
  let dir: string;
  beforeAll(async () => {
    server = new StandInApiServer();
    await server.start();
    dir = await mkdtemp(join(tmpdir(), 'portway-kc-'));
  });
  afterAll(async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('loads --kubeconfig, and --master overrides its server', async () => {
    const path = join(dir, 'kubeconfig');
    await writeKubeconfig(server, path);
    expect(apiServerUrl(loadKubeConfig({ kubeconfig: path }))).toBe(server.url);
    expect(apiServerUrl(loadKubeConfig({ kubeconfig: path, master: 'https://10.0.0.1:6443' }))).toBe(
      'https://10.0.0.1:6443',
    );
  });

  it('uses --master alone without credentials', () => {
    const kc = loadKubeConfig({ master: 'http://127.0.0.1:8080', env: {} });
    expect(apiServerUrl(kc)).toBe('http://127.0.0.1:8080');
    expect(kc.getCurrentUser()?.token).toBeUndefined();
  });

  it('keeps credentials out of URLs and load errors', async () => {
    expect(apiServerUrl(loadKubeConfig({ master: 'https://admin:hunter22@10.0.0.1:6443', env: {} }))).toBe(
      'https://10.0.0.1:6443',
    );
    const path = join(dir, 'broken');
    await writeFile(path, 'users:\n- name: x\n  user:\n    token: leaked-token-value\n   bad: [indent\n');
    let message = '';
    try {
      loadKubeConfig({ kubeconfig: path });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/--kubeconfig .*broken: cannot load/);
    expect(message).not.toContain('leaked-token-value');
  });

  it('reports bad input clearly', () => {
    expect(() => loadKubeConfig({ kubeconfig: join(dir, 'nope') })).toThrow(/--kubeconfig: file not found/);
    expect(() => loadKubeConfig({ master: 'not a url' })).toThrow(/--master: not a URL/);
    expect(() => loadKubeConfig({ env: {} })).toThrow(ApiConfigError);
    expect(() => loadKubeConfig({ env: {} })).toThrow(/not running in a cluster/);
    expect(() =>
      loadKubeConfig({
        env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: '443' },
        serviceAccountRoot: join(dir, 'missing'),
      }),
    ).toThrow(/service account token not found/);
  });

  it('uses the in-cluster service account (token file + CA) and really connects with it', async () => {
    const root = join(dir, 'sa');
    await import('node:fs/promises').then((fs) => fs.mkdir(root, { recursive: true }));
    await writeFile(join(root, 'token'), server.token);
    await writeFile(join(root, 'ca.crt'), server.caCert);
    const kc = loadKubeConfig({
      env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(server.port) },
      serviceAccountRoot: root,
    });
    expect(apiServerUrl(kc)).toBe(server.url);
    server.put({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' } });
    let seen: string[] = [];
    const source = new ApiSource({
      kubeConfig: kc,
      resources: WATCHED_RESOURCES.filter((r) => r.kind === 'Node'),
      normalise: (objects) => {
        seen = objects.map((o) => (o.object as { metadata: { name: string } }).metadata.name);
        return { state: emptyClusterState(), problems: [] };
      },
    });
    await source.start();
    await source.stop();
    expect(seen).toEqual(['n1']);
  });
});
