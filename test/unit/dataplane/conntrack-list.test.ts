// `conntrack -L` for the full-sync sweep of stale UDP entries.
import { describe, expect, it } from '@jest/globals';
import { FakeConntrack, parseConntrackList, RealConntrack } from '../../../src/dataplane/conntrack.js';
import { RecordingRunner } from '../../../src/dataplane/exec.js';

// As conntrack v1.4.7 prints them (the summary line goes to stderr).
const LIST_V4 = [
  'udp      17 29 src=10.99.0.1 dst=10.96.9.9 sport=40000 dport=53 [UNREPLIED] src=10.244.1.5 dst=10.99.0.1 sport=5353 dport=40000 mark=0 use=1',
  'udp      17 117 src=192.168.1.9 dst=192.168.1.2 sport=40001 dport=30053 src=10.244.1.6 dst=192.168.1.2 sport=5353 dport=40001 [ASSURED] mark=0 zone=3 use=1',
  'tcp      6 431999 ESTABLISHED src=10.99.0.1 dst=10.96.9.9 sport=40000 dport=80 src=10.244.1.5 dst=10.99.0.1 sport=8080 dport=40000 [ASSURED] mark=0 use=1',
  '',
].join('\n');

describe('conntrack -L', () => {
  it('parses original destination and reply source of each entry of the protocol', () => {
    expect(parseConntrackList(LIST_V4, 'IPv4', 'udp')).toEqual([
      { family: 'IPv4', protocol: 'udp', origDst: '10.96.9.9', origDstPort: 53, replySrc: '10.244.1.5', replySrcPort: 5353 },
      { family: 'IPv4', protocol: 'udp', origDst: '192.168.1.2', origDstPort: 30053, replySrc: '10.244.1.6', replySrcPort: 5353 },
    ]);
    const v6 = 'udp      17 29 src=fd00::1 dst=FD00:0:0::10 sport=40000 dport=53 src=fd00:244::5 dst=fd00::1 sport=53 dport=40000 mark=0 use=1\n';
    expect(parseConntrackList(v6, 'IPv6', 'udp')).toEqual([
      { family: 'IPv6', protocol: 'udp', origDst: 'fd00::10', origDstPort: 53, replySrc: 'fd00:244::5', replySrcPort: 53 },
    ]);
    expect(parseConntrackList(v6, 'IPv4', 'udp')).toEqual([]);
  });

  it('runs conntrack -L -f <family> -p <protocol>; a failure is an error, not an empty table', async () => {
    const ok = new RecordingRunner().on('conntrack', { exitCode: 0, stdout: LIST_V4, stderr: 'conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.\n' });
    expect(await new RealConntrack({ runner: ok }).listEntries('IPv4', 'udp')).toHaveLength(2);
    expect(ok.commandLines()).toEqual(['conntrack -L -f ipv4 -p udp']);
    const bad = new RecordingRunner().on('conntrack', { exitCode: 1, stderr: 'conntrack v1.4.7 (conntrack-tools): Operation failed: Operation not permitted\n' });
    await expect(new RealConntrack({ runner: bad }).listEntries('IPv6', 'udp')).rejects.toThrow(/not permitted/);
  });

  it('the fake lists its flows of the family and protocol', async () => {
    const flow = { family: 'IPv4' as const, protocol: 'udp' as const, origDst: '10.96.0.10', origDstPort: 53, replySrc: '10.244.1.5', replySrcPort: 53 };
    const ct = new FakeConntrack([flow, { ...flow, protocol: 'tcp' }]);
    expect(await ct.listEntries('IPv4', 'udp')).toEqual([flow]);
    expect(await ct.listEntries('IPv6', 'udp')).toEqual([]);
  });
});
