#include "ingest/session_table.h"

#include <vector>

#include "ingest/session.h"

namespace kbgp::ingest {

std::shared_ptr<Session> SessionTable::find(const std::string& id) const {
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second;
}

void SessionTable::insert(std::shared_ptr<Session> session) {
  std::string id = session->id();
  sessions_[id] = std::move(session);
}

void SessionTable::erase(const std::string& id) { sessions_.erase(id); }

void SessionTable::for_each(const std::function<void(Session&)>& fn) const {
  std::vector<std::shared_ptr<Session>> snapshot;
  snapshot.reserve(sessions_.size());
  for (const auto& [id, s] : sessions_) snapshot.push_back(s);
  for (const auto& s : snapshot) fn(*s);
}

void SessionTable::end_all(const std::string& reason) {
  for_each([&reason](Session& s) { s.end(reason, false); });
}

}  // namespace kbgp::ingest
