#include "actors/redis_store.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
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
enum script_id : size_t { batch_script, read_script };

/// Lowercase hex SHA-1 of `text`: the name Redis gives a script.
std::string sha1_hex(const char* text) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  EVP_Digest(text, std::strlen(text), md.data(), &len, EVP_sha1(), nullptr);
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(digits[md[i] >> 4]);
    out.push_back(digits[md[i] & 15]);
  }
  return out;
}

const std::array<std::string, 2>& script_shas() {
  static const std::array<std::string, 2> shas{sha1_hex(batch_lua),
                                               sha1_hex(read_lua)};
  return shas;
}

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

void redis_link::reply_deleter::operator()(redisReply* r) const {
  freeReplyObject(r);
}

redis_store::redis_store(const redis_config& cfg,
                         const redis_link_factory& links)
    : prefix_(cfg.key_prefix) {
  script_shas(); // computed once, before any thread calls eval()
  if (links)
    link_ = links(cfg, greeting());
}

redis_store::~redis_store() {
  if (link_)
    link_->close();
}

std::vector<std::vector<std::string>> redis_store::greeting() {
  std::vector<std::vector<std::string>> out;
  for (const auto* script : scripts)
    out.push_back({"SCRIPT", "LOAD", script});
  return out;
}

void redis_store::eval(size_t script, std::vector<std::string> args,
                       redis_link::done_fn done) const {
  if (!link_) {
    done(nullptr, "the gateway has no connection to Redis");
    return;
  }
  auto argv = std::make_shared<std::vector<std::string>>();
  argv->reserve(args.size() + 2);
  argv->push_back("EVALSHA");
  argv->push_back(script_shas()[script]);
  std::move(args.begin(), args.end(), std::back_inserter(*argv));
  auto first = *argv;
  link_->call(first, [link = link_, argv, script, done = std::move(done)](
                       redis_link::reply_ptr r, const std::string& why) {
    // Each connection loads the scripts first, so this is a SCRIPT FLUSH
    // while connected (the call did not run): the script goes again with
    // its text, which loads it for the next calls. (Calls already sent
    // behind this one may then run before it.)
    if (r && r->type == REDIS_REPLY_ERROR
        && std::strncmp(r->str, "NOSCRIPT", 8) == 0) {
      (*argv)[0] = "EVAL";
      (*argv)[1] = scripts[script];
      link->call(*argv, done);
      return;
    }
    done(std::move(r), why);
  });
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

namespace {

/// EVALSHA's arguments after the SHA-1 for the settlements and
/// reservations of `b`.
std::vector<std::string> exchange_args(const std::string& prefix,
                                       const redis_batch& b,
                                       const ledger_periods& now) {
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
  for (const auto& x : b.settlements) {
    const auto& h = x.hold;
    ops.insert(ops.end(), {"s", x.hold_id, std::to_string(h.at.minute),
                           std::to_string(h.at.day), std::to_string(h.at.month),
                           amount(h.reserved.tokens), amount(x.actual.tokens),
                           amount(h.reserved.cost), amount(x.actual.cost),
                           std::to_string(h.scopes.size())});
    for (const auto& name : h.scopes)
      ops.push_back(number_of(name, nullptr));
  }
  for (const auto& r : b.reservations) {
    auto used = limited(r);
    ops.insert(ops.end(), {"r", r.hold_id, std::to_string(r.expires_unix_ms),
                           amount(r.worst.tokens), amount(r.worst.cost),
                           std::to_string(used.size())});
    for (const auto* s : used)
      ops.push_back(number_of(s->name, s->limits));
  }
  std::vector<std::string> args{std::to_string(2 * scopes.size())};
  args.reserve(1 + 2 * scopes.size() + 5 + 6 * scopes.size() + ops.size());
  for (const auto& [name, limits] : scopes) {
    auto base = prefix + ":" + name;
    args.push_back(base);
    args.push_back(base + ":inflight");
  }
  args.push_back(std::to_string(unix_ms(b.at)));
  args.push_back(std::to_string(now.minute));
  args.push_back(std::to_string(now.day));
  args.push_back(std::to_string(now.month));
  args.push_back(std::to_string(40 * 86400));
  for (const auto& [name, limits] : scopes)
    for (auto kind : kinds)
      args.push_back(limits != nullptr ? limit_arg(limit_of(*limits, kind))
                                       : std::string{"-1"});
  std::move(ops.begin(), ops.end(), std::back_inserter(args));
  return args;
}

/// Fills `b.outcome` from the batch script's reply (null: none, `why`).
void read_exchange(redis_batch& b, const redisReply* rr, const std::string& why,
                   const ledger_periods& now) {
  auto& out = b.outcome;
  out.answers.assign(b.reservations.size(), std::nullopt);
  if (rr == nullptr) {
    out.why = why;
  } else if (rr->type == REDIS_REPLY_ERROR) {
    out.why = std::string{"Redis refused the script: "} + rr->str;
    rr = nullptr;
  } else if (rr->type != REDIS_REPLY_ARRAY) {
    out.why = "Redis answered the batch with something else";
    rr = nullptr;
  }
  if (rr == nullptr) {
    out.settlements_failed = b.settlements.size();
    return;
  }
  size_t at = 0;
  for (size_t i = 0; i < b.reservations.size(); ++i) {
    out.answers[i] = answer_of(rr, at, b.reservations[i], now);
    if (!out.answers[i]) {
      out.why = "Redis answered a reservation with something else";
      break;
    }
  }
}

/// The counters the read script answered, or nullopt.
std::optional<scope_counters> read_scope(const redisReply* rr,
                                         const ledger_periods& now) {
  if (rr == nullptr || rr->type != REDIS_REPLY_ARRAY || rr->elements != 6)
    return std::nullopt;
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

} // namespace

void redis_store::run(redis_batch_ptr b,
                      std::function<void(redis_batch_ptr)> done) const {
  auto now = periods_at(b->at);
  bool exchange = !b->settlements.empty() || !b->reservations.empty();
  b->outcome.answers.assign(b->reservations.size(), std::nullopt);
  b->read.assign(b->reads.size(), std::nullopt);
  // Every answer comes on the link's thread, so the count needs no lock.
  struct progress {
    redis_batch_ptr batch;
    std::function<void(redis_batch_ptr)> done;
    size_t left = 0;
    void one_more() {
      if (--left == 0)
        done(std::move(batch));
    }
  };
  auto p = std::make_shared<progress>(
    progress{b, std::move(done), b->reads.size() + (exchange ? 1 : 0)});
  if (p->left == 0) {
    p->done(std::move(p->batch));
    return;
  }
  if (exchange)
    eval(batch_script, exchange_args(prefix_, *b, now),
         [p, now](redis_link::reply_ptr r, const std::string& why) {
           read_exchange(*p->batch, r.get(), why, now);
           p->one_more();
         });
  for (size_t i = 0; i < b->reads.size(); ++i) {
    auto base = prefix_ + ":" + b->reads[i];
    eval(read_script,
         {"2", base, base + ":inflight", std::to_string(unix_ms(b->at)),
          std::to_string(now.minute), std::to_string(now.day),
          std::to_string(now.month)},
         [p, now, i](redis_link::reply_ptr r, const std::string&) {
           p->batch->read[i] = read_scope(r.get(), now);
           p->one_more();
         });
  }
}

} // namespace pw::actors
