// The runtime image as the Dockerfile describes it, assembled without a Docker engine
// (hack/image/assemble-rootfs.ts: Debian packages by mmdebstrap, then the Dockerfile's COPY lines) and
// run like a container: chroot into it in a fresh network and pid namespace with its own /proc. The
// agent must start from it, program the namespace with the image's own iptables, and every command the
// agent runs must be in it — a missing tool or library in the image fails here. Needs root. The first
// run builds the Debian part (~2 min, cached in /var/cache/portway-image per package list).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execa } from 'execa';
import { cp, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { load } from 'js-yaml';

const isRoot = process.getuid?.() === 0;
const maybe = isRoot ? describe : describe.skip;
const NS = `pwimage-${process.pid}`;
const OUT = join(tmpdir(), `portway-image-${process.pid}`);
// What a container of a debian image starts with.
const IMAGE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

// Every command src/dataplane runs (iptables.ts, ipset.ts, ip.ts, conntrack.ts, sysctl.ts), with the
// backend-specific names backend detection and doctor call.
const AGENT_COMMANDS = [
  'iptables',
  'ip6tables',
  'iptables-save',
  'ip6tables-save',
  'iptables-restore',
  'ip6tables-restore',
  'iptables-nft',
  'ip6tables-nft',
  'iptables-nft-save',
  'iptables-nft-restore',
  'iptables-legacy',
  'iptables-legacy-save',
  'ip6tables-legacy-save',
  'iptables-legacy-restore',
  'ipset',
  'ip',
  'conntrack',
  'sysctl',
  'cat',
  'modprobe',
];

interface Assembled {
  rootfs: string;
  nodeVersion: string;
  entrypoint: string[];
  env: Record<string, string>;
  bytes: number;
  seconds: number;
}

maybe('the runtime image, assembled from the Dockerfile and run in a network namespace', () => {
  let image: Assembled;
  const inImage = (args: string[]) =>
    execa(
      'ip',
      [
        'netns',
        'exec',
        NS,
        'unshare',
        '--mount',
        '--pid',
        '--fork',
        `--mount-proc=${image.rootfs}/proc`,
        'chroot',
        image.rootfs,
        ...args,
      ],
      { reject: false, extendEnv: false, env: { PATH: IMAGE_PATH, HOME: '/root', ...image.env } },
    );

  beforeAll(async () => {
    const assembled = await execa('node', ['--import', 'tsx', 'hack/image/assemble-rootfs.ts', OUT], {
      stdin: 'ignore',
      stderr: 'inherit',
      timeout: 15 * 60_000,
    });
    image = JSON.parse(assembled.stdout) as Assembled;
    process.stdout.write(
      `runtime image rootfs: ${(image.bytes / 1e6).toFixed(0)} MB, assembled in ${image.seconds} s\n`,
    );
    await cp(join(process.cwd(), 'examples'), join(image.rootfs, 'tmp/examples'), { recursive: true });
    const config = load(await readFile(join(process.cwd(), 'examples/config.yaml'), 'utf8')) as {
      nodeIPs: string[];
    };
    const ns = (...args: string[]) => execa('ip', ['netns', 'exec', NS, ...args]);
    await execa('ip', ['netns', 'add', NS]);
    await ns('ip', 'link', 'set', 'lo', 'up');
    // the node address the example config names, on a veth (this kernel has no dummy links)
    await ns('ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0-peer');
    await ns('ip', 'addr', 'add', `${config.nodeIPs[0]}/24`, 'dev', 'eth0');
    await ns('ip', 'link', 'set', 'eth0-peer', 'up');
    await ns('ip', 'link', 'set', 'eth0', 'up');
  }, 16 * 60_000);

  afterAll(async () => {
    await execa('ip', ['netns', 'del', NS], { reject: false });
    await rm(OUT, { recursive: true, force: true });
  });

  it("runs the Dockerfile's Node release, which loads the addon built against its headers", async () => {
    const res = await inImage([
      'node',
      '-e',
      "require('/opt/portway/native/arp/build/Release/arp.node'); console.log(process.version)",
    ]);
    expect(res.stderr).toBe('');
    expect(res.stdout.trim()).toBe(`v${image.nodeVersion}`);
  });

  it('has every command the agent runs', async () => {
    const res = await inImage([
      'sh',
      '-c',
      'for c in "$@"; do command -v "$c" >/dev/null || echo "$c"; done',
      'sh',
      ...AGENT_COMMANDS,
    ]);
    expect({ missing: res.stdout.split('\n').filter(Boolean), stderr: res.stderr }).toEqual({
      missing: [],
      stderr: '',
    });
  });

  it('portway version runs from the entrypoint', async () => {
    const { version } = JSON.parse(await readFile('package.json', 'utf8')) as { version: string };
    const res = await inImage([...image.entrypoint, 'version']);
    expect({ exitCode: res.exitCode, stdout: res.stdout, stderr: res.stderr }).toEqual({
      exitCode: 0,
      stdout: `portway ${version}`,
      stderr: '',
    });
  });

  it("run --once programs the namespace through the image's iptables, read back by its iptables-save", async () => {
    const run = await inImage([
      ...image.entrypoint,
      'run',
      '--once',
      '--manifests',
      '/tmp/examples/manifests',
      '--config',
      '/tmp/examples/config.yaml',
    ]);
    // the agent's log, shown when it fails
    const log = run.exitCode === 0 ? '' : `${run.stdout}\n${run.stderr}`;
    expect({ exitCode: run.exitCode, log }).toEqual({ exitCode: 0, log: '' });
    const nat = await inImage(['iptables-save', '-t', 'nat']);
    expect(nat.exitCode).toBe(0);
    expect(nat.stdout).toMatch(/^# Generated by iptables-save v1\.8\.\d+ \(nf_tables\)/m);
    expect(nat.stdout).toMatch(/^-A KUBE-SERVICES -d 10\.96\.0\.10\/32 .*-j KUBE-SVC-/m);
    expect(nat.stdout).toMatch(/^-A KUBE-NODEPORTS .*--dport 30080 .*-j KUBE-EXT-/m);
    expect(nat.stdout.match(/^-A PREROUTING .*-j KUBE-SERVICES$/gm)).toHaveLength(1);
    const filter = await inImage(['iptables-save', '-t', 'filter']);
    expect(filter.stdout).toMatch(/^:KUBE-FORWARD - /m);
    const forward = await inImage(['cat', '/proc/sys/net/ipv4/ip_forward']);
    expect(forward.stdout.trim()).toBe('1');
  });
  it(
    'packs into an OCI image archive (buildah, no daemon, no registry) that runs the agent',
    async () => {
      const archive = join(OUT, 'portway.oci.tar');
      const packed = await execa('hack/image/oci-archive.sh', [OUT, archive, 'portway:test'], {
        stdin: 'ignore',
        timeout: 10 * 60_000,
      });
      process.stdout.write(`OCI archive (gzip layer): ${(Number(packed.stdout) / 1e6).toFixed(0)} MB\n`);
      // Open it as a runtime would: index → manifest → config and its one layer, unpacked and run.
      const layout = join(OUT, 'layout');
      await mkdir(layout);
      await execa('tar', ['-xf', archive, '-C', layout]);
      const blob = async (digest: string) => readFile(join(layout, 'blobs', ...digest.split(':')));
      const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as {
        manifests: { digest: string; annotations: Record<string, string> }[];
      };
      expect(index.manifests.map((m) => m.annotations['org.opencontainers.image.ref.name'])).toEqual([
        'portway:test',
      ]);
      const manifest = JSON.parse((await blob(index.manifests[0]!.digest)).toString()) as {
        config: { digest: string };
        layers: { digest: string; mediaType: string }[];
      };
      const config = JSON.parse((await blob(manifest.config.digest)).toString()) as {
        config: { Entrypoint: string[]; WorkingDir: string };
      };
      expect(config.config).toMatchObject({ Entrypoint: image.entrypoint, WorkingDir: '/opt/portway' });
      expect(manifest.layers.map((l) => l.mediaType)).toEqual([
        'application/vnd.oci.image.layer.v1.tar+gzip',
      ]);
      const unpacked = join(OUT, 'unpacked');
      await mkdir(unpacked);
      await execa('tar', [
        '-xzf',
        join(layout, 'blobs', ...manifest.layers[0]!.digest.split(':')),
        '-C',
        unpacked,
      ]);
      expect(await readdir(join(unpacked, 'dev'))).toEqual([]);
      const res = await execa(
        'unshare',
        [
          '--mount',
          '--pid',
          '--fork',
          `--mount-proc=${unpacked}/proc`,
          'chroot',
          unpacked,
          ...config.config.Entrypoint,
          'version',
        ],
        { reject: false, extendEnv: false, env: { PATH: IMAGE_PATH } },
      );
      expect({ exitCode: res.exitCode, stderr: res.stderr }).toEqual({ exitCode: 0, stderr: '' });
    },
    12 * 60_000,
  );
});
