// The current registry and credentials, shared by all gRPC threads and
// replaced as a whole on SIGHUP. Readers take a snapshot (a shared_ptr to
// an immutable object), so a reload never changes data under a call.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "ingest/credentials.h"
#include "ingest/registry.h"

namespace kbgp::ingest {

class ConfigStore {
 public:
  ConfigStore(std::string credentials_path, std::string registry_path, Credentials creds,
              Registry registry);

  std::shared_ptr<const Credentials> credentials() const;
  std::shared_ptr<const Registry> registry() const;

  // Re-reads both files; a file that fails to load is logged and its old
  // contents stay in force.
  void reload();

 private:
  std::string credentials_path_;
  std::string registry_path_;
  mutable std::mutex mu_;
  std::shared_ptr<const Credentials> credentials_;
  std::shared_ptr<const Registry> registry_;
};

}  // namespace kbgp::ingest
