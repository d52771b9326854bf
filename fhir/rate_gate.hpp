#pragma once
// The request budget one process keeps with a FHIR server, over all its connections: at most
// so many requests a second and so many at once, and a pause for everyone when the server says
// so (429 or 503 with Retry-After).

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace fra::fhir {

class RateGate {
 public:
  using Clock = std::chrono::steady_clock;

  /// `per_second` 0: no rate limit; `in_flight` at least 1.
  RateGate(int per_second, int in_flight);

  /// One request's place; leaving the scope frees it.
  class Slot {
   public:
    Slot() = default;
    explicit Slot(RateGate* gate) : gate_(gate) {}
    Slot(Slot&& o) noexcept : gate_(o.gate_) { o.gate_ = nullptr; }
    Slot& operator=(Slot&&) = delete;
    ~Slot();

   private:
    RateGate* gate_ = nullptr;
  };

  /// Waits for the pause (if any) to end, a place among those in flight, and the rate's next
  /// opening.
  Slot enter();
  /// Holds every request that has not started until `d` from now (never shortens a hold).
  void hold_for(std::chrono::milliseconds d);
  /// Requests let through so far.
  long passed() const;

 private:
  void leave();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  const Clock::duration interval_;  // zero: no rate limit
  const int capacity_;
  int in_flight_ = 0;
  long passed_ = 0;
  Clock::time_point next_ = Clock::now();
  Clock::time_point held_until_ = Clock::now();
};

}  // namespace fra::fhir
