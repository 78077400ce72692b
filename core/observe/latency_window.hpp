#pragma once

// The latencies of a model's last calls, for the percentiles /health shows.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>

namespace pw {

/// A ring of the last `N` latencies (microseconds).
template <size_t N = 256>
class latency_window {
public:
  void add(int64_t us) {
    ring_[next_] = us;
    next_ = (next_ + 1) % N;
    if (size_ < N)
      ++size_;
  }

  /// The `q`-quantile (0..1) of what the ring holds; 0 when empty.
  [[nodiscard]] int64_t quantile(double q) const {
    if (size_ == 0)
      return 0;
    std::array<int64_t, N> copy{};
    std::copy(ring_.begin(), ring_.begin() + size_, copy.begin());
    auto k = static_cast<size_t>(q * static_cast<double>(size_ - 1) + 0.5);
    std::nth_element(copy.begin(), copy.begin() + k, copy.begin() + size_);
    return copy[k];
  }

  [[nodiscard]] size_t size() const { return size_; }

private:
  std::array<int64_t, N> ring_{};
  size_t next_ = 0;
  size_t size_ = 0;
};

} // namespace pw
