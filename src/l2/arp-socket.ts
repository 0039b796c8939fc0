// Loader for the native AF_PACKET addon (native/arp, docs/adr/0002-arp-socket.md): ARP sockets and,
// from the same addon, NDP sockets (IPv6 Neighbor Solicitations). The addon is built
// by `npx --no-install node-gyp rebuild -C native/arp`; when it is missing, opening a socket fails with
// a message that says how to build it, never silently.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A raw packet socket bound to one interface, receiving ARP frames only (ETH_P_ARP). */
export interface ArpSocket {
  readonly ifname: string;
  readonly ifindex: number;
  /** The interface's hardware address (6 bytes). */
  readonly mac: Buffer;
  /** Send a whole Ethernet frame (destination MAC first). Throws on a send error. */
  send(frame: Buffer): number;
  close(): void;
}

/** Opens packet sockets; the responder takes one of these so unit tests can pass a fake. */
export type ArpSocketOpener = (
  ifname: string,
  onFrame: (frame: Buffer, outgoing: boolean) => void,
) => ArpSocket;

/**
 * A raw packet socket bound to one interface receiving IPv6 Neighbor Solicitations only (ETH_P_IPV6
 * narrowed by a classic BPF filter in the addon to ICMPv6 type 135 with hop limit 255). It hears a
 * multicast solicitation only for the groups it joined: join the solicited-node group
 * (33:33:ff + the low 24 bits, ndp-frame.ts solicitedNodeMac) of every address it answers for.
 */
export interface NdpSocket extends ArpSocket {
  /** Join an Ethernet multicast group (PACKET_ADD_MEMBERSHIP, PACKET_MR_MULTICAST). Throws on error. */
  addMembership(mac: Buffer): void;
  /** Leave a group joined with addMembership. Throws on error. */
  dropMembership(mac: Buffer): void;
}

export type NdpSocketOpener = (
  ifname: string,
  onFrame: (frame: Buffer, outgoing: boolean) => void,
) => NdpSocket;

interface ArpAddon {
  ArpSocket: new (
    ifname: string,
    onFrame: (frame: Buffer, outgoing: boolean) => void,
    protocol?: 'arp' | 'ndp',
  ) => NdpSocket;
}

export const BUILD_NATIVE_COMMAND = 'npx --no-install node-gyp rebuild -C native/arp';

/** Path of the built addon, found from this file's location (src/l2 or dist/src/l2). */
export function nativeAddonPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [
    resolve(here, '../../native/arp/build/Release/arp.node'),
    resolve(here, '../../../native/arp/build/Release/arp.node'),
  ];
  return candidates.find((p) => existsSync(p)) ?? (candidates[0] as string);
}

let addon: ArpAddon | undefined;

export function loadArpAddon(path = nativeAddonPath()): ArpAddon {
  if (addon) return addon;
  if (!existsSync(path)) {
    throw new Error(`native ARP addon not built (${path} missing): run \`${BUILD_NATIVE_COMMAND}\``);
  }
  const require = createRequire(import.meta.url);
  addon = require(path) as ArpAddon;
  return addon;
}

/** The real opener: needs the built addon and CAP_NET_RAW. */
export const openArpSocket: ArpSocketOpener = (ifname, onFrame) =>
  new (loadArpAddon().ArpSocket)(ifname, onFrame);

/** The real NDP opener: needs the built addon and CAP_NET_RAW. */
export const openNdpSocket: NdpSocketOpener = (ifname, onFrame) =>
  new (loadArpAddon().ArpSocket)(ifname, onFrame, 'ndp');
