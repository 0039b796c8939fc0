#!/usr/bin/env bash
# The guest side of run-ipvs-vm.test.ts (read its header): the topology, the agent, phases A, B and C.
# Lines the test reads: "R <label> <answer>", "H held …", "HELD-BY", "WEIGHT-0", "DRAINED", "AGENT-STOPPED".
set -u
# The test puts PORTWAY_GUEST_PRELUDE (portway-in-guest.ts) in front: node and the bundle under /payload/portway.
NODE=/payload/portway/node
# The test puts TWO_POD_NODE_PRELUDE (guest-topology.ts) in front too: make_two_pod_node, x, wait_for.
make_two_pod_node
for i in 1 2; do x pod$i $NODE /payload/pod-server.mjs pod$i 8080 8081 >/tmp/pod$i.out 2>&1 & done
mkdir -p /tmp/m && cp /payload/manifests/*.yaml /tmp/m/
start_agent() {
  # Not through x: $! must be the agent itself (ip netns exec execs it), for the SIGTERM below.
  ip netns exec node $NODE /payload/portway/app/dist/cli/portway.mjs run --manifests /tmp/m --config /payload/config.yaml >>/tmp/pw.log 2>&1 &
  echo $! >/tmp/pw.pid
}
start_agent
wait_for 60 grep -q ready /tmp/pod1.out || echo "pod1 server not ready"
wait_for 60 grep -q ready /tmp/pod2.out || echo "pod2 server not ready"
wait_for 90 x node sh -c 'iptables-save -t nat | grep -q KUBE-LOAD-BALANCER && ipvsadm -Ln | grep -q 10.96.0.40:80' || { echo "agent did not program the node"; cat /tmp/pw.log; exit 1; }
echo "@@@ phase A"
x client $NODE /payload/probe.mjs "$(cat /payload/a-client.json)"
x node $NODE /payload/probe.mjs "$(cat /payload/a-node.json)"
x pod1 $NODE /payload/probe.mjs "$(cat /payload/a-pod1.json)"
x node ipvsadm -Ln
echo "@@@ phase B"
x client $NODE /payload/probe.mjs '[{"hold":"held","host":"10.99.0.2","port":30080,"stopFile":"/tmp/hold-stop"}]' >/tmp/hold.out 2>&1 &
wait_for 30 grep -q '^H held pod' /tmp/hold.out || echo "no held connection"
held=$(awk '/^H held pod/ { print $3; exit }' /tmp/hold.out)
echo "HELD-BY $held"
other=pod1; [ "$held" = pod1 ] && other=pod2
other_ip=10.244.1.1${other#pod}
held_ip=10.244.1.1${held#pod}
cat >/tmp/slice.yaml <<YAML
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: web-1, namespace: demo, labels: { kubernetes.io/service-name: web } }
addressType: IPv4
ports: [{ name: http, port: 8080, protocol: TCP }, { name: dns, port: 8081, protocol: UDP }]
endpoints: [{ addresses: [$other_ip], conditions: { ready: true }, nodeName: node-a }]
YAML
mv /tmp/slice.yaml /tmp/m/web-slice.yaml
removed_at=$(date +%s)
wait_for 30 x node sh -c "ipvsadm -Ln -t 10.96.0.10:80 | grep -E '$held_ip:8080 +Masq +0 '" && echo "WEIGHT-0 yes" || echo "WEIGHT-0 no"
x client $NODE /payload/probe.mjs '[{"label":"after-removal","proto":"tcp","host":"10.99.0.2","port":30080,"count":6}]'
sleep 3
x node ipvsadm -Ln -t 10.99.0.2:30080
touch /tmp/hold-stop
wait_for 10 grep -q '^H held \(closed\|lost\)' /tmp/hold.out
cat /tmp/hold.out
# Gone from the virtual server the held connection went through, which is still there.
drained() {
  local out
  out=$(ip netns exec node ipvsadm -Ln -t 10.99.0.2:30080) || return 1
  ! grep -q "$held_ip:8080" <<<"$out"
}
if wait_for 40 drained; then
  echo "DRAINED yes after $(( $(date +%s) - removed_at )) s"
else
  echo "DRAINED no"; x node ipvsadm -Ln
fi
echo "@@@ phase C"
# The requests go on until the new agent's first sync is done and 2 s after it (what a restart must
# not break is that sync as much as the gap): a fixed duration ended, under load, before it.
x client $NODE /payload/probe.mjs '[{"loop":"restart","host":"10.99.0.2","port":30080,"durationMs":90000,"intervalMs":200,"stopFile":"/tmp/loop-stop"}]' >/tmp/loop.out 2>&1 &
loop=$!
wait_for 30 grep -q '^R restart' /tmp/loop.out
sleep 2
kill -TERM "$(cat /tmp/pw.pid)"
wait "$(cat /tmp/pw.pid)"
echo "AGENT-STOPPED exit $?"
synced_before=$(grep -c '"ipvs state' /tmp/pw.log)
start_agent
wait_for 60 sh -c "[ \$(grep -c '\"ipvs state' /tmp/pw.log) -gt $synced_before ]" && echo "RESTARTED-SYNCED yes" || echo "RESTARTED-SYNCED no"
sleep 2
touch /tmp/loop-stop
wait "$loop"
cat /tmp/loop.out
echo "@@@ agent log"
tail -c 6000 /tmp/pw.log
x node ipvsadm -Ln
x node iptables-save -t nat | grep -v '^#'
grep -c '"ipvs state applied"' /tmp/pw.log | sed 's/^/IPVS-APPLIED-LINES /'
grep -E '"level":(40|50)|error|failed' /tmp/pw.log | head -20
kill -TERM "$(cat /tmp/pw.pid)" 2>/dev/null
true
