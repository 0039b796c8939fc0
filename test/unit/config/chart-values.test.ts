// The Helm chart writes values.config verbatim as the agent's config file: its defaults must be a
// configuration the agent accepts (an unknown or misspelt key there would crash-loop every node).
import { describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { parseConfig } from '../../../src/config/config.js';

const valuesPath = new URL('../../../charts/portway/values.yaml', import.meta.url);

describe('charts/portway values.yaml', () => {
  test('config is accepted by the agent as written, and says what the chart promises', () => {
    const values = parse(readFileSync(valuesPath, 'utf8')) as { config: unknown };
    const config = parseConfig(values.config);
    expect(config.mode).toBe('iptables');
    expect(config.detectLocalMode).toBe('ClusterCIDR');
    expect(config.metricsBindAddress).toBe('127.0.0.1:10249');
    expect(config.healthzBindAddress).toBe('0.0.0.0:10256');
  });
});
