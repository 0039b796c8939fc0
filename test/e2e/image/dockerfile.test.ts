// The Dockerfile and .dockerignore as CI's image check reads them (no root, no Docker engine): the
// check must refuse a runtime stage it cannot reproduce, and the build context must be what a fresh
// clone has — nothing a local checkout built or installed, and everything the build stage copies.
import { describe, expect, it } from '@jest/globals';
import { execa } from 'execa';
import { readFile } from 'node:fs/promises';
import { isExcluded, parseDockerignore } from '../../../hack/image/dockerignore.js';
import { debianSuiteOf, parsePackageList, parseRuntimeImage } from '../../../hack/image/dockerfile.js';

const read = (path: string) => readFile(path, 'utf8');

describe('Dockerfile', () => {
  it('describes one Node release and one Debian suite for both stages, and headers without a download', async () => {
    const image = parseRuntimeImage(await read('Dockerfile'));
    expect(image.nodeVersion).toMatch(/^\d+\.\d+\.\d+$/);
    expect(image.buildStage.from).toBe(`node:${image.nodeVersion}-${debianSuiteOf(image.runtimeFrom)}-slim`);
    // node-gyp uses the node image's own headers (/usr/local/include/node) instead of fetching them
    expect(image.buildStage.env.npm_config_nodedir).toBe('/usr/local');
    expect(image.packagesFile).toBe('hack/image/runtime-packages');
    expect(image.copies.map((c) => c.destination)).toEqual(
      expect.arrayContaining(['/usr/local/bin/node', '/opt/portway/node_modules', '/opt/portway/dist']),
    );
    expect(image.entrypoint).toEqual(['/opt/portway/bin/portway']);
    expect(parsePackageList(await read(image.packagesFile))).toContain('iptables');
  });

  const dockerfile = (runtime: string) =>
    `ARG NODE_VERSION=24.1.0\nFROM node:\${NODE_VERSION}-bookworm-slim AS build\nWORKDIR /src\n` +
    `FROM debian:bookworm-slim\n${runtime}\nENTRYPOINT ["/x"]\n`;
  const packages =
    'RUN --mount=type=bind,source=pkgs,target=/tmp/pkgs \\\n  apt-get install -y $(cat /tmp/pkgs)\n' +
    'COPY --from=build /src/dist /opt/dist';

  it('reads the runtime stage the check reproduces', () => {
    const image = parseRuntimeImage(
      dockerfile(`${packages}\nWORKDIR /opt/p\nCOPY --from=build /src/bin ./bin`),
    );
    expect(image.packagesFile).toBe('pkgs');
    expect(image.copies).toEqual([
      { source: '/src/dist', destination: '/opt/dist', line: 7 },
      { source: '/src/bin', destination: '/opt/p/bin', line: 9 },
    ]);
    expect(image.buildStage).toMatchObject({
      name: 'build',
      from: 'node:24.1.0-bookworm-slim',
      workdir: '/src',
    });
  });

  it.each([
    [
      'RUN apt-get install -y curl',
      /line 8: the runtime stage may RUN only apt-get install of the bind-mounted/,
    ],
    ['COPY hack/x /x', /line 8: the image check copies only "COPY --from=<build stage> SOURCE DEST"/],
    ['USER 1000', /line 8: USER in the runtime stage is not reproduced/],
  ])('refuses a runtime stage it cannot reproduce: %s', (line, error) => {
    expect(() => parseRuntimeImage(dockerfile(`${packages}\n${line}`))).toThrow(error);
  });

  it('refuses a runtime base that is not a Debian image mmdebstrap can build', () => {
    expect(() => debianSuiteOf('node:24-bookworm-slim')).toThrow(/must start FROM debian:<suite>/);
    expect(debianSuiteOf('debian:trixie-slim')).toBe('trixie');
  });
});

describe('.dockerignore', () => {
  it('leaves out what a local checkout built or installed', async () => {
    const rules = parseDockerignore(await read('.dockerignore'));
    for (const path of [
      '.git/HEAD',
      'node_modules/zod/package.json',
      'dist/cli/main.js',
      'native/arp/build/Release/arp.node',
      'npm-debug.log',
    ]) {
      expect({ path, excluded: isExcluded(rules, path) }).toEqual({ path, excluded: true });
    }
  });

  it('keeps every tracked file the build stage copies from the context', async () => {
    const rules = parseDockerignore(await read('.dockerignore'));
    const image = parseRuntimeImage(await read('Dockerfile'));
    const sources = [...image.buildStage.contextSources, image.packagesFile];
    const files = (await execa('git', ['ls-files', '--', ...sources])).stdout.split('\n').filter(Boolean);
    expect(files.length).toBeGreaterThan(50);
    expect(files.filter((f) => isExcluded(rules, f))).toEqual([]);
  });

  it('follows Docker rules: directories, ** and ! exceptions, last match wins', () => {
    const rules = parseDockerignore('/build\n**/*.log\n!keep.log\n');
    expect(isExcluded(rules, 'build/a/b')).toBe(true);
    expect(isExcluded(rules, 'src/build')).toBe(false);
    expect(isExcluded(rules, 'a/b/c.log')).toBe(true);
    expect(isExcluded(rules, 'x.log')).toBe(true);
    expect(isExcluded(rules, 'keep.log')).toBe(false);
  });
});
