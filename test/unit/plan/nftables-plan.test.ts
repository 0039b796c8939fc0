// The nftables update planner: an endpoint change (count included) is element commands only; a new or
// removed service port adds or deletes just its own objects; a declaration change replaces the table.
import { describe, expect, it } from '@jest/globals';
import { elementCommandOps } from '../../../src/dataplane/nft-netlink/index.js';
import type { ServicePort } from '../../../src/model/cluster-state.js';
import { planNftablesUpdate } from '../../../src/plan/nftables-plan.js';
import { renderNftables, servicePortNameBase } from '../../../src/render/nftables/index.js';
import { nftOptions } from '../../fixtures/nftables-options.js';
import { ep, stateOf, svcPort } from '../render/fixtures.js';

const web = (ips: string[], extra: Partial<ServicePort> = {}): ServicePort =>
  svcPort('ns1', 'web', 'http', {
    clusterIPs: ['10.96.0.10'],
    endpoints: ips.map((ip) => ep(ip, 8080)),
    ...extra,
  });
const other = svcPort('ns1', 'db', '', { clusterIPs: ['10.96.0.20'], endpoints: [ep('10.244.3.3', 5432)] });
const render = (...ports: ServicePort[]) => renderNftables(stateOf(...ports), nftOptions());
const BASE = servicePortNameBase({ namespace: 'ns1', serviceName: 'web', portName: 'http', protocol: 'TCP' });
const t = 'ip portway';

describe('planNftablesUpdate', () => {
  it('nothing to do for equal rulesets', () => {
    const u = planNftablesUpdate(render(web(['10.244.1.2']), other), render(web(['10.244.1.2']), other));
    expect(u.text).toBe('');
    expect(u.elementOnly).toBe(false);
  });

  it('the element commands are the text batch, in its order, and the netlink client encodes every one', () => {
    const u = planNftablesUpdate(
      render(web(['10.244.1.2', '10.244.2.3']), other),
      render(web(['10.244.1.2', '10.244.2.3', '10.244.2.4']), other),
    );
    const ops = elementCommandOps('ip', 'portway', u.elementCommands);
    // One netlink message per line of the text, naming the same set and elements.
    expect(
      ops.map((o) => `${o.op} element ${t} ${o.set.set} { ${o.items.map((i) => i.describe).join(', ')} }`),
    ).toEqual(u.text.split('\n').filter(Boolean));
    expect(ops.map((o) => o.items.flatMap((i) => i.elements).length)).toEqual([4, 1, 6]);
  });

  it('an endpoint added (2 → 3) rewrites the interval map and the hairpin set only', () => {
    const u = planNftablesUpdate(
      render(web(['10.244.1.2', '10.244.2.3']), other),
      render(web(['10.244.1.2', '10.244.2.3', '10.244.2.4']), other),
    );
    expect(u.elementOnly).toBe(true);
    expect(u.text.split('\n').filter(Boolean)).toEqual([
      `delete element ${t} eps-${BASE} { 0-524287, 524288-1048575 }`,
      `add element ${t} hairpin-endpoints { 10.244.2.4 . 10.244.2.4 }`,
      `add element ${t} eps-${BASE} { 0-349524 : 10.244.1.2 . 8080, 349525-699049 : 10.244.2.3 . 8080, 699050-1048575 : 10.244.2.4 . 8080 }`,
    ]);
  });

  it('an endpoint removed (2 → 1) is element-only too', () => {
    const u = planNftablesUpdate(render(web(['10.244.1.2', '10.244.2.3'])), render(web(['10.244.1.2'])));
    expect(u.elementOnly).toBe(true);
    expect(u.text).not.toMatch(/^(add|delete|flush) (chain|rule|set|map|table)/m);
    expect(u.changedChains).toEqual([]);
  });

  it('a new service port adds its chain and map, then its dispatch element; removing it deletes them after', () => {
    const without = render(web(['10.244.1.2']));
    const withDb = render(web(['10.244.1.2']), other);
    const added = planNftablesUpdate(without, withDb);
    expect(added.elementOnly).toBe(false);
    const lines = added.text.split('\n');
    const chainAt = lines.findIndex((l) => l.startsWith(`add chain ${t} svc-`));
    const gotoAt = lines.findIndex((l) => l.startsWith(`add element ${t} service-ips`));
    expect(chainAt).toBeGreaterThanOrEqual(0);
    expect(gotoAt).toBeGreaterThan(chainAt);
    const removed = planNftablesUpdate(withDb, without).text.split('\n');
    const dropGoto = removed.findIndex((l) => l.startsWith(`delete element ${t} service-ips`));
    const dropChain = removed.findIndex((l) => l.startsWith(`delete chain ${t} svc-`));
    const dropMap = removed.findIndex((l) => l.startsWith(`delete map ${t} eps-`));
    expect(dropGoto).toBeGreaterThanOrEqual(0);
    expect(dropChain).toBeGreaterThan(dropGoto);
    expect(dropMap).toBeGreaterThan(dropChain);
  });

  it('a changed set declaration (affinity timeout) replaces the whole table; so does a first sync', () => {
    const a = render(web(['10.244.1.2'], { sessionAffinity: { type: 'ClientIP', timeoutSeconds: 60 } }));
    const b = render(web(['10.244.1.2'], { sessionAffinity: { type: 'ClientIP', timeoutSeconds: 90 } }));
    expect(planNftablesUpdate(a, b).fullReplace).toBe(true);
    expect(planNftablesUpdate(null, b).text.startsWith(`add table ${t}\ndelete table ${t}\n`)).toBe(true);
  });
});
