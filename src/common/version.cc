#include "common/version.h"

#include "config.h"

namespace kbgp {

std::string agent_version() {
  std::string revision = source_revision();
  if (revision == "unknown") return PACKAGE_VERSION;
  return std::string(PACKAGE_VERSION) + "-" + revision;
}

std::string version_line(std::string_view program) {
  return std::string(program) + " " + PACKAGE_VERSION + " (revision " + source_revision() + ")";
}

}  // namespace kbgp
