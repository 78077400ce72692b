#pragma once

// The usage ledger: per-client and per-team counters of requests, tokens,
// money and requests in flight, checked and charged together. A request
// reserves its worst case before it runs and settles its real usage when
// it ends, so requests in flight can never take a scope past a limit by
// more than their own reservations. Pure code: the LEDGER actor
// (actors/ledger.hpp) owns one.
//
// Periods are UTC calendar periods: the minute, the day and the month a
// request starts in. Per-minute limits are fixed windows (at most the limit
// in each calendar minute), as are the day and month totals.

#include "core/config/config.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace pw {

/// The UTC periods a moment falls in: minutes, days and months since the
/// epoch, and the seconds left in each.
struct ledger_periods {
  int64_t minute = 0;
  int64_t day = 0;
  int64_t month = 0;
  uint32_t minute_left_ms = 0;
  uint32_t day_left_s = 0;
  uint32_t month_left_s = 0;
};

/// The periods of `t`.
ledger_periods periods_at(std::chrono::system_clock::time_point t);

/// Tokens and their cost (pico-USD).
struct usage_amount {
  uint64_t tokens = 0;
  uint64_t cost = 0;

  friend bool operator==(const usage_amount&, const usage_amount&) = default;
};

/// The counters of one scope ("key:<name>" or "team:<name>").
struct scope_counters {
  int64_t minute = -1;
  uint64_t minute_requests = 0;
  uint64_t minute_tokens = 0;
  int64_t day = -1;
  uint64_t day_tokens = 0;
  int64_t month = -1;
  uint64_t month_tokens = 0;
  uint64_t month_cost = 0;
  uint64_t in_flight = 0;

  /// Starts the periods `p` where they changed.
  void roll(const ledger_periods& p);
};

/// Which limit refused a request.
enum class limit_kind : uint8_t {
  requests_per_minute,
  tokens_per_minute,
  max_concurrent,
  tokens_per_day,
  tokens_per_month,
  budget_per_month,
};

/// The config name of `x`, e.g. "tokens_per_day".
std::string_view to_string(limit_kind x);

/// True for the limits that are a quota (day, month, budget): refused with
/// `insufficient_quota` rather than `rate_limit_exceeded`.
bool is_quota(limit_kind x);

/// One scope a request is charged to, and its limits.
struct ledger_scope {
  std::string name;
  const usage_limits* limits = nullptr;
};

/// What the `x-ratelimit-*` headers say after an admission or a refusal:
/// the tightest per-minute limits of the request's scopes. Absent values
/// are limits no scope sets.
struct rate_view {
  std::optional<uint64_t> limit_requests;
  std::optional<uint64_t> remaining_requests;
  std::optional<uint64_t> limit_tokens;
  std::optional<uint64_t> remaining_tokens;
  /// Until the minute's counters start again.
  uint32_t reset_ms = 0;
};

/// A refusal: the limit, its scope, and when to retry.
struct ledger_refusal {
  limit_kind kind = limit_kind::requests_per_minute;
  std::string scope;
  uint64_t limit = 0;
  /// What the request wanted of it (tokens, pico-USD, requests).
  uint64_t wanted = 0;
  /// What is left of it.
  uint64_t left = 0;
  /// The request can never pass (its worst case alone exceeds the limit).
  bool never = false;
  uint32_t retry_after_s = 1;

  /// A message for the client: the limit and what to do.
  [[nodiscard]] std::string message() const;
};

/// How a reservation was made: what settling it must take back.
struct ledger_hold {
  std::vector<std::string> scopes;
  ledger_periods at;
  usage_amount reserved;
};

/// The outcome of reserve(): a hold, or a refusal; with the header view
/// either way.
struct ledger_answer {
  std::optional<ledger_hold> hold;
  std::optional<ledger_refusal> refusal;
  rate_view view;
};

/// The limit of kind `k` in `lim` (absent when not set).
std::optional<uint64_t> limit_of(const usage_limits& lim, limit_kind k);

/// The refusal of a request that wanted `worst` (one request, its tokens or
/// its cost, as `k` counts) where `used` of limit `k` was taken already.
ledger_refusal refusal_for(limit_kind k, const std::string& scope,
                           const usage_limits& lim, uint64_t used,
                           usage_amount worst, const ledger_periods& now);

/// Makes `v` show the tighter of what it shows and scope `lim`'s
/// per-minute limits, given that scope's counts this minute.
void tighten(rate_view& v, const usage_limits& lim, uint64_t minute_requests,
             uint64_t minute_tokens);

class usage_ledger {
public:
  /// Checks every limit of every scope and, when all pass, charges one
  /// request, `worst` tokens and cost, and one request in flight to each.
  ledger_answer reserve(const std::vector<ledger_scope>& scopes,
                        usage_amount worst, const ledger_periods& now);

  /// Replaces a hold's reservation by the real usage in the periods it was
  /// made in (those still current), and ends its request in flight.
  void settle(const ledger_hold& hold, usage_amount actual,
              const ledger_periods& now);

  /// The counters of a scope (null if it never had a request).
  [[nodiscard]] const scope_counters* find(const std::string& scope) const;

  [[nodiscard]] const std::unordered_map<std::string, scope_counters>&
  scopes() const {
    return scopes_;
  }

  /// The day and month totals as a JSON document (the journal).
  [[nodiscard]] std::string journal() const;

  /// Takes the day and month totals of a journal that are still current
  /// at `now`; false (and nothing taken) when the text is not a journal.
  bool restore(std::string_view text, const ledger_periods& now);

  /// Counters handed over from an older ledger (a reload): taken whole.
  void adopt(std::unordered_map<std::string, scope_counters> xs) {
    scopes_ = std::move(xs);
  }

private:
  std::unordered_map<std::string, scope_counters> scopes_;
};

/// "1s", "6m0s", "120ms": OpenAI's format for `x-ratelimit-reset-*`.
std::string reset_text(uint32_t ms);

} // namespace pw
