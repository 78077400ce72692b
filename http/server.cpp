// The downstream side: acceptors, connections and endpoints. Each io thread
// runs one io_context with its own acceptor and upstream pool; a connection
// is a coroutine shaped like Beast's examples: read (read_head, check_head,
// read_body), dispatch (route_of over the table `routes`, run_endpoint),
// write (write_answer, or end_stream after a relayed stream), repeated while
// keep-alive, with a deadline set before every operation.

#include "http/server.hpp"

#include "actors/gateway_api.hpp"
#include "actors/generation.hpp"
#include "core/boundary.hpp"
#include "core/json/reader.hpp"
#include "core/json_error.hpp"
#include "core/observe/log.hpp"
#include "core/observe/metrics.hpp"
#include "core/policy/auth.hpp"
#include "core/policy/glob.hpp"
#include "core/request/chat_request.hpp"
#include "core/request/completions_request.hpp"
#include "core/request/embeddings_request.hpp"
#include "core/request/messages_request.hpp"
#include "core/request/request_head.hpp"
#include "core/request/request_id.hpp"
#include "http/asio_bridge.hpp"
#include "http/client_stream.hpp"
#include "http/downstream_sink.hpp"
#include "http/io_scheduler.hpp"
#include "http/redis_link.hpp"
#include "http/tls_context.hpp"
#include "http/upstream_client.hpp"
#include "http/wire.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <future>
#include <optional>
#include <thread>
#include <unordered_map>

namespace pw::http {

namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr auto nothrow = net::as_tuple(net::use_awaitable);
using reuse_port
  = net::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
using request_t = bhttp::request<bhttp::string_body>;
using response_t = bhttp::response<bhttp::string_body>;

/// One io thread: its io_context, acceptor, upstream pool and connections.
/// Everything here is touched only by this thread, except `live`, which
/// the main thread reads while draining.
struct worker {
  // Members are destroyed in reverse order: the acceptor first (bound to the
  // io_context), then the io_context, whose destruction destroys suspended
  // connection coroutines, which still unregister from `open`, the counters
  // and the pool; so those are declared before it.
  std::optional<upstream_pool> pool;
  /// Upstream calls with no client to watch: the health checks and the
  /// `http` plugin's calls (server::health_checker).
  upstream_fn upstream;
  /// The generation this thread serves; replaced only on this thread.
  actors::generation_ptr gen;
  uint32_t connections = 0;
  uint32_t max_connections = 0;
  /// Requests read and not yet answered on this thread's connections.
  uint32_t in_flight = 0;
  /// Inbound TLS for new connections (null: plain HTTP); replaced on this
  /// thread when SIGHUP loads a new certificate.
  tls_context_ptr tls;
  /// The counters of the requests this thread answered; a scrape copies
  /// them on this thread.
  metrics_shard metrics;
  /// Every io thread, this one included (fixed before the threads start).
  const std::vector<std::unique_ptr<worker>>* peers = nullptr;
  /// Open client connections, readable from the main thread.
  std::atomic<uint32_t> live{0};
  /// Set when the server drains: no keep-alive, no new connections.
  bool draining = false;
  /// Open connections: their stream, and whether they wait for a request.
  struct connection_entry {
    client_stream* stream;
    bool idle;
  };
  std::unordered_map<uint64_t, connection_entry> open;
  uint64_t next_id = 0;
  std::thread thread;
  net::io_context ioc{1};
  tcp::acceptor acceptor{ioc};

  worker() { pool.emplace(ioc); }

  ~worker() {
    boost::system::error_code ec;
    acceptor.close(ec);
    pool->clear(); // idle sockets go while their io_context lives
  }

  /// Closes connections waiting for their next request (drain).
  void close_idle() {
    for (auto& [id, c] : open)
      if (c.idle)
        c.stream->lowest().close();
  }

  /// Closes every connection and cancels every upstream exchange.
  void close_all() {
    pool->cancel_all();
    for (auto& [id, c] : open)
      c.stream->lowest().close();
  }
};

/// What the access log line of one request needs.
struct request_log {
  std::string request_id;
  std::string remote;
  std::string method;
  std::string path;
  std::string client;
  clock_type::time_point start;
};

std::string remote_of(const tcp::socket& sock) {
  boost::system::error_code ec;
  auto ep = sock.remote_endpoint(ec);
  return ec ? std::string{"unknown"} : ep.address().to_string();
}

http_reply error_reply(api_error err) {
  http_reply r;
  r.error = std::move(err);
  return r;
}

http_reply error_reply(errc code, std::string message) {
  return error_reply(error_of(code, std::move(message)));
}

/// Anthropic's API: /v1/messages and the paths under it.
bool is_messages_path(std::string_view path) {
  auto base = path_of(api_endpoint::messages);
  return path.starts_with(base)
         && (path.size() == base.size() || path[base.size()] == '/');
}

/// Turns an http_reply into the wire response, with the headers every
/// response carries.
response_t make_response(http_reply& reply, const std::string& request_id,
                         std::string_view path, unsigned version, bool head) {
  response_t res;
  res.version(version);
  unsigned status = reply.status;
  bool is_v1 = path.starts_with("/v1/");
  if (reply.error) {
    // Anthropic's clients read Anthropic's envelope on its API's paths.
    auto dialect = is_messages_path(path) ? error_dialect::anthropic
                                          : error_dialect::openai;
    auto rendered = render_error(*reply.error, dialect);
    status = rendered.status;
    reply.body = std::move(rendered.body);
    if (reply.error->retry_after > 0)
      res.set(bhttp::field::retry_after,
              std::to_string(reply.error->retry_after));
  }
  reply.status = status;
  res.result(status);
  res.set(bhttp::field::content_type, reply.content_type.empty() || reply.error
                                        ? "application/json"
                                        : reply.content_type);
  res.set("X-Request-Id", request_id);
  res.set("X-Content-Type-Options", "nosniff");
  res.set("X-Frame-Options", "DENY");
  res.set("Referrer-Policy", "no-referrer");
  res.set("Permissions-Policy", "interest-cohort=()");
  if (is_v1)
    res.set(bhttp::field::cache_control, "no-store");
  for (const auto& h : reply.headers)
    res.set(h.name, h.value);
  bool event_stream = !reply.error && reply.content_type == "text/event-stream";
  if (event_stream) {
    // Sent like a relayed stream: chunked, no length, not cached.
    res.set(bhttp::field::cache_control, "no-cache");
    res.body() = std::move(reply.body);
    res.chunked(true);
  } else if (head) {
    res.content_length(reply.body.size());
  } else {
    res.body() = std::move(reply.body);
    res.prepare_payload();
  }
  return res;
}

void log_request(const request_log& info, const http_reply& reply) {
  if (!log::enabled(log_level::info))
    return;
  using std::chrono::duration_cast;
  using std::chrono::microseconds;
  log::line out{log_level::info, "request"};
  out.str("request_id", info.request_id)
    .str("remote", info.remote)
    .str("method", info.method)
    .str("path", info.path)
    .num("status", reply.status);
  if (info.client.empty())
    out.null("client");
  else
    out.str("client", info.client);
  out.millis("latency_ms",
             duration_cast<microseconds>(clock_type::now() - info.start));
  if (!reply.model.empty())
    out.str("model", reply.model);
  if (reply.upstream_status != 0)
    out.num("upstream_status", reply.upstream_status)
      .millis("upstream_ms", reply.upstream_time);
  if (reply.prompt_tokens + reply.completion_tokens > 0)
    out.num("prompt_tokens", reply.prompt_tokens)
      .num("completion_tokens", reply.completion_tokens);
  if (reply.error)
    out.str("error", to_string(reply.error->code));
  else if (!reply.log_error.empty())
    out.str("error", reply.log_error);
  out.write();
}

/// The model API a request called (chat or another one served through a
/// SESSION), or nothing.
std::optional<api_endpoint> model_call_of(const request_log& info) {
  if (info.method != "POST")
    return std::nullopt;
  for (auto e : all_endpoints)
    if (info.path == path_of(e))
      return e;
  return std::nullopt;
}

/// Counts a request to a model this thread answered, `total` after its
/// first byte.
void account(worker& w, const request_log& info, const http_reply& reply,
             std::chrono::microseconds total) {
  if (auto endpoint = model_call_of(info))
    w.metrics.record(info.client, reply, total, overhead_of(reply, total),
                     *endpoint);
}

std::chrono::microseconds since(clock_type::time_point start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now()
                                                               - start);
}

/// What `copy(peer)` returns on each io thread, in thread order, brought
/// back to this thread. Each copy is taken on its own thread and posted
/// back here, so nothing is ever touched by two threads. A thread that
/// does not answer within a second (it is stopping, or busy) is left as
/// nullopt.
template <class T, class Copy>
net::awaitable<std::vector<std::optional<T>>> gather(worker& w, Copy copy) {
  // The timer lives in this frame, on this thread; the shared state that
  // travels through other threads' queues only points at it weakly, so it
  // is never destroyed or touched elsewhere.
  auto done
    = std::make_shared<net::steady_timer>(w.ioc, std::chrono::seconds{1});
  struct gathering {
    std::vector<std::optional<T>> copies;
    size_t waiting = 0;
    std::weak_ptr<net::steady_timer> done;
  };
  auto g = std::make_shared<gathering>();
  g->copies.resize(w.peers->size());
  g->waiting = w.peers->size();
  g->done = done;
  auto* home = &w.ioc;
  for (size_t i = 0; i < w.peers->size(); ++i) {
    auto* p = (*w.peers)[i].get();
    net::post(p->ioc, [p, g, home, i, copy] {
      net::post(*home, [g, i, one = copy(*p)]() mutable {
        g->copies[i] = std::move(one);
        if (--g->waiting == 0)
          if (auto timer = g->done.lock())
            timer->cancel();
      });
    });
  }
  co_await done->async_wait(nothrow);
  // Copies that arrive later land in `g`, which the last one frees.
  co_return g->copies;
}

/// Every io thread's counters, merged. Nothing when a thread does not
/// answer within a second: a partial sum would look like a counter reset.
net::awaitable<std::optional<metrics_shard>> gather_metrics(worker& w) {
  auto copies = co_await gather<metrics_shard>(
    w, [](const worker& p) { return p.metrics; });
  metrics_shard merged;
  size_t missing = 0;
  for (const auto& c : copies) {
    if (c)
      merged.merge(*c);
    else
      ++missing;
  }
  if (missing > 0) {
    log::write(log_level::warning, "metrics_partial",
               {{"io_threads_missing", missing}});
    co_return std::nullopt;
  }
  co_return merged;
}

/// Authenticates; on failure fills `reply` and returns nullptr. On
/// Anthropic's API the key may come in `x-api-key` (what its clients
/// send), which wins over `Authorization`.
const api_key_config* authorize(const gateway_config& cfg, const request_t& req,
                                http_reply& reply) {
  auto target = std::string_view{req.target()};
  bool messages = is_messages_path(target.substr(0, target.find('?')));
  auto x_api_key = req["x-api-key"];
  auto key = !x_api_key.empty() && messages
               ? authenticate(cfg.server, "Bearer " + std::string{x_api_key})
               : authenticate(cfg.server, req[bhttp::field::authorization]);
  if (key)
    return *key;
  reply = http_reply{};
  reply.error = to_api_error(key.error());
  if (messages && x_api_key.empty() && req[bhttp::field::authorization].empty())
    reply.error->message
      = "Missing API key: send 'x-api-key: <key>' or 'Authorization: Bearer "
        "<key>'";
  reply.headers.push_back({"WWW-Authenticate", "Bearer"});
  return nullptr;
}

http_reply method_not_allowed(std::string_view path, std::string_view allow) {
  auto r = error_reply(errc::method_not_allowed,
                       "Method not allowed for " + std::string{path} + "; use "
                         + std::string{allow});
  r.headers.push_back({"Allow", std::string{allow}});
  return r;
}

http_reply list_models(const gateway_config& cfg, const api_key_config& key,
                       int64_t created) {
  auto data = nlohmann::ordered_json::array();
  for (const auto& m : cfg.models) {
    if (!glob_any(key.allowed_models, m->alias))
      continue;
    // `endpoints` is ours: what the model serves. OpenAI clients ignore it.
    auto endpoints = nlohmann::ordered_json::array();
    for (auto e : all_endpoints)
      if (configurable(e) && m->endpoints.has(e))
        endpoints.push_back(to_string(e));
    data.push_back({{"id", m->alias},
                    {"object", "model"},
                    {"created", created},
                    {"owned_by", m->provider},
                    {"endpoints", std::move(endpoints)}});
  }
  nlohmann::ordered_json body = {{"object", "list"}, {"data", std::move(data)}};
  http_reply r;
  r.body = json::dump(body);
  return r;
}

/// The key a request's header was authenticated with before its body was
/// read, and the configuration that key belongs to (both null if it was
/// not checked early).
struct early_key {
  const gateway_config* config = nullptr;
  const api_key_config* key = nullptr;
};

/// What an endpoint gets: its connection's io thread and stream, the
/// request, the facts of its log line, the key checked before the body
/// (if any), and the sink a chat request's client is watched through (set
/// by the endpoint).
struct endpoint_call {
  worker& w;
  client_stream& stream;
  /// The connection's read buffer (empty unless the client pipelined).
  beast::flat_buffer& buffer;
  request_t& req;
  request_log& info;
  int64_t started_unix;
  const early_key& checked;
  std::shared_ptr<downstream_sink>& sink;
};

/// Counts a request in flight on its io thread for as long as it lives.
struct in_flight_guard {
  uint32_t& count;
  explicit in_flight_guard(uint32_t& n) : count(n) { ++count; }
  ~in_flight_guard() { --count; }
  in_flight_guard(const in_flight_guard&) = delete;
  in_flight_guard& operator=(const in_flight_guard&) = delete;
};

/// Hands `ask` (which passes a reply_fn to the actor side) to the actors
/// and waits up to 10 s for their answer.
template <class Ask>
net::awaitable<http_reply> ask_actors(worker& w, Ask ask) {
  co_return co_await async_actor_call(std::move(ask), w.ioc.get_executor(),
                                      std::chrono::seconds{10},
                                      net::use_awaitable);
}

/// A request to a model that passed its checks, on its way to a SESSION.
/// On the heap: handle_call's coroutine frame, which a stream keeps for its
/// whole life, holds only a pointer to it.
struct chat_start {
  actors::generation_ptr gen;
  chat_context ctx;
  /// The bridge's timer: the same instant the SESSION counts to.
  std::shared_ptr<net::steady_timer> deadline;
  upstream_fn upstream;
  /// Set once the SESSION started.
  actors::cancel_fn cancel;
};

/// The Messages API's headers a provider gets as the client sent them.
constexpr std::array<std::string_view, 2> anthropic_forwarded{
  "anthropic-version", "anthropic-beta"};

/// The body checks of `endpoint`: what a SESSION needs from the body goes
/// into `ctx`. Nothing here builds a document of the body.
caf::error check_body(api_endpoint endpoint, std::string_view body,
                      chat_context& ctx) {
  switch (endpoint) {
  case api_endpoint::messages:
  case api_endpoint::count_tokens: {
    auto summary
      = check_messages_request(body, endpoint == api_endpoint::count_tokens);
    if (!summary)
      return std::move(summary.error());
    ctx.requested_model = std::move(summary->model);
    ctx.stream = summary->stream && endpoint == api_endpoint::messages;
    return {};
  }
  case api_endpoint::chat: {
    auto summary = check_chat_request(body);
    if (!summary)
      return std::move(summary.error());
    ctx.requested_model = std::move(summary->model);
    ctx.stream = summary->stream;
    ctx.include_usage = summary->include_usage;
    return {};
  }
  case api_endpoint::completions: {
    auto summary = check_completions_request(body);
    if (!summary)
      return std::move(summary.error());
    ctx.requested_model = std::move(summary->model);
    ctx.stream = summary->stream;
    ctx.include_usage = summary->include_usage;
    ctx.token_input = summary->token_input;
    return {};
  }
  case api_endpoint::embeddings: {
    auto summary = check_embeddings_request(body);
    if (!summary)
      return std::move(summary.error());
    ctx.requested_model = std::move(summary->model);
    ctx.token_input = summary->token_input;
    return {};
  }
  }
  return make_error(errc::internal, "unknown endpoint");
}

/// The checks of a request to a model, on the io thread: the key (unless
/// it was checked before the body under this configuration) and the body.
/// Returns the request ready for its SESSION, and sets the connection's
/// sink; or nothing, with the refusal in `refused`.
std::unique_ptr<chat_start>
check_call(endpoint_call& call, api_endpoint endpoint, http_reply& refused) {
  // The worker, the stream and the request outlive handle_call: the
  // connection awaits it directly.
  auto& w = call.w;
  auto& req = call.req;
  auto& info = call.info;
  auto start = std::make_unique<chat_start>();
  start->gen = w.gen;
  const auto& cfg = actors::config_of(start->gen);
  // Checked before the body already, under this configuration: once is
  // enough. (A reload in between checks again, under the new one.)
  const auto* key = call.checked.config == &cfg ? call.checked.key
                                                : authorize(cfg, req, refused);
  if (key == nullptr)
    return nullptr;
  info.client = key->name;
  auto& ctx = start->ctx;
  if (auto err = check_body(endpoint, req.body(), ctx)) {
    refused = error_reply(to_api_error(err));
    return nullptr;
  }
  ctx.endpoint = endpoint;
  if (endpoint == api_endpoint::messages
      || endpoint == api_endpoint::count_tokens)
    for (auto name : anthropic_forwarded)
      if (auto value = req[name]; !value.empty())
        ctx.forward_headers.push_back({std::string{name}, std::string{value}});
  if (cfg.tracing.enabled()) {
    ctx.traceparent = std::string{req["traceparent"]};
    ctx.tracestate = std::string{req["tracestate"]};
  }
  ctx.request_id = info.request_id;
  ctx.client = key->name;
  ctx.key_index = static_cast<size_t>(key - cfg.server.api_keys.data());
  ctx.received = info.start;
  ctx.deadline = info.start + to_ms(cfg.server.request_deadline);
  // A stream may stay open for minutes: the connection does not keep its
  // read buffer (8 KiB or more) for it. The next request makes a new one.
  if (ctx.stream && call.buffer.size() == 0)
    call.buffer.shrink_to_fit();
  // The body moves on as received; nothing here built a document of it.
  ctx.body = chat_payload{std::move(req.body())};
  // The same instant the SESSION counts to: from the request's first byte.
  start->deadline = std::make_shared<net::steady_timer>(w.ioc, ctx.deadline);
  // The sink watches the client for the whole request; a stream is relayed
  // through it by the upstream call itself, straight into this connection
  // (the sink takes the deadline away once the stream starts).
  call.sink = std::make_shared<downstream_sink>(call.stream, req.version(),
                                                to_ms(cfg.server.write_timeout),
                                                start->deadline);
  auto* pool = &*w.pool;
  start->upstream
    = make_upstream_fn(w.ioc, [pool, s = call.sink](upstream_request r) {
        return pool->call(std::move(r), s);
      });
  return start;
}

/// POST to a model's API (`Endpoint`, e.g. /v1/chat/completions):
/// authenticate and check on the io thread, then hand the request to a
/// SESSION and wait for its reply. (Every local of a coroutine stays in its
/// frame until it ends: the checks live in check_call().)
template <api_endpoint Endpoint>
net::awaitable<http_reply> handle_call(endpoint_call& call) {
  http_reply answer;
  auto start = check_call(call, Endpoint, answer);
  if (!start)
    co_return answer;
  auto* s = start.get();
  auto start_session = [s, &call](reply_fn fn) {
    s->cancel = actors::start_chat(s->gen, std::move(s->ctx), std::move(fn),
                                   std::move(s->upstream));
    // A client that leaves cuts the upstream exchange in flight (the sink
    // does) and tells the SESSION, which ends without fallback or retry.
    call.sink->watch(s->cancel);
  };
  answer
    = co_await async_actor_call(start_session, s->deadline, net::use_awaitable);
  // The bridge answered for the SESSION (504 at the deadline): it must not
  // go on working for a client that has its answer.
  if (answer.facts_unknown && s->cancel)
    s->cancel(cancel_reason::deadline);
  co_return answer;
}

/// GET /v1/models: the models the key may use.
net::awaitable<http_reply> handle_models(endpoint_call& call) {
  auto gen = call.w.gen;
  const auto& cfg = actors::config_of(gen);
  http_reply reply;
  const auto* key = authorize(cfg, call.req, reply);
  if (key == nullptr)
    co_return reply;
  call.info.client = key->name;
  co_return list_models(cfg, *key, call.started_unix);
}

/// GET /v1/usage: the key's limits, use and what is left (an admin key:
/// every key's and team's).
net::awaitable<http_reply> handle_usage(endpoint_call& call) {
  auto gen = call.w.gen;
  const auto& cfg = actors::config_of(gen);
  http_reply refused;
  const auto* key = authorize(cfg, call.req, refused);
  if (key == nullptr)
    co_return refused;
  call.info.client = key->name;
  actors::usage_view view{key->name, key->team, key->admin};
  co_return co_await ask_actors(call.w, [&](reply_fn fn) {
    actors::start_usage(gen, std::move(view), std::move(fn));
  });
}

/// Whose series a scrape of /metrics sees: an admin key (or a public
/// endpoint) every tenant's, any other key only its own client's. Fills
/// `refused` and returns nothing when the key fails.
std::optional<metrics_scope>
scope_of(const gateway_config& cfg, endpoint_call& call, http_reply& refused) {
  metrics_scope scope;
  scope.all = cfg.server.metrics_public;
  if (scope.all)
    return scope;
  const auto* key = authorize(cfg, call.req, refused);
  if (key == nullptr)
    return std::nullopt;
  call.info.client = key->name;
  scope.all = key->admin;
  scope.client = key->name;
  return scope;
}

/// The process-wide figures of a scrape around the io threads' merged
/// counters.
metrics_snapshot snapshot_of(metrics_shard merged, int64_t started_unix) {
  metrics_snapshot snap;
  snap.merged = std::move(merged);
  for (size_t i = 0; i < boundary_count; ++i)
    snap.internal_errors[i] = failures_at(static_cast<boundary>(i));
  snap.log_lines_dropped = log::dropped();
  snap.audit = audit_stats::read();
  snap.traces = trace::read_counters();
  snap.uptime_seconds
    = static_cast<double>(std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count()
                          - started_unix);
  return snap;
}

/// GET /metrics: the Prometheus text, or pw-router's JSON usage shape for
/// clients that ask for JSON (scrapers send text/plain or openmetrics).
net::awaitable<http_reply> handle_metrics(endpoint_call& call) {
  auto gen = call.w.gen;
  const auto& cfg = actors::config_of(gen);
  http_reply refused;
  auto scope = scope_of(cfg, call, refused);
  if (!scope)
    co_return refused;
  bool json
    = std::string_view{call.req[bhttp::field::accept]}.find("application/json")
      != std::string_view::npos;
  auto merged = co_await gather_metrics(call.w);
  if (!merged)
    co_return error_reply(errc::overloaded,
                          "An io thread did not hand over its counters in "
                          "time (the gateway is stopping); retry the "
                          "scrape");
  auto snap = snapshot_of(std::move(*merged), call.started_unix);
  co_return co_await ask_actors(call.w, [&](reply_fn fn) {
    actors::start_metrics(gen, std::move(snap), std::move(*scope), json,
                          std::move(fn));
  });
}

/// GET /health/live: this io thread answers (a probe for orchestrators:
/// no key, no body).
net::awaitable<http_reply> handle_live(endpoint_call&) {
  http_reply r;
  r.body = R"({"status":"alive"})";
  co_return r;
}

/// GET /health/ready: whether a model admits (asks the actors).
net::awaitable<http_reply> handle_ready(endpoint_call& call) {
  auto gen = call.w.gen;
  co_return co_await ask_actors(
    call.w, [&](reply_fn fn) { actors::start_ready(gen, std::move(fn)); });
}

/// GET /health: the status and each model's circuit for anyone; every
/// actor's state and the io threads' for an admin key (or anyone, with
/// `server.health_details: public`). A key that fails is refused (401).
net::awaitable<http_reply> handle_health(endpoint_call& call) {
  auto gen = call.w.gen;
  const auto& cfg = actors::config_of(gen);
  actors::health_view view;
  view.details = cfg.server.health_details_public;
  bool sent_key = !call.req[bhttp::field::authorization].empty();
  if (sent_key && !view.details) {
    http_reply refused;
    const auto* key = authorize(cfg, call.req, refused);
    if (key == nullptr)
      co_return refused;
    call.info.client = key->name;
    view.details = key->admin;
  }
  if (view.details)
    view.io_threads
      = co_await gather<actors::io_thread_health>(call.w, [](const worker& p) {
          return actors::io_thread_health{p.connections, p.in_flight};
        });
  co_return co_await ask_actors(call.w, [&](reply_fn fn) {
    actors::start_health(gen, std::move(view), std::move(fn));
  });
}

/// One endpoint: its path, the method it takes ("GET" takes HEAD too) and
/// its handler.
struct route_entry {
  std::string_view path;
  std::string_view allow;
  net::awaitable<http_reply> (*run)(endpoint_call&);
};

/// Every endpoint. A path not here is 404; a method it does not take, 405.
constexpr std::array routes{
  route_entry{path_of(api_endpoint::chat), "POST",
              handle_call<api_endpoint::chat>},
  route_entry{path_of(api_endpoint::completions), "POST",
              handle_call<api_endpoint::completions>},
  route_entry{path_of(api_endpoint::embeddings), "POST",
              handle_call<api_endpoint::embeddings>},
  route_entry{path_of(api_endpoint::messages), "POST",
              handle_call<api_endpoint::messages>},
  route_entry{path_of(api_endpoint::count_tokens), "POST",
              handle_call<api_endpoint::count_tokens>},
  route_entry{"/v1/models", "GET", handle_models},
  route_entry{"/v1/usage", "GET", handle_usage},
  route_entry{"/metrics", "GET", handle_metrics},
  route_entry{"/health/live", "GET", handle_live},
  route_entry{"/health/ready", "GET", handle_ready},
  route_entry{"/health", "GET", handle_health},
};

bool takes(const route_entry& r, bhttp::verb method) {
  if (r.allow == "POST")
    return method == bhttp::verb::post;
  return method == bhttp::verb::get || method == bhttp::verb::head;
}

/// The endpoint of a request, or nothing with `refused` set to its 404 or
/// 405.
const route_entry* route_of(const request_t& req, http_reply& refused) {
  auto target = std::string_view{req.target()};
  auto path = target.substr(0, target.find('?'));
  for (const auto& r : routes) {
    if (r.path != path)
      continue;
    if (takes(r, req.method()))
      return &r;
    refused = method_not_allowed(path, r.allow);
    return nullptr;
  }
  refused = error_reply(errc::not_found,
                        "Unknown path " + std::string{path.substr(0, 256)});
  return nullptr;
}

/// A lingering close, as nginx's lingering_time and lingering_timeout: how
/// long and how much of what a client still sends after an early answer is
/// read and dropped, and the longest pause between two of its reads.
constexpr auto linger_total = std::chrono::seconds{10};
constexpr auto linger_pause = std::chrono::seconds{2};
constexpr size_t linger_bytes = 64 * 1024 * 1024;

net::awaitable<void> linger(client_stream& stream);

/// Writes a final answer (an error: limits hit before the body was read)
/// and closes the connection.
net::awaitable<void> reject(client_stream& stream, http_reply reply,
                            request_log info) {
  auto res = make_response(reply, info.request_id, info.path, 11, false);
  res.keep_alive(false);
  stream.lowest().expires_after(std::chrono::seconds{5});
  auto wire = to_wire(res);
  auto [wec, wn] = co_await net::async_write(stream, wire.buffers(), nothrow);
  log_request(info, reply);
  if (wec)
    co_return;
  co_await linger(stream);
}

/// Ends a connection whose client may still be sending: closing with
/// unread input makes the kernel send a reset, which can destroy the
/// answer before the client reads it (a client that writes its whole body
/// before reading, as most do). So the rest of what it sends is read and
/// dropped, for a bounded time and amount, until it closes.
net::awaitable<void> linger(client_stream& stream) {
  co_await stream.close_write();
  auto until = clock_type::now() + linger_total;
  std::array<char, 16 * 1024> sink;
  for (size_t drained = 0; drained < linger_bytes;) {
    stream.lowest().expires_at(
      std::min(clock_type::now() + linger_pause, until));
    // Raw bytes, under TLS too: they are dropped unread.
    auto [rec, n]
      = co_await stream.lowest().async_read_some(net::buffer(sink), nothrow);
    if (rec)
      break;
    drained += n;
  }
}

net::awaitable<void> reject(client_stream& stream, errc code,
                            std::string message, request_log info) {
  co_await reject(stream, error_reply(code, std::move(message)),
                  std::move(info));
}

/// Endpoints that take a body from a key holder: their key is checked
/// before the body is read, so nobody without one makes the gateway read
/// megabytes.
bool keyed_body_endpoint(std::string_view path) {
  for (auto e : all_endpoints)
    if (path == path_of(e))
      return true;
  return false;
}

/// The client closed or reset the connection, in TLS or not.
bool client_left(const boost::system::error_code& ec) {
  return ec == net::error::eof || ec == net::error::connection_reset
         || ec == net::ssl::error::stream_truncated
         || ec == bhttp::error::end_of_stream;
}

/// A read that ended because the client left or went quiet past its
/// deadline (Beast has closed a timed-out stream already): there is
/// nobody to answer.
bool benign(const boost::system::error_code& ec) {
  return client_left(ec) || ec == beast::error::timeout;
}

/// "The request body exceeds 1048576 bytes", for `what` = "body exceeds".
std::string too_large(std::string_view what, size_t limit) {
  return "The request " + std::string{what} + " " + std::to_string(limit)
         + " bytes";
}

using parser_t = bhttp::request_parser<bhttp::string_body>;

/// One request while its connection serves it. It lives in the connection
/// (made once per connection), so the steps below keep only references in
/// their coroutine frames: Asio recycles small frames, and a frame of over
/// about 1 KiB would be a malloc and a free per step.
struct request_state {
  request_log info;
  std::optional<parser_t> parser;
  request_t req;
  /// The key checked before the body (refuse_before_body).
  early_key checked;
  /// The chat request's watch on its client, and the sink a stream
  /// relays into (set by handle_call).
  std::shared_ptr<downstream_sink> sink;
  http_reply reply;
};

/// One client connection: its stream, its read buffer and the limits of
/// the configuration it started under, registered with its io thread
/// (for drain and the connection count) for as long as it lives.
struct connection {
  worker& w;
  std::string remote;
  /// The connection keeps the certificate it was accepted under, also
  /// when SIGHUP brings a new one.
  tls_context_ptr tls;
  client_stream stream;
  uint64_t id;
  beast::flat_buffer buffer;
  actors::generation_ptr gen;
  const server_config& cfg;
  int64_t started_unix;
  /// The request being served.
  std::optional<request_state> current;
  /// This connection's entry in `w.open` (an unordered_map: the element
  /// stays where it is until erased).
  worker::connection_entry* entry = nullptr;

  connection(worker& wk, tcp::socket sock, int64_t started)
      : w(wk), remote(remote_of(sock)), tls(wk.tls),
        stream(std::move(sock), tls.get()), id(wk.next_id++), gen(wk.gen),
        cfg(actors::config_of(gen).server), started_unix(started) {
    entry = &w.open.emplace(id, worker::connection_entry{&stream, true})
               .first->second;
    ++w.connections;
    w.live.store(w.connections, std::memory_order_relaxed);
  }

  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  ~connection() {
    w.open.erase(id);
    --w.connections;
    w.live.store(w.connections, std::memory_order_relaxed);
  }

  void set_idle(bool idle) { entry->idle = idle; }
};

/// The TLS handshake, if any. Old protocol versions, plain HTTP on the TLS
/// port, untrusting clients: one line each, no answer. A connection closed
/// before it said anything (a TCP probe) is only worth a debug line.
net::awaitable<bool> handshake(connection& c) {
  auto ec = co_await c.stream.handshake(to_ms(c.cfg.header_timeout));
  if (!ec)
    co_return true;
  log::write(client_left(ec) ? log_level::debug : log_level::info,
             "tls_handshake_failed",
             {{"remote", c.remote}, {"error", ec.message()}});
  co_return false;
}

/// Waits for the first byte of the next request: idle keep-alive time is
/// bounded by its own timeout. False when the connection is to end
/// (closed by the client, idle too long, or draining).
net::awaitable<bool> await_request(connection& c, bool first) {
  if (c.buffer.size() > 0)
    co_return true; // pipelined: the next request is here already
  if (c.w.draining)
    co_return false;
  c.set_idle(true);
  c.stream.lowest().expires_after(first ? to_ms(c.cfg.header_timeout)
                                        : to_ms(c.cfg.keepalive_timeout));
  auto [ec, n]
    = co_await c.stream.async_read_some(c.buffer.prepare(8192), nothrow);
  c.set_idle(false);
  if (ec)
    co_return false;
  c.buffer.commit(n);
  co_return true;
}

/// Answers a header the parser refused, with the status its limit or
/// defect has; a client that left or went quiet gets nothing.
net::awaitable<void> reject_head(connection& c, const parser_t& parser,
                                 boost::system::error_code ec,
                                 request_log& info) {
  info.request_id = new_request_id();
  auto received = std::string_view{
    static_cast<const char*>(c.buffer.data().data()), c.buffer.size()};
  // Beast consumes the request line once it is parsed: a method seen
  // means the header fields are what grew too large.
  bool line_parsed = parser.get().method() != bhttp::verb::unknown
                     || !parser.get().method_string().empty();
  if (line_parsed && info.path.empty()) {
    // For the log line, and the error envelope the path's clients read.
    const auto& header = parser.get();
    info.method = std::string{header.method_string()};
    info.path = std::string{header.target().substr(
      0, std::min<size_t>(header.target().find('?'), 256))};
  }
  auto max_header = c.cfg.max_header_bytes;
  if (ec == bhttp::error::header_limit && !line_parsed
      && received.find("\r\n") == std::string_view::npos)
    // Not even the request line ended: the target is too long.
    co_await reject(c.stream, errc::uri_too_long,
                    too_large("line exceeds", max_header), info);
  else if (ec == bhttp::error::bad_version)
    co_await reject(c.stream, errc::http_version_not_supported,
                    "Only HTTP/1.0 and HTTP/1.1 are supported", info);
  else if (ec == bhttp::error::header_limit)
    co_await reject(c.stream, errc::headers_too_large,
                    too_large("headers exceed", max_header), info);
  else if (ec == bhttp::error::body_limit)
    // Beast checks Content-Length against the limit with the headers, so
    // the body is refused before a byte of it is read.
    co_await reject(c.stream, errc::payload_too_large,
                    too_large("body exceeds", c.cfg.max_body_bytes), info);
  else if (!benign(ec))
    co_await reject(c.stream, errc::invalid_request,
                    "Malformed HTTP request: " + ec.message(), info);
}

/// Reads the request's header, within a total deadline (a client that
/// trickles bytes cannot extend it), and fills the log line's facts. False
/// when the connection is to end (answered or not).
net::awaitable<bool> read_head(connection& c, parser_t& parser,
                               request_log& info) {
  parser.header_limit(c.cfg.max_header_bytes);
  parser.body_limit(c.cfg.max_body_bytes);
  c.stream.lowest().expires_after(to_ms(c.cfg.header_timeout));
  auto [ec, n]
    = co_await bhttp::async_read_header(c.stream, c.buffer, parser, nothrow);
  if (ec) {
    co_await reject_head(c, parser, ec, info);
    co_return false;
  }
  const auto& header = parser.get();
  info.method = std::string{header.method_string()};
  info.path = std::string{header.target().substr(
    0, std::min<size_t>(header.target().find('?'), 256))};
  auto client_id = header["X-Request-Id"];
  info.request_id
    = sane_request_id(client_id) ? std::string{client_id} : new_request_id();
  co_return true;
}

/// Why a request is refused before its body is read.
struct refusal {
  errc code;
  std::string message;
};

/// What the parser lets through but a smuggler could use, and the limits
/// with their own statuses: answered before any body is read, and the
/// connection closes.
std::optional<refusal> check_head(const connection& c, const parser_t& parser) {
  const auto& header = parser.get();
  request_head head;
  head.version = header.version();
  head.method_known = header.method() != bhttp::verb::unknown;
  head.target = header.target();
  for (const auto& f : header)
    head.fields.emplace_back(f.name_string(), f.value());
  if (auto err = check_request_head(head))
    return refusal{code_of(err), message_of(err)};
  // The body limit is checked against Content-Length before reading it.
  if (auto len = parser.content_length(); len && *len > c.cfg.max_body_bytes)
    return refusal{errc::payload_too_large,
                   too_large("body exceeds", c.cfg.max_body_bytes)};
  return std::nullopt;
}

/// A key that fails is answered before the body is read; the answer then
/// takes the common way out (log line, metrics), and the connection closes
/// lingering. A key that passes is kept in `checked` for the endpoint.
bool refuse_before_body(const connection& c, const parser_t& parser,
                        request_log& info, early_key& checked,
                        http_reply& refused) {
  const auto& header = parser.get();
  if (parser.is_done() || !keyed_body_endpoint(info.path)
      || header.method() != bhttp::verb::post)
    return false;
  const auto& cfg = actors::config_of(c.gen);
  if (const auto* key = authorize(cfg, header, refused)) {
    checked = {&cfg, key};
    return false;
  }
  info.client.clear();
  return true;
}

/// Reads the request's body (after a 100 Continue if the client waits for
/// one) within its own deadline. False when the connection is to end
/// (answered or not).
net::awaitable<bool> read_body(connection& c, parser_t& parser,
                               const request_log& info) {
  const auto& header = parser.get();
  // HTTP/1.0 has no interim answers (RFC 9110 10.1.1).
  if (header.version() >= 11
      && beast::iequals(header[bhttp::field::expect], "100-continue")) {
    static constexpr std::string_view go_on = "HTTP/1.1 100 Continue\r\n\r\n";
    c.stream.lowest().expires_after(to_ms(c.cfg.write_timeout));
    auto [ec, n] = co_await net::async_write(
      c.stream, net::buffer(go_on.data(), go_on.size()), nothrow);
    if (ec)
      co_return false;
  }
  c.stream.lowest().expires_after(to_ms(c.cfg.body_timeout));
  auto [ec, n]
    = co_await bhttp::async_read(c.stream, c.buffer, parser, nothrow);
  if (!ec)
    co_return true;
  if (ec == bhttp::error::body_limit)
    co_await reject(c.stream, errc::payload_too_large,
                    too_large("body exceeds", c.cfg.max_body_bytes), info);
  else if (!benign(ec) && ec != bhttp::error::partial_message)
    co_await reject(c.stream, errc::invalid_request,
                    "Malformed HTTP request body: " + ec.message(), info);
  co_return false;
}

/// Runs the request's endpoint. Handling one request is input handling: a
/// failure in it ends this request with a 500, never the connection's io
/// thread.
net::awaitable<void> run_endpoint(endpoint_call& call, http_reply& out) {
  bool failed = false;
  try {
    inject_fault(boundary::request);
    if (const auto* route = route_of(call.req, out))
      out = co_await route->run(call);
  } catch (...) {
    failed = true;
    report_failure(boundary::request, call.info.request_id,
                   current_exception_text());
  }
  if (failed)
    out = error_reply(errc::internal, std::string{internal_failure_message});
}

/// Closes the connection's write side. Always false: the connection ends.
net::awaitable<bool> close_connection(connection& c) {
  co_await c.stream.close_write();
  co_return false;
}

/// The answer went out as a stream; only the log line is left. A stream
/// that did not end cleanly (or a SESSION that died while it ran) leaves
/// the connection in no state for another request. True when it may
/// serve the next request.
net::awaitable<bool> end_stream(connection& c, request_state& r) {
  const auto& req = r.req;
  const auto& info = r.info;
  auto& reply = r.reply;
  if (!reply.streamed)
    reply.status = 200;
  log_request(info, reply);
  account(c.w, info, reply, since(info.start));
  if (!reply.stream_complete || !req.keep_alive() || c.w.draining
      || req.version() < 11)
    co_return co_await close_connection(c);
  co_return true;
}

/// Counts a whole answer, writes it, then logs it. True when the
/// connection may serve the next request; `unread` (an early answer left
/// a body unread) closes it lingering.
net::awaitable<bool> write_answer(connection& c, request_state& r,
                                  bool unread) {
  const auto& req = r.req;
  const auto& info = r.info;
  auto& reply = r.reply;
  auto total = since(info.start);
  if (model_call_of(info) && !reply.facts_unknown)
    reply.headers.push_back(
      {std::string{overhead_header},
       std::to_string(overhead_of(reply, total).count())});
  auto res = make_response(reply, info.request_id, info.path, req.version(),
                           req.method() == bhttp::verb::head);
  res.keep_alive(req.keep_alive() && !c.w.draining && !unread);
  // Counted before it is written: a client that scrapes /metrics as soon
  // as it has its answer (through another io thread) finds it counted.
  account(c.w, info, reply, total);
  c.stream.lowest().expires_after(to_ms(c.cfg.write_timeout));
  auto wire = to_wire(res);
  auto [ec, n] = co_await net::async_write(c.stream, wire.buffers(), nothrow);
  log_request(info, reply);
  if (ec)
    co_return false;
  if (unread) {
    co_await linger(c.stream);
    co_return false;
  }
  if (!res.keep_alive())
    co_return co_await close_connection(c);
  co_return true;
}

/// The client left before its answer: nothing is written and the
/// connection ends. The log line says 499 client_closed (nginx's
/// convention), whatever the SESSION made of it; the model and the tokens
/// of an answer that came in time are kept for the log and the counters.
bool drop_answer(connection& c, request_state& r) {
  auto& reply = r.reply;
  reply.error.reset();
  reply.status = 499;
  reply.log_error = "client_closed";
  log_request(r.info, reply);
  account(c.w, r.info, reply, since(r.info.start));
  return false;
}

/// Reads one request, answers it and writes the answer. True when the
/// connection may serve the next one.
net::awaitable<bool> serve_one(connection& c) {
  auto& r = c.current.emplace();
  r.info.remote = c.remote;
  r.info.start = clock_type::now();
  auto& parser = r.parser.emplace();
  if (!co_await read_head(c, parser, r.info))
    co_return false;
  in_flight_guard busy{c.w.in_flight};
  if (auto refused = check_head(c, parser)) {
    co_await reject(c.stream, refused->code, std::move(refused->message),
                    r.info);
    co_return false;
  }
  bool early = refuse_before_body(c, parser, r.info, r.checked, r.reply);
  if (!parser.is_done() && !early) {
    if (!co_await read_body(c, parser, r.info))
      co_return false;
  }
  // An early answer leaves a body unread: the connection cannot go on.
  bool unread = !parser.is_done();
  r.req = parser.release();
  r.parser.reset(); // what the parser holds is not needed for the answer
  // The bridge's deadline timer bounds the wait for the actors.
  c.stream.lowest().expires_never();
  endpoint_call call{c.w,    c.stream,       c.buffer,  r.req,
                     r.info, c.started_unix, r.checked, r.sink};
  if (!early)
    co_await run_endpoint(call, r.reply);
  bool started_stream = r.sink && r.sink->started();
  if (r.sink) {
    r.sink->detach(); // the connection owns its socket again
    // An answer that came before the stream's writes ended (the 504 at
    // the deadline, a SESSION that died): those writes end first.
    if (r.sink->writing())
      co_await r.sink->settle();
  }
  if (r.reply.streamed || started_stream)
    co_return co_await end_stream(c, r);
  if (r.sink && r.sink->client_gone())
    co_return drop_answer(c, r);
  co_return co_await write_answer(c, r, unread);
}

/// One client connection, for its whole life: read, dispatch, write,
/// repeated while keep-alive.
net::awaitable<void> serve(worker& w, tcp::socket sock, int64_t started_unix) {
  connection c{w, std::move(sock), started_unix};
  if (!co_await handshake(c))
    co_return;
  for (bool first = true;; first = false) {
    if (!co_await await_request(c, first))
      co_return;
    if (!co_await serve_one(c))
      co_return;
  }
}

/// Answers 503 and closes: the io thread is at its connection limit.
net::awaitable<void> refuse(tcp::socket sock) {
  client_stream stream{std::move(sock), nullptr};
  request_log info;
  info.request_id = new_request_id();
  info.remote = remote_of(stream.lowest().socket());
  info.start = clock_type::now();
  co_await reject(stream, errc::overloaded,
                  "The gateway is at its connection limit; retry later", info);
}

/// Keeps a timer of this io thread due within the next second. Asio
/// re-arms the kernel's timer (a timerfd_settime) whenever a new timer
/// becomes the thread's earliest, which the timeouts of a request (seconds
/// to minutes away) each were when few requests ran: five system calls a
/// request at c=1. Behind this one they never are; it costs the thread a
/// wake-up a second (docs/performance.md, "A timer always due first").
net::awaitable<void> keep_a_timer_due(worker& w) {
  net::steady_timer due{w.ioc};
  for (;;) {
    due.expires_after(std::chrono::seconds{1});
    auto [ec] = co_await due.async_wait(nothrow);
    if (ec)
      co_return;
  }
}

net::awaitable<void> accept_loop(worker& w, int64_t started_unix) {
  for (;;) {
    auto [ec, sock] = co_await w.acceptor.async_accept(nothrow);
    if (ec) {
      if (!w.acceptor.is_open() || ec == net::error::operation_aborted)
        co_return;
      // Out of descriptors or similar: back off briefly instead of spinning.
      net::steady_timer pause{w.ioc, std::chrono::milliseconds{50}};
      co_await pause.async_wait(nothrow);
      continue;
    }
    boost::system::error_code oec;
    sock.set_option(tcp::no_delay(true), oec);
    if (w.draining)
      continue; // the acceptor is closing; drop what raced in
    if (w.connections >= w.max_connections && w.tls)
      // Over the limit under TLS: a handshake to say 503 would cost the
      // CPU the limit is there to save. The connection is closed.
      sock.close(oec);
    else if (w.connections >= w.max_connections)
      net::co_spawn(w.ioc, refuse(std::move(sock)), net::detached);
    else
      net::co_spawn(w.ioc, serve(w, std::move(sock), started_unix),
                    net::detached);
  }
}

} // namespace

struct server::impl {
  gateway_config_ptr config;
  std::vector<std::unique_ptr<worker>> workers;
  tcp::endpoint bound;
  int64_t started_unix = 0;
};

server::server(std::unique_ptr<impl> p) : impl_(std::move(p)) {
  // nop
}

server::~server() {
  stop();
}

caf::expected<std::unique_ptr<server>>
server::bind(gateway_config_ptr config, const std::string& host, uint16_t port,
             std::shared_ptr<tls_context> tls) {
  auto p = std::make_unique<impl>();
  p->config = config;
  p->started_unix = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  boost::system::error_code ec;
  tcp::endpoint ep;
  auto address = net::ip::make_address(host, ec);
  if (!ec) {
    ep = tcp::endpoint{address, port};
  } else {
    net::io_context tmp;
    tcp::resolver resolver{tmp};
    auto results = resolver.resolve(host, std::to_string(port), ec);
    if (ec || results.empty())
      return make_error(errc::invalid_config,
                        "cannot resolve listen host '" + host + "'");
    ep = results.begin()->endpoint();
  }
  if (ep.port() != 0) {
    // SO_REUSEPORT would let this process share a port another process
    // listens on; a plain bind first makes "address in use" an error.
    net::io_context probe_ioc;
    tcp::acceptor probe{probe_ioc};
    probe.open(ep.protocol(), ec);
    if (!ec)
      probe.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec)
      probe.bind(ep, ec);
    if (ec)
      return make_error(errc::invalid_config, "cannot listen on " + host + ":"
                                                + std::to_string(ep.port())
                                                + ": " + ec.message());
  }
  auto threads = std::max(1u, config->server.io_threads);
  auto per_thread = std::max<uint32_t>(
    1, (config->server.max_connections + threads - 1) / threads);
  for (unsigned i = 0; i < threads; ++i) {
    auto w = std::make_unique<worker>();
    w->max_connections = per_thread;
    w->tls = tls;
    auto& acc = w->acceptor;
    auto fail = [&](const char* step) {
      return make_error(errc::invalid_config,
                        std::string{"cannot listen on "} + host + ":"
                          + std::to_string(ep.port()) + " (" + step
                          + "): " + ec.message());
    };
    acc.open(ep.protocol(), ec);
    if (ec)
      return fail("open");
    acc.set_option(net::socket_base::reuse_address(true), ec);
    // Every io thread binds its own acceptor to the same port; the kernel
    // spreads new connections across them.
    acc.set_option(reuse_port(true), ec);
    if (ec)
      return fail("SO_REUSEPORT");
    acc.bind(ep, ec);
    if (ec)
      return fail("bind");
    acc.listen(net::socket_base::max_listen_connections, ec);
    if (ec)
      return fail("listen");
    if (ep.port() == 0)
      ep = acc.local_endpoint(); // the others share the picked port
    auto* raw = w.get();
    w->upstream = make_upstream_fn(w->ioc, [raw](upstream_request r) {
      return raw->pool->call(std::move(r));
    });
    p->workers.push_back(std::move(w));
  }
  for (auto& w : p->workers)
    w->peers = &p->workers;
  p->bound = ep;
  return std::unique_ptr<server>{new server{std::move(p)}};
}

uint16_t server::port() const {
  return impl_->bound.port();
}

std::string server::address() const {
  return impl_->bound.address().to_string();
}

actors::publish_fn server::publisher() {
  std::vector<
    std::pair<net::io_context*, std::function<void(actors::generation_ptr)>>>
    targets;
  for (auto& w : impl_->workers) {
    auto* raw = w.get();
    targets.emplace_back(&raw->ioc, [raw](actors::generation_ptr gen) {
      raw->gen = std::move(gen);
    });
  }
  return make_publish_fn(std::move(targets));
}

actors::redis_link_factory server::redis_links() {
  auto* ioc = &impl_->workers.back()->ioc;
  return [ioc](const redis_config& cfg,
               std::vector<std::vector<std::string>> greeting) {
    return make_redis_link(*ioc, cfg, std::move(greeting));
  };
}

upstream_fn server::health_checker() {
  // Each call goes to the next io thread in turn, so no one thread's pool
  // carries every health check and plugin call. The turn is an atomic
  // counter: the only thing the calling threads share.
  std::vector<upstream_fn> fns;
  for (auto& w : impl_->workers)
    fns.push_back(w->upstream);
  auto next = std::make_shared<std::atomic<size_t>>(0);
  return
    [fns = std::move(fns), next](upstream_request req, upstream_done done) {
      auto i = next->fetch_add(1, std::memory_order_relaxed) % fns.size();
      fns[i](std::move(req), std::move(done));
    };
}

void server::set_tls(std::shared_ptr<tls_context> tls) {
  // Each io thread swaps its own pointer; the main thread waits for all of
  // them, so that the reload's log line comes after the switch.
  std::vector<std::future<void>> done;
  for (auto& w : impl_->workers) {
    auto* raw = w.get();
    auto applied = std::make_shared<std::promise<void>>();
    done.push_back(applied->get_future());
    net::post(raw->ioc, [raw, tls, applied] {
      raw->tls = tls;
      applied->set_value();
    });
  }
  for (auto& f : done)
    f.wait_for(std::chrono::seconds{5});
}

void server::start(actors::generation_ptr gen) {
  for (auto& w : impl_->workers) {
    w->gen = gen;
    net::co_spawn(w->ioc, accept_loop(*w, impl_->started_unix), net::detached);
    net::co_spawn(w->ioc, keep_a_timer_due(*w), net::detached);
    auto* raw = w.get();
    auto* sys = gen->system;
    w->thread = std::thread{[raw, sys] {
      // With the io-thread scheduler, this thread runs actors too.
      std::optional<io_thread_scope> scope;
      if (sys != nullptr)
        scope.emplace(*sys, raw->ioc);
      raw->ioc.run();
    }};
  }
}

void server::drain(std::chrono::milliseconds grace) {
  using namespace std::chrono_literals;
  auto live = [this] {
    uint32_t n = 0;
    for (auto& w : impl_->workers)
      n += w->live.load(std::memory_order_relaxed);
    return n;
  };
  // Each step runs on the worker's own thread: no shared mutable state.
  for (auto& w : impl_->workers) {
    auto* raw = w.get();
    net::post(raw->ioc, [raw] {
      raw->draining = true;
      boost::system::error_code ec;
      raw->acceptor.close(ec);
      raw->close_idle();
    });
  }
  // Shutdown is not a request path: polling a counter here is fine.
  auto wait_until = [&](clock_type::time_point deadline) {
    while (live() > 0 && clock_type::now() < deadline)
      std::this_thread::sleep_for(10ms);
  };
  wait_until(clock_type::now() + grace);
  if (live() > 0)
    log::write(log_level::warning, "drain_timeout",
               {{"open_connections", live()}});
  // Whatever is left is cut: remaining connections close, and upstream
  // calls still running (also those whose client already got its answer,
  // e.g. a 504) end at once with `cancelled`, so no SESSION outlives this.
  for (auto& w : impl_->workers) {
    auto* raw = w.get();
    net::post(raw->ioc, [raw] { raw->close_all(); });
  }
  wait_until(clock_type::now() + 2s);
}

void server::stop() {
  if (!impl_)
    return;
  for (auto& w : impl_->workers)
    w->ioc.stop();
  for (auto& w : impl_->workers) {
    if (w->thread.joinable())
      w->thread.join();
    // The thread is gone: closing from here races with nothing.
    boost::system::error_code ec;
    w->acceptor.close(ec);
    w->pool->clear();
  }
}

} // namespace pw::http
