#include "actors/ledger.hpp"

#include "core/observe/log.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

namespace pw::actors {

namespace {

using ledger_ptr = ledger_actor::stateful_pointer<ledger_state>;

/// How often holds past their expiry are looked for.
constexpr auto expiry_sweep = std::chrono::seconds{10};
using std::chrono::system_clock;

void index_keys(ledger_state& st) {
  st.keys.clear();
  for (const auto& k : st.config->server.api_keys)
    st.keys.try_emplace(k.name, &k);
}

/// The scopes a request is charged to under the current config.
std::vector<ledger_scope> scopes_of(const ledger_state& st,
                                    const usage_request& req) {
  std::vector<ledger_scope> out;
  auto key = st.keys.find(req.client);
  if (key != st.keys.end() && key->second->limits.any())
    out.push_back({"key:" + req.client, &key->second->limits});
  if (!req.team.empty())
    if (const auto* team = st.config->find_team(req.team);
        team != nullptr && team->limits.any())
      out.push_back({"team:" + req.team, &team->limits});
  return out;
}

/// a + b, or the largest value when that overflows.
uint64_t add_sat(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/// a * b, or the largest value when that overflows.
uint64_t mul_sat(uint64_t a, uint64_t b) {
  return b != 0 && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

/// What `tokens` cost on `model` (pico-USD); 0 without pricing. Saturates:
/// a request may ask for absurd max_tokens, and must then cost the most,
/// never wrap to little.
uint64_t cost_of(const model_config& model, const token_usage& u) {
  if (!model.pricing)
    return 0;
  const auto& p = *model.pricing;
  auto cached = std::min(u.cached, u.prompt);
  return add_sat(add_sat(mul_sat(u.prompt - cached, p.input),
                         mul_sat(cached, p.cached_input)),
                 mul_sat(u.completion, p.output));
}

/// The worst case of a request: its prompt estimate plus its most output,
/// priced at the dearest model of its route.
usage_amount worst_case(const gateway_config& cfg, const usage_request& req) {
  usage_amount out;
  auto most_output = req.max_output;
  out.tokens = add_sat(req.prompt_tokens, most_output);
  for (const auto& alias : req.models)
    if (const auto* m = cfg.find_model(alias)) {
      token_usage u{req.prompt_tokens, most_output, 0, true};
      out.cost = std::max(out.cost, cost_of(**m, u));
    }
  return out;
}

std::vector<header_field> headers_of(const rate_view& v) {
  std::vector<header_field> out;
  if (v.limit_requests) {
    out.push_back(
      {"x-ratelimit-limit-requests", std::to_string(*v.limit_requests)});
    out.push_back({"x-ratelimit-remaining-requests",
                   std::to_string(*v.remaining_requests)});
    out.push_back({"x-ratelimit-reset-requests", reset_text(v.reset_ms)});
  }
  if (v.limit_tokens) {
    out.push_back(
      {"x-ratelimit-limit-tokens", std::to_string(*v.limit_tokens)});
    out.push_back(
      {"x-ratelimit-remaining-tokens", std::to_string(*v.remaining_tokens)});
    out.push_back({"x-ratelimit-reset-tokens", reset_text(v.reset_ms)});
  }
  return out;
}

void flush(ledger_ptr self) {
  auto& st = self->state;
  st.flush_armed = false;
  if (!st.dirty || st.shared() || st.config->state.path.empty())
    return;
  st.dirty = false;
  std::string why;
  if (write_journal(st.config->state.path, st.book.journal(), why)) {
    if (st.journal_failing)
      log::write(log_level::info, "usage_journal_written",
                 {{"path", st.config->state.path}});
    st.journal_failing = false;
    return;
  }
  st.dirty = true; // try again at the next change
  if (!st.journal_failing)
    log::write(log_level::error, "usage_journal_failed",
               {{"path", st.config->state.path}, {"error", why}});
  st.journal_failing = true;
}

void mark_dirty(ledger_ptr self) {
  auto& st = self->state;
  st.dirty = true;
  if (st.flush_armed || st.shared() || st.config->state.path.empty())
    return;
  st.flush_armed = true;
  self->delayed_send(self,
                     std::chrono::duration_cast<std::chrono::milliseconds>(
                       st.config->state.journal_interval),
                     atom::flush_v);
}

void read_journal(ledger_state& st) {
  const auto& path = st.config->state.path;
  if (path.empty())
    return;
  std::ifstream in{path, std::ios::binary};
  if (!in) {
    log::write(log_level::info, "usage_journal_absent",
               {{"path", path},
                {"detail", "no journal yet: day and month totals start at 0"}});
    return;
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (st.book.restore(text.str(), periods_at(system_clock::now())))
    log::write(log_level::info, "usage_journal_read",
               {{"path", path}, {"scopes", st.book.scopes().size()}});
  else
    log::write(log_level::error, "usage_journal_unreadable",
               {{"path", path},
                {"detail", "not a usage journal: day and month totals start "
                           "at 0; the file is replaced at the next write"}});
}

/// Redis could not be reached: counted, logged once per outage.
void unreachable(ledger_ptr self, const std::string& why) {
  auto& st = self->state;
  ++st.unavailable;
  if (st.outage)
    return;
  st.outage = true;
  log::write(log_level::error, "usage_state_unavailable",
             {{"backend", "redis"},
              {"error", why},
              {"on_unavailable", st.config->state.allow_when_unavailable
                                   ? "allow: governed requests are served "
                                     "uncounted"
                                   : "deny: governed requests get 503"}});
}

void reachable(ledger_ptr self) {
  auto& st = self->state;
  if (!st.outage)
    return;
  st.outage = false;
  log::write(log_level::info, "usage_state_restored", {{"backend", "redis"}});
}

std::string hold_name(const ledger_state& st, uint64_t id) {
  return st.replica + ":" + std::to_string(id);
}

/// The answer to a request the usage state could not check: served
/// uncounted, or 503, as `state.on_unavailable` says.
usage_grant unchecked(ledger_ptr self, const std::string& why) {
  auto& st = self->state;
  unreachable(self, why);
  usage_grant out;
  if (st.config->state.allow_when_unavailable)
    return out; // served, uncounted: the operator chose so
  auto err = error_of(errc::usage_unavailable,
                      "The gateway cannot reach its usage state, so it "
                      "cannot check this key's limits; retry shortly.");
  err.retry_after = 1;
  out.refusal = std::move(err);
  return out;
}

/// The grant of a checked reservation: hold `id`, or the refusal.
usage_grant grant_of(ledger_ptr self, ledger_answer answer, uint64_t id) {
  auto& st = self->state;
  usage_grant out;
  out.headers = headers_of(answer.view);
  if (answer.refusal) {
    ++st.refused;
    const auto& r = *answer.refusal;
    api_error err;
    err.code = is_quota(r.kind) ? errc::quota_exceeded : errc::rate_limited;
    err.message = r.message();
    err.retry_after = r.retry_after_s;
    out.refusal = std::move(err);
    return out;
  }
  ++st.reserved;
  out.hold = id;
  // A SESSION that ends before the grant reaches it never settles: the
  // hold then ends after its request's deadline and a minute of grace,
  // charged whole (its in-flight count comes back).
  auto grace = std::chrono::duration_cast<caf::actor_clock::duration_type>(
    st.config->server.request_deadline + std::chrono::seconds{60});
  st.holds.emplace(out.hold,
                   ledger_state::open_hold{std::move(*answer.hold),
                                           self->clock().now() + grace});
  if (!st.expiry_armed) {
    st.expiry_armed = true;
    self->delayed_send(self, expiry_sweep, atom::expire_v);
  }
  mark_dirty(self);
  return out;
}

/// Answers the reservations of batch `id` with what Redis said.
void batch_done(ledger_ptr self, uint64_t id, const redis_outcome& got) {
  auto& st = self->state;
  auto it = st.sent.find(id);
  if (it == st.sent.end())
    return;
  auto waiting = std::move(it->second);
  st.sent.erase(it);
  bool whole = got.settlements_failed == 0;
  for (size_t i = 0; i < waiting.size(); ++i) {
    if (i >= got.answers.size() || !got.answers[i]) {
      whole = false;
      waiting[i].promise.deliver(unchecked(self, got.why));
      continue;
    }
    waiting[i].promise.deliver(
      grant_of(self, std::move(*got.answers[i]), waiting[i].hold));
  }
  // A settlement without an answer leaves its reservation charged (the
  // safe side); its in-flight entry expires with the hold.
  for (size_t i = 0; i < got.settlements_failed; ++i)
    unreachable(self, got.why);
  if (whole)
    reachable(self);
}

/// The LEDGER's own counters, without the scopes.
usage_report counters_of(const ledger_state& st) {
  usage_report out;
  out.backend = st.shared() ? "redis" : "embedded";
  out.available = !st.outage;
  out.unavailable = st.unavailable;
  out.reserved = st.reserved;
  out.settled = st.settled;
  out.refused = st.refused;
  out.settled_tokens = st.settled_tokens;
  out.settled_cost = st.settled_cost;
  return out;
}

/// The governed scopes under the current config.
std::vector<std::pair<std::string, const usage_limits*>>
listed(const ledger_state& st) {
  std::vector<std::pair<std::string, const usage_limits*>> out;
  for (const auto& [name, key] : st.keys)
    if (key->limits.any())
      out.emplace_back("key:" + name, &key->limits);
  for (const auto& t : st.config->teams)
    out.emplace_back("team:" + t.name, &t.limits);
  std::sort(out.begin(), out.end());
  return out;
}

/// What Redis answered for `scope` (null if it was not read, or got no
/// answer).
const scope_counters* read_of(const redis_batch* b, const std::string& scope) {
  if (b == nullptr)
    return nullptr;
  for (size_t i = 0; i < b->reads.size() && i < b->read.size(); ++i)
    if (b->reads[i] == scope)
      return b->read[i] ? &*b->read[i] : nullptr;
  return nullptr;
}

/// The counters and every governed scope: from the embedded ledger, or
/// from what Redis answered (`shared`).
usage_report report_of(const ledger_state& st, const redis_batch* shared) {
  auto out = counters_of(st);
  auto now = periods_at(system_clock::now());
  for (const auto& [scope, limits] : listed(st)) {
    scope_usage u;
    u.scope = scope;
    u.limits = *limits;
    const scope_counters* c = nullptr;
    if (!st.shared()) {
      c = st.book.find(scope);
    } else {
      c = read_of(shared, scope);
      if (c == nullptr)
        out.available = false;
    }
    if (c != nullptr) {
      auto copy = *c;
      copy.roll(now);
      u.minute_requests = copy.minute_requests;
      u.minute_tokens = copy.minute_tokens;
      u.day_tokens = copy.day_tokens;
      u.month_tokens = copy.month_tokens;
      u.month_cost = copy.month_cost;
      u.in_flight = copy.in_flight;
    }
    out.scopes.push_back(std::move(u));
  }
  return out;
}

void arm_batch(ledger_ptr self, bool reservation);

/// At most this many settlements and reservations go in one batch (one
/// script call).
constexpr size_t most_per_batch = 512;

/// At most this many batches are out at once. More let batches overlap
/// (the link pipelines them), but each is then smaller, and Redis runs
/// more scripts for the same requests.
constexpr size_t most_out = 1;

/// Hands `b` to the store; Redis's answer comes back as `exchanged`.
void send_to_redis(ledger_ptr self, redis_batch_ptr b) {
  self->state.store->run(std::move(b), [ledger = caf::actor_cast<ledger_actor>(
                                          self)](redis_batch_ptr done) {
    caf::anon_send(ledger, atom::exchanged_v, std::move(done));
  });
}

/// Sends the waiting settlements and reservations as one batch, unless
/// the most batches are out already; then they wait for the first answer.
void send_batch(ledger_ptr self) {
  auto& st = self->state;
  st.batch_armed = false;
  if (st.reservations.empty() && st.settlements.empty())
    return;
  if (st.out >= most_out)
    return;
  ++st.out;
  auto b = std::make_shared<redis_batch>();
  b->at = system_clock::now();
  auto n_settle = std::min(st.settlements.size(), most_per_batch);
  auto n_reserve = std::min(st.reservations.size(), most_per_batch - n_settle);
  auto take = [](auto& from, size_t n) {
    std::remove_reference_t<decltype(from)> out;
    out.reserve(n);
    std::move(from.begin(), from.begin() + static_cast<std::ptrdiff_t>(n),
              std::back_inserter(out));
    from.erase(from.begin(), from.begin() + static_cast<std::ptrdiff_t>(n));
    return out;
  };
  b->settlements = take(st.settlements, n_settle);
  b->reservations = take(st.reservations, n_reserve);
  auto waiting = take(st.waiting, n_reserve);
  b->configs = st.retained;
  b->configs.push_back(st.config);
  if (st.reservations.empty())
    st.retained.clear();
  b->id = ++st.batches;
  st.sent.emplace(b->id, std::move(waiting));
  send_to_redis(self, std::move(b));
  // What is left (more than one batch holds) goes now if another batch may
  // be out, or when this one is answered.
  if (!st.reservations.empty() || !st.settlements.empty())
    arm_batch(self, !st.reservations.empty());
}

/// Redis answered batch `b` (or it got no answer).
void exchanged(ledger_ptr self, const redis_batch_ptr& b) {
  auto& st = self->state;
  if (auto report = st.reports.find(b->id); report != st.reports.end()) {
    auto rp = std::move(report->second);
    st.reports.erase(report);
    rp.deliver(report_of(st, b.get()));
    return;
  }
  if (!st.sent.contains(b->id))
    return; // not a batch this LEDGER waits for
  --st.out;
  batch_done(self, b->id, b->outcome);
  arm_batch(self, !st.reservations.empty());
}

/// GET /v1/usage: with Redis, every scope is read first (beside the
/// batches out; the link pipelines them).
caf::result<usage_report> get_report(ledger_ptr self) {
  auto& st = self->state;
  if (!st.shared())
    return report_of(st, nullptr);
  auto b = std::make_shared<redis_batch>();
  b->at = system_clock::now();
  for (auto& [scope, limits] : listed(st))
    b->reads.push_back(scope);
  b->id = ++st.batches;
  auto rp = self->make_response_promise<usage_report>();
  st.reports.emplace(b->id, rp);
  send_to_redis(self, std::move(b));
  return rp;
}

/// Has the waiting batch sent once the LEDGER has read the messages
/// already in its mailbox (they join it). With the most batches out, the
/// next answer does this. Settlements alone go only when no batch is out:
/// nobody waits for a settlement, so while a batch is out they wait for
/// the next reservations or for its answer, and no round trip is spent on
/// them alone.
void arm_batch(ledger_ptr self, bool reservation) {
  auto& st = self->state;
  if (st.batch_armed || (st.reservations.empty() && st.settlements.empty()))
    return;
  if (st.out >= most_out || (!reservation && st.out > 0))
    return;
  st.batch_armed = true;
  self->send(self, atom::flush_v);
}

caf::result<usage_grant> reserve(ledger_ptr self, const usage_request& req) {
  auto& st = self->state;
  auto scopes = scopes_of(st, req);
  if (scopes.empty())
    return usage_grant{}; // not governed under this config
  auto worst = worst_case(*st.config, req);
  auto id = ++st.next_hold;
  if (!st.shared())
    return grant_of(
      self, st.book.reserve(scopes, worst, periods_at(system_clock::now())),
      id);
  // A hold whose settlement never comes leaves the in-flight count once
  // its request's deadline (and a minute of grace) has passed.
  auto expires
    = std::chrono::duration_cast<std::chrono::milliseconds>(
        system_clock::now().time_since_epoch()
        + st.config->server.request_deadline + std::chrono::seconds{60})
        .count();
  st.reservations.push_back(
    {std::move(scopes), worst, hold_name(st, id), expires});
  st.waiting.push_back({self->make_response_promise<usage_grant>(), id});
  auto promise = st.waiting.back().promise;
  arm_batch(self, true);
  return promise;
}

/// Ends the holds past their expiry, charged whole.
void expire_holds(ledger_ptr self) {
  auto& st = self->state;
  st.expiry_armed = false;
  auto now = self->clock().now();
  auto periods = periods_at(system_clock::now());
  for (auto it = st.holds.begin(); it != st.holds.end();) {
    if (it->second.expires > now) {
      ++it;
      continue;
    }
    // With Redis the hold's own expiry in the in-flight set does this.
    if (!st.shared())
      st.book.settle(it->second.hold, it->second.hold.reserved, periods);
    ++st.expired;
    it = st.holds.erase(it);
  }
  if (!st.holds.empty()) {
    st.expiry_armed = true;
    self->delayed_send(self, expiry_sweep, atom::expire_v);
  }
  mark_dirty(self);
}

void settle(ledger_ptr self, const usage_settlement& x) {
  auto& st = self->state;
  auto it = st.holds.find(x.hold);
  if (it == st.holds.end())
    return;
  usage_amount actual;
  if (!x.model.empty()) {
    if (x.usage.known) {
      actual.tokens = add_sat(x.usage.prompt, x.usage.completion);
      if (const auto* m = st.config->find_model(x.model))
        actual.cost = cost_of(**m, x.usage);
    } else if (x.charge_reservation) {
      actual = it->second.hold.reserved;
    }
  }
  if (st.shared()) {
    st.settlements.push_back(
      {std::move(it->second.hold), hold_name(st, x.hold), actual});
    arm_batch(self, false);
  } else {
    st.book.settle(it->second.hold, actual, periods_at(system_clock::now()));
  }
  st.holds.erase(it);
  ++st.settled;
  st.settled_tokens += actual.tokens;
  st.settled_cost += actual.cost;
  mark_dirty(self);
}

} // namespace

bool write_journal(const std::string& path, const std::string& text,
                   std::string& why) {
  auto tmp = path + ".tmp";
  {
    std::ofstream out{tmp, std::ios::binary | std::ios::trunc};
    if (!out) {
      why = "cannot open " + tmp + " for writing";
      return false;
    }
    out << text << '\n';
    out.flush();
    if (!out) {
      why = "cannot write " + tmp;
      return false;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    why = "cannot rename " + tmp + " to " + path;
    return false;
  }
  return true;
}

ledger_state::~ledger_state() {
  for (auto& w : waiting)
    w.promise.deliver(caf::make_error(caf::sec::request_receiver_down));
  for (auto& [id, batch] : sent)
    for (auto& w : batch)
      w.promise.deliver(caf::make_error(caf::sec::request_receiver_down));
  for (auto& [id, rp] : reports)
    rp.deliver(caf::make_error(caf::sec::request_receiver_down));
  if (!dirty || shared() || !config || config->state.path.empty())
    return;
  std::string why;
  if (!write_journal(config->state.path, book.journal(), why))
    log::write(log_level::error, "usage_journal_failed",
               {{"path", config->state.path}, {"error", why}});
}

ledger_actor::behavior_type
ledger(ledger_actor::stateful_pointer<ledger_state> self,
       gateway_config_ptr config, redis_link_factory links) {
  auto& st = self->state;
  st.config = std::move(config);
  index_keys(st);
  if (st.config->state.backend == state_backend::redis) {
    st.store = std::make_shared<redis_store>(st.config->state.redis, links);
    std::random_device rd;
    std::ostringstream id;
    id << std::hex << rd() << rd();
    st.replica = id.str();
  } else {
    read_journal(st);
  }
  return {
    [self](atom::reserve, const usage_request& req) {
      return reserve(self, req);
    },
    [self](atom::settle, const usage_settlement& x) { settle(self, x); },
    [self](atom::get) { return get_report(self); },
    [self](atom::status) { return counters_of(self->state); },
    [self](atom::update, gateway_config_ptr& next) {
      // Same counters, new limits and prices; holds settle as they were
      // made.
      auto& st = self->state;
      // Reservations still waiting point to the limits of the
      // configuration they were made under: it stays until they are sent.
      if (!st.reservations.empty())
        st.retained.push_back(st.config);
      st.config = std::move(next);
      index_keys(st);
    },
    // The journal (embedded) or the waiting batch (Redis).
    [self](atom::flush) {
      if (self->state.shared())
        send_batch(self);
      else
        flush(self);
    },
    [self](atom::expire) { expire_holds(self); },
    [self](atom::exchanged, redis_batch_ptr& b) { exchanged(self, b); },
  };
}

} // namespace pw::actors
