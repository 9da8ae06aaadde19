// Log and metrics export without the rest of the agent: gzip, the bounded
// queue, export URLs, the POST head, kbgp-ingest's store, and the export
// client against kbgp-ingest's endpoint (plaintext) on loopback.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <dirent.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/fd.h"
#include "common/gzip.h"
#include "common/timeutil.h"
#include "ingest/export_server.h"
#include "ingest/export_store.h"
#include "uplink/export_http.h"
#include "uplink/export_queue.h"
#include "uplink/export_url.h"

using namespace kbgp;

namespace {

std::string temp_dir() {
  char tmpl[] = "/tmp/kbgp-export-test-XXXXXX";
  REQUIRE(::mkdtemp(tmpl));
  return tmpl;
}

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') out.push_back(dir + "/" + e->d_name);
    ::closedir(d);
  }
  return out;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::shared_ptr<const ingest::Credentials> creds() {
  std::string error;
  auto c = ingest::Credentials::parse(
      R"({"credentials": [{"email": "a@b.c", "token": "tok"}]})", &error);
  REQUIRE(c);
  return std::make_shared<const ingest::Credentials>(std::move(*c));
}

ingest::ExportRequest logs_request(const std::string& body) {
  ingest::ExportRequest rq;
  rq.method = "POST";
  rq.path = "/agents/v202204/logs";
  rq.content_type = "application/x-ndjson";
  rq.content_encoding = "gzip";
  rq.email = "a@b.c";
  rq.token = "tok";
  rq.instance = "inst-1";
  rq.batch = "7";
  rq.body = gzip_compress(body);
  return rq;
}

}  // namespace

TEST_CASE("gzip round trip, and decompression is bounded") {
  std::string text;
  for (int i = 0; i < 10000; ++i) text += "{\"line\":" + std::to_string(i) + "}\n";
  std::string z = gzip_compress(text);
  CHECK(z.size() < text.size() / 4);
  CHECK(static_cast<unsigned char>(z[0]) == 0x1f);
  CHECK(static_cast<unsigned char>(z[1]) == 0x8b);
  std::string error;
  auto back = gzip_decompress(z, 1 << 20, &error);
  REQUIRE(back);
  CHECK(*back == text);
  CHECK_FALSE(gzip_decompress(z, 1000, &error));
  CHECK_THAT(error, Catch::Contains("larger"));
  CHECK_FALSE(gzip_decompress("not gzip at all", 1000, &error));
  CHECK_FALSE(gzip_decompress(z.substr(0, z.size() / 2), 1 << 20, &error));
  std::string bomb = gzip_compress(std::string(50 * 1024 * 1024, '\0'));
  CHECK(bomb.size() < 100 * 1024);
  CHECK_FALSE(gzip_decompress(bomb, 1 << 20, &error));
}

TEST_CASE("export queue: bounded, oldest dropped first, batches are prefixes") {
  uplink::LogQueue q(1000);
  for (int i = 0; i < 100; ++i) q.push("line-" + std::to_string(i) + std::string(10, 'x'), i);
  CHECK(q.bytes() <= 1000);
  CHECK(q.dropped() > 0);
  CHECK(q.lines() + q.dropped() == 100);
  auto b = q.peek_batch(100, 1000);
  REQUIRE(b.lines >= 1);
  CHECK(b.body.size() <= 100);
  CHECK_THAT(b.body, Catch::StartsWith("line-" + std::to_string(q.dropped())));
  size_t before = q.lines();
  q.pop(b.lines);
  CHECK(q.lines() == before - b.lines);
  auto one = q.peek_batch(1, 1);  // a line longer than the limit still goes out alone
  CHECK(one.lines == 1);
  uplink::LogQueue empty;
  CHECK(empty.peek_batch().empty());
  CHECK(empty.oldest_mono_ns() == 0);
}

TEST_CASE("export URLs") {
  std::string error;
  auto u = uplink::parse_export_url("https://grpc.api.kentik.com/agents/v202204/logs", &error);
  REQUIRE(u);
  CHECK(u->tls);
  CHECK(u->host == "grpc.api.kentik.com");
  CHECK(u->port == 443);
  CHECK(u->path == "/agents/v202204/logs");
  auto v6 = uplink::parse_export_url("http://[::1]:8080", &error);
  REQUIRE(v6);
  CHECK_FALSE(v6->tls);
  CHECK(v6->host == "::1");
  CHECK(v6->path == "/");
  CHECK(v6->host_port() == "[::1]:8080");
  // Found by tests/fuzz/fuzz_export_url.cc (corpus/export_url/query-then-fragment):
  // the fragment stayed in the path when a query came right after the host.
  auto query = uplink::parse_export_url("https://flows.example.com?x=1#frag", &error);
  REQUIRE(query);
  CHECK(query->path == "/?x=1");
  CHECK(uplink::parse_export_url("http://127.0.0.1:9/a?b#c", &error)->path == "/a?b");
  CHECK(uplink::parse_export_url("http://127.0.0.1:9#c", &error)->path == "/");
  for (const char* bad : {"ftp://x/y", "https://", "https://u:p@host/x", "https://host:0/x",
                          "https://ho st/x", "https://host/a b", "grpc.api.kentik.com/logs"}) {
    INFO(bad);
    CHECK_FALSE(uplink::parse_export_url(bad, &error));
  }
  std::string head = uplink::post_head(*u, {{"X-A", "1"}}, 42, "kbgp/0");
  CHECK_THAT(head, Catch::StartsWith("POST /agents/v202204/logs HTTP/1.1\r\nHost: grpc.api.kentik.com\r\n"));
  CHECK_THAT(head, Catch::Contains("\r\nContent-Length: 42\r\n"));
  CHECK_THAT(head, Catch::EndsWith("X-A: 1\r\n\r\n"));
}

TEST_CASE("ingest export store: checks, decompresses, validates, stores") {
  std::string dir = temp_dir();
  std::string error;
  auto store = ingest::ExportStore::open(dir, creds, &error);
  REQUIRE(store);

  auto ok = store->handle(logs_request("{\"message\":\"a\"}\n{\"message\":\"b\"}\n"));
  CHECK(ok.status == 200);
  auto stored = files_in(dir + "/logs");
  REQUIRE(stored.size() == 1);
  CHECK_THAT(stored[0], Catch::Contains("inst-1-7-"));
  CHECK(slurp(stored[0]) == "{\"message\":\"a\"}\n{\"message\":\"b\"}\n");

  auto bad_token = logs_request("{}\n");
  bad_token.token = "nope";
  CHECK(store->handle(bad_token).status == 401);
  CHECK(store->handle(logs_request("{}\nnot json\n")).status == 400);
  auto bomb = logs_request("");
  bomb.body = gzip_compress(std::string(ingest::kMaxExportDecompressed + 1, ' '));
  CHECK(store->handle(bomb).status == 413);
  auto brotli = logs_request("{}\n");
  brotli.content_encoding = "br";
  CHECK(store->handle(brotli).status == 415);
  auto wrong_path = logs_request("{}\n");
  wrong_path.path = "/elsewhere";
  CHECK(store->handle(wrong_path).status == 404);
  auto get = logs_request("{}\n");
  get.method = "GET";
  CHECK(store->handle(get).status == 405);
  auto sneaky = logs_request("{}\n");
  sneaky.instance = "../../etc/passwd";
  CHECK(store->handle(sneaky).status == 200);
  for (const auto& f : files_in(dir + "/logs")) CHECK(f.find("..") == std::string::npos);

  ingest::ExportRequest m = logs_request("");
  m.path = "/agents/v202204/metrics";
  m.content_type = "text/plain; version=0.0.4";
  m.body = gzip_compress("# TYPE kbgp_x counter\nkbgp_x 1\n");
  CHECK(store->handle(m).status == 200);
  REQUIRE(files_in(dir + "/metrics").size() == 1);
  CHECK(::system(("rm -rf " + dir).c_str()) == 0);
}

TEST_CASE("export client -> ingest endpoint (plaintext, loopback)") {
  std::string dir = temp_dir();
  std::string error;
  auto store = ingest::ExportStore::open(dir, creds, &error);
  REQUIRE(store);
  Endpoint bound;
  auto server = ingest::ExportServer::start(*Endpoint::parse("127.0.0.1:0"), "", "",
                                            std::move(store), &bound, &error);
  REQUIRE(server);
  auto client = uplink::ExportClient::create("", nullptr, "kbgp/test", &error);
  REQUIRE(client);
  auto url = uplink::parse_export_url(
      "http://127.0.0.1:" + std::to_string(bound.port) + "/agents/v202204/logs", &error);
  REQUIRE(url);
  uplink::ExportClient::Headers h = {{"Content-Type", "application/x-ndjson"},
                                     {"Content-Encoding", "gzip"},
                                     {"X-CH-Auth-Email", "a@b.c"},
                                     {"X-CH-Auth-API-Token", "tok"},
                                     {"X-Kbgp-Instance", "i"},
                                     {"X-Kbgp-Batch", "1"}};
  auto r = client->post(*url, h, gzip_compress("{\"m\":1}\n"), monotonic_ns() + 5'000'000'000);
  CHECK(r.status == 200);
  CHECK(files_in(dir + "/logs").size() == 1);
  h[3].second = "wrong";
  auto refused = client->post(*url, h, gzip_compress("{\"m\":1}\n"), monotonic_ns() + 5'000'000'000);
  CHECK(refused.status == 401);
  CHECK_THAT(refused.body, Catch::Contains("X-CH-Auth"));
  auto nobody = uplink::parse_export_url("http://127.0.0.1:1/x/logs", &error);
  auto unreachable = client->post(*nobody, h, "", monotonic_ns() + 2'000'000'000);
  CHECK(unreachable.status == 0);
  CHECK_FALSE(unreachable.error.empty());
  server.reset();
  CHECK(::system(("rm -rf " + dir).c_str()) == 0);
}

TEST_CASE("export client: cancel() ends a post that waits for a silent server") {
  // A server that accepts (the kernel does, from the backlog) and never answers.
  UniqueFd silent(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  REQUIRE(::bind(silent.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(silent.get(), 4) == 0);
  REQUIRE(::getsockname(silent.get(), reinterpret_cast<sockaddr*>(&a), &len) == 0);
  std::string error;
  auto client = uplink::ExportClient::create("", nullptr, "kbgp/test", &error);
  REQUIRE(client);
  auto url = uplink::parse_export_url(
      "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/x/logs", &error);
  int64_t start = monotonic_ns();
  uplink::PostResult r;
  std::thread poster([&] { r = client->post(*url, {}, "body", monotonic_ns() + 20'000'000'000); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  client->cancel();
  poster.join();
  CHECK(r.status == 0);
  CHECK(monotonic_ns() - start < 3'000'000'000);
  CHECK(client->post(*url, {}, "", monotonic_ns() + 1'000'000'000).error == "cancelled");
}
