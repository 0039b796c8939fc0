// Child process of the nftables traffic test, run inside a node's namespace (`ip netns exec`): reads
// {family, table, commands} as JSON on stdin and applies the element commands over netlink from this
// process (NftElementWriter), printing the time the send + acknowledgements took.
import { readFileSync } from 'node:fs';
import { NftElementWriter, openNetfilterSocket } from '../../../src/dataplane/nft-netlink.js';
import type { ElementCommand } from '../../../src/render/nftables/netlink.js';
import type { NftFamily } from '../../../src/render/nftables/types.js';

const input = JSON.parse(readFileSync(0, 'utf8')) as {
  family: NftFamily;
  table: string;
  commands: ElementCommand[];
};
const writer = new NftElementWriter(openNetfilterSocket());
const t0 = performance.now();
writer.apply(input.family, input.table, input.commands);
console.log(JSON.stringify({ ms: performance.now() - t0 }));
writer.close();
