#include "core/policy/usage_ledger.hpp"

#include "core/json/reader.hpp"

#include <algorithm>
#include <cstdint>
#include <sstream>

namespace pw {

namespace {

using namespace std::chrono;

/// 0 when `x` would go below it.
uint64_t minus(uint64_t x, uint64_t y) {
  return x > y ? x - y : 0;
}

/// x + y, or the largest value when that overflows (an absurd max_tokens
/// must fail a limit, not wrap round under it).
uint64_t plus(uint64_t x, uint64_t y) {
  return x > UINT64_MAX - y ? UINT64_MAX : x + y;
}

uint64_t left_of(uint64_t limit, uint64_t used) {
  return minus(limit, used);
}

uint32_t seconds_up(uint64_t ms) {
  return static_cast<uint32_t>(std::max<uint64_t>(1, (ms + 999) / 1000));
}

/// USD with cents, from pico-USD, for messages.
std::string usd(uint64_t pico) {
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(pico < 10'000'000'000 ? 4 : 2); // below a cent: 4 places
  out << static_cast<double>(pico) / 1e12;
  return out.str();
}

} // namespace

ledger_periods periods_at(system_clock::time_point t) {
  ledger_periods p;
  auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
  if (ms < 0)
    ms = 0;
  p.minute = ms / 60'000;
  p.minute_left_ms = static_cast<uint32_t>(60'000 - ms % 60'000);
  p.day = ms / 86'400'000;
  auto in_day_ms = ms % 86'400'000;
  p.day_left_s = static_cast<uint32_t>((86'400'000 - in_day_ms + 999) / 1000);
  year_month_day ymd{sys_days{days{p.day}}};
  p.month = static_cast<int>(ymd.year()) * 12LL
            + static_cast<unsigned>(ymd.month()) - 1;
  auto next
    = sys_days{year_month_day{ymd.year() / ymd.month() / 1} + months{1}};
  auto left_ms
    = duration_cast<milliseconds>(next.time_since_epoch()).count() - ms;
  p.month_left_s = static_cast<uint32_t>((left_ms + 999) / 1000);
  return p;
}

void scope_counters::roll(const ledger_periods& p) {
  if (minute != p.minute) {
    minute = p.minute;
    minute_requests = 0;
    minute_tokens = 0;
  }
  if (day != p.day) {
    day = p.day;
    day_tokens = 0;
  }
  if (month != p.month) {
    month = p.month;
    month_tokens = 0;
    month_cost = 0;
  }
}

std::string_view to_string(limit_kind x) {
  switch (x) {
  case limit_kind::requests_per_minute:
    return "requests_per_minute";
  case limit_kind::tokens_per_minute:
    return "tokens_per_minute";
  case limit_kind::max_concurrent:
    return "max_concurrent";
  case limit_kind::tokens_per_day:
    return "tokens_per_day";
  case limit_kind::tokens_per_month:
    return "tokens_per_month";
  case limit_kind::budget_per_month:
    return "budget_usd_per_month";
  }
  return "unknown";
}

bool is_quota(limit_kind x) {
  return x == limit_kind::tokens_per_day || x == limit_kind::tokens_per_month
         || x == limit_kind::budget_per_month;
}

std::string ledger_refusal::message() const {
  std::ostringstream out;
  auto what = scope.rfind("team:", 0) == 0
                ? "team '" + scope.substr(5) + "'"
                : "client '" + scope.substr(scope.find(':') + 1) + "'";
  switch (kind) {
  case limit_kind::requests_per_minute:
    out << "Rate limit reached for " << what << ": " << limit
        << " requests per minute. Retry after " << retry_after_s << " s.";
    break;
  case limit_kind::max_concurrent:
    out << "Too many requests in flight for " << what << ": at most " << limit
        << " at once. Retry when one has finished.";
    break;
  case limit_kind::budget_per_month:
    if (never)
      out << "This request may cost up to USD " << usd(wanted)
          << " (its prompt and max_tokens), more than the monthly budget of "
          << what << " (USD " << usd(limit) << "); lower max_tokens.";
    else
      out << "The monthly budget of " << what << " (USD " << usd(limit)
          << ") has USD " << usd(left) << " left; this request may cost up to "
          << "USD " << usd(wanted)
          << ". Lower max_tokens, or wait for the next month.";
    break;
  default: {
    auto period = kind == limit_kind::tokens_per_minute ? "minute"
                  : kind == limit_kind::tokens_per_day  ? "day"
                                                        : "month";
    if (never)
      out << "This request may use up to " << wanted
          << " tokens (its prompt and max_tokens), more than the " << limit
          << " tokens per " << period << " of " << what
          << "; lower max_tokens or shorten the prompt.";
    else
      out << (is_quota(kind) ? "Token quota" : "Token rate limit")
          << " reached for " << what << ": " << limit << " tokens per "
          << period << ", " << left << " left, this request may use up to "
          << wanted << ". Retry after " << retry_after_s << " s.";
  }
  }
  return out.str();
}

std::optional<uint64_t> limit_of(const usage_limits& lim, limit_kind k) {
  switch (k) {
  case limit_kind::requests_per_minute:
    return lim.requests_per_minute;
  case limit_kind::tokens_per_minute:
    return lim.tokens_per_minute;
  case limit_kind::max_concurrent:
    return lim.max_concurrent;
  case limit_kind::tokens_per_day:
    return lim.tokens_per_day;
  case limit_kind::tokens_per_month:
    return lim.tokens_per_month;
  case limit_kind::budget_per_month:
    return lim.budget_per_month;
  }
  return std::nullopt;
}

ledger_refusal refusal_for(limit_kind k, const std::string& scope,
                           const usage_limits& lim, uint64_t used,
                           usage_amount worst, const ledger_periods& now) {
  ledger_refusal r;
  r.kind = k;
  r.scope = scope;
  r.limit = limit_of(lim, k).value_or(0);
  switch (k) {
  case limit_kind::max_concurrent:
    r.wanted = 1;
    r.retry_after_s = 1;
    break;
  case limit_kind::requests_per_minute:
    r.wanted = 1;
    r.retry_after_s = seconds_up(now.minute_left_ms);
    break;
  case limit_kind::tokens_per_minute:
    r.wanted = worst.tokens;
    r.retry_after_s = seconds_up(now.minute_left_ms);
    break;
  case limit_kind::tokens_per_day:
    r.wanted = worst.tokens;
    r.retry_after_s = now.day_left_s;
    break;
  case limit_kind::tokens_per_month:
    r.wanted = worst.tokens;
    r.retry_after_s = now.month_left_s;
    break;
  case limit_kind::budget_per_month:
    r.wanted = worst.cost;
    r.retry_after_s = now.month_left_s;
    break;
  }
  r.left = left_of(r.limit, used);
  r.never = r.wanted > r.limit;
  return r;
}

void tighten(rate_view& v, const usage_limits& lim, uint64_t minute_requests,
             uint64_t minute_tokens) {
  if (auto l = lim.requests_per_minute) {
    auto left = left_of(*l, minute_requests);
    if (!v.remaining_requests || left < *v.remaining_requests) {
      v.limit_requests = *l;
      v.remaining_requests = left;
    }
  }
  if (auto l = lim.tokens_per_minute) {
    auto left = left_of(*l, minute_tokens);
    if (!v.remaining_tokens || left < *v.remaining_tokens) {
      v.limit_tokens = *l;
      v.remaining_tokens = left;
    }
  }
}

ledger_answer usage_ledger::reserve(const std::vector<ledger_scope>& scopes,
                                    usage_amount worst,
                                    const ledger_periods& now) {
  ledger_answer out;
  // Each limit in the order they are checked, with what it counts.
  for (const auto& s : scopes) {
    if (s.limits == nullptr)
      continue;
    const auto& lim = *s.limits;
    auto& c = scopes_[s.name];
    c.roll(now);
    const std::pair<limit_kind, uint64_t> checks[] = {
      {limit_kind::max_concurrent, plus(c.in_flight, 1)},
      {limit_kind::requests_per_minute, plus(c.minute_requests, 1)},
      {limit_kind::tokens_per_minute, plus(c.minute_tokens, worst.tokens)},
      {limit_kind::tokens_per_day, plus(c.day_tokens, worst.tokens)},
      {limit_kind::tokens_per_month, plus(c.month_tokens, worst.tokens)},
      {limit_kind::budget_per_month, plus(c.month_cost, worst.cost)},
    };
    const uint64_t used[] = {c.in_flight,  c.minute_requests, c.minute_tokens,
                             c.day_tokens, c.month_tokens,    c.month_cost};
    for (size_t i = 0; i < std::size(checks); ++i) {
      auto [kind, after] = checks[i];
      if (auto l = limit_of(lim, kind); l && after > *l) {
        out.refusal = refusal_for(kind, s.name, lim, used[i], worst, now);
        break;
      }
    }
    if (out.refusal)
      break;
  }
  if (!out.refusal) {
    ledger_hold hold;
    hold.at = now;
    hold.reserved = worst;
    for (const auto& s : scopes) {
      if (s.limits == nullptr)
        continue;
      auto& c = scopes_[s.name];
      c.minute_requests = plus(c.minute_requests, 1);
      c.minute_tokens = plus(c.minute_tokens, worst.tokens);
      c.day_tokens = plus(c.day_tokens, worst.tokens);
      c.month_tokens = plus(c.month_tokens, worst.tokens);
      c.month_cost = plus(c.month_cost, worst.cost);
      c.in_flight = plus(c.in_flight, 1);
      hold.scopes.push_back(s.name);
    }
    out.hold = std::move(hold);
  }
  // The headers show the tightest per-minute limit of the scopes.
  out.view.reset_ms = now.minute_left_ms;
  for (const auto& s : scopes)
    if (s.limits != nullptr) {
      const auto& c = scopes_[s.name];
      tighten(out.view, *s.limits, c.minute_requests, c.minute_tokens);
    }
  return out;
}

void usage_ledger::settle(const ledger_hold& hold, usage_amount actual,
                          const ledger_periods& now) {
  for (const auto& name : hold.scopes) {
    auto it = scopes_.find(name);
    if (it == scopes_.end())
      continue;
    auto& c = it->second;
    c.roll(now);
    c.in_flight = minus(c.in_flight, 1);
    // Only the periods the reservation went into, while they last.
    auto fix = [&](uint64_t& x, uint64_t reserved, uint64_t real) {
      x = plus(minus(x, reserved), real);
    };
    if (c.minute == hold.at.minute)
      fix(c.minute_tokens, hold.reserved.tokens, actual.tokens);
    if (c.day == hold.at.day)
      fix(c.day_tokens, hold.reserved.tokens, actual.tokens);
    if (c.month == hold.at.month) {
      fix(c.month_tokens, hold.reserved.tokens, actual.tokens);
      fix(c.month_cost, hold.reserved.cost, actual.cost);
    }
  }
}

const scope_counters* usage_ledger::find(const std::string& scope) const {
  auto it = scopes_.find(scope);
  return it == scopes_.end() ? nullptr : &it->second;
}

std::string usage_ledger::journal() const {
  json::document doc = json::document::object();
  doc["version"] = 1;
  auto& list = doc["scopes"] = json::document::array();
  for (const auto& [name, c] : scopes_)
    list.push_back({{"scope", name},
                    {"day", c.day},
                    {"day_tokens", c.day_tokens},
                    {"month", c.month},
                    {"month_tokens", c.month_tokens},
                    {"month_cost", c.month_cost}});
  return json::dump(doc);
}

bool usage_ledger::restore(std::string_view text, const ledger_periods& now) {
  auto doc = json::read(text, json::upstream_limits);
  if (!doc)
    return false;
  auto root = doc->root();
  if (json::uint_of(root, "version", 0) != 1)
    return false;
  auto list = json::member(root, "scopes");
  simdjson::dom::array entries;
  if (!list || list->get_array().get(entries) != simdjson::SUCCESS)
    return false;
  std::unordered_map<std::string, scope_counters> taken;
  for (auto entry : entries) {
    auto name = json::string_of(entry, "scope", "");
    if (name.empty())
      return false;
    scope_counters c;
    c.roll(now);
    if (static_cast<int64_t>(json::uint_of(entry, "day", 0)) == now.day)
      c.day_tokens = json::uint_of(entry, "day_tokens", 0);
    if (static_cast<int64_t>(json::uint_of(entry, "month", 0)) == now.month) {
      c.month_tokens = json::uint_of(entry, "month_tokens", 0);
      c.month_cost = json::uint_of(entry, "month_cost", 0);
    }
    taken[std::string{name}] = c;
  }
  for (auto& [name, c] : taken) {
    auto& mine = scopes_[name];
    mine.roll(now);
    mine.day_tokens += c.day_tokens;
    mine.month_tokens += c.month_tokens;
    mine.month_cost += c.month_cost;
  }
  return true;
}

std::string reset_text(uint32_t ms) {
  if (ms < 1000)
    return std::to_string(ms) + "ms";
  auto s = (ms + 999) / 1000;
  if (s < 60)
    return std::to_string(s) + "s";
  return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
}

} // namespace pw
