#include "fhir/rate_gate.hpp"

#include <algorithm>

namespace fra::fhir {

RateGate::RateGate(int per_second, int in_flight)
    : interval_(per_second > 0 ? std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(1.0 / per_second))
                               : Clock::duration::zero()),
      capacity_(std::max(1, in_flight)) {}

RateGate::Slot::~Slot() {
  if (gate_ != nullptr) gate_->leave();
}

RateGate::Slot RateGate::enter() {
  std::unique_lock lock(mu_);
  for (;;) {
    const auto now = Clock::now();
    if (now < held_until_) {
      cv_.wait_until(lock, held_until_);
      continue;
    }
    if (in_flight_ >= capacity_) {
      cv_.wait(lock);
      continue;
    }
    // The rate: each request takes the next opening; a gap in traffic is not saved up.
    const auto start = std::max(now, next_);
    if (start > now) {
      cv_.wait_until(lock, start);
      continue;
    }
    next_ = start + interval_;
    ++in_flight_;
    ++passed_;
    return Slot(this);
  }
}

void RateGate::leave() {
  {
    std::lock_guard lock(mu_);
    --in_flight_;
  }
  cv_.notify_all();
}

void RateGate::hold_for(std::chrono::milliseconds d) {
  {
    std::lock_guard lock(mu_);
    held_until_ = std::max(held_until_, Clock::now() + d);
  }
  cv_.notify_all();
}

long RateGate::passed() const {
  std::lock_guard lock(mu_);
  return passed_;
}

}  // namespace fra::fhir
