// A KubeWriteClient wrapper that counts requests per method (to prove who wrote) and can be made to fail
// or to run a hook before a write (to provoke a 409).
import type { KubeConfig } from '@kubernetes/client-node';
import { KubeConfig as KC } from '@kubernetes/client-node';
import {
  KubeApiWriter,
  type ApiResponse,
  type KubeWriteClient,
  type PatchType,
} from '../../../src/sources/api/api-writer.js';
import type { StandInApiServer } from '../../stand-in/api-server.js';

export function kubeConfigFor(server: StandInApiServer): KubeConfig {
  const kc = new KC();
  kc.loadFromString(server.kubeconfig());
  return kc;
}

export class CountingClient implements KubeWriteClient {
  readonly counts: Record<'GET' | 'POST' | 'PUT' | 'PATCH', number> = { GET: 0, POST: 0, PUT: 0, PATCH: 0 };
  readonly paths: string[] = [];
  /** When set, every request throws (an unreachable server). */
  down = false;
  /** Runs once before the next PUT (e.g. a peer's write that makes ours conflict). */
  beforeNextUpdate: (() => void) | null = null;
  private readonly inner: KubeWriteClient;

  constructor(server: StandInApiServer) {
    this.inner = new KubeApiWriter({ kubeConfig: kubeConfigFor(server), timeoutMs: 5000 });
  }

  private count(method: keyof CountingClient['counts'], path: string): void {
    if (this.down) throw new Error(`${method} ${path}: connect ECONNREFUSED`);
    this.counts[method] += 1;
    this.paths.push(`${method} ${path}`);
  }

  async get(path: string): Promise<ApiResponse> {
    this.count('GET', path);
    return this.inner.get(path);
  }
  async create(path: string, body: unknown): Promise<ApiResponse> {
    this.count('POST', path);
    return this.inner.create(path, body);
  }
  async update(path: string, body: unknown): Promise<ApiResponse> {
    this.count('PUT', path);
    const hook = this.beforeNextUpdate;
    this.beforeNextUpdate = null;
    hook?.();
    return this.inner.update(path, body);
  }
  async patch(path: string, body: unknown, type?: PatchType): Promise<ApiResponse> {
    this.count('PATCH', path);
    return this.inner.patch(path, body, type);
  }
}
