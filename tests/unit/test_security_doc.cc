// docs/security.md shows the seccomp table of every worker and the
// supervisor's capabilities. Those parts are rendered here from the code
// (the policy tables, supervisor/privileges.cc) and must match the document
// between its BEGIN/END markers exactly; on a mismatch the test prints the
// block to paste. After changing a table, rewrite the blocks in place with
//   KBGP_UPDATE_SECURITY_DOC=1 tests/unit_tests 'docs/security.md*'
// and review the diff (the prose around them may need a word too).
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <utility>

#include "admin/sandbox_policy.h"
#include "common/sandbox.h"
#include "listener/sandbox_policy.h"
#include "supervisor/privileges.h"
#include "uplink/sandbox_policy.h"

using namespace kbgp;

namespace {

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%#llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string condition(const SyscallRule& r) {
  if (std::strcmp(r.name, "rt_sigaction") == 0) return "every signal but SIGSYS";
  std::string when = "always";
  if (r.arg_index >= 0) {
    std::string arg = "arg" + std::to_string(r.arg_index);
    when = r.mask == ~0ULL ? arg + " = " + hex(r.value)
                           : arg + " & " + hex(r.mask) + " = " + hex(r.value);
  }
  if (!r.refuse_errno) return when;
  std::string refused = std::string("refused: ") + strerrorname_np(r.refuse_errno);
  return r.arg_index < 0 ? refused : when + ", " + refused;
}

std::string render_syscalls(std::span<const SyscallRule> policy) {
  std::string out = "| call | when | why |\n|---|---|---|\n";
  for (const auto& r : policy)
    out += "| `" + std::string(r.name) + "` | " + condition(r) + " | " + r.why + " |\n";
  return out;
}

std::string render_capabilities() {
  std::string out = "| capability | held | why |\n|---|---|---|\n";
  auto row = [&](const CapabilityNeed& c, const char* held) {
    out += "| `" + std::string(c.name) + "` | " + held + " | " + c.why + " |\n";
  };
  for (const auto& c : startup_capabilities()) row(c, "start-up only");
  auto always = runtime_capabilities(false);
  for (const auto& c : always) row(c, "start-up and run time");
  for (const auto& c : runtime_capabilities(true)) {
    bool md5_only = true;
    for (const auto& a : always) md5_only = md5_only && a.cap != c.cap;
    if (md5_only) row(c, "run time, only with `--enable-md5-support`");
  }
  for (const auto& c : capabilities_not_needed()) row(c, "never");
  return out;
}

std::string security_md_path() {
  if (const char* src = std::getenv("KBGP_SRCDIR")) return std::string(src) + "/docs/security.md";
  // Run by hand from a build dir: this file's path is relative to it.
  std::string self = __FILE__;
  return self.substr(0, self.rfind("tests/unit/")) + "docs/security.md";
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The lines between "<!-- BEGIN name ..." and "<!-- END name -->".
std::string block(const std::string& doc, const std::string& name) {
  std::string begin = "<!-- BEGIN " + name + " ";
  size_t b = doc.find(begin);
  if (b == std::string::npos) return "(no '" + begin + "...' marker)";
  b = doc.find('\n', b);
  size_t e = doc.find("<!-- END " + name + " -->", b);
  if (b == std::string::npos || e == std::string::npos) return "(no END marker for " + name + ")";
  return doc.substr(b + 1, e - b - 1);
}

// Replaces the block's lines in `doc`; false when its markers are missing.
bool replace_block(std::string* doc, const std::string& name, const std::string& text) {
  size_t b = doc->find("<!-- BEGIN " + name + " ");
  if (b == std::string::npos) return false;
  b = doc->find('\n', b);
  size_t e = doc->find("<!-- END " + name + " -->", b);
  if (b == std::string::npos || e == std::string::npos) return false;
  doc->replace(b + 1, e - b - 1, text);
  return true;
}

void check_block(const std::string& doc, const std::string& name, const std::string& want) {
  std::string got = block(doc, name);
  if (got != want)
    std::cerr << "docs/security.md is out of date; the block '" << name << "' should read:\n"
              << want << "\n";
  CHECK(got == want);
}

}  // namespace

TEST_CASE("docs/security.md shows each worker's seccomp table and the supervisor's capabilities") {
  std::string path = security_md_path();
  std::string doc = read_file(path);
  INFO("reading " << path);
  REQUIRE_FALSE(doc.empty());
  const std::pair<std::string, std::string> blocks[] = {
      {"syscalls listener", render_syscalls(listener::sandbox_policy())},
      {"syscalls uplink", render_syscalls(uplink::sandbox_policy())},
      {"syscalls admin", render_syscalls(admin::sandbox_policy())},
      {"capabilities supervisor", render_capabilities()},
  };
  if (std::getenv("KBGP_UPDATE_SECURITY_DOC")) {
    for (const auto& [name, text] : blocks) REQUIRE(replace_block(&doc, name, text));
    std::ofstream(path) << doc;
    std::cerr << "rewrote the generated blocks of " << path << "\n";
  }
  for (const auto& [name, text] : blocks) check_block(doc, name, text);
}
