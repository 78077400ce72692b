#include "core/policy/rate_limiter.hpp"

#include <algorithm>

namespace pw {

sliding_window_limiter::sliding_window_limiter(uint64_t max_requests,
                                               clock::duration window)
    : max_(max_requests == 0 ? 1 : max_requests), window_(window) {
  // nop
}

void sliding_window_limiter::drop_expired(clock::time_point now) {
  while (size_ > 0 && ring_[head_] <= now - window_) {
    head_ = (head_ + 1) % ring_.size();
    --size_;
  }
}

std::optional<sliding_window_limiter::clock::duration>
sliding_window_limiter::try_acquire(clock::time_point now) {
  drop_expired(now);
  if (size_ >= max_)
    return ring_[head_] + window_ - now;
  if (size_ == ring_.size()) {
    // Grow: unroll the ring into a larger buffer, oldest first.
    std::vector<clock::time_point> bigger;
    auto capacity = ring_.empty() ? size_t{16} : ring_.size() * 2;
    if (capacity > max_)
      capacity = static_cast<size_t>(max_);
    bigger.reserve(capacity);
    for (size_t i = 0; i < size_; ++i)
      bigger.push_back(ring_[(head_ + i) % ring_.size()]);
    bigger.resize(capacity);
    ring_ = std::move(bigger);
    head_ = 0;
  }
  ring_[(head_ + size_) % ring_.size()] = now;
  ++size_;
  return std::nullopt;
}

std::vector<sliding_window_limiter::clock::time_point>
sliding_window_limiter::times() const {
  std::vector<clock::time_point> out;
  out.reserve(size_);
  for (size_t i = 0; i < size_; ++i)
    out.push_back(ring_[(head_ + i) % ring_.size()]);
  return out;
}

void sliding_window_limiter::adopt(
  const std::vector<clock::time_point>& older) {
  auto all = times();
  all.insert(all.end(), older.begin(), older.end());
  std::sort(all.begin(), all.end());
  if (all.size() > max_)
    all.erase(all.begin(), all.end() - static_cast<std::ptrdiff_t>(max_));
  ring_ = std::move(all);
  head_ = 0;
  size_ = ring_.size();
}

uint64_t sliding_window_limiter::in_window(clock::time_point now) const {
  uint64_t n = 0;
  for (size_t i = 0; i < size_; ++i)
    if (ring_[(head_ + i) % ring_.size()] > now - window_)
      ++n;
  return n;
}

} // namespace pw
