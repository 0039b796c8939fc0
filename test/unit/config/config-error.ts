// The message of the ConfigError parseConfig throws for a raw configuration, for tests of what it rejects.
import { expect } from '@jest/globals';
import { ConfigError, parseConfig } from '../../../src/config/config.js';

/** The ConfigError's message for `raw` (source "cfg.yaml"); fails the test when `raw` is accepted. */
export function configErrorOf(raw: unknown): string {
  try {
    parseConfig(raw, 'cfg.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(raw)}`);
}
