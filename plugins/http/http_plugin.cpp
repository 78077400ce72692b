#include "plugins/http/http_plugin.hpp"

#include "actors/upstream_reply.hpp"
#include "core/config/config_reader.hpp"
#include "core/errc.hpp"
#include "core/json/get.hpp"
#include "core/json/reader.hpp"
#include "core/request/service_post.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <unordered_map>

namespace pw::plugins {

namespace {

struct http_settings {
  service_target to;
};

/// The PLUGIN interface plus the io thread's answer to a call.
using http_plugin_actor = actors::plugin_actor::extend<
  caf::reacts_to<atom::upstream, uint64_t, upstream_result>>;

struct http_plugin_state {
  static inline const char* name = "http_plugin";
  http_settings settings;
  upstream_fn call;
  uint64_t next_id = 0;
  /// Calls in flight: the SESSION's promise and its request id.
  std::unordered_map<
    uint64_t,
    std::pair<caf::typed_response_promise<actors::plugin_verdict>, std::string>>
    pending;
};

} // namespace

std::vector<header_field> read_header_map(config_reader& cfg,
                                          const YAML::Node& map,
                                          const std::string& path) {
  std::vector<header_field> out;
  auto headers = map["headers"];
  auto headers_path = config_reader::join(path, "headers");
  if (!headers.IsDefined() || headers.IsNull())
    return out;
  if (!headers.IsMap()) {
    cfg.fail(headers_path, "expected a mapping of header names to values");
    return out;
  }
  for (const auto& kv : headers) {
    auto name = kv.first.Scalar();
    if (!kv.second.IsScalar()) {
      cfg.fail(config_reader::join(headers_path, name), "expected a string");
      continue;
    }
    auto value = kv.second.Scalar();
    if (name.find_first_of(":\r\n ") != std::string::npos
        || value.find_first_of("\r\n") != std::string::npos) {
      cfg.fail(config_reader::join(headers_path, name),
               "invalid header name or value");
      continue;
    }
    out.push_back({name, value});
  }
  return out;
}

namespace {

std::optional<http_settings> read_settings(const plugin_entry& entry,
                                           std::vector<std::string>& errors) {
  config_reader cfg{entry, errors};
  if (!cfg.check_keys(cfg.root(), cfg.path(),
                      {"url", "timeout_ms", "headers", "ca_file"}))
    return std::nullopt;
  http_settings s;
  s.to.timeout = std::chrono::milliseconds{1000};
  if (auto url = cfg.string(cfg.root(), "url", cfg.path(), true)) {
    std::string why;
    if (auto target = parse_base_url(*url, why)) {
      s.to.target = *target;
      s.to.path = target->base_path.empty() ? "/" : target->base_path;
    } else {
      // The model loader's wording points at api_key; here it is headers.
      if (auto pos = why.find("(use api_key)"); pos != std::string::npos)
        why.replace(pos, 13, "(put them in headers)");
      cfg.fail(config_reader::join(cfg.path(), "url"), why);
    }
  }
  if (auto ms = cfg.integer(cfg.root(), "timeout_ms", cfg.path(), 1, 600'000))
    s.to.timeout = std::chrono::milliseconds{*ms};
  s.to.ca_file = cfg.string(cfg.root(), "ca_file", cfg.path()).value_or("");
  s.to.headers = read_header_map(cfg, cfg.root(), cfg.path());
  if (!cfg.ok())
    return std::nullopt;
  return s;
}

/// The decision service's answer as a verdict, or an error.
caf::expected<actors::plugin_verdict> verdict_of(const upstream_result& r) {
  if (r.failure != upstream_failure::none)
    return make_error(errc::plugin_failed,
                      "decision service: " + std::string{to_string(r.failure)}
                        + (r.detail.empty() ? "" : ": " + r.detail));
  if (r.status < 200 || r.status >= 300)
    return make_error(errc::plugin_failed, "decision service answered HTTP "
                                             + std::to_string(r.status));
  auto parsed = json::parse(r.body, json::upstream_limits);
  if (!parsed)
    return make_error(errc::plugin_failed,
                      "decision service answered JSON that "
                        + parsed.error().what(json::upstream_limits));
  const auto& doc = *parsed;
  if (!doc.is_object())
    return make_error(errc::plugin_failed,
                      "decision service answered no JSON object");
  actors::plugin_verdict v;
  auto action = string_or(doc, "action");
  if (action == "block") {
    v.block = true;
    v.status = static_cast<unsigned>(uint_or(doc, "status", 403));
    if (v.status < 400 || v.status > 599)
      v.status = 403;
    v.message = string_or(doc, "message", "blocked by policy");
  } else if (action != "continue") {
    return make_error(errc::plugin_failed,
                      "decision service answered an unknown action");
  }
  if (auto tags = doc.find("tags"); tags != doc.end()) {
    if (!tags->is_array())
      return make_error(errc::plugin_failed,
                        "decision service answered tags that are not a list");
    for (const auto& t : *tags)
      if (t.is_string() && !t.get_ref<const std::string&>().empty())
        v.tags.push_back(t.get<std::string>());
  }
  return v;
}

http_plugin_actor::behavior_type
http_plugin(http_plugin_actor::stateful_pointer<http_plugin_state> self,
            http_settings settings, upstream_fn call) {
  self->state.settings = std::move(settings);
  self->state.call = std::move(call);
  return {
    [self](atom::pre, const actors::plugin_request& req)
      -> caf::result<actors::plugin_verdict> {
      auto& st = self->state;
      auto texts = nlohmann::ordered_json::array();
      if (req.body)
        for (const auto& t : request_texts(*req.body, req.endpoint))
          texts.push_back(*t.text);
      nlohmann::ordered_json ctx = {
        {"request_id", req.request_id},
        {"client", req.client},
        {"endpoint", to_string(req.endpoint)},
        {"tags", req.tags},
        {"metadata", req.metadata},
        {"texts", std::move(texts)},
        {"body", req.body ? *req.body : nlohmann::ordered_json{}},
      };
      auto out = service_post(st.settings.to, json::dump(ctx));
      if (std::none_of(
            out.headers.begin(), out.headers.end(),
            [](const header_field& h) { return iequals(h.name, "accept"); }))
        out.headers.push_back({"Accept", "application/json"});
      auto id = st.next_id++;
      auto rp = self->make_response_promise<actors::plugin_verdict>();
      st.pending.emplace(id, std::make_pair(rp, req.request_id));
      actors::call_and_reply(st.call, std::move(out),
                             caf::actor_cast<http_plugin_actor>(self), id);
      return rp;
    },
    [](atom::post, const actors::plugin_outcome&) {
      return actors::plugin_verdict{};
    },
    [self](atom::upstream, uint64_t id, upstream_result& r) {
      auto it = self->state.pending.find(id);
      if (it == self->state.pending.end())
        return;
      auto [rp, request_id] = std::move(it->second);
      self->state.pending.erase(it);
      // The decision service's answer is input: read it inside the plugin
      // boundary (core/boundary.hpp).
      caf::expected<actors::plugin_verdict> v = actors::plugin_verdict{};
      try {
        inject_fault(boundary::plugin);
        v = verdict_of(r);
      } catch (...) {
        report_failure(boundary::plugin, request_id, current_exception_text());
        v = make_error(errc::plugin_failed,
                       "an internal error, logged under the request id");
      }
      if (v)
        rp.deliver(std::move(*v));
      else
        rp.deliver(std::move(v.error()));
    },
  };
}

} // namespace

std::vector<std::string> check_http_plugin(const plugin_entry& entry) {
  std::vector<std::string> errors;
  (void)read_settings(entry, errors);
  return errors;
}

actors::plugin_actor spawn_http_plugin(caf::actor_system& sys,
                                       const plugin_entry& entry,
                                       const plugin_env& env) {
  std::vector<std::string> errors;
  auto settings = read_settings(entry, errors);
  if (!settings || !env.call)
    return {};
  return caf::actor_cast<actors::plugin_actor>(
    sys.spawn(http_plugin, std::move(*settings), env.call));
}

} // namespace pw::plugins
