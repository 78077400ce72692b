#include "actors/redis_store.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <hiredis/hiredis.h>
#include <iterator>
#include <unordered_map>

namespace pw::actors {

namespace {

// Each scope has two keys: a hash of its counters (m, d, o: the minute,
// day and month they count; mr, mt: the minute's requests and tokens; dt:
// the day's tokens; ot, oc: the month's tokens and pico-USD) and the sorted
// set of its holds in flight, scored by when each expires. Counters of a
// period that has passed count as 0, as in usage_ledger.

/// One batch, applied in order as one atomic script. KEYS: per scope, its
/// hash and its set of holds. ARGV: now (ms), minute, day and month, the
/// hash's TTL (s, renewed when its month starts), then six limits per scope
/// (max_concurrent, requests_per_minute, tokens_per_minute, tokens_per_day,
/// tokens_per_month, budget; -1 = none), then the settlements, then the
/// reservations:
///   s, hold id, minute, day, month, reserved tokens, real tokens,
///     reserved cost, real cost, n, n scope numbers
///   r, hold id, expiry (ms), tokens, cost, n, n scope numbers
/// Each reservation adds {1, then per scope its minute's requests and
/// tokens} or {0, which of its scopes, which limit, what was used} to the
/// answer. Each scope's keys are read and written once per batch, whatever
/// its size. Tokens are Lua numbers (exact below 2^53); costs reach the
/// hash through HINCRBY in steps below 2^53, so the stored sum is exact.
constexpr const char* batch_lua = R"lua(
local now, mi, di, oi = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local function num(x) return tonumber(x) or 0 end
local function spend(x, d)
  if math.abs(x.dc) + math.abs(d) >= 2^52 then
    redis.call('HINCRBY', x.hk, 'oc', x.dc)
    x.dc = 0
  end
  x.dc, x.oc = x.dc + d, x.oc + d
end
local S = {}
for s = 1, #KEYS / 2 do
  local hk, ik = KEYS[2 * s - 1], KEYS[2 * s]
  redis.call('ZREMRANGEBYSCORE', ik, '-inf', now)
  local h = redis.call('HMGET', hk, 'm', 'mr', 'mt', 'd', 'dt', 'o', 'ot', 'oc')
  local x = {hk = hk, ik = ik, f = redis.call('ZCARD', ik), mr = 0, mt = 0,
             dt = 0, ot = 0, oc = 0, dc = 0, lim = {}, ended = {}, added = {}}
  if h[1] == mi then x.mr, x.mt = num(h[2]), num(h[3]) end
  if h[4] == di then x.dt = num(h[5]) end
  if h[6] == oi then
    x.ot, x.oc = num(h[7]), num(h[8])
  else
    redis.call('HSET', hk, 'oc', 0)
    redis.call('EXPIRE', hk, ARGV[5])
  end
  for k = 1, 6 do x.lim[k] = tonumber(ARGV[5 + 6 * (s - 1) + k]) end
  S[s] = x
end
local p = 6 + 6 * #KEYS / 2
while p <= #ARGV and ARGV[p] == 's' do
  local id, rt, at = ARGV[p + 1], tonumber(ARGV[p + 5]), tonumber(ARGV[p + 6])
  local rc, ac, n = tonumber(ARGV[p + 7]), tonumber(ARGV[p + 8]), tonumber(ARGV[p + 9])
  for j = 1, n do
    local x = S[tonumber(ARGV[p + 9 + j])]
    x.ended[#x.ended + 1] = id
    if ARGV[p + 2] == mi then x.mt = math.max(0, x.mt - rt) + at end
    if ARGV[p + 3] == di then x.dt = math.max(0, x.dt - rt) + at end
    if ARGV[p + 4] == oi then
      x.ot = math.max(0, x.ot - rt) + at
      spend(x, ac - math.min(x.oc, rc))
    end
    x.changed = true
  end
  p = p + 10 + n
end
for _, x in ipairs(S) do
  if #x.ended > 0 then
    x.f = x.f - redis.call('ZREM', x.ik, unpack(x.ended))
  end
end
local out = {}
while p <= #ARGV do
  local id, exp, wt = ARGV[p + 1], ARGV[p + 2], tonumber(ARGV[p + 3])
  local wc, n = tonumber(ARGV[p + 4]), tonumber(ARGV[p + 5])
  local refused
  for j = 1, n do
    local x = S[tonumber(ARGV[p + 5 + j])]
    local L, k, u = x.lim
    if L[1] >= 0 and x.f + 1 > L[1] then k, u = 1, x.f
    elseif L[2] >= 0 and x.mr + 1 > L[2] then k, u = 2, x.mr
    elseif L[3] >= 0 and x.mt + wt > L[3] then k, u = 3, x.mt
    elseif L[4] >= 0 and x.dt + wt > L[4] then k, u = 4, x.dt
    elseif L[5] >= 0 and x.ot + wt > L[5] then k, u = 5, x.ot
    elseif L[6] >= 0 and x.oc + wc > L[6] then k, u = 6, x.oc end
    if k then
      refused = {j - 1, k, u}
      break
    end
  end
  if refused then
    out[#out + 1] = 0
    for k = 1, 3 do out[#out + 1] = refused[k] end
  else
    out[#out + 1] = 1
    for j = 1, n do
      local x = S[tonumber(ARGV[p + 5 + j])]
      x.f, x.mr, x.mt = x.f + 1, x.mr + 1, x.mt + wt
      x.dt, x.ot = x.dt + wt, x.ot + wt
      spend(x, wc)
      x.added[#x.added + 1] = exp
      x.added[#x.added + 1] = id
      x.changed = true
      out[#out + 1] = x.mr
      out[#out + 1] = x.mt
    end
  end
  p = p + 6 + n
end
for _, x in ipairs(S) do
  if #x.added > 0 then redis.call('ZADD', x.ik, unpack(x.added)) end
  if x.dc ~= 0 then redis.call('HINCRBY', x.hk, 'oc', x.dc) end
  if x.changed then
    redis.call('HSET', x.hk, 'm', mi, 'mr', x.mr, 'mt', x.mt, 'd', di,
               'dt', x.dt, 'o', oi, 'ot', x.ot)
  end
end
return out
)lua";

/// KEYS: a scope's hash and set of holds. ARGV: now (ms), minute, day,
/// month. Returns {in flight, requests, minute tokens, day tokens, month
/// tokens, month cost}.
constexpr const char* read_lua = R"lua(
local function num(x) return tonumber(x) or 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local h = redis.call('HMGET', KEYS[1], 'm', 'mr', 'mt', 'd', 'dt', 'o', 'ot', 'oc')
local out = {redis.call('ZCARD', KEYS[2]), 0, 0, 0, 0, '0'}
if h[1] == ARGV[2] then out[2], out[3] = num(h[2]), num(h[3]) end
if h[4] == ARGV[3] then out[4] = num(h[5]) end
if h[6] == ARGV[4] then out[5], out[6] = num(h[7]), h[8] or '0' end
return out
)lua";

constexpr std::array<const char*, 2> scripts{batch_lua, read_lua};
enum script_id { batch_script, read_script };

constexpr limit_kind kinds[] = {
  limit_kind::max_concurrent,    limit_kind::requests_per_minute,
  limit_kind::tokens_per_minute, limit_kind::tokens_per_day,
  limit_kind::tokens_per_month,  limit_kind::budget_per_month,
};

std::string limit_arg(const std::optional<uint64_t>& x) {
  return x ? std::to_string(*x) : std::string{"-1"};
}

int64_t unix_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           t.time_since_epoch())
    .count();
}

uint64_t as_uint(const redisReply* r) {
  if (r->type == REDIS_REPLY_INTEGER)
    return r->integer > 0 ? static_cast<uint64_t>(r->integer) : 0;
  if (r->type == REDIS_REPLY_STRING)
    return std::strtoull(r->str, nullptr, 10);
  return 0;
}

} // namespace

void redis_store::reply_deleter::operator()(void* r) const {
  freeReplyObject(r);
}

redis_store::redis_store(redis_config cfg) : cfg_(std::move(cfg)) {
  // nop: the first request connects
}

redis_store::~redis_store() {
  drop();
}

void redis_store::drop() {
  if (ctx_ != nullptr)
    redisFree(ctx_);
  ctx_ = nullptr;
  shas_.clear();
}

bool redis_store::connect(std::string& why) {
  auto now = std::chrono::steady_clock::now();
  if (!available_ && now - last_attempt_ < std::chrono::seconds{1}) {
    why = "Redis was unreachable less than a second ago";
    return false;
  }
  last_attempt_ = now;
  timeval tv{};
  tv.tv_sec = cfg_.timeout.count() / 1000;
  tv.tv_usec = (cfg_.timeout.count() % 1000) * 1000;
  ctx_ = redisConnectWithTimeout(cfg_.host.c_str(), cfg_.port, tv);
  if (ctx_ == nullptr || ctx_->err != 0) {
    why = ctx_ != nullptr
            ? std::string{"cannot connect to Redis at "} + cfg_.host + ":"
                + std::to_string(cfg_.port) + ": " + ctx_->errstr
            : std::string{"cannot allocate a Redis context"};
    drop();
    return false;
  }
  redisSetTimeout(ctx_, tv);
  auto command = [&](std::vector<std::string> argv) -> reply_ptr {
    std::vector<const char*> ptrs;
    std::vector<size_t> lens;
    for (const auto& a : argv) {
      ptrs.push_back(a.data());
      lens.push_back(a.size());
    }
    return reply_ptr{redisCommandArgv(ctx_, static_cast<int>(ptrs.size()),
                                      ptrs.data(), lens.data())};
  };
  auto failed = [&](const reply_ptr& r, const char* step) {
    const auto* rr = static_cast<const redisReply*>(r.get());
    if (rr != nullptr && rr->type != REDIS_REPLY_ERROR)
      return false;
    // Never the password: only which step failed and Redis's own words.
    why = std::string{"Redis "} + step + " failed"
          + (rr != nullptr ? std::string{": "} + rr->str
                           : std::string{": "} + ctx_->errstr);
    drop();
    return true;
  };
  if (!cfg_.password.empty()) {
    auto r = command({"AUTH", std::string{cfg_.password.reveal()}});
    if (failed(r, "AUTH"))
      return false;
  }
  if (cfg_.db != 0) {
    auto r = command({"SELECT", std::to_string(cfg_.db)});
    if (failed(r, "SELECT"))
      return false;
  }
  for (const auto* script : scripts) {
    auto r = command({"SCRIPT", "LOAD", script});
    if (failed(r, "SCRIPT LOAD"))
      return false;
    shas_.emplace_back(static_cast<const redisReply*>(r.get())->str);
  }
  return true;
}

redis_store::reply_ptr redis_store::run(call& c, std::string& why) {
  if (ctx_ == nullptr && !connect(why)) {
    available_ = false;
    return nullptr;
  }
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  for (int attempt = 0; attempt < 2; ++attempt) {
    c.argv[1] = shas_[static_cast<size_t>(c.script)];
    ptrs.clear();
    lens.clear();
    for (const auto& a : c.argv) {
      ptrs.push_back(a.data());
      lens.push_back(a.size());
    }
    reply_ptr r{redisCommandArgv(ctx_, static_cast<int>(ptrs.size()),
                                 ptrs.data(), lens.data())};
    auto error = errno;
    const auto* rr = static_cast<const redisReply*>(r.get());
    if (rr == nullptr) {
      // A timeout: Redis may still run the batch, so it is not sent again
      // (that could charge it twice).
      bool timed_out = ctx_->err == REDIS_ERR_IO
                       && (error == EAGAIN || error == EWOULDBLOCK);
      why = std::string{"Redis did not answer: "} + ctx_->errstr;
      drop();
      // A connection Redis closed (it restarted) gets one new one at once;
      // a Redis that is away fails here within the timeout.
      if (attempt == 0 && !timed_out && connect(why))
        continue;
      available_ = false;
      return nullptr;
    }
    if (rr->type == REDIS_REPLY_ERROR) {
      // A restarted Redis lost the scripts (the call did not run): load
      // them again, once.
      if (attempt == 0 && std::strncmp(rr->str, "NOSCRIPT", 8) == 0) {
        drop();
        if (!connect(why)) {
          available_ = false;
          return nullptr;
        }
        continue;
      }
      why = std::string{"Redis refused the script: "} + rr->str;
      available_ = false;
      return nullptr;
    }
    available_ = true;
    return r;
  }
  why = "Redis lost its scripts twice";
  available_ = false;
  return nullptr;
}

namespace {

/// The scopes of `r` that have limits (the ones it is charged to).
std::vector<const ledger_scope*> limited(const redis_reservation& r) {
  std::vector<const ledger_scope*> out;
  for (const auto& s : r.scopes)
    if (s.limits != nullptr)
      out.push_back(&s);
  return out;
}

/// Reads reservation `res`'s answer from the batch's answer at `at` (and
/// moves `at` past it), as usage_ledger::reserve gives it; nullopt when it
/// is not one.
std::optional<ledger_answer> answer_of(const redisReply* rr, size_t& at,
                                       const redis_reservation& res,
                                       const ledger_periods& now) {
  auto used = limited(res);
  auto next = [&]() -> std::optional<uint64_t> {
    if (at >= rr->elements)
      return std::nullopt;
    return as_uint(rr->element[at++]);
  };
  auto status = next();
  if (!status)
    return std::nullopt;
  ledger_answer out;
  out.view.reset_ms = now.minute_left_ms;
  if (*status == 0) {
    auto i = next();
    auto k = next();
    auto taken = next();
    if (!taken || *i >= used.size() || *k < 1 || *k > std::size(kinds))
      return std::nullopt;
    const auto* refused = used[*i];
    out.refusal = refusal_for(kinds[*k - 1], refused->name, *refused->limits,
                              *taken, res.worst, now);
    // Headers: the other scopes' minute counts are not in the answer; they
    // show each limit, with nothing left of the one that refused.
    auto kind = out.refusal->kind;
    for (const auto* s : used) {
      auto spent = [&](limit_kind k) { return s == refused && kind == k; };
      tighten(out.view, *s->limits,
              spent(limit_kind::requests_per_minute) ? UINT64_MAX : 0,
              spent(limit_kind::tokens_per_minute) ? UINT64_MAX : 0);
    }
    return out;
  }
  ledger_hold hold;
  hold.at = now;
  hold.reserved = res.worst;
  for (const auto* s : used) {
    auto requests = next();
    auto tokens = next();
    if (!tokens)
      return std::nullopt;
    hold.scopes.push_back(s->name);
    tighten(out.view, *s->limits, *requests, *tokens);
  }
  out.hold = std::move(hold);
  return out;
}

/// Lua counts in doubles (exact below 2^53): one request's tokens or cost
/// beyond this (4.5 x 10^15 tokens, or USD 4,503) are charged as this.
constexpr uint64_t most = uint64_t{1} << 52;

std::string amount(uint64_t x) {
  return std::to_string(std::min(x, most));
}

} // namespace

redis_outcome
redis_store::exchange(const std::vector<redis_settlement>& settlements,
                      const std::vector<redis_reservation>& reservations,
                      std::chrono::system_clock::time_point clock) {
  redis_outcome out;
  out.answers.resize(reservations.size());
  if (reservations.empty() && settlements.empty())
    return out;
  auto now = periods_at(clock);
  // The batch's scopes, numbered from 1 in the script, with their limits
  // (none for a scope only settled).
  std::vector<std::pair<std::string, const usage_limits*>> scopes;
  std::unordered_map<std::string, size_t> numbers;
  auto number_of = [&](const std::string& name, const usage_limits* limits) {
    auto [it, added] = numbers.try_emplace(name, scopes.size() + 1);
    if (added)
      scopes.emplace_back(name, limits);
    else if (limits != nullptr)
      scopes[it->second - 1].second = limits;
    return std::to_string(it->second);
  };
  // Settlements first: they end holds of earlier batches, so they free
  // what this batch's reservations may need.
  std::vector<std::string> ops;
  for (const auto& x : settlements) {
    const auto& h = x.hold;
    ops.insert(ops.end(), {"s", x.hold_id, std::to_string(h.at.minute),
                           std::to_string(h.at.day), std::to_string(h.at.month),
                           amount(h.reserved.tokens), amount(x.actual.tokens),
                           amount(h.reserved.cost), amount(x.actual.cost),
                           std::to_string(h.scopes.size())});
    for (const auto& name : h.scopes)
      ops.push_back(number_of(name, nullptr));
  }
  for (const auto& r : reservations) {
    auto used = limited(r);
    ops.insert(ops.end(), {"r", r.hold_id, std::to_string(r.expires_unix_ms),
                           amount(r.worst.tokens), amount(r.worst.cost),
                           std::to_string(used.size())});
    for (const auto* s : used)
      ops.push_back(number_of(s->name, s->limits));
  }
  call c{batch_script, {"EVALSHA", "", std::to_string(2 * scopes.size())}};
  for (const auto& [name, limits] : scopes) {
    auto base = cfg_.key_prefix + ":" + name;
    c.argv.push_back(base);
    c.argv.push_back(base + ":inflight");
  }
  c.argv.push_back(std::to_string(unix_ms(clock)));
  c.argv.push_back(std::to_string(now.minute));
  c.argv.push_back(std::to_string(now.day));
  c.argv.push_back(std::to_string(now.month));
  c.argv.push_back(std::to_string(40 * 86400));
  for (const auto& [name, limits] : scopes)
    for (auto kind : kinds)
      c.argv.push_back(limits != nullptr ? limit_arg(limit_of(*limits, kind))
                                         : std::string{"-1"});
  std::move(ops.begin(), ops.end(), std::back_inserter(c.argv));
  auto reply = run(c, out.why);
  const auto* rr = static_cast<const redisReply*>(reply.get());
  if (rr != nullptr && rr->type != REDIS_REPLY_ARRAY) {
    out.why = "Redis answered the batch with something else";
    available_ = false;
    rr = nullptr;
  }
  if (rr == nullptr) {
    out.settlements_failed = settlements.size();
    return out;
  }
  size_t at = 0;
  for (size_t i = 0; i < reservations.size(); ++i) {
    out.answers[i] = answer_of(rr, at, reservations[i], now);
    if (!out.answers[i]) {
      out.why = "Redis answered a reservation with something else";
      available_ = false;
      break;
    }
  }
  return out;
}

std::optional<scope_counters> redis_store::read(const std::string& scope,
                                                const ledger_periods& now,
                                                std::string& why) {
  auto base = cfg_.key_prefix + ":" + scope;
  call read{read_script,
            {"EVALSHA", "", "2", base, base + ":inflight",
             std::to_string(unix_ms(std::chrono::system_clock::now())),
             std::to_string(now.minute), std::to_string(now.day),
             std::to_string(now.month)}};
  auto reply = run(read, why);
  if (!reply)
    return std::nullopt;
  const auto* rr = static_cast<const redisReply*>(reply.get());
  if (rr->type != REDIS_REPLY_ARRAY || rr->elements != 6) {
    why = "Redis answered the read with something else";
    return std::nullopt;
  }
  scope_counters c;
  c.roll(now);
  c.in_flight = as_uint(rr->element[0]);
  c.minute_requests = as_uint(rr->element[1]);
  c.minute_tokens = as_uint(rr->element[2]);
  c.day_tokens = as_uint(rr->element[3]);
  c.month_tokens = as_uint(rr->element[4]);
  c.month_cost = as_uint(rr->element[5]);
  return c;
}

} // namespace pw::actors
