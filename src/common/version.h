// What this binary is: the package version and the source revision it was
// built from. The revision is generated at build time (Makefile.am,
// scripts/source-revision): the git short hash with "-dirty" for a modified
// checkout, the revision recorded in a `make dist` tarball, or "unknown".
#pragma once

#include <string>
#include <string_view>

namespace kbgp {

// Defined in the generated source_revision.cc (build dir).
const char* source_revision();

// The agent's version as it travels (status API, metrics, Data stream
// metadata): "0.1.0-94e70e7-dirty"; "0.1.0" alone when unknown.
std::string agent_version();

// The --version line: "kbgp 0.1.0 (revision 94e70e7-dirty)".
std::string version_line(std::string_view program);

}  // namespace kbgp
