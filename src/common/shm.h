// Shared-memory regions: memfd creation and RAII mappings.
#pragma once

#include <cstddef>
#include <string>

#include "common/fd.h"

namespace kbgp {

// A mapping of a file descriptor into this process, unmapped on destruction.
class SharedMapping {
 public:
  SharedMapping() = default;
  SharedMapping(const SharedMapping&) = delete;
  SharedMapping& operator=(const SharedMapping&) = delete;
  SharedMapping(SharedMapping&& other) noexcept;
  SharedMapping& operator=(SharedMapping&& other) noexcept;
  ~SharedMapping();

  // Maps `size` bytes of `fd` shared; `writable` selects PROT_WRITE.
  // Returns an empty mapping (and sets errno) on failure.
  static SharedMapping map(int fd, size_t size, bool writable);

  void* data() const { return addr_; }
  size_t size() const { return size_; }
  bool valid() const { return addr_ != nullptr; }
  explicit operator bool() const { return valid(); }

  template <typename T>
  T* as() const { return static_cast<T*>(addr_); }

 private:
  void* addr_ = nullptr;
  size_t size_ = 0;
};

// Creates a sealed-size memfd of `size` bytes (zero-filled). The name shows
// in /proc/<pid>/fd for debugging. Returns invalid fd and sets errno on error.
UniqueFd create_memfd(const std::string& name, size_t size);

// Returns the size of the file behind fd, or -1.
long long fd_size(int fd);

// Opens a read-only descriptor for the same memfd, so a reader process can
// only ever map it PROT_READ.
UniqueFd reopen_read_only(int fd);

}  // namespace kbgp
