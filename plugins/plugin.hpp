#pragma once

// The plugin extension point. A plugin is an actor spawned by the
// SUPERVISOR from a `middleware.pre_request[]` / `post_response[]` entry;
// the SESSION's pre and post stages call them in config order (see
// actors/contracts.hpp for the messages). registry.cpp is the one list of
// built-in plugins.
//
// Most plugins are pure functions of a request: they implement
// `plugin_logic` and run inside the generic PLUGIN actor (`logic_plugin`).
// Plugins that wait on something (a file, a remote service) have actors of
// their own.

#include "actors/contracts.hpp"
#include "core/boundary.hpp"
#include "core/config/config.hpp"
#include "core/errc.hpp"
#include "core/request/exchange.hpp"
#include "core/request/stream_guard.hpp"

#include <caf/fwd.hpp>
#include <caf/result.hpp>

#include <array>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pw::plugins {

/// What a post plugin can do to a streamed answer.
struct stream_support {
  /// It may change or block an answer: streams must not avoid it, so the
  /// entry holds them (with a rule) or refuses them by default.
  bool changes_answers = false;
  /// Its policy on held text (`stream: hold`); null when it cannot hold.
  stream_rule_ptr rule;
};

/// A plugin's decision logic, with no state that changes: it may be called
/// from any thread.
class plugin_logic {
public:
  virtual ~plugin_logic();

  /// Pre stage: continue (with changes) or block.
  [[nodiscard]] virtual actors::plugin_verdict
  on_request(const actors::plugin_request& req) const;

  /// Post stage: record, change a non-streamed response, or block it.
  [[nodiscard]] virtual actors::plugin_verdict
  on_response(const actors::plugin_outcome& out) const;

  /// In the post stage: what it can do to a streamed answer. Default:
  /// nothing (it records).
  [[nodiscard]] virtual stream_support streams() const;
};

using plugin_logic_ptr = std::shared_ptr<const plugin_logic>;

/// What a plugin may need from the process to run.
struct plugin_env {
  /// Makes HTTP calls on an io thread (the `http` plugin).
  upstream_fn call;
};

/// Which stages a plugin may be configured in.
enum class stage_mask : uint8_t { pre = 1, post = 2, both = 3 };

/// One built-in plugin.
struct plugin_factory {
  std::string_view name;
  stage_mask stages = stage_mask::both;
  /// Checks the entry's `config`; one message per problem, each starting
  /// with its YAML path. Empty when the entry is valid.
  std::function<std::vector<std::string>(const plugin_entry&)> check;
  /// Spawns the PLUGIN actor for a checked entry.
  std::function<actors::plugin_actor(caf::actor_system&, const plugin_entry&,
                                     const plugin_env&)>
    spawn;
  /// What a checked post entry can do to a streamed answer; unset: it only
  /// records.
  std::function<stream_support(const plugin_entry&)> streams;
};

/// The built-in plugins, in registry order.
const std::vector<plugin_factory>& builtins();

/// The names of the built-in plugins, in registry order.
std::vector<std::string_view> builtin_names();

/// The factory named `name`, or nullptr.
const plugin_factory* find_builtin(std::string_view name);

/// Spawns the built-in PLUGIN of a checked entry, its outbound calls made
/// through `call`; a null handle when the name is unknown or it did not
/// start. This is the SUPERVISOR's `plugin_spawner` (actors/supervisor.hpp).
actors::plugin_actor spawn_builtin(caf::actor_system& sys,
                                   const plugin_entry& entry,
                                   const upstream_fn& call);

/// Checks every middleware entry of `cfg` against the registry: known name,
/// allowed stage, valid config, a `stream` mode the plugin supports. Then
/// settles how each post entry treats streams (`stream_in_force`, and for
/// `hold` its rule and window): as written, else `hold` for a plugin that
/// can change or block an answer and has a rule, `refuse` for one that
/// can but has none (`http`), `record` otherwise. Returns one message per
/// problem, each starting with the entry's YAML path.
std::vector<std::string> check_middleware(gateway_config& cfg);

/// Runs a PLUGIN's handler for request `request_id` inside the plugin
/// boundary (core/boundary.hpp): a throw becomes that request's
/// `plugin_failed` (which fails it closed unless `on_error: continue`),
/// logged and counted; the actor and every other request go on.
template <class Handler>
caf::result<actors::plugin_verdict> guarded(const std::string& request_id,
                                            Handler&& handler) {
  inject_plugin_crash();
  try {
    inject_fault(boundary::plugin);
    return handler();
  } catch (...) {
    report_failure(boundary::plugin, request_id, current_exception_text());
    return make_error(errc::plugin_failed,
                      "an internal error, logged under the request id");
  }
}

/// Spawns the generic PLUGIN actor around `logic`.
actors::plugin_actor spawn_logic_plugin(caf::actor_system& sys,
                                        plugin_logic_ptr logic);

/// Where a text sits in its document: the member names and array indices
/// from the root. The steps are kept as they are (names are string
/// literals of registry.cpp) and become a JSON pointer only for a plugin
/// that rewrites the text, so listing a request's texts allocates nothing
/// per step (a JSON pointer is a vector of strings, copied at each step).
class text_path {
public:
  text_path() = default;

  /// The path of member `name` of the root; `name` must outlive the path.
  explicit text_path(std::string_view name);

  /// This path, then member `name` (which must outlive the path).
  [[nodiscard]] text_path operator/(std::string_view name) const;

  /// This path, then element `index`.
  [[nodiscard]] text_path operator/(size_t index) const;

  /// The JSON pointer (RFC 6901) of the path.
  [[nodiscard]] nlohmann::ordered_json::json_pointer pointer() const;

  /// The pointer as text, e.g. "/messages/0/content".
  [[nodiscard]] std::string to_string() const;

private:
  /// A member name, or (when `name` is null) an array index.
  struct step {
    std::string_view name;
    size_t index = 0;
  };

  void push(step s);

  /// The first steps in place (texts sit at most 7 deep in every API but
  /// nested tool results); deeper ones in `more_`.
  static constexpr size_t inline_steps = 8;
  std::array<step, inline_steps> steps_{};
  size_t size_ = 0;
  std::vector<step> more_;
};

/// One text of a request, whatever its endpoint, with a pointer to the
/// string so a plugin can find and rewrite it.
struct text_ref {
  /// Where the string is (e.g. "/messages/0/content", "/input/2").
  text_path where;
  const std::string* text = nullptr;
};

/// Every text of a request body, in order: the one view plugins read, so a
/// new endpoint needs no plugin changes. Chat: each message's string
/// `content` and the `text` parts of array content. Completions: `prompt`
/// when a string, else each string of the list, then `suffix`. Embeddings:
/// `input` when a string, else each string of the list. Messages (and
/// count_tokens): `system` and each message's content, as a string or as
/// the `text` of text blocks and the content of tool_result blocks. (Token
/// ids are not text: such a request never reaches the pre plugins.)
std::vector<text_ref> request_texts(const nlohmann::ordered_json& body,
                                    api_endpoint endpoint);

/// The non-streamed answer of `out` as a document; null when there is
/// none (an error, a stream) or it is not JSON.
std::shared_ptr<const nlohmann::ordered_json>
response_document(const actors::plugin_outcome& out);

/// Every generated text of a response: each choice's `message.content`
/// (string or text parts), its `refusal` and the `arguments` of its tool
/// calls (and of a legacy `function_call`) for chat, each choice's `text` for
/// completions, the `text` of each text block for messages; none for embeddings
/// (vectors are not text) and count_tokens.
std::vector<text_ref> response_texts(const nlohmann::ordered_json& body,
                                     api_endpoint endpoint);

} // namespace pw::plugins
