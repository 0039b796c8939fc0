// A netlink socket for nf_tables batches (docs/adr/0007-nftables-mode.md): Node has no AF_NETLINK, so
// this addon opens one and moves whole datagrams; every message is built and parsed in TypeScript
// (src/render/nftables/netlink.ts), where it is tested byte for byte.
//   new NetlinkSocket(protocol: number)   socket(AF_NETLINK, SOCK_RAW, protocol), bound (kernel-chosen port id)
//   .send(datagram: Buffer)               one sendto() to the kernel; throws with errno text on failure
//   .receive(timeoutMs: number)           one datagram (Buffer), or null when none came within the timeout
//   .close()
//   .portId
// receive() blocks the JS thread for at most timeoutMs: the kernel acknowledges a batch as soon as it
// has committed it (milliseconds), and a sync waits for that answer anyway. The socket is created in
// the network namespace of the calling thread.
#include <napi.h>

#include <errno.h>
#include <linux/netlink.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace {

std::string ErrnoMessage(const char* what, int err) { return std::string(what) + ": " + strerror(err); }

class NetlinkSocket : public Napi::ObjectWrap<NetlinkSocket> {
 public:
  static Napi::Object Init(Napi::Env env, Napi::Object exports) {
    Napi::Function fn = DefineClass(env, "NetlinkSocket",
                                    {
                                        InstanceMethod("send", &NetlinkSocket::Send),
                                        InstanceMethod("receive", &NetlinkSocket::Receive),
                                        InstanceMethod("close", &NetlinkSocket::Close),
                                        InstanceAccessor("portId", &NetlinkSocket::PortId, nullptr),
                                    });
    exports.Set("NetlinkSocket", fn);
    return exports;
  }

  explicit NetlinkSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NetlinkSocket>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) {
      Napi::TypeError::New(env, "NetlinkSocket(protocol: number)").ThrowAsJavaScriptException();
      return;
    }
    int protocol = info[0].As<Napi::Number>().Int32Value();
    fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
    if (fd_ < 0) {
      Napi::Error::New(env, ErrnoMessage("socket(AF_NETLINK)", errno)).ThrowAsJavaScriptException();
      return;
    }
    // Large batches (a full load) and their acknowledgements: ask for big buffers, as nft does.
    int size = 16 * 1024 * 1024;
    setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    struct sockaddr_nl local;
    memset(&local, 0, sizeof local);
    local.nl_family = AF_NETLINK;
    if (bind(fd_, reinterpret_cast<struct sockaddr*>(&local), sizeof local) < 0) {
      int err = errno;
      close(fd_);
      fd_ = -1;
      Napi::Error::New(env, ErrnoMessage("bind(AF_NETLINK)", err)).ThrowAsJavaScriptException();
      return;
    }
    socklen_t len = sizeof local;
    if (getsockname(fd_, reinterpret_cast<struct sockaddr*>(&local), &len) == 0) port_id_ = local.nl_pid;
  }

  ~NetlinkSocket() override {
    if (fd_ >= 0) close(fd_);
  }

 private:
  bool Open(Napi::Env env) {
    if (fd_ >= 0) return true;
    Napi::Error::New(env, "netlink socket is closed").ThrowAsJavaScriptException();
    return false;
  }

  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Open(env)) return env.Undefined();
    if (info.Length() < 1 || !info[0].IsBuffer()) {
      Napi::TypeError::New(env, "send(datagram: Buffer)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    auto buf = info[0].As<Napi::Buffer<uint8_t>>();
    struct sockaddr_nl kernel;
    memset(&kernel, 0, sizeof kernel);
    kernel.nl_family = AF_NETLINK;
    ssize_t n;
    do {
      n = sendto(fd_, buf.Data(), buf.Length(), 0, reinterpret_cast<struct sockaddr*>(&kernel), sizeof kernel);
    } while (n < 0 && errno == EINTR);
    if (n < 0) Napi::Error::New(env, ErrnoMessage("sendto(netlink)", errno)).ThrowAsJavaScriptException();
    return env.Undefined();
  }

  Napi::Value Receive(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Open(env)) return env.Undefined();
    int timeout = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 1000;
    struct pollfd p = {fd_, POLLIN, 0};
    int r;
    do {
      r = poll(&p, 1, timeout);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
      Napi::Error::New(env, ErrnoMessage("poll(netlink)", errno)).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (r == 0) return env.Null();
    // Peek at the size first: a datagram larger than the buffer would be cut silently.
    ssize_t size = recv(fd_, nullptr, 0, MSG_PEEK | MSG_TRUNC);
    if (size < 0) {
      Napi::Error::New(env, ErrnoMessage("recv(netlink)", errno)).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    std::vector<uint8_t> data(static_cast<size_t>(size) > 0 ? static_cast<size_t>(size) : 1);
    ssize_t n = recv(fd_, data.data(), data.size(), 0);
    if (n < 0) {
      Napi::Error::New(env, ErrnoMessage("recv(netlink)", errno)).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    return Napi::Buffer<uint8_t>::Copy(env, data.data(), static_cast<size_t>(n));
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    return info.Env().Undefined();
  }

  Napi::Value PortId(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), port_id_); }

  int fd_ = -1;
  uint32_t port_id_ = 0;
};

Napi::Object InitAll(Napi::Env env, Napi::Object exports) { return NetlinkSocket::Init(env, exports); }

}  // namespace

NODE_API_MODULE(netlink, InitAll)
