// The uplink's seccomp allow-list (see sandbox_policy.cc).
#pragma once

#include <span>

#include "common/sandbox.h"

namespace kbgp::uplink {
std::span<const SyscallRule> sandbox_policy();
}
