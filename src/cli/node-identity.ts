// Who "this node" is, for the agent and for the commands that read the live node (trace --live, doctor):
// its name and, when the configuration names none, its addresses from the interfaces. Kept apart from
// run.ts so that those commands do not load the whole agent.
import type { InterfaceAddress } from '../dataplane/interfaces.js';

/** This node's name: the configuration's, else $NODE_NAME (the downward API's usual spelling), else the host name. */
export function chooseNodeName(configured: string, env: NodeJS.ProcessEnv, host: string): string {
  return configured || env.NODE_NAME?.trim() || host;
}

/**
 * The node's addresses when the configuration names none: global-scope addresses of every interface
 * but loopback, in the order `ip addr` lists them (the first of a family is its primary).
 */
export function nodeIPsFromInterfaces(addresses: readonly InterfaceAddress[]): string[] {
  const out: string[] = [];
  for (const a of addresses) {
    if (a.ifname === 'lo' || a.scope !== 'global') continue;
    if (a.family === 'IPv6' && a.address.toLowerCase().startsWith('fe80:')) continue;
    if (!out.includes(a.address)) out.push(a.address);
  }
  return out;
}
