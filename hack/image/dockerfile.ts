// The part of the Dockerfile that CI's image check needs, parsed so the check follows the Dockerfile
// instead of repeating it: the Node version, the build stage's working directory, and the runtime
// stage's base, package list, COPY lines, working directory and entrypoint. Pure: text in, data out.
// Anything in the runtime stage that the check cannot reproduce is an error naming the line, so a
// change to the Dockerfile cannot silently leave the check testing something else.

export interface CopyFromBuild {
  /** Absolute path inside the build stage. */
  source: string;
  /** Absolute path inside the runtime image (relative destinations resolved against WORKDIR). */
  destination: string;
  line: number;
}

export interface RuntimeImage {
  /** ARG NODE_VERSION's default: the node image of the build stage, and so the runtime's node binary. */
  nodeVersion: string;
  buildStage: {
    name: string;
    from: string;
    workdir: string;
    env: Record<string, string>;
    /** What the build stage COPYs from the build context (paths relative to its root). */
    contextSources: string[];
  };
  /** e.g. debian:bookworm-slim */
  runtimeFrom: string;
  /** The file in the build context that the runtime stage's apt-get install reads. */
  packagesFile: string;
  copies: CopyFromBuild[];
  workdir: string;
  entrypoint: string[];
  env: Record<string, string>;
}

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

/** Instructions with continuation lines joined and comments dropped (the `# syntax=` directive too). */
export function parseInstructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  let pending: { text: string; line: number } | null = null;
  lines.forEach((raw, i) => {
    const trimmed = raw.trim();
    if (pending === null && (trimmed === '' || trimmed.startsWith('#'))) return;
    if (pending !== null && trimmed.startsWith('#')) return; // comment inside a continued instruction
    const continued = trimmed.endsWith('\\');
    const body = continued ? trimmed.slice(0, -1).trim() : trimmed;
    pending =
      pending === null ? { text: body, line: i + 1 } : { ...pending, text: `${pending.text} ${body}` };
    if (continued) return;
    const match = /^(\S+)\s*(.*)$/.exec(pending.text);
    if (match) out.push({ keyword: match[1]!.toUpperCase(), args: match[2]!.trim(), line: pending.line });
    pending = null;
  });
  return out;
}

function fail(line: number, message: string): never {
  throw new Error(`Dockerfile line ${line}: ${message}`);
}

function jsonArray(ins: Instruction): string[] {
  try {
    const value: unknown = JSON.parse(ins.args);
    if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value;
  } catch {
    // reported below
  }
  return fail(ins.line, `${ins.keyword} must be a JSON array of strings (exec form), got ${ins.args}`);
}

function resolveIn(workdir: string, path: string): string {
  const joined = path.startsWith('/') ? path : `${workdir.replace(/\/$/, '')}/${path}`;
  const parts: string[] = [];
  for (const part of joined.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  // keep a trailing slash: it says "into this directory"
  return `/${parts.join('/')}${path.endsWith('/') || path === '.' || path === './' ? '/' : ''}`;
}

export function parseRuntimeImage(text: string): RuntimeImage {
  const instructions = parseInstructions(text);
  const stages: { from: string; name: string; line: number; body: Instruction[] }[] = [];
  const args: Record<string, string> = {};
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) fail(ins.line, `cannot read FROM ${ins.args}`);
      const from = m[1]!.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string, b: string) => {
        const name = a ?? b;
        return args[name] ?? fail(ins.line, `FROM uses $${name}, which no ARG before the first FROM sets`);
      });
      stages.push({ from, name: m[2] ?? String(stages.length), line: ins.line, body: [] });
    } else if (stages.length === 0) {
      if (ins.keyword !== 'ARG')
        fail(ins.line, `only ARG may come before the first FROM, found ${ins.keyword}`);
      const m = /^(\w+)=(\S+)$/.exec(ins.args);
      if (!m) fail(ins.line, `ARG before FROM needs a default (NAME=value), got ${ins.args}`);
      args[m[1]!] = m[2]!;
    } else {
      stages[stages.length - 1]!.body.push(ins);
    }
  }
  const nodeVersion = args.NODE_VERSION;
  if (nodeVersion === undefined) throw new Error('Dockerfile: no ARG NODE_VERSION=… before the first FROM');
  if (stages.length < 2) throw new Error('Dockerfile: expected a build stage and a runtime stage');

  const runtime = stages[stages.length - 1]!;
  const workdirOf = (body: Instruction[]) => body.filter((i) => i.keyword === 'WORKDIR').at(-1)?.args ?? '/';
  const envOf = (body: Instruction[]) => {
    const env: Record<string, string> = {};
    for (const ins of body.filter((i) => i.keyword === 'ENV')) {
      const m = /^(\w+)=(\S+)$/.exec(ins.args);
      if (!m) fail(ins.line, `ENV must be one NAME=value, got ${ins.args}`);
      env[m[1]!] = m[2]!;
    }
    return env;
  };
  const contextSourcesOf = (body: Instruction[]) =>
    body
      .filter((i) => i.keyword === 'COPY' && !/--from=/.test(i.args))
      .flatMap((i) =>
        i.args
          .split(/\s+/)
          .filter((w) => !w.startsWith('--'))
          .slice(0, -1),
      );
  const copies: CopyFromBuild[] = [];
  const env: Record<string, string> = {};
  let workdir = '/';
  let entrypoint: string[] | null = null;
  let packagesFile: string | null = null;
  let buildStageName: string | null = null;
  for (const ins of runtime.body) {
    switch (ins.keyword) {
      case 'WORKDIR':
        workdir = resolveIn(workdir, ins.args).replace(/(.)\/$/, '$1');
        break;
      case 'ENV':
        Object.assign(env, envOf([ins]));
        break;
      case 'ENTRYPOINT':
        entrypoint = jsonArray(ins);
        break;
      case 'COPY': {
        const words = ins.args.split(/\s+/);
        const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
        const paths = words.filter((w) => !w.startsWith('--'));
        if (from === undefined || paths.length !== 2)
          fail(
            ins.line,
            `the image check copies only "COPY --from=<build stage> SOURCE DEST", got COPY ${ins.args}`,
          );
        if (buildStageName !== null && from !== buildStageName)
          fail(ins.line, `every COPY must come from one build stage (${buildStageName}), got --from=${from}`);
        buildStageName = from;
        const [source, dest] = paths as [string, string];
        if (!source.startsWith('/')) fail(ins.line, `COPY --from source must be absolute, got ${source}`);
        copies.push({ source, destination: resolveIn(workdir, dest), line: ins.line });
        break;
      }
      case 'RUN': {
        // The one RUN the check reproduces: apt-get install of the package list mounted from the context.
        const m = /--mount=type=bind,source=([^,\s]+),target=(\S+)/.exec(ins.args);
        if (!m || !ins.args.includes('apt-get install') || !ins.args.includes(m[2]!))
          fail(
            ins.line,
            'the runtime stage may RUN only apt-get install of the bind-mounted package list ' +
              '(teach hack/image/assemble-rootfs.ts anything else)',
          );
        packagesFile = m[1]!;
        break;
      }
      default:
        fail(ins.line, `${ins.keyword} in the runtime stage is not reproduced by the image check`);
    }
  }
  if (entrypoint === null) throw new Error('Dockerfile: the runtime stage has no ENTRYPOINT');
  if (packagesFile === null) throw new Error('Dockerfile: the runtime stage installs no package list');
  const build = stages.find((s) => s.name === buildStageName);
  if (build === undefined) throw new Error(`Dockerfile: COPY --from=${buildStageName ?? '?'} names no stage`);
  return {
    nodeVersion,
    buildStage: {
      name: build.name,
      from: build.from,
      workdir: workdirOf(build.body),
      env: envOf(build.body),
      contextSources: contextSourcesOf(build.body),
    },
    runtimeFrom: runtime.from,
    packagesFile,
    copies,
    workdir,
    entrypoint,
    env,
  };
}

/** Package names of a list file: one a line, `#` comments and blank lines ignored. */
export function parsePackageList(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter((l) => l !== '');
}

/** "debian:bookworm-slim" → "bookworm": the suite mmdebstrap installs. */
export function debianSuiteOf(image: string): string {
  const m = /^(?:docker\.io\/)?(?:library\/)?debian:([a-z]+)(?:-slim)?$/.exec(image);
  if (!m)
    throw new Error(`Dockerfile: the runtime stage must start FROM debian:<suite>[-slim], got ${image}`);
  return m[1]!;
}
