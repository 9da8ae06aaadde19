// What every part of the running backend shares.
#pragma once

#include <string>
#include <unordered_set>

#include "ingest/config_store.h"
#include "ingest/event_loop.h"
#include "ingest/options.h"
#include "ingest/session_table.h"

namespace kbgp::ingest {

class ControlStream;

struct Backend {
  const Options& options;
  const std::string backend_pin;  // 8 hex digits, new at every start
  ConfigStore& config;
  EventLoop& loop;
  SessionTable sessions;  // loop thread only
  std::unordered_set<ControlStream*> control_streams;  // loop thread only; open ones
};

}  // namespace kbgp::ingest
