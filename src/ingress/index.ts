export * from './address.js';
export * from './backends.js';
export * from './classes.js';
export * from './evaluate.js';
export * from './match.js';
export * from './status-view.js';
export * from './doctor-checks.js';
export * from './url-trace.js';
