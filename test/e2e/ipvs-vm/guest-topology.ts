// The network the IPVS test VM's traffic tests build in the guest, as bash (put it in front of the
// script, after PORTWAY_GUEST_PRELUDE when there is one): `make_two_pod_node` makes
//
//   client 10.99.0.100 (+ .101) ── eth0 ─ node 10.99.0.2, cbr0 10.244.1.1/24 ─┬─ pod1 10.244.1.11
//                                                                            └─ pod2 10.244.1.12
//
// The client's default route goes through the node (external and LoadBalancer IPs reach it as through
// a router); the pods' bridge ports hairpin (a pod's packet to a Service may come back out of the port
// it came in by); bridged traffic goes through iptables. What serves in the pods is the test's choice:
// `httpd_pods` (busybox httpd on :8080 answering the pod's name; no node needed in the guest) or its own.
// Also `x NS CMD…` (CMD in namespace NS) and `wait_for SECONDS CMD…` (poll every 0.2 s until CMD succeeds).
export const TWO_POD_NODE_PRELUDE = String.raw`
x() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
wait_for() {
  local n=$(($1 * 5)); shift
  for _ in $(seq $n); do if "$@" >/dev/null 2>&1; then return 0; fi; sleep 0.2; done
  return 1
}
make_two_pod_node() {
  local ns i
  for ns in client node pod1 pod2; do ip netns add $ns; ip -n $ns link set lo up; done
  ip link add eth0 netns client type veth peer name eth0 netns node
  ip -n client addr add 10.99.0.100/24 dev eth0
  ip -n client addr add 10.99.0.101/24 dev eth0
  ip -n client link set eth0 up
  ip -n client route add default via 10.99.0.2
  ip -n node addr add 10.99.0.2/24 dev eth0
  ip -n node link set eth0 up
  ip -n node link add cbr0 type bridge
  ip -n node addr add 10.244.1.1/24 dev cbr0
  ip -n node link set cbr0 up
  for i in 1 2; do
    ip link add eth0 netns pod$i type veth peer name veth$i netns node
    ip -n pod$i addr add 10.244.1.1$i/24 dev eth0
    ip -n pod$i link set eth0 up
    ip -n pod$i route add default via 10.244.1.1
    ip -n node link set veth$i master cbr0 up
    ip -n node link set veth$i type bridge_slave hairpin on
  done
  ip netns exec node sysctl -qw net.bridge.bridge-nf-call-iptables=1
}
httpd_pods() {
  local i
  for i in 1 2; do
    mkdir -p /tmp/www$i && echo pod$i >/tmp/www$i/index.html
    ip netns exec pod$i httpd -p 8080 -h /tmp/www$i
  done
}
`;
