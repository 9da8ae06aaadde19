// Signals as data: the handled signals are blocked in every thread (the
// mask is set before any thread starts, and threads inherit it) and read
// from a signalfd by the main thread. No async signal handlers run.
#pragma once

#include <initializer_list>

#include "common/fd.h"

namespace kbgp::ingest {

class SignalWaiter {
 public:
  // Call before starting any thread. Throws std::system_error on failure.
  explicit SignalWaiter(std::initializer_list<int> signals);
  // Blocks until one of the signals arrives; returns its number.
  int wait();

 private:
  UniqueFd fd_;
};

}  // namespace kbgp::ingest
