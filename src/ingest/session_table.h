// Live sessions by session-id. Loop-thread only.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

namespace kbgp::ingest {

class Session;

class SessionTable {
 public:
  std::shared_ptr<Session> find(const std::string& id) const;
  void insert(std::shared_ptr<Session> session);
  void erase(const std::string& id);
  size_t size() const { return sessions_.size(); }
  // Visits a snapshot, so `fn` may end sessions.
  void for_each(const std::function<void(Session&)>& fn) const;
  // Ends every session (shutdown).
  void end_all(const std::string& reason);

 private:
  std::unordered_map<std::string, std::shared_ptr<Session>> sessions_;
};

}  // namespace kbgp::ingest
