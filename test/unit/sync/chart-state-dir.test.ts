// The chart keeps portway's state directory on the host: in the container's own /run a restarted
// container would forget what portway changed, and cleanup could no longer undo it.
import { describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { DEFAULT_STATE_DIR } from '../../../src/cli/commands/run.js';

const daemonset = readFileSync(
  new URL('../../../charts/portway/templates/daemonset.yaml', import.meta.url),
  'utf8',
);

describe('charts/portway daemonset', () => {
  test(`mounts ${DEFAULT_STATE_DIR} from the same host path`, () => {
    const mount = new RegExp(`\\{ name: ([\\w-]+), mountPath: ${DEFAULT_STATE_DIR} \\}`).exec(daemonset);
    expect(mount).not.toBeNull();
    const volume = new RegExp(`- name: ${mount![1]}\\n\\s+hostPath: \\{ path: ([^,}]+)[,}]`).exec(daemonset);
    expect(volume?.[1]?.trim()).toBe(DEFAULT_STATE_DIR);
  });
});
