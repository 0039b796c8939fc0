// A netlink socket for nf_tables batches (docs/adr/0008-nftables-netlink.md).
//
// Node has no AF_NETLINK sockets, so this addon opens one and moves bytes; every message is built and
// parsed in TypeScript (src/dataplane/nft-netlink). It exposes:
//   new NetlinkSocket(protocol: number, netnsPath?: string)
//       socket(AF_NETLINK, SOCK_RAW) bound with a kernel-chosen port id, extended acks on
//       (NETLINK_EXT_ACK: errors carry the offset of the offending attribute). With netnsPath (e.g.
//       /var/run/netns/<name>) the socket is created inside that network namespace: the calling thread
//       enters it for socket() only and returns, and the socket stays in the namespace it was made in.
//   .send(buf: Buffer): number          one send() of the whole buffer (a batch is one sendmsg)
//   .recv(timeoutMs: number): Buffer | null
//       one datagram (a copy), or null when nothing arrives within timeoutMs (0 = do not wait).
//       Bounded on purpose: nfnetlink handles a batch inside the sender's send(), so its acks are
//       queued before send() returns; only dumps are produced as they are read.
//   .setReceiveBufferSize(bytes: number): number   SO_RCVBUFFORCE (root), else SO_RCVBUF; returns
//       what the kernel granted (getsockopt), so a caller sees a clamp instead of a later ENOBUFS.
//   .close(), .portId
// Errors are thrown as Error with .code set to the errno name ("ENOBUFS", …) and .errno to its number.
#include <napi.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace {

// Large enough for any one netlink datagram nf_tables sends (dump parts are at most a page or two;
// 1 MiB leaves room for the kernel's largest skb) so a datagram is never truncated.
constexpr size_t kRecvBufferBytes = 1 << 20;

const char* ErrnoName(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EINTR: return "EINTR";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case EINVAL: return "EINVAL";
    case EMSGSIZE: return "EMSGSIZE";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case ENOBUFS: return "ENOBUFS";
    case ECONNREFUSED: return "ECONNREFUSED";
    default: return "EUNKNOWN";
  }
}

Napi::Error ErrnoError(Napi::Env env, const std::string& what, int err) {
  Napi::Error e = Napi::Error::New(env, "netlink " + what + ": " + strerror(err));
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, err));
  return e;
}

class NetlinkSocket : public Napi::ObjectWrap<NetlinkSocket> {
 public:
  static Napi::Object Init(Napi::Env env, Napi::Object exports) {
    Napi::Function ctor =
        DefineClass(env, "NetlinkSocket",
                    {
                        InstanceMethod("send", &NetlinkSocket::Send),
                        InstanceMethod("recv", &NetlinkSocket::Recv),
                        InstanceMethod("setReceiveBufferSize", &NetlinkSocket::SetReceiveBufferSize),
                        InstanceMethod("close", &NetlinkSocket::Close),
                        InstanceAccessor("portId", &NetlinkSocket::GetPortId, nullptr),
                    });
    exports.Set("NetlinkSocket", ctor);
    return exports;
  }

  explicit NetlinkSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NetlinkSocket>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) {
      Napi::TypeError::New(env, "NetlinkSocket(protocol: number, netnsPath?: string)").ThrowAsJavaScriptException();
      return;
    }
    int protocol = info[0].As<Napi::Number>().Int32Value();
    std::string netns;
    if (info.Length() >= 2 && !info[1].IsUndefined()) {
      if (!info[1].IsString()) {
        Napi::TypeError::New(env, "NetlinkSocket: netnsPath must be a string").ThrowAsJavaScriptException();
        return;
      }
      netns = info[1].As<Napi::String>().Utf8Value();
    }

    int origNs = -1;
    int targetNs = -1;
    if (!netns.empty()) {
      origNs = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
      if (origNs < 0) {
        ErrnoError(env, "open(/proc/thread-self/ns/net)", errno).ThrowAsJavaScriptException();
        return;
      }
      targetNs = open(netns.c_str(), O_RDONLY | O_CLOEXEC);
      if (targetNs < 0) {
        int err = errno;
        close(origNs);
        ErrnoError(env, "open(" + netns + ")", err).ThrowAsJavaScriptException();
        return;
      }
      if (setns(targetNs, CLONE_NEWNET) < 0) {
        int err = errno;
        close(origNs);
        close(targetNs);
        ErrnoError(env, "setns(" + netns + ")", err).ThrowAsJavaScriptException();
        return;
      }
    }
    fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
    int socketErr = errno;
    if (origNs >= 0) {
      // Back to where the thread was before anything else can run on it; failing that, the JS thread
      // would keep running in the wrong namespace, which no caller could notice: abort loudly.
      if (setns(origNs, CLONE_NEWNET) < 0) {
        Napi::Error::Fatal("NetlinkSocket", "cannot return to the original network namespace");
      }
      close(origNs);
      close(targetNs);
    }
    if (fd_ < 0) {
      ErrnoError(env, "socket(AF_NETLINK)", socketErr).ThrowAsJavaScriptException();
      return;
    }
    struct sockaddr_nl addr;
    memset(&addr, 0, sizeof(addr));
    addr.nl_family = AF_NETLINK;
    if (bind(fd_, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) < 0) {
      int err = errno;
      CloseFd();
      ErrnoError(env, "bind", err).ThrowAsJavaScriptException();
      return;
    }
    socklen_t len = sizeof(addr);
    if (getsockname(fd_, reinterpret_cast<struct sockaddr*>(&addr), &len) < 0) {
      int err = errno;
      CloseFd();
      ErrnoError(env, "getsockname", err).ThrowAsJavaScriptException();
      return;
    }
    // Extended acks: an error then names the attribute it is about (an offset into the message we
    // sent), which is how a refused batch can say which element of a list failed. Best effort: an
    // older kernel without it still reports the errno.
    int on = 1;
    setsockopt(fd_, SOL_NETLINK, NETLINK_EXT_ACK, &on, sizeof(on));
    portId_ = addr.nl_pid;
    buffer_.resize(kRecvBufferBytes);
  }

  ~NetlinkSocket() override { CloseFd(); }

 private:
  bool CheckOpen(Napi::Env env) {
    if (fd_ < 0) {
      Napi::Error::New(env, "netlink socket is closed").ThrowAsJavaScriptException();
      return false;
    }
    return true;
  }

  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    if (info.Length() < 1 || !info[0].IsBuffer()) {
      Napi::TypeError::New(env, "send(buf: Buffer)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Buffer<uint8_t> buf = info[0].As<Napi::Buffer<uint8_t>>();
    struct sockaddr_nl kernel;
    memset(&kernel, 0, sizeof(kernel));
    kernel.nl_family = AF_NETLINK;
    ssize_t n;
    do {
      n = sendto(fd_, buf.Data(), buf.Length(), 0, reinterpret_cast<struct sockaddr*>(&kernel), sizeof(kernel));
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      ErrnoError(env, "sendto", errno).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    return Napi::Number::New(env, static_cast<double>(n));
  }

  Napi::Value Recv(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    if (info.Length() < 1 || !info[0].IsNumber()) {
      Napi::TypeError::New(env, "recv(timeoutMs: number)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    int timeoutMs = info[0].As<Napi::Number>().Int32Value();
    if (timeoutMs < 0) timeoutMs = 0;
    struct pollfd pfd = {fd_, POLLIN, 0};
    int ready;
    do {
      ready = poll(&pfd, 1, timeoutMs);
    } while (ready < 0 && errno == EINTR);
    if (ready < 0) {
      ErrnoError(env, "poll", errno).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (ready == 0) return env.Null();
    ssize_t n;
    do {
      n = recv(fd_, buffer_.data(), buffer_.size(), MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return env.Null();
      ErrnoError(env, "recv", errno).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    return Napi::Buffer<uint8_t>::Copy(env, buffer_.data(), static_cast<size_t>(n));
  }

  Napi::Value SetReceiveBufferSize(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    if (info.Length() < 1 || !info[0].IsNumber()) {
      Napi::TypeError::New(env, "setReceiveBufferSize(bytes: number)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    int bytes = info[0].As<Napi::Number>().Int32Value();
    if (setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) < 0 &&
        setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes)) < 0) {
      ErrnoError(env, "setsockopt(SO_RCVBUF)", errno).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    int granted = 0;
    socklen_t len = sizeof(granted);
    if (getsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &granted, &len) < 0) {
      ErrnoError(env, "getsockopt(SO_RCVBUF)", errno).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    return Napi::Number::New(env, granted);
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    CloseFd();
    return info.Env().Undefined();
  }

  Napi::Value GetPortId(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), portId_); }

  void CloseFd() {
    if (fd_ >= 0) {
      close(fd_);
      fd_ = -1;
    }
  }

  int fd_ = -1;
  uint32_t portId_ = 0;
  std::vector<uint8_t> buffer_;
};

Napi::Object InitAll(Napi::Env env, Napi::Object exports) { return NetlinkSocket::Init(env, exports); }

}  // namespace

NODE_API_MODULE(netlink, InitAll)
