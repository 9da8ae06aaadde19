// The admin's seccomp allow-list (see sandbox_policy.cc).
#pragma once

#include <span>

#include "common/sandbox.h"

namespace kbgp::admin {
std::span<const SyscallRule> sandbox_policy();
}
