// The model's public face: load manifests and normalise them into ClusterState.
import type { ClusterState, InputProblem } from './cluster-state.js';
import { loadManifestFiles } from './load.js';
import { buildClusterState } from './normalise.js';

export * from './cluster-state.js';
export { buildClusterState, formatFieldPath, formatProblem } from './normalise.js';
export type { BuildResult } from './normalise.js';
export { loadManifestFiles, parseManifestText, STDIN_SOURCE } from './load.js';
export type { LoadResult, SourcedObject } from './load.js';
export { parseAddressRange } from './k8s-schemas.js';

/**
 * Read manifests (files, directories, `-` for stdin) and normalise them. Problems of reading (a file
 * that cannot be read, a YAML syntax error) come first, then those of the objects; nothing is thrown
 * for bad input: every valid object is still in the state.
 */
export async function loadClusterState(
  paths: string[],
  stdin?: NodeJS.ReadableStream,
): Promise<{ state: ClusterState; problems: InputProblem[] }> {
  const loaded = await loadManifestFiles(paths, stdin);
  const built = buildClusterState(loaded.objects);
  return { state: built.state, problems: [...loaded.problems, ...built.problems] };
}
