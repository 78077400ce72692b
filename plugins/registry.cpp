// The one list of built-in plugins: name, the stages it may run in, how its
// config is checked and how its actor is spawned.

#include "core/json/get.hpp"
#include "core/json/reader.hpp"
#include "plugins/audit_log/audit_plugin.hpp"
#include "plugins/http/http_plugin.hpp"
#include "plugins/pii/pii_plugin.hpp"
#include "plugins/plugin.hpp"
#include "plugins/regex/regex_plugin.hpp"

#include <caf/all.hpp>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>

namespace pw::plugins {

namespace {

using logic_maker
  = plugin_logic_ptr (*)(const plugin_entry&, std::vector<std::string>&);

/// A factory for a plugin that is pure logic: checking builds it once.
plugin_factory logic_factory(std::string_view name, logic_maker make) {
  plugin_factory f;
  f.name = name;
  f.stages = stage_mask::both;
  f.check = [make](const plugin_entry& e) {
    std::vector<std::string> errors;
    (void)make(e, errors);
    return errors;
  };
  f.spawn
    = [make](caf::actor_system& sys, const plugin_entry& e, const plugin_env&) {
        std::vector<std::string> errors;
        auto logic = make(e, errors);
        return logic ? spawn_logic_plugin(sys, std::move(logic))
                     : actors::plugin_actor{};
      };
  f.streams = [make](const plugin_entry& e) {
    std::vector<std::string> errors;
    auto logic = make(e, errors);
    return logic ? logic->streams() : stream_support{};
  };
  return f;
}

std::string joined_builtins() {
  std::string out;
  for (auto name : builtin_names()) {
    if (!out.empty())
      out += ", ";
    out += name;
  }
  return out;
}

void check_list(const std::vector<plugin_entry>& entries, stage_mask stage,
                std::vector<std::string>& errors) {
  for (const auto& e : entries) {
    const auto* f = find_builtin(e.plugin);
    if (f == nullptr) {
      std::string why = "unknown plugin '" + e.plugin + "'";
      if (e.plugin.starts_with("plugins."))
        why += " (pw-router's Python plugin modules do not run here; use a "
               "built-in plugin: regex for markers and blocks, pii for "
               "personal data, http for an external detector)";
      errors.push_back(e.path + ".plugin: " + why
                       + "; built-in plugins: " + joined_builtins());
      continue;
    }
    if ((static_cast<uint8_t>(f->stages) & static_cast<uint8_t>(stage)) == 0) {
      errors.push_back(e.path + ".plugin: " + e.plugin + " runs only in "
                       + (stage == stage_mask::pre ? "middleware.post_response"
                                                   : "middleware.pre_request"));
      continue;
    }
    auto found = f->check(e);
    errors.insert(errors.end(), found.begin(), found.end());
  }
}

using plugin_ptr = actors::plugin_actor::pointer;

actors::plugin_actor::behavior_type logic_plugin(plugin_ptr,
                                                 plugin_logic_ptr logic) {
  return {
    [logic](atom::pre, const actors::plugin_request& req) {
      return guarded(req.request_id, [&] { return logic->on_request(req); });
    },
    [logic](atom::post, const actors::plugin_outcome& out) {
      return guarded(out.request.request_id,
                     [&] { return logic->on_response(out); });
    },
  };
}

/// Appends the string at `content` (a message's or choice's content) and
/// the `text` of its text parts.
void add_content(const nlohmann::ordered_json& content, const text_path& where,
                 std::vector<text_ref>& out) {
  if (content.is_string()) {
    out.push_back({where, content.get_ptr<const std::string*>()});
    return;
  }
  if (!content.is_array())
    return;
  for (size_t j = 0; j < content.size(); ++j) {
    const auto& part = content[j];
    if (!part.is_object())
      continue;
    auto type = part.find("type");
    auto text = part.find("text");
    if (type != part.end() && *type == "text" && text != part.end()
        && text->is_string())
      out.push_back({where / j / "text", text->get_ptr<const std::string*>()});
  }
}

/// Appends `body[key]` when a string, else each string of it when a list.
void add_strings(const nlohmann::ordered_json& body, std::string_view key,
                 std::vector<text_ref>& out) {
  auto field = body.find(std::string{key});
  if (field == body.end())
    return;
  auto where = text_path{key};
  if (field->is_string()) {
    out.push_back({where, field->get_ptr<const std::string*>()});
    return;
  }
  if (!field->is_array())
    return;
  for (size_t i = 0; i < field->size(); ++i)
    if ((*field)[i].is_string())
      out.push_back({where / i, (*field)[i].get_ptr<const std::string*>()});
}

/// Appends the text of Anthropic content at `where`: the string, or the
/// `text` of its text blocks and the content of its tool_result blocks.
void add_blocks(const nlohmann::ordered_json& content, const text_path& where,
                std::vector<text_ref>& out) {
  if (content.is_string()) {
    out.push_back({where, content.get_ptr<const std::string*>()});
    return;
  }
  if (!content.is_array())
    return;
  for (size_t j = 0; j < content.size(); ++j) {
    const auto& block = content[j];
    if (!block.is_object())
      continue;
    auto type = block.find("type");
    if (type == block.end() || !type->is_string())
      continue;
    if (*type == "text") {
      auto text = block.find("text");
      if (text != block.end() && text->is_string())
        out.push_back(
          {where / j / "text", text->get_ptr<const std::string*>()});
    } else if (*type == "tool_result") {
      if (auto inner = block.find("content"); inner != block.end())
        add_blocks(*inner, where / j / "content", out);
    }
  }
}

/// A Messages request's texts: `system`, then each message's content.
void add_messages_texts(const nlohmann::ordered_json& body,
                        std::vector<text_ref>& out) {
  if (auto system = body.find("system"); system != body.end())
    add_blocks(*system, text_path{"system"}, out);
  auto messages = body.find("messages");
  if (messages == body.end() || !messages->is_array())
    return;
  for (size_t i = 0; i < messages->size(); ++i) {
    const auto& m = (*messages)[i];
    if (!m.is_object())
      continue;
    if (auto content = m.find("content"); content != m.end())
      add_blocks(*content, text_path{"messages"} / i / "content", out);
  }
}

} // namespace

text_path::text_path(std::string_view name) {
  push({name, 0});
}

text_path text_path::operator/(std::string_view name) const {
  auto out = *this;
  out.push({name, 0});
  return out;
}

text_path text_path::operator/(size_t index) const {
  auto out = *this;
  out.push({{}, index});
  return out;
}

void text_path::push(step s) {
  if (size_ < inline_steps)
    steps_[size_++] = s;
  else
    more_.push_back(s);
}

nlohmann::ordered_json::json_pointer text_path::pointer() const {
  nlohmann::ordered_json::json_pointer out;
  auto add = [&out](const step& s) {
    if (s.name.data() == nullptr)
      out /= s.index;
    else
      out /= std::string{s.name};
  };
  for (size_t i = 0; i < size_; ++i)
    add(steps_[i]);
  for (const auto& s : more_)
    add(s);
  return out;
}

std::string text_path::to_string() const {
  return pointer().to_string();
}

plugin_logic::~plugin_logic() = default;

actors::plugin_verdict
plugin_logic::on_request(const actors::plugin_request&) const {
  return {};
}

actors::plugin_verdict
plugin_logic::on_response(const actors::plugin_outcome&) const {
  return {};
}

stream_support plugin_logic::streams() const {
  return {};
}

const std::vector<plugin_factory>& builtins() {
  static const std::vector<plugin_factory> list = [] {
    std::vector<plugin_factory> out;
    out.push_back(logic_factory("regex", make_regex_plugin));
    out.push_back(logic_factory("pii", make_pii_plugin));
    plugin_factory audit;
    audit.name = "audit_log";
    audit.stages = stage_mask::post;
    audit.check = check_audit_log;
    audit.spawn = spawn_audit_log;
    out.push_back(std::move(audit));
    plugin_factory http;
    http.name = "http";
    http.stages = stage_mask::pre;
    http.check = check_http_plugin;
    http.spawn = spawn_http_plugin;
    out.push_back(std::move(http));
    return out;
  }();
  return list;
}

std::vector<std::string_view> builtin_names() {
  std::vector<std::string_view> out;
  for (const auto& f : builtins())
    out.push_back(f.name);
  return out;
}

const plugin_factory* find_builtin(std::string_view name) {
  for (const auto& f : builtins())
    if (f.name == name)
      return &f;
  return nullptr;
}

actors::plugin_actor spawn_builtin(caf::actor_system& sys,
                                   const plugin_entry& entry,
                                   const upstream_fn& call) {
  const auto* factory = find_builtin(entry.plugin);
  if (factory == nullptr)
    return {};
  return factory->spawn(sys, entry, plugin_env{call});
}

namespace {

/// Settles how post entry `e` treats streams (see check_middleware).
void settle_stream(plugin_entry& e, std::vector<std::string>& errors) {
  const auto* f = find_builtin(e.plugin);
  auto can = f != nullptr && f->streams ? f->streams(e) : stream_support{};
  auto mode = e.stream.value_or(can.rule              ? stream_mode::hold
                                : can.changes_answers ? stream_mode::refuse
                                                      : stream_mode::record);
  if (mode == stream_mode::hold && !can.rule) {
    errors.push_back(
      e.path + ".stream: " + e.plugin
      + (can.changes_answers
           ? " cannot hold a stream (it decides on whole answers); use "
             "refuse or record"
           : " never changes or blocks an answer as configured, so there is "
             "nothing to hold; use record"));
    return;
  }
  if (e.stream_window != 0 && mode != stream_mode::hold) {
    errors.push_back(e.path + ".stream_window: applies only to stream: hold "
                     + "(this entry is stream: " + std::string{to_string(mode)}
                     + ")");
    return;
  }
  e.stream_in_force = mode;
  if (mode == stream_mode::hold) {
    e.rule = can.rule;
    e.stream_window_in_force
      = e.stream_window != 0 ? e.stream_window : can.rule->default_window();
  }
}

} // namespace

std::vector<std::string> check_middleware(gateway_config& cfg) {
  std::vector<std::string> errors;
  check_list(cfg.middleware.pre_request, stage_mask::pre, errors);
  check_list(cfg.middleware.post_response, stage_mask::post, errors);
  if (errors.empty())
    for (auto& e : cfg.middleware.post_response)
      settle_stream(e, errors);
  // One writer per audit chain: two entries on one file would interleave
  // two chains and make the log fail verification.
  std::vector<std::pair<std::string, std::string>> audit_paths;
  for (const auto& e : cfg.middleware.post_response) {
    if (e.plugin != "audit_log" || !e.config || !e.config->IsMap())
      continue;
    auto path = (*e.config)["path"];
    if (!path.IsScalar())
      continue;
    auto canonical = std::filesystem::weakly_canonical(path.Scalar()).string();
    for (const auto& [seen, where] : audit_paths)
      if (seen == canonical)
        errors.push_back(e.path + ".config.path: the same file as " + where
                         + " (one audit_log entry per file)");
    audit_paths.emplace_back(canonical, e.path);
  }
  return errors;
}

actors::plugin_actor spawn_logic_plugin(caf::actor_system& sys,
                                        plugin_logic_ptr logic) {
  return sys.spawn(logic_plugin, std::move(logic));
}

std::vector<text_ref> request_texts(const nlohmann::ordered_json& body,
                                    api_endpoint endpoint) {
  std::vector<text_ref> out;
  if (endpoint == api_endpoint::embeddings) {
    add_strings(body, "input", out);
    return out;
  }
  if (endpoint == api_endpoint::completions) {
    add_strings(body, "prompt", out);
    add_strings(body, "suffix", out);
    return out;
  }
  if (endpoint == api_endpoint::messages
      || endpoint == api_endpoint::count_tokens) {
    add_messages_texts(body, out);
    return out;
  }
  auto messages = body.find("messages");
  if (messages == body.end() || !messages->is_array())
    return out;
  for (size_t i = 0; i < messages->size(); ++i) {
    const auto& m = (*messages)[i];
    if (!m.is_object())
      continue;
    auto content = m.find("content");
    if (content != m.end())
      add_content(*content, text_path{"messages"} / i / "content", out);
  }
  return out;
}

std::shared_ptr<const nlohmann::ordered_json>
response_document(const actors::plugin_outcome& out) {
  if (!out.response_body)
    return nullptr;
  auto doc = json::parse(*out.response_body, json::upstream_limits);
  if (!doc)
    return nullptr;
  return std::make_shared<const nlohmann::ordered_json>(std::move(*doc));
}

std::vector<text_ref> response_texts(const nlohmann::ordered_json& body,
                                     api_endpoint endpoint) {
  std::vector<text_ref> out;
  if (endpoint == api_endpoint::messages) {
    // An Anthropic message: the text of its text blocks.
    if (auto content = body.find("content");
        content != body.end() && content->is_array())
      for (size_t j = 0; j < content->size(); ++j) {
        const auto& block = (*content)[j];
        auto text = block.is_object() ? block.find("text") : block.end();
        if (block.is_object() && string_or(block, "type") == "text"
            && text != block.end() && text->is_string())
          out.push_back({text_path{"content"} / j / "text",
                         text->get_ptr<const std::string*>()});
      }
    return out;
  }
  auto choices = body.find("choices");
  if (endpoint == api_endpoint::embeddings
      || endpoint == api_endpoint::count_tokens || choices == body.end()
      || !choices->is_array())
    return out;
  for (size_t i = 0; i < choices->size(); ++i) {
    const auto& c = (*choices)[i];
    if (!c.is_object())
      continue;
    if (endpoint == api_endpoint::completions) {
      if (auto text = c.find("text"); text != c.end() && text->is_string())
        out.push_back({text_path{"choices"} / i / "text",
                       text->get_ptr<const std::string*>()});
      continue;
    }
    auto message = c.find("message");
    if (message == c.end() || !message->is_object())
      continue;
    auto at = text_path{"choices"} / i / "message";
    auto content = message->find("content");
    if (content != message->end())
      add_content(*content, at / "content", out);
    if (auto refusal = message->find("refusal");
        refusal != message->end() && refusal->is_string())
      out.push_back({at / "refusal", refusal->get_ptr<const std::string*>()});
    // The arguments of tool calls are generated text too (a JSON text in
    // a string), as they are in a stream.
    auto arguments_of = [&](const nlohmann::ordered_json& fn,
                            const text_path& where) {
      if (!fn.is_object())
        return;
      auto a = fn.find("arguments");
      if (a != fn.end() && a->is_string())
        out.push_back({where / "arguments", a->get_ptr<const std::string*>()});
    };
    if (auto calls = message->find("tool_calls");
        calls != message->end() && calls->is_array())
      for (size_t k = 0; k < calls->size(); ++k)
        if ((*calls)[k].is_object())
          if (auto fn = (*calls)[k].find("function"); fn != (*calls)[k].end())
            arguments_of(*fn, at / "tool_calls" / k / "function");
    if (auto fn = message->find("function_call"); fn != message->end())
      arguments_of(*fn, at / "function_call");
  }
  return out;
}

} // namespace pw::plugins
