// Reading manifests: files, directories and stdin → raw objects, each tagged with where it came from.
// parseManifestText is pure (the directory watcher reuses it); loadManifestFiles is the I/O around it.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FAILSAFE_SCHEMA, loadAll, Type as YamlType } from 'js-yaml';
import { parseAllDocuments } from 'yaml';
import type { InputProblem } from './cluster-state.js';
import { appendAll } from './arrays.js';
import { KIND_VERSIONS } from './k8s-schemas.js';

/** One raw Kubernetes object and where it was read from. */
export interface SourcedObject {
  /** File path as given (or joined under a given directory), '<stdin>', or 'api'. */
  source: string;
  object: unknown;
  /**
   * 1-based position of the YAML document in its file, when read from a file. Items of a `kind: List`
   * share their list's document. Used to order objects deterministically and to point at a document.
   */
  document?: number;
}

export interface LoadResult {
  objects: SourcedObject[];
  problems: InputProblem[];
}

export const STDIN_SOURCE = '<stdin>';
const MANIFEST_EXTENSIONS = ['.yaml', '.yml', '.json'];
// A YAML alias bomb must not exhaust memory: kubectl-produced manifests use no aliases at all.
const MAX_ALIAS_COUNT = 100;

function fileProblem(source: string, message: string): InputProblem {
  return { source, kind: '', object: '', field: '', message };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Split a manifest text into objects. YAML multi-document streams and JSON (a JSON document is YAML)
 * both work; empty documents are skipped; an array document and `kind: List` / `*List` with `items`
 * (what `kubectl get -o yaml` prints) are flattened. A document with a syntax error becomes one problem
 * naming the document and line; the other documents of the text still load.
 *
 * Two parsers, one result: the `yaml` package reports every document's error with its line and
 * limits alias expansion, but reads ~1 MB/s (10k Services with their EndpointSlices: ~10 s); js-yaml
 * reads the same text ~15× faster. So a text is first read by js-yaml with YAML 1.2's core schema
 * (the scalars the `yaml` package resolves), and only a text that js-yaml refuses, or that defines
 * anchors, is read again by the `yaml` package, for its per-document errors and alias limit.
 */
export function parseManifestText(text: string, source: string): LoadResult {
  return parseQuickly(text, source) ?? parseThoroughly(text, source);
}

// YAML 1.2 core schema's numbers, exactly: js-yaml's own core schema also takes 0b101, -0x1 and the
// like (YAML 1.1 forms), which would make the two parsers disagree on a value.
const CORE_INT = /^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$/;
const CORE_FLOAT =
  /^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;
const CORE_NULL = /^(?:~|null|Null|NULL)?$/;
const CORE_BOOL = /^(?:true|True|TRUE|false|False|FALSE)$/;

function constructCoreNumber(text: string): number {
  if (text.startsWith('0o')) return parseInt(text.slice(2), 8);
  if (text.startsWith('0x')) return parseInt(text.slice(2), 16);
  const lower = text.toLowerCase();
  if (lower.endsWith('.inf')) return text.startsWith('-') ? -Infinity : Infinity;
  if (lower === '.nan') return NaN;
  return Number(text);
}

const CORE_SCHEMA_1_2 = FAILSAFE_SCHEMA.extend({
  implicit: [
    new YamlType('tag:yaml.org,2002:null', {
      kind: 'scalar',
      resolve: (data: string | null) => data === null || CORE_NULL.test(data),
      construct: () => null,
    }),
    new YamlType('tag:yaml.org,2002:bool', {
      kind: 'scalar',
      resolve: (data: string | null) => data !== null && CORE_BOOL.test(data),
      construct: (data: string) => data.toLowerCase() === 'true',
    }),
    new YamlType('tag:yaml.org,2002:int', {
      kind: 'scalar',
      resolve: (data: string | null) => data !== null && CORE_INT.test(data),
      construct: constructCoreNumber,
    }),
    new YamlType('tag:yaml.org,2002:float', {
      kind: 'scalar',
      resolve: (data: string | null) => data !== null && CORE_FLOAT.test(data),
      construct: constructCoreNumber,
    }),
  ],
});

/** An anchor (`&name`) where a YAML node can start; a false match only costs the slower parser. */
const ANCHOR = /(?:^|[\s[{,:-])&[^\s]/m;

/** js-yaml's reading, or null when the text needs the thorough parser (an error, or anchors). */
export function parseQuickly(text: string, source: string): LoadResult | null {
  if (ANCHOR.test(text)) return null;
  let documents: unknown[];
  try {
    documents = loadAll(text, undefined, { schema: CORE_SCHEMA_1_2 });
  } catch {
    return null;
  }
  const objects: SourcedObject[] = [];
  const problems: InputProblem[] = [];
  documents.forEach((value, index) => {
    const document = index + 1;
    for (const object of flattenLists(value, listProblemsTo(problems, source, document)))
      objects.push({ source, object, document });
  });
  return { objects, problems };
}

/** The `yaml` package's reading: every document's error with its line, alias expansion limited. */
export function parseThoroughly(text: string, source: string): LoadResult {
  const objects: SourcedObject[] = [];
  const problems: InputProblem[] = [];
  const documents = parseAllDocuments(text);
  documents.forEach((doc, index) => {
    const document = index + 1;
    const firstError = doc.errors[0];
    if (firstError) {
      const pos = firstError.linePos?.[0];
      const where = pos ? ` at line ${pos.line}, column ${pos.col}` : '';
      const firstLine = firstError.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '') ?? '';
      problems.push(fileProblem(source, `YAML syntax error in document ${document}${where}: ${firstLine}`));
      return;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (e) {
      problems.push(fileProblem(source, `document ${document}: ${(e as Error).message}`));
      return;
    }
    for (const object of flattenLists(value, listProblemsTo(problems, source, document)))
      objects.push({ source, object, document });
  });
  return { objects, problems };
}

/** Where flattenLists reports a list without items: (list kind, field, what is wrong). */
type ListProblemSink = (kind: string, field: string, message: string) => void;

/**
 * A list whose items are null or missing is a problem of its file (kind and object empty): in the
 * watched directory the file then keeps its last good version, as for a syntax error — `items: null`
 * is a templating mistake far more often than a wish to delete every object the file held.
 */
function listProblemsTo(problems: InputProblem[], source: string, document: number): ListProblemSink {
  return (kind, field, message) =>
    problems.push({
      source,
      kind: '',
      object: '',
      field,
      message: `${message.replace(':', ` in the ${kind} of document ${document}:`)}`,
    });
}

/** `List` and the lists of the kinds portway reads (ServiceList …): their items are what they carry. */
const isListOfOurs = (kind: string): boolean =>
  kind === 'List' || (kind.endsWith('List') && kind.slice(0, -'List'.length) in KIND_VERSIONS);

/**
 * An array or a `*List` with `items` becomes its items; typed lists' items inherit kind/apiVersion.
 * Walked with an explicit stack, not recursion, and never spread into a call: a List of a million
 * items, or Lists nested without end, must not overflow the call stack.
 */
function flattenLists(value: unknown, report: ListProblemSink): unknown[] {
  const out: unknown[] = [];
  // Pending values, last first: pushing children in reverse keeps the document order.
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const next = pending.pop();
    if (next === null || next === undefined) continue;
    if (Array.isArray(next)) {
      for (let i = next.length - 1; i >= 0; i--) pending.push(next[i]);
      continue;
    }
    if (
      isRecord(next) &&
      typeof next.kind === 'string' &&
      isListOfOurs(next.kind) &&
      !Array.isArray(next.items)
    ) {
      const items = next.items;
      report(
        next.kind,
        'items',
        items === null || items === undefined
          ? `${items === null ? 'null' : 'missing'}: it holds no objects (an empty list is "items: []")`
          : `not a list: it holds no objects (got ${typeof items})`,
      );
      continue;
    }
    if (
      isRecord(next) &&
      typeof next.kind === 'string' &&
      next.kind.endsWith('List') &&
      Array.isArray(next.items)
    ) {
      // The API server omits kind/apiVersion on the items of a typed list (ServiceList); kubectl adds them.
      const itemKind = next.kind === 'List' ? undefined : next.kind.slice(0, -'List'.length);
      const items = next.items as unknown[];
      for (let i = items.length - 1; i >= 0; i--) {
        const item = items[i];
        pending.push(
          itemKind !== undefined && isRecord(item) && item.kind === undefined
            ? { apiVersion: next.apiVersion, kind: itemKind, ...item }
            : item,
        );
      }
      continue;
    }
    out.push(next);
  }
  return out;
}

/** Code-point order, independent of the locale: the file order must be the same on every machine. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Files under a directory, recursively, with a manifest extension, in sorted order. Entries whose
 * name starts with "." are skipped: a ConfigMap mounted as a volume holds every file twice, once
 * through the `..data` symlink and once in a `..<timestamp>` directory.
 */
async function listManifestFiles(dir: string): Promise<{ files: string[]; problems: InputProblem[] }> {
  const files: string[] = [];
  const problems: InputProblem[] = [];
  let names: string[];
  try {
    names = (await readdir(dir)).sort(compareText);
  } catch (e) {
    return { files, problems: [fileProblem(dir, `cannot read directory: ${(e as Error).message}`)] };
  }
  for (const name of names) {
    if (name.startsWith('.')) continue;
    const path = join(dir, name);
    let info;
    try {
      info = await stat(path); // follows symlinks, as `kubectl apply -f dir` does
    } catch (e) {
      problems.push(fileProblem(path, `cannot read: ${(e as Error).message}`));
      continue;
    }
    if (info.isDirectory()) {
      const sub = await listManifestFiles(path);
      appendAll(files, sub.files);
      appendAll(problems, sub.problems);
    } else if (info.isFile() && MANIFEST_EXTENSIONS.some((ext) => name.toLowerCase().endsWith(ext))) {
      files.push(path);
    }
  }
  return { files, problems };
}

async function readStream(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream)
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Load every manifest named by `paths`: files (any extension), directories (recursively, *.yaml,
 * *.yml, *.json, sorted) and `-` for stdin. An unreadable file or a syntax error is a problem naming
 * the file; everything else still loads. Objects come out in path order, then file order.
 */
export async function loadManifestFiles(paths: string[], stdin?: NodeJS.ReadableStream): Promise<LoadResult> {
  const objects: SourcedObject[] = [];
  const problems: InputProblem[] = [];
  const add = (r: LoadResult): void => {
    appendAll(objects, r.objects);
    appendAll(problems, r.problems);
  };
  let stdinRead = false;
  for (const path of paths) {
    if (path === '-') {
      if (stdinRead) continue; // stdin can only be read once; a second "-" adds nothing
      stdinRead = true;
      try {
        add(parseManifestText(await readStream(stdin ?? process.stdin), STDIN_SOURCE));
      } catch (e) {
        problems.push(fileProblem(STDIN_SOURCE, `cannot read: ${(e as Error).message}`));
      }
      continue;
    }
    let files: string[];
    try {
      const info = await stat(path);
      if (info.isDirectory()) {
        const listed = await listManifestFiles(path);
        appendAll(problems, listed.problems);
        files = listed.files;
      } else {
        files = [path];
      }
    } catch (e) {
      problems.push(fileProblem(path, `cannot read: ${(e as Error).message}`));
      continue;
    }
    for (const file of files) {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (e) {
        problems.push(fileProblem(file, `cannot read: ${(e as Error).message}`));
        continue;
      }
      add(parseManifestText(text, file));
    }
  }
  return { objects, problems };
}
