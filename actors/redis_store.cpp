#include "actors/redis_store.hpp"

#include <array>
#include <cstring>
#include <hiredis/hiredis.h>

namespace pw::actors {

namespace {

// Every script takes four keys per scope: the minute's hash (r requests,
// t tokens), the day's tokens, the month's hash (t tokens, c pico-USD)
// and the sorted set of holds in flight (scored by their expiry).

/// ARGV: now_ms, worst tokens, worst cost, hold id, hold expiry (ms),
/// minute TTL (ms), day TTL (s), month TTL (s), then six limits per scope
/// (max_concurrent, requests_per_minute, tokens_per_minute, tokens_per_day,
/// tokens_per_month, budget; -1 = none), checked in usage_ledger's order.
/// Returns {1, requests, tokens per scope...} or {0, scope, limit, used}.
constexpr const char* reserve_lua = R"lua(
local n = #KEYS / 4
local wt = tonumber(ARGV[2])
local wc = tonumber(ARGV[3])
local function num(x) return tonumber(x) or 0 end
local minute = {}
for i = 0, n - 1 do
  local mk, dk, ok, ik = KEYS[4*i+1], KEYS[4*i+2], KEYS[4*i+3], KEYS[4*i+4]
  redis.call('ZREMRANGEBYSCORE', ik, '-inf', ARGV[1])
  local f = redis.call('ZCARD', ik)
  local mr = num(redis.call('HGET', mk, 'r'))
  local mt = num(redis.call('HGET', mk, 't'))
  local d = num(redis.call('GET', dk))
  local ot = num(redis.call('HGET', ok, 't'))
  local oc = num(redis.call('HGET', ok, 'c'))
  local checks = {{f, 1}, {mr, 1}, {mt, wt}, {d, wt}, {ot, wt}, {oc, wc}}
  local b = 9 + 6 * i
  for k = 1, 6 do
    local lim = tonumber(ARGV[b + k - 1])
    if lim >= 0 and checks[k][1] + checks[k][2] > lim then
      return {0, i, k, checks[k][1]}
    end
  end
  minute[i + 1] = {mr, mt}
end
local out = {1}
for i = 0, n - 1 do
  local mk, dk, ok, ik = KEYS[4*i+1], KEYS[4*i+2], KEYS[4*i+3], KEYS[4*i+4]
  redis.call('HINCRBY', mk, 'r', 1)
  redis.call('HINCRBY', mk, 't', ARGV[2])
  redis.call('PEXPIRE', mk, ARGV[6])
  redis.call('INCRBY', dk, ARGV[2])
  redis.call('EXPIRE', dk, ARGV[7])
  redis.call('HINCRBY', ok, 't', ARGV[2])
  redis.call('HINCRBY', ok, 'c', ARGV[3])
  redis.call('EXPIRE', ok, ARGV[8])
  redis.call('ZADD', ik, ARGV[5], ARGV[4])
  out[#out + 1] = minute[i + 1][1] + 1
  out[#out + 1] = minute[i + 1][2] + wt
end
return out
)lua";

/// ARGV: hold id, token delta, cost delta (real minus reserved, signed).
/// Adjusts only the periods the hold was charged in, while they last.
constexpr const char* settle_lua = R"lua(
local n = #KEYS / 4
for i = 0, n - 1 do
  local mk, dk, ok, ik = KEYS[4*i+1], KEYS[4*i+2], KEYS[4*i+3], KEYS[4*i+4]
  redis.call('ZREM', ik, ARGV[1])
  if redis.call('EXISTS', mk) == 1 then
    redis.call('HINCRBY', mk, 't', ARGV[2])
  end
  if redis.call('EXISTS', dk) == 1 then
    redis.call('INCRBY', dk, ARGV[2])
  end
  if redis.call('EXISTS', ok) == 1 then
    redis.call('HINCRBY', ok, 't', ARGV[2])
    redis.call('HINCRBY', ok, 'c', ARGV[3])
  end
end
return 1
)lua";

/// ARGV: now_ms. Returns {in flight, requests, minute tokens, day tokens,
/// month tokens, month cost}.
constexpr const char* read_lua = R"lua(
local function num(x) return tonumber(x) or 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[1])
return {redis.call('ZCARD', KEYS[4]), num(redis.call('HGET', KEYS[1], 'r')),
        num(redis.call('HGET', KEYS[1], 't')), num(redis.call('GET', KEYS[2])),
        num(redis.call('HGET', KEYS[3], 't')),
        redis.call('HGET', KEYS[3], 'c') or '0'}
)lua";

constexpr std::array<const char*, 3> scripts{reserve_lua, settle_lua, read_lua};
enum script_id { reserve_script, settle_script, read_script };

constexpr limit_kind kinds[] = {
  limit_kind::max_concurrent,    limit_kind::requests_per_minute,
  limit_kind::tokens_per_minute, limit_kind::tokens_per_day,
  limit_kind::tokens_per_month,  limit_kind::budget_per_month,
};

std::string limit_arg(const std::optional<uint64_t>& x) {
  return x ? std::to_string(*x) : std::string{"-1"};
}

/// Signed difference as a decimal string (HINCRBY takes it exactly).
std::string delta(uint64_t to, uint64_t from) {
  return to >= from ? std::to_string(to - from)
                    : "-" + std::to_string(from - to);
}

int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
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

redis_store::reply_ptr redis_store::eval(int which,
                                         const std::vector<std::string>& keys,
                                         const std::vector<std::string>& args,
                                         std::string& why) {
  if (ctx_ == nullptr && !connect(why)) {
    available_ = false;
    return nullptr;
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::vector<const char*> ptrs;
    std::vector<size_t> lens;
    auto add = [&](const std::string& s) {
      ptrs.push_back(s.data());
      lens.push_back(s.size());
    };
    std::string evalsha = "EVALSHA";
    std::string nkeys = std::to_string(keys.size());
    add(evalsha);
    add(shas_[static_cast<size_t>(which)]);
    add(nkeys);
    for (const auto& k : keys)
      add(k);
    for (const auto& a : args)
      add(a);
    reply_ptr r{redisCommandArgv(ctx_, static_cast<int>(ptrs.size()),
                                 ptrs.data(), lens.data())};
    const auto* rr = static_cast<const redisReply*>(r.get());
    if (rr == nullptr) {
      why = std::string{"Redis did not answer: "} + ctx_->errstr;
      drop();
      // A connection Redis closed (it restarted) gets one new one at once;
      // a Redis that is away fails here within the timeout.
      if (attempt == 0 && connect(why))
        continue;
      available_ = false;
      return nullptr;
    }
    if (rr->type == REDIS_REPLY_ERROR) {
      // A restarted Redis lost the scripts: load them again, once.
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

std::vector<std::string> redis_store::keys_of(const std::string& scope,
                                              const ledger_periods& at) const {
  auto base = cfg_.key_prefix + ":" + scope;
  return {base + ":m:" + std::to_string(at.minute),
          base + ":d:" + std::to_string(at.day),
          base + ":mo:" + std::to_string(at.month), base + ":inflight"};
}

std::optional<ledger_answer>
redis_store::reserve(const std::vector<ledger_scope>& scopes,
                     usage_amount worst, const ledger_periods& now,
                     const std::string& hold_id, int64_t expires_unix_ms,
                     std::string& why) {
  std::vector<std::string> keys;
  std::vector<std::string> args
    = {std::to_string(unix_ms_now()),   std::to_string(worst.tokens),
       std::to_string(worst.cost),      hold_id,
       std::to_string(expires_unix_ms), "120000",
       std::to_string(2 * 86400),       std::to_string(40 * 86400)};
  std::vector<const ledger_scope*> used;
  for (const auto& s : scopes) {
    if (s.limits == nullptr)
      continue;
    used.push_back(&s);
    for (auto& k : keys_of(s.name, now))
      keys.push_back(std::move(k));
    const auto& l = *s.limits;
    for (const auto* x :
         {&l.max_concurrent, &l.requests_per_minute, &l.tokens_per_minute,
          &l.tokens_per_day, &l.tokens_per_month, &l.budget_per_month})
      args.push_back(limit_arg(*x));
  }
  auto r = eval(reserve_script, keys, args, why);
  if (!r)
    return std::nullopt;
  const auto* rr = static_cast<const redisReply*>(r.get());
  if (rr->type != REDIS_REPLY_ARRAY || rr->elements < 1) {
    why = "Redis answered the reservation with something else";
    available_ = false;
    return std::nullopt;
  }
  ledger_answer out;
  out.view.reset_ms = now.minute_left_ms;
  auto at = [&](size_t i) { return as_uint(rr->element[i]); };
  // Per-minute counters per scope (after the charge, when charged).
  std::vector<std::pair<uint64_t, uint64_t>> minute(used.size());
  if (at(0) == 0 && rr->elements >= 4) {
    auto i = static_cast<size_t>(at(1));
    auto k = static_cast<size_t>(at(2));
    if (i >= used.size() || k < 1 || k > 6) {
      why = "Redis answered the reservation with something else";
      available_ = false;
      return std::nullopt;
    }
    const auto& lim = *used[i]->limits;
    ledger_refusal ref;
    ref.kind = kinds[k - 1];
    ref.scope = used[i]->name;
    auto used_now = at(3);
    const std::optional<uint64_t>* limits[]
      = {&lim.max_concurrent, &lim.requests_per_minute, &lim.tokens_per_minute,
         &lim.tokens_per_day, &lim.tokens_per_month,    &lim.budget_per_month};
    ref.limit = **limits[k - 1];
    ref.wanted = k <= 2 ? 1 : k == 6 ? worst.cost : worst.tokens;
    ref.left = ref.limit > used_now ? ref.limit - used_now : 0;
    ref.never = ref.wanted > ref.limit;
    ref.retry_after_s
      = k == 1   ? 1
        : k <= 3 ? std::max<uint32_t>(1, (now.minute_left_ms + 999) / 1000)
        : k == 4 ? now.day_left_s
                 : now.month_left_s;
    out.refusal = std::move(ref);
    // Headers: the tightest minute limit is not known without the other
    // scopes' counts; they say the limit and nothing left of the refused.
    for (const auto* s : used) {
      if (auto l = s->limits->requests_per_minute)
        if (!out.view.limit_requests || *l < *out.view.limit_requests) {
          out.view.limit_requests = *l;
          out.view.remaining_requests
            = out.refusal->kind == limit_kind::requests_per_minute ? 0 : *l;
        }
      if (auto l = s->limits->tokens_per_minute)
        if (!out.view.limit_tokens || *l < *out.view.limit_tokens) {
          out.view.limit_tokens = *l;
          out.view.remaining_tokens
            = out.refusal->kind == limit_kind::tokens_per_minute ? 0 : *l;
        }
    }
    return out;
  }
  if (rr->elements != 1 + 2 * used.size()) {
    why = "Redis answered the reservation with something else";
    available_ = false;
    return std::nullopt;
  }
  ledger_hold hold;
  hold.at = now;
  hold.reserved = worst;
  for (size_t i = 0; i < used.size(); ++i) {
    hold.scopes.push_back(used[i]->name);
    auto requests = at(1 + 2 * i);
    auto tokens = at(2 + 2 * i);
    const auto& lim = *used[i]->limits;
    if (auto l = lim.requests_per_minute) {
      auto left = *l > requests ? *l - requests : 0;
      if (!out.view.remaining_requests || left < *out.view.remaining_requests) {
        out.view.limit_requests = *l;
        out.view.remaining_requests = left;
      }
    }
    if (auto l = lim.tokens_per_minute) {
      auto left = *l > tokens ? *l - tokens : 0;
      if (!out.view.remaining_tokens || left < *out.view.remaining_tokens) {
        out.view.limit_tokens = *l;
        out.view.remaining_tokens = left;
      }
    }
  }
  out.hold = std::move(hold);
  return out;
}

bool redis_store::settle(const ledger_hold& hold, const std::string& hold_id,
                         usage_amount actual, std::string& why) {
  std::vector<std::string> keys;
  for (const auto& scope : hold.scopes)
    for (auto& k : keys_of(scope, hold.at))
      keys.push_back(std::move(k));
  if (keys.empty())
    return true;
  return eval(settle_script, keys,
              {hold_id, delta(actual.tokens, hold.reserved.tokens),
               delta(actual.cost, hold.reserved.cost)},
              why)
         != nullptr;
}

std::optional<scope_counters> redis_store::read(const std::string& scope,
                                                const ledger_periods& now,
                                                std::string& why) {
  auto r = eval(read_script, keys_of(scope, now),
                {std::to_string(unix_ms_now())}, why);
  if (!r)
    return std::nullopt;
  const auto* rr = static_cast<const redisReply*>(r.get());
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
