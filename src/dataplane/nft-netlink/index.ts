// nf_tables over netlink, built in TypeScript over a small socket addon (docs/adr/0008-nftables-netlink.md).
export * from './wire.js';
export * from './nftables.js';
export * from './elements.js';
export * from './client.js';
