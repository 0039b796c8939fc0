// nftables mode: render (pure) and serialise (pure) portway's nftables table of one IP family.
export * from './render.js';
export * from './serialize.js';
export * from './types.js';
export { nftablesRenderOptionsFromConfig, type NftablesRenderOptions } from './options.js';
export { servicePortNameBase } from './naming.js';
