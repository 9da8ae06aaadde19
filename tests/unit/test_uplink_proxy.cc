// Web proxy support in the uplink: parsing the variables (percent-encoded
// credentials, precedence, NO_PROXY), the CONNECT exchange, and the relay
// against a fake proxy on loopback.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <thread>

#include "common/fd.h"
#include "common/timeutil.h"
#include "uplink/proxy_config.h"
#include "uplink/proxy_dial.h"
#include "uplink/proxy_http.h"
#include "uplink/proxy_relay.h"

using namespace kbgp;
using namespace kbgp::uplink;

namespace {

std::optional<ProxySettings> from(std::map<std::string, std::string> env, std::string* error) {
  return proxy_settings_from_env(
      [&](const std::string& k) -> std::optional<std::string> {
        auto it = env.find(k);
        if (it == env.end()) return std::nullopt;
        return it->second;
      },
      error);
}

std::string decode_base64(const std::string& in) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    acc = (acc << 6) | static_cast<uint32_t>(kAlphabet.find(c));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

}  // namespace

TEST_CASE("proxy URLs: credentials are percent-decoded, any character allowed") {
  struct Case {
    const char* url;
    const char* user;
    const char* password;
    const char* host;
    uint16_t port;
  };
  const Case cases[] = {
      {"http://u:p@proxy:3128", "u", "p", "proxy", 3128},
      {"http://user:p%40ss%25w%3Ard@10.0.0.1:8080", "user", "p@ss%w:rd", "10.0.0.1", 8080},
      {"http://user:p@ss@proxy.example.net:3128", "user", "p@ss", "proxy.example.net", 3128},
      {"http://us%20er:%E2%82%AC%2F%3F%23@[::1]:3128/", "us er", "\xe2\x82\xac/?#", "::1", 3128},
      {"proxy.example.net:3128", "", "", "proxy.example.net", 3128},
      {"http://proxy", "", "", "proxy", 80},
      {"HTTP://u:@proxy:1", "u", "", "proxy", 1},
      {"  http://u:pw@proxy:3128  ", "u", "pw", "proxy", 3128},
  };
  for (const auto& c : cases) {
    INFO(c.url);
    std::string error;
    auto url = parse_proxy_url(c.url, "HTTPS_PROXY", &error);
    REQUIRE(url);
    CHECK(url->user == c.user);
    CHECK(url->password == c.password);
    CHECK(url->host == c.host);
    CHECK(url->port == c.port);
    CHECK(url->has_credentials == (std::string(c.user) != ""));
    if (url->has_credentials) {
      CHECK(decode_base64(url->authorization().substr(6)) ==
            std::string(c.user) + ":" + c.password);
      CHECK(url->display() == "http://" + std::string(c.user) + "@" + url->host_port());
    }
  }
}

TEST_CASE("proxy URLs: bad values are refused naming the variable, never the password") {
  const char* bad[] = {"https://proxy:3128",  "socks5://proxy:1080", "ftp://proxy",
                       "http://u:p%zz@proxy:1", "http://u:p%4@proxy:1", "http://:p@proxy:1",
                       "http://proxy:0",       "http://proxy:65536",  "http://proxy:port",
                       "http://pro xy:1",      "http://proxy:1/path", "http://::1:3128",
                       "http://u%3Av:p@proxy:1", "http://u:p%0D%0A@proxy:1", ""};
  for (const char* text : bad) {
    INFO(text);
    std::string error;
    CHECK_FALSE(parse_proxy_url(text, "HTTP_PROXY", &error));
    CHECK_THAT(error, Catch::StartsWith("$HTTP_PROXY: "));
    CHECK(error.find("p%zz") == std::string::npos);
  }
}

TEST_CASE("proxy variables: uppercase first, HTTP_PROXY serves TLS targets when alone") {
  std::string error;
  auto both = from({{"HTTPS_PROXY", "http://a:1"}, {"https_proxy", "http://b:2"}}, &error);
  REQUIRE(both);
  CHECK(both->https->host == "a");
  CHECK(both->https->variable == "HTTPS_PROXY");
  CHECK(both->notes.size() == 1);  // the lowercase one differs: worth a warning
  auto lower = from({{"https_proxy", "http://b:2"}}, &error);
  REQUIRE(lower);
  CHECK(lower->https->host == "b");
  CHECK_FALSE(lower->http);
  auto http_only = from({{"HTTP_PROXY", "http://c:3"}}, &error);
  REQUIRE(http_only);
  CHECK(http_only->https->host == "c");
  CHECK(http_only->for_target("grpc.api.kentik.com", 443, true)->host == "c");
  CHECK(http_only->for_target("example.com", 80, false)->host == "c");
  auto none = from({}, &error);
  REQUIRE(none);
  CHECK(none->for_target("grpc.api.kentik.com", 443, true) == nullptr);
  auto grpc_proxy = from({{"grpc_proxy", "http://d:4"}}, &error);
  REQUIRE(grpc_proxy);
  CHECK(grpc_proxy->for_target("x", 443, true) == nullptr);
  CHECK(grpc_proxy->notes.size() == 1);
  auto bad = from({{"https_proxy", "socks5://x:1"}}, &error);
  CHECK_FALSE(bad);
  CHECK_THAT(error, Catch::Contains("$https_proxy"));
}

TEST_CASE("NO_PROXY: names with subdomains, leading dots, ports, addresses, blocks, *") {
  std::vector<std::string> notes;
  NoProxy np = NoProxy::parse(
      " kentik.com, .internal.example, *.wild.example, only.port:8443, 10.1.2.3, "
      "192.168.0.0/16, fd00::/8, [2001:db8::1], bogus/99, ",
      &notes);
  CHECK(notes.size() == 1);
  struct Case {
    const char* host;
    uint16_t port;
    bool direct;
  };
  const Case cases[] = {
      {"kentik.com", 443, true},         {"grpc.api.kentik.com", 443, true},
      {"GRPC.API.KENTIK.COM.", 443, true}, {"notkentik.com", 443, false},
      {"internal.example", 443, false},  {"a.internal.example", 443, true},
      {"wild.example", 443, false},      {"x.wild.example", 443, true},
      {"only.port", 8443, true},         {"only.port", 443, false},
      {"10.1.2.3", 443, true},           {"10.1.2.4", 443, false},
      {"192.168.7.9", 443, true},        {"192.169.0.1", 443, false},
      {"fd12::1", 443, true},            {"fe80::1", 443, false},
      {"2001:db8::1", 443, true},        {"[2001:db8::1]", 443, true},
      {"127.0.0.1", 443, false},  // loopback is not exempt by itself
  };
  for (const auto& c : cases) {
    INFO(c.host << ":" << c.port);
    CHECK(np.matches(c.host, c.port) == c.direct);
  }
  CHECK(NoProxy::parse("*").matches("anything", 1));
  CHECK(NoProxy::parse("").empty());
  // "." and "*." strip to an empty name (fuzz_proxy_env found front() on it):
  // ignored with a note, like any other entry that is not a host name.
  for (const char* lone : {".", "*.", "..", "[]"}) {
    std::vector<std::string> notes;
    NoProxy odd = NoProxy::parse(std::string("localhost,") + lone, &notes);
    INFO(lone);
    CHECK(notes.size() == 1);
    CHECK_FALSE(odd.matches("example.com", 443));
    CHECK(odd.matches("localhost", 443));
  }
  std::string error;
  auto s = from({{"HTTPS_PROXY", "http://p:1"}, {"no_proxy", "127.0.0.0/8"}}, &error);
  REQUIRE(s);
  CHECK(s->for_target("127.0.0.1", 9443, true) == nullptr);
  CHECK(s->for_target("grpc.api.kentik.com", 443, true) != nullptr);
}

TEST_CASE("host:port splitting") {
  std::string host;
  uint16_t port = 0;
  CHECK(split_host_port("grpc.api.kentik.com:443", &host, &port));
  CHECK(host == "grpc.api.kentik.com");
  CHECK(port == 443);
  CHECK(split_host_port("[::1]:9443", &host, &port));
  CHECK(host == "::1");
  CHECK(join_host_port("::1", 9443) == "[::1]:9443");
  CHECK_FALSE(split_host_port("::1:9443", &host, &port));
  CHECK_FALSE(split_host_port("host", &host, &port));
  CHECK(split_host_port("host", &host, &port, 80));
  CHECK(port == 80);
  CHECK_FALSE(split_host_port(":443", &host, &port));
}

TEST_CASE("CONNECT heads: our request, gRPC's request, proxy answers") {
  std::string error;
  auto proxy = parse_proxy_url("http://us%40er:p%3Aw@proxy:3128", "HTTPS_PROXY", &error);
  REQUIRE(proxy);
  std::string req = connect_request("grpc.api.kentik.com:443", *proxy, "kbgp/1");
  CHECK_THAT(req, Catch::StartsWith("CONNECT grpc.api.kentik.com:443 HTTP/1.1\r\n"));
  CHECK_THAT(req, Catch::Contains("\r\nHost: grpc.api.kentik.com:443\r\n"));
  CHECK_THAT(req, Catch::Contains("Proxy-Authorization: Basic " + base64_encode("us@er:p:w")));
  CHECK(head_length(req) == req.size());

  // gRPC writes "Proxy-Authorization:Basic x" without a space.
  auto grpc = parse_connect_request(
      "CONNECT 127.0.0.1:9443 HTTP/1.0\r\nHost: 127.0.0.1:9443\r\nproxy-authorization:Basic abc\r\n\r\n");
  REQUIRE(grpc);
  CHECK(grpc->target == "127.0.0.1:9443");
  CHECK(grpc->authorization == "Basic abc");
  CHECK_FALSE(parse_connect_request("GET / HTTP/1.1\r\n\r\n"));
  CHECK_FALSE(parse_connect_request("CONNECT x HTTP/2\r\n\r\n"));

  auto r407 = parse_response_head(
      "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\n\r\n");
  REQUIRE(r407);
  CHECK(r407->status == 407);
  CHECK(r407->reason == "Proxy Authentication Required");
  CHECK(r407->proxy_authenticate == "Basic realm=\"x\"");
  auto r200 = parse_response_head("HTTP/1.0 200 Connection established\n\n");
  REQUIRE(r200);
  CHECK(r200->status == 200);
  CHECK(parse_response_head("HTTP/1.1 200\r\n\r\n")->status == 200);
  CHECK_FALSE(parse_response_head("SSH-2.0-OpenSSH\r\n\r\n"));
  CHECK_FALSE(parse_response_head("HTTP/1.1 2x0 ok\r\n\r\n"));
  CHECK(head_length("HTTP/1.1 200 ok\r\n") == 0);
  CHECK_THAT(proxy_status_hint(407), Catch::Contains("%40"));
}

// ---- the relay against a fake proxy -----------------------------------------

namespace {

UniqueFd listen_loopback(uint16_t* port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(fd.get(), 8) == 0);
  REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) == 0);
  *port = ntohs(a.sin_port);
  return fd;
}

std::string read_head(int fd) {
  std::string head;
  char c;
  while (head_length(head) == 0 && ::recv(fd, &c, 1, 0) == 1) head += c;
  return head;
}

// One connection: records the CONNECT head, answers `status`, then (on 200)
// echoes until EOF.
struct FakeProxy {
  uint16_t port = 0;
  UniqueFd listener;
  std::string seen_head;
  std::thread thread;

  explicit FakeProxy(int status) {
    listener = listen_loopback(&port);
    thread = std::thread([this, status] {
      UniqueFd c(::accept(listener.get(), nullptr, nullptr));
      if (!c) return;
      seen_head = read_head(c.get());
      std::string answer = status == 200 ? "HTTP/1.1 200 Connection established\r\n\r\n"
                                         : "HTTP/1.1 " + std::to_string(status) +
                                               " Proxy Authentication Required\r\n\r\n";
      ::send(c.get(), answer.data(), answer.size(), MSG_NOSIGNAL);
      if (status != 200) return;
      char buf[4096];
      ssize_t n;
      while ((n = ::recv(c.get(), buf, sizeof buf, 0)) > 0) ::send(c.get(), buf, static_cast<size_t>(n), MSG_NOSIGNAL);
    });
  }
  ~FakeProxy() {
    if (thread.joinable()) thread.join();
  }
};

// What gRPC does: CONNECT to the relay with the credentials of its URL.
UniqueFd grpc_like_connect(const ProxyRelay& relay, const std::string& target,
                           bool with_secret, std::string* answer) {
  DialResult d = dial(nullptr, "127.0.0.1", relay.port(), "test", monotonic_ns() + 5'000'000'000);
  REQUIRE(d.fd);
  const std::string& url = relay.grpc_proxy_url();  // http://kbgp:SECRET@127.0.0.1:PORT
  std::string cred = url.substr(7, url.find('@') - 7);
  std::string req = "CONNECT " + target + " HTTP/1.0\r\nHost: " + target + "\r\n";
  if (with_secret) req += "Proxy-Authorization:Basic " + base64_encode(cred) + "\r\n";
  req += "\r\n";
  ::send(d.fd.get(), req.data(), req.size(), MSG_NOSIGNAL);
  *answer = read_head(d.fd.get());
  return std::move(d.fd);
}

}  // namespace

TEST_CASE("relay: right credentials reach the proxy decoded; bytes flow both ways") {
  FakeProxy proxy(200);
  std::string error;
  ProxyRelay::Config rc;
  rc.upstream = *parse_proxy_url("http://kbgp:pa%40ss%25w%3Ard@127.0.0.1:" +
                                     std::to_string(proxy.port),
                                 "HTTPS_PROXY", &error);
  rc.allowed_targets = {"backend.example:443"};
  rc.user_agent = "kbgp/test";
  auto relay = ProxyRelay::start(rc, &error);
  REQUIRE(relay);
  CHECK_THAT(relay->grpc_proxy_url(), Catch::StartsWith("http://kbgp:"));
  CHECK(relay->grpc_proxy_url().find('%') == std::string::npos);

  std::string answer;
  UniqueFd c = grpc_like_connect(*relay, "backend.example:443", true, &answer);
  CHECK_THAT(answer, Catch::StartsWith("HTTP/1.1 200"));
  std::string payload(100000, 'x');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>('a' + i % 26);
  std::thread writer([&] {
    ::send(c.get(), payload.data(), payload.size(), MSG_NOSIGNAL);
    ::shutdown(c.get(), SHUT_WR);
  });
  std::string echoed;
  char buf[8192];
  ssize_t n;
  while ((n = ::recv(c.get(), buf, sizeof buf, 0)) > 0) echoed.append(buf, static_cast<size_t>(n));
  writer.join();
  CHECK(echoed == payload);
  CHECK_THAT(proxy.seen_head, Catch::StartsWith("CONNECT backend.example:443 HTTP/1.1\r\n"));
  CHECK_THAT(proxy.seen_head,
             Catch::Contains("Proxy-Authorization: Basic " + base64_encode("kbgp:pa@ss%w:rd")));
  CHECK(relay->counters().tunnels_opened.load() == 1);
}

TEST_CASE("relay: the proxy's 407 goes back to the client and is counted") {
  FakeProxy proxy(407);
  std::string error;
  ProxyRelay::Config rc;
  rc.upstream = *parse_proxy_url("http://kbgp:wrong@127.0.0.1:" + std::to_string(proxy.port),
                                 "HTTPS_PROXY", &error);
  rc.allowed_targets = {"backend.example:443"};
  auto relay = ProxyRelay::start(rc, &error);
  REQUIRE(relay);
  std::string answer;
  UniqueFd c = grpc_like_connect(*relay, "backend.example:443", true, &answer);
  CHECK_THAT(answer, Catch::StartsWith("HTTP/1.1 407"));
  CHECK(relay->counters().proxy_refusals.load() == 1);
}

TEST_CASE("relay: refuses local clients without the secret or to another destination") {
  FakeProxy proxy(200);  // must never be reached
  std::string error;
  ProxyRelay::Config rc;
  rc.upstream = *parse_proxy_url("http://127.0.0.1:" + std::to_string(proxy.port), "HTTPS_PROXY",
                                 &error);
  rc.allowed_targets = {"backend.example:443"};
  auto relay = ProxyRelay::start(rc, &error);
  REQUIRE(relay);
  std::string answer;
  grpc_like_connect(*relay, "backend.example:443", false, &answer);
  CHECK_THAT(answer, Catch::StartsWith("HTTP/1.1 407"));
  grpc_like_connect(*relay, "evil.example:22", true, &answer);
  CHECK_THAT(answer, Catch::StartsWith("HTTP/1.1 403"));
  CHECK(relay->counters().local_refusals.load() == 2);
  CHECK(relay->counters().tunnels_opened.load() == 0);
  // Let the fake proxy's accept return.
  DialResult d = dial(nullptr, "127.0.0.1", proxy.port, "t", monotonic_ns() + 1'000'000'000);
}

TEST_CASE("dial through a proxy: 407 is reported with its status") {
  FakeProxy proxy(407);
  std::string error;
  auto url = parse_proxy_url("http://u:p@127.0.0.1:" + std::to_string(proxy.port), "HTTPS_PROXY",
                             &error);
  DialResult d = dial(&*url, "backend.example", 443, "t", monotonic_ns() + 5'000'000'000);
  CHECK_FALSE(d.fd);
  CHECK(d.proxy_status == 407);
  CHECK_THAT(d.error, Catch::Contains("407"));
  CHECK(d.error.find(":p@") == std::string::npos);
}
