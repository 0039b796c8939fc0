// Run the API stand-in for demos and manual testing:
//   npx tsx hack/stand-in.ts [--kubeconfig FILE] [--load DIR_OR_FILE ...]
// It writes a kubeconfig for itself (default ./stand-in.kubeconfig, mode 0600), optionally loads
// manifests (YAML/JSON, multi-document) into its store, and serves until interrupted.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { StandInApiServer, writeKubeconfig } from '../test/stand-in/api-server.js';

async function manifestFiles(path: string): Promise<string[]> {
  if (!(await stat(path)).isDirectory()) return [path];
  const names = (await readdir(path)).filter((n) => /\.(ya?ml|json)$/.test(n)).sort();
  return names.map((n) => join(path, n));
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let kubeconfig = 'stand-in.kubeconfig';
  const loads: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--kubeconfig') kubeconfig = args[++i] ?? kubeconfig;
    else if (a === '--load') loads.push(args[++i] ?? '');
    else throw new Error(`unknown argument "${a}" (expected --kubeconfig FILE, --load PATH)`);
  }
  const server = new StandInApiServer();
  await server.start();
  for (const path of loads) {
    for (const file of await manifestFiles(path)) {
      for (const doc of parseAllDocuments(await readFile(file, 'utf8'))) {
        const obj = doc.toJS() as Record<string, unknown> | null;
        if (obj === null) continue;
        const items = obj.kind === 'List' ? ((obj.items as Record<string, unknown>[]) ?? []) : [obj];
        for (const item of items) {
          try {
            server.put(item);
          } catch (e) {
            console.error(`${file}: skipped: ${(e as Error).message}`);
          }
        }
      }
    }
  }
  await writeKubeconfig(server, kubeconfig);
  console.log(`stand-in API server on ${server.url}; kubeconfig written to ${kubeconfig}`);
  const stop = (): void => {
    void server.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((e: unknown) => {
  console.error((e as Error).message);
  process.exit(1);
});
