// A raw AF_PACKET socket for ARP or NDP, bound to one interface (docs/adr/0002-arp-socket.md).
//
// Node has no packet sockets, so this addon opens one (SOCK_RAW, bound with protocol ETH_P_ARP or
// ETH_P_IPV6, which the kernel uses as the receive filter), binds it to an interface and exposes:
//   new ArpSocket(ifname, onFrame(frame: Buffer, outgoing: boolean), protocol?: 'arp' | 'ndp')
//   .send(frame: Buffer)        write a whole Ethernet frame
//   .addMembership(mac) / .dropMembership(mac)   join/leave an Ethernet multicast group (6-byte Buffer)
//   .close()
//   .ifindex / .mac (6-byte Buffer) / .ifname / .protocol
// 'ndp' receives IPv6 frames, narrowed in the kernel by a classic BPF program to ICMPv6 Neighbor
// Solicitations with hop limit 255 (kNdpFilter): without it every IPv6 packet the node receives on the
// interface would be copied to JavaScript. 'arp' (the default) is unchanged: ETH_P_ARP, no filter.
// Receiving runs on the Node event loop through uv_poll on the socket's file descriptor: no threads,
// the callback is called on the JS thread as frames become readable.
// Frames of another layer2 domain (a VLAN tag the kernel stripped: PACKET_OTHERHOST, or a VLAN device's
// ifindex) are not delivered; a link going down does not end receiving (see Rearm).
#include <napi.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace {

// Accept an Ethernet frame only when it is IPv6 (ethertype at 12), its next header is ICMPv6 (58, at
// 14+6 — so no extension headers), its hop limit is 255 (at 14+7, RFC 4861 7.1.1) and the ICMPv6 type
// is Neighbor Solicitation (135, at 14+40). Everything else is dropped before it is queued. TypeScript
// (src/l2/ndp-frame.ts) still validates checksum, code, target and options.
struct sock_filter kNdpFilter[] = {
    BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IPV6, 0, 7),
    BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 20),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 58, 0, 5),
    BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 21),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 255, 0, 3),
    BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 54),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 135, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, 0x40000),
    BPF_STMT(BPF_RET | BPF_K, 0),
};

std::string ErrnoMessage(const char* what, const std::string& ifname, int err) {
  return std::string(what) + " on interface \"" + ifname + "\": " + strerror(err);
}

class ArpSocket : public Napi::ObjectWrap<ArpSocket> {
 public:
  static Napi::Object Init(Napi::Env env, Napi::Object exports) {
    Napi::Function ctor = DefineClass(env, "ArpSocket",
                                      {
                                          InstanceMethod("send", &ArpSocket::Send),
                                          InstanceMethod("close", &ArpSocket::Close),
                                          InstanceMethod("addMembership", &ArpSocket::AddMembership),
                                          InstanceMethod("dropMembership", &ArpSocket::DropMembership),
                                          InstanceAccessor("protocol", &ArpSocket::GetProtocol, nullptr),
                                          InstanceAccessor("ifindex", &ArpSocket::GetIfindex, nullptr),
                                          InstanceAccessor("mac", &ArpSocket::GetMac, nullptr),
                                          InstanceAccessor("ifname", &ArpSocket::GetIfname, nullptr),
                                      });
    exports.Set("ArpSocket", ctor);
    return exports;
  }

  explicit ArpSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ArpSocket>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsString() || !info[1].IsFunction()) {
      Napi::TypeError::New(env, "ArpSocket(ifname: string, onFrame: function)").ThrowAsJavaScriptException();
      return;
    }
    ifname_ = info[0].As<Napi::String>().Utf8Value();
    if (ifname_.empty() || ifname_.size() >= IFNAMSIZ) {
      Napi::TypeError::New(env, "ArpSocket: invalid interface name \"" + ifname_ + "\"").ThrowAsJavaScriptException();
      return;
    }
    if (info.Length() >= 3 && !info[2].IsUndefined()) {
      std::string kind = info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
      if (kind == "ndp") {
        protocol_ = ETH_P_IPV6;
      } else if (kind != "arp") {
        Napi::TypeError::New(env, "ArpSocket: protocol must be 'arp' or 'ndp'").ThrowAsJavaScriptException();
        return;
      }
    }
    onFrame_ = Napi::Persistent(info[1].As<Napi::Function>());

    ifindex_ = static_cast<int>(if_nametoindex(ifname_.c_str()));
    if (ifindex_ == 0) {
      Napi::Error::New(env, ErrnoMessage("if_nametoindex", ifname_, errno)).ThrowAsJavaScriptException();
      return;
    }
    // Protocol 0: the socket receives nothing until bind() names the protocol, so the NDP filter is in
    // place before the first frame is queued.
    fd_ = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
      Napi::Error::New(env, ErrnoMessage("socket(AF_PACKET, SOCK_RAW)", ifname_, errno))
          .ThrowAsJavaScriptException();
      return;
    }
    if (protocol_ == ETH_P_IPV6) {
      struct sock_fprog prog;
      prog.len = sizeof(kNdpFilter) / sizeof(kNdpFilter[0]);
      prog.filter = kNdpFilter;
      if (setsockopt(fd_, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0) {
        int err = errno;
        CloseFd();
        Napi::Error::New(env, ErrnoMessage("SO_ATTACH_FILTER", ifname_, err)).ThrowAsJavaScriptException();
        return;
      }
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    strncpy(ifr.ifr_name, ifname_.c_str(), IFNAMSIZ - 1);
    if (ioctl(fd_, SIOCGIFHWADDR, &ifr) < 0) {
      int err = errno;
      CloseFd();
      Napi::Error::New(env, ErrnoMessage("SIOCGIFHWADDR", ifname_, err)).ThrowAsJavaScriptException();
      return;
    }
    memcpy(mac_, ifr.ifr_hwaddr.sa_data, 6);

    struct sockaddr_ll addr;
    memset(&addr, 0, sizeof(addr));
    addr.sll_family = AF_PACKET;
    addr.sll_protocol = htons(protocol_);
    addr.sll_ifindex = ifindex_;
    if (bind(fd_, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) < 0) {
      int err = errno;
      CloseFd();
      Napi::Error::New(env, ErrnoMessage("bind(AF_PACKET)", ifname_, err)).ThrowAsJavaScriptException();
      return;
    }

    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      CloseFd();
      Napi::Error::New(env, "ArpSocket: no libuv loop").ThrowAsJavaScriptException();
      return;
    }
    poll_ = new uv_poll_t;
    poll_->data = this;
    if (uv_poll_init(loop, poll_, fd_) != 0) {
      delete poll_;
      poll_ = nullptr;
      CloseFd();
      Napi::Error::New(env, "ArpSocket: uv_poll_init failed").ThrowAsJavaScriptException();
      return;
    }
    uv_poll_start(poll_, UV_READABLE, &ArpSocket::OnReadable);
    // While polling, keep the JS object alive even if user code drops it: the callback needs it.
    Ref();
  }

  // Reached once close() released the self-reference, when construction failed, or when the environment
  // is torn down with the socket still open: then the poll handle is still registered, and it must stop
  // watching the descriptor before the descriptor is closed (no Unref: the reference is being torn down).
  ~ArpSocket() override {
    StopPolling();
    CloseFd();
  }

 private:
  static void OnReadable(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<ArpSocket*>(handle->data);
    if (self == nullptr) return;
    if (status < 0) {
      self->Rearm();
      return;
    }
    if (events & UV_READABLE) self->DrainFrames();
  }

  // libuv stops a poll handle on POLLERR and reports UV_EBADF. A packet socket raises that when its
  // interface goes down (sk_err = ENETDOWN, also on removal); the kernel delivers again once the link is
  // up, so read the pending error (SO_ERROR clears it) and poll again. Only when there was one: a POLLERR
  // that SO_ERROR cannot clear would otherwise come back at once, forever.
  void Rearm() {
    if (fd_ < 0 || poll_ == nullptr) return;
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err == 0) return;
    uv_poll_start(poll_, UV_READABLE, &ArpSocket::OnReadable);
  }

  void DrainFrames() {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    unsigned char buf[2048];
    // Read everything that is queued; each frame goes to JS separately.
    for (int i = 0; i < 64 && fd_ >= 0; i++) {
      struct sockaddr_ll from;
      socklen_t fromLen = sizeof(from);
      ssize_t n = recvfrom(fd_, buf, sizeof(buf), 0, reinterpret_cast<struct sockaddr*>(&from), &fromLen);
      if (n < 0) return;  // EAGAIN: drained (or a transient error: the next readable event retries)
      // Not a frame of this interface's own layer2 domain: the kernel strips an 802.1Q tag before packet
      // sockets see the frame, and delivers a frame of a VLAN without a VLAN device as PACKET_OTHERHOST, or
      // one taken by a VLAN device (eth0.10) to the parent's sockets too, named by that device's ifindex.
      // Answering either would answer, untagged, a question asked on another VLAN.
      if (from.sll_pkttype == PACKET_OTHERHOST || from.sll_ifindex != ifindex_) continue;
      bool outgoing = from.sll_pkttype == PACKET_OUTGOING;
      Napi::Buffer<unsigned char> frame = Napi::Buffer<unsigned char>::Copy(env, buf, static_cast<size_t>(n));
      onFrame_.MakeCallback(Value(), {frame, Napi::Boolean::New(env, outgoing)});
      if (env.IsExceptionPending()) return;
    }
  }

  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (fd_ < 0) {
      Napi::Error::New(env, "ArpSocket.send: socket on \"" + ifname_ + "\" is closed").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (info.Length() < 1 || !info[0].IsBuffer()) {
      Napi::TypeError::New(env, "ArpSocket.send(frame: Buffer)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    auto frame = info[0].As<Napi::Buffer<unsigned char>>();
    if (frame.Length() < 14) {
      Napi::RangeError::New(env, "ArpSocket.send: frame shorter than an Ethernet header").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    struct sockaddr_ll to;
    memset(&to, 0, sizeof(to));
    to.sll_family = AF_PACKET;
    to.sll_protocol = htons(protocol_);
    to.sll_ifindex = ifindex_;
    to.sll_halen = 6;
    memcpy(to.sll_addr, frame.Data(), 6);
    ssize_t n = sendto(fd_, frame.Data(), frame.Length(), 0, reinterpret_cast<struct sockaddr*>(&to), sizeof(to));
    if (n < 0) {
      Napi::Error::New(env, ErrnoMessage("sendto(AF_PACKET)", ifname_, errno)).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    return Napi::Number::New(env, static_cast<double>(n));
  }

  // PACKET_MR_MULTICAST adds the group to the interface's multicast filter (dev_mc_add), refcounted per
  // socket by the kernel and dropped when the socket closes. One group per solicited-node address is what
  // a kernel that owns the address joins, and what MetalLB joins through mdlayher/ndp; PACKET_MR_ALLMULTI
  // would make the NIC deliver every multicast frame (mDNS, MLD, …) for the BPF filter to throw away.
  // A packet membership sends no MLD report, so a switch (or Linux bridge) doing MLD snooping with a
  // querier would stop forwarding the solicitations to us: for an NDP socket and a solicited-node group
  // (33:33:ff:xx:xx:xx ↔ ff02::1:ffxx:xxxx) the IPv6 group is joined too, on a companion AF_INET6
  // datagram socket (IPV6_JOIN_GROUP), so the kernel reports and keeps reporting it — as MetalLB's
  // JoinGroup on its ICMPv6 socket does.
  Napi::Value AddMembership(const Napi::CallbackInfo& info) { return Membership(info, PACKET_ADD_MEMBERSHIP); }
  Napi::Value DropMembership(const Napi::CallbackInfo& info) { return Membership(info, PACKET_DROP_MEMBERSHIP); }

  Napi::Value Membership(const Napi::CallbackInfo& info, int op) {
    Napi::Env env = info.Env();
    const char* what = op == PACKET_ADD_MEMBERSHIP ? "PACKET_ADD_MEMBERSHIP" : "PACKET_DROP_MEMBERSHIP";
    if (fd_ < 0) {
      Napi::Error::New(env, std::string("ArpSocket: ") + what + ": socket on \"" + ifname_ + "\" is closed")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (info.Length() < 1 || !info[0].IsBuffer() || info[0].As<Napi::Buffer<unsigned char>>().Length() != 6) {
      Napi::TypeError::New(env, "ArpSocket.addMembership/dropMembership(mac: 6-byte Buffer)")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    struct packet_mreq mreq;
    memset(&mreq, 0, sizeof(mreq));
    mreq.mr_ifindex = ifindex_;
    mreq.mr_type = PACKET_MR_MULTICAST;
    mreq.mr_alen = 6;
    memcpy(mreq.mr_address, info[0].As<Napi::Buffer<unsigned char>>().Data(), 6);
    if (setsockopt(fd_, SOL_PACKET, op, &mreq, sizeof(mreq)) < 0) {
      Napi::Error::New(env, ErrnoMessage(what, ifname_, errno)).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    const unsigned char* mac = mreq.mr_address;
    if (protocol_ == ETH_P_IPV6 && mac[0] == 0x33 && mac[1] == 0x33 && mac[2] == 0xff) {
      if (mld_fd_ < 0) mld_fd_ = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      if (mld_fd_ < 0) {
        Napi::Error::New(env, ErrnoMessage("socket(AF_INET6)", ifname_, errno)).ThrowAsJavaScriptException();
        return env.Undefined();
      }
      struct ipv6_mreq group;
      memset(&group, 0, sizeof(group));
      static const unsigned char kPrefix[13] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff};
      memcpy(group.ipv6mr_multiaddr.s6_addr, kPrefix, 13);
      memcpy(group.ipv6mr_multiaddr.s6_addr + 13, mac + 3, 3);
      group.ipv6mr_interface = static_cast<unsigned int>(ifindex_);
      int v6op = op == PACKET_ADD_MEMBERSHIP ? IPV6_JOIN_GROUP : IPV6_LEAVE_GROUP;
      if (setsockopt(mld_fd_, IPPROTO_IPV6, v6op, &group, sizeof(group)) < 0) {
        const char* v6what = v6op == IPV6_JOIN_GROUP ? "IPV6_JOIN_GROUP" : "IPV6_LEAVE_GROUP";
        Napi::Error::New(env, ErrnoMessage(v6what, ifname_, errno)).ThrowAsJavaScriptException();
      }
    }
    return env.Undefined();
  }

  Napi::Value GetProtocol(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), protocol_ == ETH_P_IPV6 ? "ndp" : "arp");
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    StopAndClose();
    return info.Env().Undefined();
  }

  Napi::Value GetIfindex(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), ifindex_); }
  Napi::Value GetMac(const Napi::CallbackInfo& info) {
    return Napi::Buffer<unsigned char>::Copy(info.Env(), mac_, 6);
  }
  Napi::Value GetIfname(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), ifname_); }

  // Stop watching the descriptor (before it is closed); false when it was not being watched.
  bool StopPolling() {
    if (poll_ == nullptr) return false;
    uv_poll_stop(poll_);
    poll_->data = nullptr;
    // The handle memory is freed by libuv's close callback, after the loop is done with it.
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
    return true;
  }

  void StopAndClose() {
    const bool wasPolling = StopPolling();
    CloseFd();
    // Polling held the self-reference taken at start.
    if (wasPolling) Unref();
  }

  void CloseFd() {
    if (fd_ >= 0) {
      close(fd_);
      fd_ = -1;
    }
    // Closing it leaves its IPv6 groups.
    if (mld_fd_ >= 0) {
      close(mld_fd_);
      mld_fd_ = -1;
    }
  }

  std::string ifname_;
  int ifindex_ = 0;
  int fd_ = -1;
  int protocol_ = ETH_P_ARP;
  int mld_fd_ = -1;  // AF_INET6 datagram socket holding the solicited-node groups (NDP sockets only)
  unsigned char mac_[6] = {0, 0, 0, 0, 0, 0};
  uv_poll_t* poll_ = nullptr;
  Napi::FunctionReference onFrame_;
};

Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return ArpSocket::Init(env, exports); }

}  // namespace

NODE_API_MODULE(arp, InitModule)
