// A misbehaving backend for tests/e2e/test_bad_backend.py: a gRPC proxy
// between the agent and a real kbgp-ingest that forwards every call as raw
// ByteBuffers (gRPC's generic API, TLS on both sides) and, for the one
// device named in its fault file, injects what the interface does not
// allow or what a backend may do at an odd moment.
//
//   kbgp ══TLS══▶ fault_proxy --listen ══TLS══▶ kbgp-ingest --target
//
// Usage: fault_proxy --listen ADDR:PORT --target ADDR:PORT --cert PEM
//        --key PEM --ca PEM --server-name NAME --faults FILE
//
// The fault file holds lines "DEVICE_IP FAULT [N]", re-read whenever a Data
// call opens or the agent sends a ControlRequest; each line applies once.
// Data faults (on the Data call whose device-ip metadata is DEVICE_IP,
// injected after N DataResponses with data of the real backend were
// forwarded, 0 = before any):
//   kill, restart, unknown_action  a DataResponse with that action
//   large            1 MiB of KEEPALIVEs in one DataResponse (> the ring)
//   oversized        a 5 MiB DataResponse (> gRPC's 4 MiB limit at the agent)
//   garbage          bytes that are no DataResponse at all
//   bad_counters     initial metadata counter-up "12x" (N ignored)
//   dup_counters     counter-down sent twice (N ignored)
//   no_metadata      initial metadata without any key (N ignored)
//   junk_metadata    40 extra headers of printable junk and random -bin bytes
//   huge_metadata    one 32 KiB header (beyond gRPC's metadata limit)
// Control faults (when the agent asks about DEVICE_IP):
//   control_unknown_action  the backend's answer gets action 9
//   control_garbage         bytes that are no ControlResponse, on the stream
//
// The agent counts every DataResponse it takes (counter-down), injected
// ones too, while the real backend did not send them; so that a stream can
// carry on after an injection, the proxy translates counter-down both ways
// (initial metadata and resume acknowledgements) per session-id.
//
// Each injection is logged on stderr as "fault injected: ...".
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/proto_utils.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/resume_protocol.h"
#include "kentik/ktbgp/v202203beta2/proxy.pb.h"

namespace {

namespace pb = kentik::ktbgp::v202203beta2;
using grpc::ByteBuffer;

constexpr char kDataMethod[] = "/kentik.ktbgp.v202203beta2.ProxyService/Data";
constexpr char kControlMethod[] = "/kentik.ktbgp.v202203beta2.ProxyService/Control";

struct Fault {
  std::string line;  // the whole line: identifies it for "applies once"
  std::string device;
  std::string kind;
  uint64_t after = 0;
};

// The fault file and which of its lines were used.
class FaultBook {
 public:
  explicit FaultBook(std::string path) : path_(std::move(path)) {}

  // The first unused fault for `device` among `kinds`; marks it used.
  std::optional<Fault> take(const std::string& device, const std::set<std::string>& kinds) {
    std::lock_guard lock(mu_);
    std::ifstream in(path_);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream words(line);
      Fault f;
      f.line = line;
      if (!(words >> f.device >> f.kind)) continue;
      words >> f.after;
      if (f.device != device || !kinds.count(f.kind) || used_.count(line)) continue;
      used_.insert(line);
      return f;
    }
    return std::nullopt;
  }

  // Injected DataResponses the agent counted, per session-id.
  uint64_t offset(const std::string& session) {
    std::lock_guard lock(mu_);
    return offsets_[session];
  }
  void add_offset(const std::string& session) {
    std::lock_guard lock(mu_);
    ++offsets_[session];
  }

 private:
  std::mutex mu_;
  std::string path_;
  std::set<std::string> used_;
  std::map<std::string, uint64_t> offsets_;
};

void note(const std::string& what) {
  std::fprintf(stderr, "fault injected: %s\n", what.c_str());
  std::fflush(stderr);
}

template <typename Message>
ByteBuffer serialize(const Message& m) {
  ByteBuffer bb;
  bool own = false;
  grpc::SerializationTraits<Message>::Serialize(m, &bb, &own);
  return bb;
}

template <typename Message>
bool parse(ByteBuffer bb, Message* m) {  // by value: Deserialize consumes it
  return grpc::SerializationTraits<Message>::Deserialize(&bb, m).ok();
}

ByteBuffer raw(const std::string& bytes) {
  grpc::Slice slice(bytes.data(), bytes.size());
  return ByteBuffer(&slice, 1);
}

std::optional<uint64_t> decimal(const std::string& s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

std::string printable_junk(size_t n, std::mt19937& rng) {
  static const char kChars[] =
      "abcdefghijklmnopqrstuvwxyz0123456789 !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
  std::string s;
  for (size_t i = 0; i < n; ++i) s += kChars[rng() % (sizeof kChars - 1)];
  return s;
}

class CallRegistry;

// One proxied call: the agent's call (this server reactor) and ours to the
// real backend (Upstream). All state under mu_; gRPC runs the reactions on
// its own threads.
class ProxyCall : public grpc::ServerGenericBidiReactor {
 public:
  ProxyCall(grpc::GenericCallbackServerContext* ctx, grpc::GenericStub* stub, FaultBook* book,
            CallRegistry* registry);
  void begin();

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnSendInitialMetadataDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  class Upstream : public grpc::ClientBidiReactor<ByteBuffer, ByteBuffer> {
   public:
    explicit Upstream(ProxyCall* owner) : owner_(owner) {}
    void OnReadInitialMetadataDone(bool ok) override { owner_->upstream_metadata(ok); }
    void OnReadDone(bool ok) override { owner_->upstream_read(ok); }
    void OnWriteDone(bool ok) override { owner_->upstream_written(ok); }
    void OnWritesDoneDone(bool) override {}
    void OnDone(const grpc::Status& s) override { owner_->upstream_done(s); }

   private:
    ProxyCall* owner_;
  };

  void upstream_metadata(bool ok);
  void upstream_read(bool ok);
  void upstream_written(bool ok);
  void upstream_done(const grpc::Status& status);
  void inject_locked();
  void pump_to_agent_locked();
  void maybe_finish_locked();
  void release_locked();
  ByteBuffer translate_request_locked(ByteBuffer in);
  // Follows the BGP framing of what goes to the device.
  void follow_bgp(const std::string& bytes);
  ByteBuffer translate_response_locked(ByteBuffer in);

  grpc::GenericCallbackServerContext* ctx_;
  grpc::GenericStub* stub_;
  FaultBook* book_;
  CallRegistry* registry_;
  grpc::ClientContext up_ctx_;
  Upstream upstream_{this};

  // Recursive: a Start* call made under the lock might run a reaction inline.
  std::recursive_mutex mu_;
  bool data_ = false;
  std::string device_, session_;
  std::optional<Fault> fault_;
  bool injected_ = false;
  std::set<std::string> control_rewrite_;  // device ips whose next answer gets action 9
  uint64_t forwarded_ = 0;                 // DataResponses with data forwarded to the agent
  uint8_t header_[19] = {};                // of the BGP message being forwarded
  size_t header_have_ = 0;                 // 0: between two messages
  size_t body_left_ = 0;
  ByteBuffer from_agent_, to_upstream_, from_upstream_;
  std::deque<ByteBuffer> to_agent_;
  bool writing_ = false, md_sent_ = false, md_failed_ = false, reading_upstream_ = false;
  bool upstream_ended_ = false;
  std::optional<grpc::Status> upstream_status_;
  bool finished_ = false, server_done_ = false, upstream_done_ = false, cancelled_ = false;
};

class CallRegistry {
 public:
  ProxyCall* add(std::unique_ptr<ProxyCall> call) {
    std::lock_guard lock(mu_);
    ProxyCall* p = call.get();
    calls_[p] = std::move(call);
    return p;
  }
  void remove(ProxyCall* p) {
    std::unique_ptr<ProxyCall> gone;
    std::lock_guard lock(mu_);
    auto it = calls_.find(p);
    if (it == calls_.end()) return;
    gone = std::move(it->second);
    calls_.erase(it);
  }

 private:
  std::mutex mu_;
  std::map<ProxyCall*, std::unique_ptr<ProxyCall>> calls_;
};

ProxyCall::ProxyCall(grpc::GenericCallbackServerContext* ctx, grpc::GenericStub* stub,
                     FaultBook* book, CallRegistry* registry)
    : ctx_(ctx), stub_(stub), book_(book), registry_(registry) {}

void ProxyCall::begin() {
  std::lock_guard lock(mu_);
  data_ = ctx_->method() == kDataMethod;
  // client_metadata() is sorted by key: find the call's identity first.
  for (const auto& [k, v] : ctx_->client_metadata()) {
    std::string key(k.data(), k.size()), value(v.data(), v.size());
    if (key == "device-ip") device_ = value;
    if (key == "session-id") session_ = value;
  }
  uint64_t off = 0;
  if (data_) {
    fault_ = book_->take(device_, {"kill", "restart", "unknown_action", "large", "oversized",
                                   "garbage", "bad_counters", "dup_counters", "no_metadata",
                                   "junk_metadata", "huge_metadata"});
    off = book_->offset(session_);
  }
  for (const auto& [k, v] : ctx_->client_metadata()) {
    std::string key(k.data(), k.size()), value(v.data(), v.size());
    if (key.empty() || key[0] == ':' || key == "content-type" || key == "te" ||
        key == "user-agent" || key.rfind("grpc-", 0) == 0)
      continue;
    if (key == "counter-down" && off) {
      // The agent's count includes responses the backend never sent.
      auto n = decimal(value);
      if (n && *n >= off) value = std::to_string(*n - off);
    }
    up_ctx_.AddMetadata(key, value);
  }
  stub_->PrepareBidiStreamingCall(&up_ctx_, ctx_->method(), grpc::StubOptions(), &upstream_);
  upstream_.StartRead(&from_upstream_);
  reading_upstream_ = true;
  upstream_.AddHold();  // writes start from the agent's reactions
  upstream_.StartCall();
  StartRead(&from_agent_);
}

// ---- agent -> backend --------------------------------------------------------

ByteBuffer ProxyCall::translate_request_locked(ByteBuffer in) {
  if (data_) {
    uint64_t off = book_->offset(session_);
    if (!off) return in;
    pb::DataRequest req;
    if (!parse(in, &req) || static_cast<int>(req.action()) != kbgp::resume::kActionAck ||
        req.data_size() != 1)
      return in;
    auto n = decimal(req.data(0));
    if (!n || *n < off) return in;
    req.set_data(0, std::to_string(*n - off));
    return serialize(req);
  }
  pb::ControlRequest req;
  if (!parse(in, &req) || req.device_ip().empty()) return in;
  if (auto f = book_->take(req.device_ip(), {"control_unknown_action", "control_garbage"})) {
    if (f->kind == "control_unknown_action") {
      control_rewrite_.insert(req.device_ip());
    } else {
      note("control_garbage for " + req.device_ip());
      to_agent_.push_back(raw(std::string("\xff\xff\xff\xff\x0f\x12\x34garbage", 14)));
      pump_to_agent_locked();
    }
  }
  return in;
}

void ProxyCall::OnReadDone(bool ok) {
  std::lock_guard lock(mu_);
  if (!ok) {
    // The agent half-closed, or its call was cancelled (a broken
    // connection). gRPC may tell the second only after this, and
    // half-closing upstream would then tell kbgp-ingest "the device is
    // done" instead of "the stream broke": decide a moment later.
    std::thread([this] {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      std::lock_guard later(mu_);
      if (!cancelled_) upstream_.StartWritesDone();
      upstream_.RemoveHold();
    }).detach();
    return;
  }
  to_upstream_ = translate_request_locked(from_agent_);
  from_agent_.Clear();
  upstream_.StartWrite(&to_upstream_);
}

void ProxyCall::upstream_written(bool ok) {
  std::lock_guard lock(mu_);
  if (!ok) {
    upstream_.RemoveHold();
    return;
  }
  StartRead(&from_agent_);
}

// ---- backend -> agent --------------------------------------------------------

void ProxyCall::upstream_metadata(bool ok) {
  std::lock_guard lock(mu_);
  if (!ok) {
    md_failed_ = true;
    maybe_finish_locked();
    return;
  }
  uint64_t off = data_ ? book_->offset(session_) : 0;
  const bool no_metadata = fault_ && fault_->kind == "no_metadata";
  if (no_metadata) {
    note("no_metadata for " + device_);
    injected_ = true;
  }
  for (const auto& [k, v] : up_ctx_.GetServerInitialMetadata()) {
    if (no_metadata) break;
    std::string key(k.data(), k.size()), value(v.data(), v.size());
    if (key.empty() || key[0] == ':' || key == "content-type" || key.rfind("grpc-", 0) == 0)
      continue;
    if (key == "counter-down" && off) {
      if (auto n = decimal(value)) value = std::to_string(*n + off);
    }
    if (key == "counter-up" && fault_ && fault_->kind == "bad_counters") {
      note("bad_counters for " + device_);
      value = "12x";
      injected_ = true;
    }
    ctx_->AddInitialMetadata(key, value);
    if (key == "counter-down" && fault_ && fault_->kind == "dup_counters") {
      note("dup_counters for " + device_);
      ctx_->AddInitialMetadata(key, value + "1");
      injected_ = true;
    }
  }
  if (fault_ && fault_->kind == "junk_metadata") {
    note("junk_metadata for " + device_);
    std::mt19937 rng(7);
    for (int i = 0; i < 20; ++i) {
      ctx_->AddInitialMetadata("x-junk-" + std::to_string(i), printable_junk(100, rng));
      std::string bytes;
      for (int j = 0; j < 64; ++j) bytes += static_cast<char>(rng());
      ctx_->AddInitialMetadata("x-junk-" + std::to_string(i) + "-bin", bytes);
    }
    injected_ = true;
  }
  if (fault_ && fault_->kind == "huge_metadata") {
    note("huge_metadata for " + device_);
    ctx_->AddInitialMetadata("x-huge", std::string(32 * 1024, 'h'));
    injected_ = true;
  }
  StartSendInitialMetadata();
}

void ProxyCall::OnSendInitialMetadataDone(bool ok) {
  std::lock_guard lock(mu_);
  md_sent_ = true;
  if (!ok) return;
  inject_locked();
  pump_to_agent_locked();
}

void ProxyCall::follow_bgp(const std::string& bytes) {
  for (char c : bytes) {
    if (header_have_ < 19) {
      header_[header_have_++] = static_cast<uint8_t>(c);
      if (header_have_ == 19) {
        size_t length = size_t{header_[16]} << 8 | header_[17];
        body_left_ = length > 19 ? length - 19 : 0;
        if (body_left_ == 0) header_have_ = 0;
      }
    } else if (--body_left_ == 0) {
      header_have_ = 0;
    }
  }
}

void ProxyCall::inject_locked() {
  if (!fault_ || injected_ || forwarded_ < fault_->after) return;
  // Bytes for the device go in between two BGP messages only (the
  // backend's responses need not end on one).
  if (fault_->kind == "large" && header_have_ != 0) {
    std::fprintf(stderr, "fault_proxy: %s: waiting for a BGP message boundary (%zu header bytes, "
                 "%zu body bytes to come)\n", device_.c_str(), header_have_, body_left_);
    return;
  }
  const std::string& kind = fault_->kind;
  pb::DataResponse r;
  bool counted = true;  // does the agent count it as a DataResponse?
  if (kind == "kill") {
    r.set_action(pb::DATA_ACTION_KILL);
  } else if (kind == "restart") {
    r.set_action(pb::DATA_ACTION_RESTART);
  } else if (kind == "unknown_action") {
    r.set_action(static_cast<pb::DataAction>(7));
    counted = false;
  } else if (kind == "large") {
    std::string keepalive(16, '\xff');
    keepalive += std::string("\x00\x13\x04", 3);
    std::string data;
    while (data.size() + keepalive.size() <= 1024 * 1024) data += keepalive;
    r.add_data(data);
  } else if (kind == "oversized") {
    r.add_data(std::string(5 * 1024 * 1024, '\xff'));
    counted = false;
  } else if (kind == "garbage") {
    injected_ = true;
    note("garbage for " + device_ + " after " + std::to_string(forwarded_));
    to_agent_.push_back(raw(std::string("\xff\xff\xff\xff\x0f\x12\x34garbage", 14)));
    return;
  } else {
    return;  // a metadata fault
  }
  injected_ = true;
  if (counted) book_->add_offset(session_);
  note(kind + " for " + device_ + " after " + std::to_string(forwarded_));
  to_agent_.push_back(serialize(r));
}

ByteBuffer ProxyCall::translate_response_locked(ByteBuffer in) {
  if (data_ || control_rewrite_.empty()) return in;
  pb::ControlResponse r;
  if (!parse(in, &r) || !control_rewrite_.count(r.device_ip()) ||
      r.action() == pb::CONTROL_ACTION_KEEPALIVE)
    return in;
  control_rewrite_.erase(r.device_ip());
  note("control_unknown_action for " + r.device_ip());
  r.set_action(static_cast<pb::ControlAction>(9));
  return serialize(r);
}

void ProxyCall::upstream_read(bool ok) {
  std::lock_guard lock(mu_);
  reading_upstream_ = false;
  if (!ok) {
    upstream_ended_ = true;
    maybe_finish_locked();
    return;
  }
  if (data_) {
    // Only responses with device bytes count as "data": kbgp-ingest also
    // sends resume acknowledgements.
    pb::DataResponse r;
    if (parse(from_upstream_, &r) && r.data_size() > 0 &&
        static_cast<int>(r.action()) != kbgp::resume::kActionAck) {
      ++forwarded_;
      for (const auto& chunk : r.data()) follow_bgp(chunk);
    }
  }
  to_agent_.push_back(translate_response_locked(from_upstream_));
  from_upstream_.Clear();
  if (md_sent_) inject_locked();
  pump_to_agent_locked();
}

void ProxyCall::pump_to_agent_locked() {
  if (!md_sent_ || writing_ || finished_) return;
  if (!to_agent_.empty()) {
    writing_ = true;
    StartWrite(&to_agent_.front());
    return;
  }
  if (!reading_upstream_ && !upstream_ended_) {
    reading_upstream_ = true;
    upstream_.StartRead(&from_upstream_);
    return;
  }
  maybe_finish_locked();
}

void ProxyCall::OnWriteDone(bool ok) {
  std::lock_guard lock(mu_);
  writing_ = false;
  if (!to_agent_.empty()) to_agent_.pop_front();
  if (!ok) {  // the agent is gone: end ours too
    up_ctx_.TryCancel();
    return;
  }
  pump_to_agent_locked();
}

void ProxyCall::upstream_done(const grpc::Status& status) {
  std::lock_guard lock(mu_);
  upstream_status_ = status;
  upstream_done_ = true;
  upstream_ended_ = true;
  maybe_finish_locked();
  release_locked();
}

void ProxyCall::maybe_finish_locked() {
  if (finished_ || !upstream_status_ || writing_ || (!to_agent_.empty() && md_sent_)) return;
  finished_ = true;
  Finish(*upstream_status_);
}

// ---- the end -----------------------------------------------------------------

void ProxyCall::OnCancel() {
  std::lock_guard lock(mu_);
  cancelled_ = true;
  up_ctx_.TryCancel();
}

void ProxyCall::OnDone() {
  std::lock_guard lock(mu_);
  server_done_ = true;
  if (!upstream_done_) up_ctx_.TryCancel();
  release_locked();
}

void ProxyCall::release_locked() {
  if (!server_done_ || !upstream_done_) return;
  // Freed from another thread, later: this reaction still holds mu_, and
  // a deferred half-close (OnReadDone) may still be waiting to look.
  std::thread([registry = registry_, self = this] {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    registry->remove(self);
  }).detach();
}

class Service : public grpc::CallbackGenericService {
 public:
  Service(grpc::GenericStub* stub, FaultBook* book) : stub_(stub), book_(book) {}
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    ProxyCall* call = registry_.add(std::make_unique<ProxyCall>(ctx, stub_, book_, &registry_));
    call->begin();
    return call;
  }

 private:
  grpc::GenericStub* stub_;
  FaultBook* book_;
  CallRegistry registry_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> opt;
  for (int i = 1; i + 1 < argc; i += 2) opt[argv[i]] = argv[i + 1];
  for (const char* need : {"--listen", "--target", "--cert", "--key", "--ca", "--faults"}) {
    if (!opt.count(need)) {
      std::fprintf(stderr, "fault_proxy: %s missing (see the comment at the top of fault_proxy.cc)\n",
                   need);
      return 2;
    }
  }
  grpc::SslCredentialsOptions client_ssl;
  client_ssl.pem_root_certs = read_file(opt["--ca"]);
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride(opt.count("--server-name") ? opt["--server-name"] : "localhost");
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  auto channel = grpc::CreateCustomChannel(opt["--target"], grpc::SslCredentials(client_ssl), args);
  grpc::GenericStub stub(channel);
  FaultBook book(opt["--faults"]);
  Service service(&stub, &book);

  grpc::SslServerCredentialsOptions server_ssl(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  server_ssl.pem_key_cert_pairs.push_back({read_file(opt["--key"]), read_file(opt["--cert"])});
  grpc::ServerBuilder builder;
  builder.AddListeningPort(opt["--listen"], grpc::SslServerCredentials(server_ssl));
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.SetMaxReceiveMessageSize(-1);
  builder.SetMaxSendMessageSize(-1);
  builder.RegisterCallbackGenericService(&service);
  auto server = builder.BuildAndStart();
  if (!server) {
    std::fprintf(stderr, "fault_proxy: cannot listen on %s\n", opt["--listen"].c_str());
    return 1;
  }
  std::fprintf(stderr, "fault_proxy: listening on %s, forwarding to %s\n", opt["--listen"].c_str(),
               opt["--target"].c_str());
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  // No destructors: calls being freed on detached threads would race them.
  std::fflush(stderr);
  std::_Exit(0);
}
