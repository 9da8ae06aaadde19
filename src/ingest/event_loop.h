// The backend's one libevent thread. Every collector socket, timer and all
// session state live on it; gRPC reactions (which run on gRPC's threads)
// hand their events over with post(), so session state needs no locks.
#pragma once

#include <event2/event.h>

#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace kbgp::ingest {

class EventLoop {
 public:
  EventLoop();  // enables libevent's pthread locking first
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  void start();
  // Runs `task` on the loop thread, in posting order. Callable from any
  // thread; after stop() tasks are destroyed without running.
  void post(std::function<void()> task);
  // Runs `last` on the loop thread, then ends the loop and joins it.
  void stop(std::function<void()> last);

  event_base* base() const { return base_.get(); }
  bool in_loop_thread() const { return std::this_thread::get_id() == thread_.get_id(); }

 private:
  struct BaseFree {
    void operator()(event_base* b) const { event_base_free(b); }
  };
  struct EventFree {
    void operator()(event* e) const { event_free(e); }
  };
  static void on_wake(evutil_socket_t, short, void* self);
  void run_tasks();

  std::unique_ptr<event_base, BaseFree> base_;
  std::unique_ptr<event, EventFree> wake_;
  std::mutex mu_;
  std::vector<std::function<void()>> tasks_;
  bool stopped_ = false;
  std::thread thread_;
};

// A one-shot timer on the loop thread; cancelled when destroyed. Create,
// arm, cancel and destroy it on the loop thread only.
class Timer {
 public:
  Timer(event_base* base, std::function<void()> fire);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  void arm(double seconds);
  void cancel();
  bool armed() const;

 private:
  static void on_fire(evutil_socket_t, short, void* self);
  event* ev_;
  std::function<void()> fire_;
};

}  // namespace kbgp::ingest
