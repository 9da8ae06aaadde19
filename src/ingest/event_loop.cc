#include "ingest/event_loop.h"

#include <event2/thread.h>

#include <cmath>
#include <stdexcept>

namespace kbgp::ingest {

EventLoop::EventLoop() {
  // Must precede event_base_new so the base gets locks and a notification
  // channel, which post() (event_active from other threads) relies on.
  static const int threads_ok = evthread_use_pthreads();
  if (threads_ok != 0) throw std::runtime_error("libevent: evthread_use_pthreads failed");
  base_.reset(event_base_new());
  if (!base_) throw std::runtime_error("libevent: event_base_new failed");
  wake_.reset(event_new(base_.get(), -1, 0, &EventLoop::on_wake, this));
  if (!wake_) throw std::runtime_error("libevent: event_new failed");
}

EventLoop::~EventLoop() {
  if (thread_.joinable()) stop({});
}

void EventLoop::start() {
  thread_ = std::thread([this] { event_base_loop(base_.get(), EVLOOP_NO_EXIT_ON_EMPTY); });
}

void EventLoop::post(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    tasks_.push_back(std::move(task));
  }
  event_active(wake_.get(), EV_READ, 0);
}

void EventLoop::on_wake(evutil_socket_t, short, void* self) {
  static_cast<EventLoop*>(self)->run_tasks();
}

void EventLoop::run_tasks() {
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(tasks_);
  }
  for (auto& task : batch) task();
}

void EventLoop::stop(std::function<void()> last) {
  post([this, last = std::move(last)] {
    if (last) last();
    run_tasks();  // whatever `last` posted
    {
      std::lock_guard lock(mu_);
      stopped_ = true;
    }
    event_base_loopbreak(base_.get());
  });
  if (thread_.joinable()) thread_.join();
  std::vector<std::function<void()>> rest;
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    rest.swap(tasks_);
  }
}

Timer::Timer(event_base* base, std::function<void()> fire)
    : ev_(evtimer_new(base, &Timer::on_fire, this)), fire_(std::move(fire)) {
  if (!ev_) throw std::runtime_error("libevent: evtimer_new failed");
}

Timer::~Timer() { event_free(ev_); }

void Timer::arm(double seconds) {
  timeval tv;
  tv.tv_sec = static_cast<time_t>(seconds);
  tv.tv_usec = static_cast<suseconds_t>((seconds - std::floor(seconds)) * 1e6);
  evtimer_add(ev_, &tv);
}

void Timer::cancel() { evtimer_del(ev_); }

bool Timer::armed() const { return evtimer_pending(ev_, nullptr) != 0; }

void Timer::on_fire(evutil_socket_t, short, void* self) {
  auto* t = static_cast<Timer*>(self);
  // Copy: the callback may destroy the Timer (and the function with it).
  auto fire = t->fire_;
  fire();
}

}  // namespace kbgp::ingest
