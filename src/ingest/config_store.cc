#include "ingest/config_store.h"

#include "common/log.h"

namespace kbgp::ingest {

ConfigStore::ConfigStore(std::string credentials_path, std::string registry_path,
                         Credentials creds, Registry registry)
    : credentials_path_(std::move(credentials_path)),
      registry_path_(std::move(registry_path)),
      credentials_(std::make_shared<const Credentials>(std::move(creds))),
      registry_(std::make_shared<const Registry>(std::move(registry))) {}

std::shared_ptr<const Credentials> ConfigStore::credentials() const {
  std::lock_guard lock(mu_);
  return credentials_;
}

std::shared_ptr<const Registry> ConfigStore::registry() const {
  std::lock_guard lock(mu_);
  return registry_;
}

void ConfigStore::reload() {
  std::string error;
  if (auto reg = Registry::load(registry_path_, &error)) {
    size_t n = reg->size();
    {
      std::lock_guard lock(mu_);
      registry_ = std::make_shared<const Registry>(std::move(*reg));
    }
    log::info("registry reloaded", {{"file", registry_path_}, {"devices", n}});
  } else {
    log::error("registry reload failed, keeping the previous registry",
               {{"file", registry_path_}, {"error", error}});
  }
  if (auto creds = Credentials::load(credentials_path_, &error)) {
    size_t n = creds->size();
    {
      std::lock_guard lock(mu_);
      credentials_ = std::make_shared<const Credentials>(std::move(*creds));
    }
    log::info("credentials reloaded", {{"file", credentials_path_}, {"entries", n}});
  } else {
    log::error("credentials reload failed, keeping the previous credentials",
               {{"file", credentials_path_}, {"error", error}});
  }
}

}  // namespace kbgp::ingest
