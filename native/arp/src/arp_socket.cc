// A raw AF_PACKET socket for ARP, bound to one interface (docs/adr/0002-arp-socket.md).
//
// Node has no packet sockets, so this addon opens one (SOCK_RAW, protocol ETH_P_ARP, which the kernel
// uses as the receive filter), binds it to an interface and exposes:
//   new ArpSocket(ifname, onFrame(frame: Buffer, outgoing: boolean))
//   .send(frame: Buffer)        write a whole Ethernet frame
//   .close()
//   .ifindex / .mac (6-byte Buffer) / .ifname
// Receiving runs on the Node event loop through uv_poll on the socket's file descriptor: no threads,
// the callback is called on the JS thread as frames become readable.
#include <napi.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace {

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
    onFrame_ = Napi::Persistent(info[1].As<Napi::Function>());

    ifindex_ = static_cast<int>(if_nametoindex(ifname_.c_str()));
    if (ifindex_ == 0) {
      Napi::Error::New(env, ErrnoMessage("if_nametoindex", ifname_, errno)).ThrowAsJavaScriptException();
      return;
    }
    fd_ = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ARP));
    if (fd_ < 0) {
      Napi::Error::New(env, ErrnoMessage("socket(AF_PACKET, SOCK_RAW, ETH_P_ARP)", ifname_, errno))
          .ThrowAsJavaScriptException();
      return;
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
    addr.sll_protocol = htons(ETH_P_ARP);
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

  // Only reached once close() released the self-reference (or construction failed), so no Unref here.
  ~ArpSocket() override { CloseFd(); }

 private:
  static void OnReadable(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<ArpSocket*>(handle->data);
    if (self == nullptr || status < 0 || !(events & UV_READABLE)) return;
    self->DrainFrames();
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
    to.sll_protocol = htons(ETH_P_ARP);
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

  Napi::Value Close(const Napi::CallbackInfo& info) {
    StopAndClose();
    return info.Env().Undefined();
  }

  Napi::Value GetIfindex(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), ifindex_); }
  Napi::Value GetMac(const Napi::CallbackInfo& info) {
    return Napi::Buffer<unsigned char>::Copy(info.Env(), mac_, 6);
  }
  Napi::Value GetIfname(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), ifname_); }

  void StopAndClose() {
    if (poll_ != nullptr) {
      uv_poll_stop(poll_);
      poll_->data = nullptr;
      // The handle memory is freed by libuv's close callback, after the loop is done with it.
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      poll_ = nullptr;
      CloseFd();
      Unref();
      return;
    }
    CloseFd();
  }

  void CloseFd() {
    if (fd_ >= 0) {
      close(fd_);
      fd_ = -1;
    }
  }

  std::string ifname_;
  int ifindex_ = 0;
  int fd_ = -1;
  unsigned char mac_[6] = {0, 0, 0, 0, 0, 0};
  uv_poll_t* poll_ = nullptr;
  Napi::FunctionReference onFrame_;
};

Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return ArpSocket::Init(env, exports); }

}  // namespace

NODE_API_MODULE(arp, InitModule)
