#include "core/request/stream_guard.hpp"

#include "core/json/reader.hpp"
#include "core/json/text.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <tuple>

namespace pw {

namespace {

using element = simdjson::dom::element;

bool continuation(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

/// `value` (an object) as an object: a value, so a range-for over it
/// holds no temporary.
simdjson::dom::object object_of(element value) {
  simdjson::dom::object out;
  if (value.get_object().get(out) != simdjson::SUCCESS)
    return {};
  return out;
}

simdjson::dom::array array_of(element value) {
  simdjson::dom::array out;
  if (value.get_array().get(out) != simdjson::SUCCESS)
    return {};
  return out;
}

/// True when `value` has `key` and it is not null.
bool has_value(element value, std::string_view key) {
  auto m = json::member(value, key);
  return m && !m->is_null();
}

/// The most texts one stream may hold at once (each costs its window):
/// more than any answer has, and a bound whatever an upstream sends.
constexpr size_t max_held_texts = max_stream_tool_calls + 64;

/// What all held texts of one stream may keep together, about.
constexpr size_t max_held_bytes = 64 * 1024 * 1024;

/// Adds `n` to the count of `kind` in `list`.
void add_count(std::vector<std::pair<std::string, uint64_t>>& list,
               const std::string& kind, uint64_t n) {
  for (auto& [name, count] : list)
    if (name == kind) {
      count += n;
      return;
    }
  list.emplace_back(kind, n);
}

} // namespace

stream_rule::~stream_rule() = default;

// -- held_text ----------------------------------------------------------------

held_text::held_text(held_stages_ptr stages)
    : spec_(std::move(stages)), stages_(spec_->size()),
      reports_(spec_->size()) {
  for (size_t i = 0; i < spec_->size(); ++i)
    reports_[i].stage = (*spec_)[i].post_index;
}

size_t held_text::held() const {
  size_t n = 0;
  for (const auto& s : stages_)
    n += s.pending.size();
  return n;
}

bool held_text::step(size_t i, bool end, std::string& out) {
  auto& st = stages_[i];
  const auto& spec = (*spec_)[i];
  auto& p = st.pending;
  // Checked once a window and an eighth are held: each check then sends at
  // least an eighth of a window, so a stream of tiny events is not read
  // again for every event.
  if (p.empty()
      || (!end
          && (p.size() < spec.window + spec.window / 8 + 1
              || p.size() == st.checked)))
    return true;
  scan_.assign(st.context);
  scan_.append(p);
  found_.clear();
  const size_t base = st.context.size();
  spec.rule->find(scan_, base, found_);
  // Findings in the coordinates of `p`: one that began in the released
  // text (a finding longer than the window) is clipped to what is held.
  size_t kept = 0;
  for (auto& f : found_) {
    auto e = f.offset + f.length;
    if (f.offset < base && e <= base)
      continue;
    f.offset = f.offset < base ? 0 : f.offset - base;
    f.length = e - base - f.offset;
    if (&found_[kept] != &f)
      found_[kept] = std::move(f);
    ++kept;
  }
  found_.resize(kept);
  size_t cut = end ? p.size() : p.size() - spec.window;
  // A finding across the cut stays held whole, until its end is a window
  // behind the newest text (or the text ends). A block match that keeps
  // running on (`BEGIN.*`) acts once four windows are held, rather than
  // holding without bound.
  if (!end)
    for (const auto& f : found_)
      if (f.offset < cut && f.offset + f.length > cut) {
        if (!f.block || p.size() <= 4 * spec.window)
          cut = f.offset;
        break;
      }
  // Not inside a UTF-8 character (of at most four bytes).
  for (int n = 0; n < 3 && cut > 0 && cut < p.size() && continuation(p[cut]);
       ++n)
    --cut;
  size_t at = 0;
  for (const auto& f : found_) {
    if (f.offset > cut || (f.offset == cut && !end) || f.offset < at)
      continue;
    if (f.block) {
      out.append(p, at, f.offset - at);
      block_message_ = f.message;
      blocked_stage_ = i;
      reports_[i].cut = true;
      reports_[i].message = f.message;
      p.clear();
      return false;
    }
    out.append(p, at, f.offset - at);
    out += f.replacement;
    add_count(reports_[i].redacted, f.kind, 1);
    at = f.offset + f.length;
  }
  if (at < cut)
    out.append(p, at, cut - at);
  // The released text, unchanged, is the context of the next check.
  st.context.append(p, 0, std::max(at, cut));
  if (st.context.size() > 2 * spec.window) {
    auto drop = st.context.size() - 2 * spec.window;
    for (int n = 0;
         n < 3 && drop < st.context.size() && continuation(st.context[drop]);
         ++n)
      ++drop;
    st.context.erase(0, drop);
  }
  p.erase(0, std::max(at, cut));
  st.checked = p.size();
  return true;
}

bool held_text::release(std::string& out, bool end) {
  bool blocked = false;
  for (size_t i = 0; i < stages_.size(); ++i) {
    auto& next = i + 1 < stages_.size() ? stages_[i + 1].pending : out;
    // After a block, the text before it is complete: the later stages
    // check it to the end.
    if (!step(i, end || blocked, next)) {
      // A later stage's block lies before the earlier one's in the text:
      // it is where the stream ends.
      blocked = true;
    }
  }
  return !blocked;
}

// -- the guarding decoder
// ------------------------------------------------------

namespace {

/// What kind of text a held channel carries.
enum class text_kind : uint8_t {
  content,       // chat: delta.content
  refusal,       // chat: delta.refusal
  tool_args,     // chat: delta.tool_calls[k].function.arguments
  function_args, // chat: delta.function_call.arguments
  text,          // completions: choices[i].text; messages: text_delta
  json,          // messages: input_json_delta.partial_json
};

struct channel {
  uint64_t choice = 0;
  text_kind kind = text_kind::content;
  uint64_t index = 0;
  held_text text;
};

class guarded_decoder final : public stream_decoder {
public:
  guarded_decoder(std::unique_ptr<stream_decoder> inner, stream_format format,
                  stream_options options, held_stages_ptr stages)
      : stream_decoder(std::move(options)), inner_(std::move(inner)),
        format_(format), stages_(std::move(stages)) {
    id_ = (format_ == stream_format::completions ? "cmpl-" : "chatcmpl-")
          + options_.request_id;
    // A held text keeps up to about six windows per stage (pending, context,
    // the check's copy); all of a stream's together stay under 64 MiB.
    size_t windows = 0;
    for (const auto& st : *stages_)
      windows += st.window;
    max_channels_ = std::clamp<size_t>(max_held_bytes / (6 * windows + 1), 16,
                                       max_held_texts);
  }

  stream_state finish(std::string& out) override {
    if (state_ != stream_state::open)
      return state_;
    tmp_.clear();
    auto inner = inner_->finish(tmp_);
    process(out);
    state_ = conclude(inner, out);
    return state_;
  }

  stream_state abort(std::string& out, std::string why, std::string_view type,
                     std::string_view code) override {
    if (state_ != stream_state::open)
      return state_;
    tmp_.clear();
    auto inner = inner_->abort(tmp_, std::move(why), type, code);
    process(out);
    state_ = conclude(inner, out);
    return state_;
  }

  [[nodiscard]] std::string error_event(std::string_view message,
                                        std::string_view type,
                                        std::string_view code) const override {
    return inner_->error_event(message, type, code);
  }

protected:
  stream_state on_bytes(std::string_view bytes, std::string& out) override {
    tmp_.clear();
    auto inner = inner_->feed(bytes, tmp_);
    process(out);
    return conclude(inner, out);
  }

private:
  // -- events in
  // ---------------------------------------------------------------

  /// Reads the inner decoder's events (each "[event: NAME\n]data: X\n\n").
  void process(std::string& out) {
    std::string_view events = tmp_;
    size_t pos = 0;
    while (pos < events.size() && !stopped()) {
      auto end = events.find("\n\n", pos);
      end = end == std::string_view::npos ? events.size() : end + 2;
      on_event(events.substr(pos, end - pos), out);
      pos = end;
    }
  }

  [[nodiscard]] bool stopped() const { return blocked_ || overflow_; }

  void on_event(std::string_view ev, std::string& out) {
    std::string_view name;
    std::string_view data;
    size_t pos = 0;
    while (pos < ev.size()) {
      auto nl = ev.find('\n', pos);
      auto line = ev.substr(pos, nl == std::string_view::npos ? ev.size() - pos
                                                              : nl - pos);
      if (line.starts_with("event: "))
        name = line.substr(7);
      else if (line.starts_with("data: "))
        data = line.substr(6);
      if (nl == std::string_view::npos)
        break;
      pos = nl + 1;
    }
    if (data == "[DONE]") {
      if (flush_all(out))
        out += ev;
      return;
    }
    auto doc = json::read(data, json::upstream_limits);
    if (!doc || !doc->root().is_object()) {
      // Not an event the adapters make: it carries no text to hold.
      if (flush_all(out))
        out += ev;
      return;
    }
    auto root = doc->root();
    if (format_ == stream_format::messages) {
      on_messages_event(name, root, ev, out);
      return;
    }
    // An error event, as the adapters tell one (an object or a string);
    // any other `error` is a field of a chunk, whose texts are held.
    if (auto e = json::member(root, "error");
        e && (e->is_object() || e->is_string())) {
      if (flush_all(out))
        out += ev;
      return;
    }
    if (auto id = json::string_of(root, "id"); !id.empty())
      id_ = id;
    if (has_value(root, "created"))
      created_ = json::uint_of(root, "created");
    on_chunk(root, out);
  }

  /// A chat or text_completion chunk: its texts are held; whatever else
  /// it says (a role, a tool call's id and name, a finish reason, usage) is
  /// sent now, without the texts.
  void on_chunk(element root, std::string& out) {
    bool rest = has_value(root, "usage");
    finishing_.clear();
    simdjson::dom::array choices;
    auto c = json::member(root, "choices");
    if (!c || c->get_array().get(choices) != simdjson::SUCCESS) {
      // Not a chunk with choices: nothing to hold.
      send_rest(root, out);
      return;
    }
    if (choices.size() == 0)
      rest = true;
    for (auto choice : choices) {
      if (!choice.is_object()) {
        rest = true;
        continue;
      }
      auto i = json::uint_of(choice, "index");
      if (has_value(choice, "finish_reason")) {
        rest = true;
        finishing_.push_back(i);
      }
      if (format_ == stream_format::completions) {
        for (auto [key, value] : object_of(choice)) {
          if (key == "text" && value.is_string())
            hold(i, text_kind::text, 0, value.get_string().value_unsafe(), out);
          else if (key != "index" && key != "logprobs"
                   && key != "finish_reason")
            rest = true;
        }
        continue;
      }
      auto delta = json::member(choice, "delta");
      if (!delta || !delta->is_object()) {
        rest = rest || delta.has_value();
        continue;
      }
      for (auto [key, value] : object_of(*delta)) {
        if (key == "content" && value.is_string()) {
          hold(i, text_kind::content, 0, value.get_string().value_unsafe(),
               out);
        } else if (key == "content" && value.is_array()) {
          // Content as parts (not OpenAI's, but some servers send it): the
          // text of each part is held; the rest goes without it.
          for (auto part : array_of(value))
            hold(i, text_kind::content, 0, json::string_of(part, "text"), out);
          rest = true;
        } else if (key == "refusal" && value.is_string())
          hold(i, text_kind::refusal, 0, value.get_string().value_unsafe(),
               out);
        else if (key == "tool_calls" && value.is_array())
          rest = hold_tool_calls(i, value, out) || rest;
        else if (key == "function_call" && value.is_object()) {
          hold(i, text_kind::function_args, 0,
               json::string_of(value, "arguments"), out);
          rest = rest || object_of(value).size() > 1
                 || !json::member(value, "arguments");
        } else if (!value.is_null())
          rest = true;
      }
    }
    if (!rest || stopped())
      return;
    for (auto i : finishing_)
      if (!flush_choice(i, out))
        return;
    send_rest(root, out);
  }

  /// Holds each call's arguments; true when a call says more (its id,
  /// type or name: the start of a call).
  bool hold_tool_calls(uint64_t i, element calls, std::string& out) {
    bool more = false;
    for (auto call : array_of(calls)) {
      if (!call.is_object()) {
        more = true;
        continue;
      }
      auto k = json::uint_of(call, "index");
      for (auto [key, value] : object_of(call)) {
        if (key == "index")
          continue;
        if (key != "function" || !value.is_object()) {
          more = true;
          continue;
        }
        for (auto [fkey, fvalue] : object_of(value)) {
          if (fkey == "arguments" && fvalue.is_string())
            hold(i, text_kind::tool_args, k, fvalue.get_string().value_unsafe(),
                 out);
          else
            more = true;
        }
      }
    }
    return more;
  }

  /// Sends a chunk's other facts without its texts (and without logprobs,
  /// which repeat them token by token).
  void send_rest(element root, std::string& out) {
    auto doc = json::to_document(root);
    auto c = doc.find("choices");
    if (c != doc.end() && c->is_array())
      for (auto& choice : *c) {
        if (!choice.is_object())
          continue;
        if (auto lp = choice.find("logprobs"); lp != choice.end())
          *lp = nullptr;
        if (format_ == stream_format::completions) {
          if (auto t = choice.find("text"); t != choice.end() && t->is_string())
            *t = "";
          continue;
        }
        // Not fields of a chunk, but text a client might show.
        choice.erase("message");
        choice.erase("text");
        auto delta = choice.find("delta");
        if (delta == choice.end() || !delta->is_object())
          continue;
        for (const char* key : {"content", "refusal"})
          if (auto t = delta->find(key);
              t != delta->end()
              && ((t->is_string() && !t->get_ref<std::string&>().empty())
                  || t->is_array()))
            delta->erase(t);
        if (auto calls = delta->find("tool_calls");
            calls != delta->end() && calls->is_array())
          for (auto& call : *calls)
            if (auto fn = call.find("function");
                fn != call.end() && fn->is_object())
              if (auto a = fn->find("arguments");
                  a != fn->end() && a->is_string())
                *a = "";
        if (auto fn = delta->find("function_call");
            fn != delta->end() && fn->is_object())
          if (auto a = fn->find("arguments"); a != fn->end() && a->is_string())
            *a = "";
      }
    emit(out, json::dump(doc));
  }

  void on_messages_event(std::string_view name, element root,
                         std::string_view ev, std::string& out) {
    auto type = json::string_of(root, "type");
    if (type == "content_block_delta") {
      auto i = json::uint_of(root, "index");
      auto delta = json::member(root, "delta");
      auto kind = delta ? json::string_of(*delta, "type") : std::string_view{};
      if (kind == "text_delta") {
        hold(i, text_kind::text, 0, json::string_of(*delta, "text"), out);
        return;
      }
      if (kind == "input_json_delta") {
        hold(i, text_kind::json, 0, json::string_of(*delta, "partial_json"),
             out);
        return;
      }
    } else if (type == "message_start") {
      // A message starts with no content; content in its start (not
      // Anthropic's) is not sent: it would pass unchecked.
      auto message = json::member(root, "message");
      auto content = message ? json::member(*message, "content") : std::nullopt;
      if (content && !(content->is_array() && array_of(*content).size() == 0)) {
        auto doc = json::to_document(root);
        doc["message"]["content"] = nlohmann::ordered_json::array();
        out += "event: message_start\ndata: ";
        out += json::dump(doc);
        out += "\n\n";
        return;
      }
    } else if (type == "content_block_start") {
      // A text block starts empty; text in its start (not Anthropic's, but
      // an upstream may send it) is held like a delta.
      auto block = json::member(root, "content_block");
      auto text = block ? json::string_of(*block, "text") : std::string_view{};
      if (!text.empty() && json::string_of(*block, "type") == "text") {
        auto doc = json::to_document(root);
        doc["content_block"]["text"] = "";
        out += "event: content_block_start\ndata: ";
        out += json::dump(doc);
        out += "\n\n";
        hold(json::uint_of(root, "index"), text_kind::text, 0, text, out);
        return;
      }
    } else if (type == "content_block_stop") {
      if (!flush_choice(json::uint_of(root, "index"), out))
        return;
    } else if (type == "message_delta" || type == "message_stop"
               || type == "error" || name == "error") {
      if (!flush_all(out))
        return;
    }
    out += ev;
  }

  // -- held texts
  // --------------------------------------------------------------

  channel* find_channel(uint64_t choice, text_kind kind, uint64_t index) {
    auto key = std::tuple{choice, static_cast<uint8_t>(kind), index};
    if (auto it = by_key_.find(key); it != by_key_.end())
      return it->second;
    if (channels_.size() >= max_channels_) {
      overflow_ = true;
      return nullptr;
    }
    channels_.push_back(std::make_unique<channel>(
      channel{choice, kind, index, held_text{stages_}}));
    by_key_.emplace(key, channels_.back().get());
    return channels_.back().get();
  }

  void hold(uint64_t choice, text_kind kind, uint64_t index,
            std::string_view text, std::string&) {
    if (text.empty() || stopped())
      return;
    if (auto* c = find_channel(choice, kind, index))
      c->text.add(text);
  }

  /// Checks channel `c` and sends what it releases; false on a block
  /// (which ends the stream).
  bool release(channel& c, bool end, std::string& out) {
    released_.clear();
    bool ok = c.text.release(released_, end);
    if (!released_.empty())
      send_text(c, released_, out);
    if (!ok)
      block(c, out);
    return ok;
  }

  bool flush_choice(uint64_t choice, std::string& out) {
    for (auto it = by_key_.lower_bound({choice, 0, 0});
         it != by_key_.end() && std::get<0>(it->first) == choice; ++it)
      if (!release(*it->second, true, out))
        return false;
    return !stopped();
  }

  bool flush_all(std::string& out) {
    for (auto& c : channels_)
      if (!release(*c, true, out))
        return false;
    return !stopped();
  }

  // -- events out
  // --------------------------------------------------------------

  /// The start of a chunk of this stream, up to `"choices":[{"index":I,`.
  void chunk_head(std::string& j, uint64_t choice) const {
    j += R"({"id":)";
    append_json_string(j, id_);
    j += format_ == stream_format::completions
           ? R"(,"object":"text_completion","created":)"
           : R"(,"object":"chat.completion.chunk","created":)";
    append_integer(j, created_);
    j += R"(,"model":)";
    append_json_string(j, options_.alias);
    j += R"(,"choices":[{"index":)";
    append_integer(j, choice);
    j += ',';
  }

  void send_text(const channel& c, std::string_view text, std::string& out) {
    sent_ += text.size();
    keep_text(text);
    auto& j = event_;
    j.clear();
    if (format_ == stream_format::messages) {
      out += "event: content_block_delta\ndata: ";
      out += R"({"type":"content_block_delta","index":)";
      append_integer(out, c.choice);
      out += c.kind == text_kind::json
               ? R"(,"delta":{"type":"input_json_delta","partial_json":)"
               : R"(,"delta":{"type":"text_delta","text":)";
      append_json_string(out, text);
      out += "}}\n\n";
      return;
    }
    chunk_head(j, c.choice);
    switch (c.kind) {
    case text_kind::text:
      j += R"("text":)";
      append_json_string(j, text);
      j += R"(,"logprobs":null,"finish_reason":null}]})";
      emit(out, j);
      return;
    case text_kind::content:
      j += R"("delta":{"content":)";
      append_json_string(j, text);
      j += '}';
      break;
    case text_kind::refusal:
      j += R"("delta":{"refusal":)";
      append_json_string(j, text);
      j += '}';
      break;
    case text_kind::tool_args:
      j += R"("delta":{"tool_calls":[{"index":)";
      append_integer(j, c.index);
      j += R"(,"function":{"arguments":)";
      append_json_string(j, text);
      j += "}}]}";
      break;
    case text_kind::function_args:
      j += R"("delta":{"function_call":{"arguments":)";
      append_json_string(j, text);
      j += "}}";
      break;
    case text_kind::json:
      break;
    }
    j += R"(,"logprobs":null,"finish_reason":null}]})";
    emit(out, j);
  }

  /// A held plugin blocked text of `c`: the last chunk says
  /// content_filter, the error event says why, and nothing follows.
  void block(const channel& c, std::string& out) {
    blocked_ = true;
    blocked_stage_ = c.text.blocked_stage();
    cut_after_ = sent_;
    message_ = c.text.block_message();
    if (message_.empty())
      message_ = "The answer was stopped by the gateway's output policy";
    if (format_ == stream_format::messages) {
      out += "event: content_block_stop\ndata: "
             R"({"type":"content_block_stop","index":)";
      append_integer(out, c.choice);
      out += "}\n\nevent: message_delta\ndata: "
             R"({"type":"message_delta","delta":{"stop_reason":"refusal",)"
             R"("stop_sequence":null},"usage":{"output_tokens":)";
      append_integer(out, inner_->summary().completion_tokens);
      out += "}}\n\n";
    } else {
      auto& j = event_;
      j.clear();
      chunk_head(j, c.choice);
      j += format_ == stream_format::completions ? R"("text":"")"
                                                 : R"("delta":{})";
      j += R"(,"logprobs":null,"finish_reason":"content_filter"}]})";
      emit(out, j);
    }
    out += inner_->error_event(message_, "policy_error", "policy_blocked");
  }

  /// The state after the inner decoder's events were read.
  stream_state conclude(stream_state inner, std::string& out) {
    if (!stopped() && inner == stream_state::open) {
      for (auto& c : channels_)
        if (!release(*c, false, out))
          break;
    } else if (!stopped()) {
      flush_all(out);
    }
    if (overflow_ && !blocked_) {
      summarise();
      return fail(out, "The upstream stream has more texts than the "
                       "gateway holds");
    }
    summarise();
    if (blocked_) {
      summary_.complete = false;
      summary_.finish_reason
        = format_ == stream_format::messages ? "refusal" : "content_filter";
      // A block found in the text held when the stream failed ends what the
      // client sees; the model failed all the same (breaker, fallback).
      if (inner == stream_state::failed)
        return inner;
      summary_.error = message_;
      summary_.policy_cut = true;
      content_ = true;
      return stream_state::failed;
    }
    return inner;
  }

  /// The summary: the inner decoder's, with the text the client got and
  /// what the held plugins did.
  void summarise() {
    const auto& in = inner_->summary();
    summary_.finish_reason = in.finish_reason;
    summary_.prompt_tokens = in.prompt_tokens;
    summary_.completion_tokens = in.completion_tokens;
    summary_.cached_tokens = in.cached_tokens;
    summary_.complete = in.complete;
    summary_.error = in.error;
    summary_.provider_error = in.provider_error;
    content_ = inner_->has_content();
    summary_.held.clear();
    for (size_t s = 0; s < stages_->size(); ++s) {
      held_report r;
      r.stage = (*stages_)[s].post_index;
      for (const auto& c : channels_) {
        const auto& from = c->text.reports()[s];
        for (const auto& [kind, n] : from.redacted)
          add_count(r.redacted, kind, n);
      }
      if (blocked_ && s == blocked_stage_) {
        r.cut = true;
        r.cut_after = cut_after_;
        r.message = message_;
      }
      if (!r.redacted.empty() || r.cut)
        summary_.held.push_back(std::move(r));
    }
  }

  std::unique_ptr<stream_decoder> inner_;
  stream_format format_;
  held_stages_ptr stages_;
  /// The held texts, in the order they began, and by (choice, kind,
  /// index); at most max_channels_.
  std::vector<std::unique_ptr<channel>> channels_;
  std::map<std::tuple<uint64_t, uint8_t, uint64_t>, channel*> by_key_;
  size_t max_channels_ = max_held_texts;
  /// The inner decoder's events of one call, the released text of one
  /// channel, and one event being built.
  std::string tmp_;
  std::string released_;
  std::string event_;
  std::vector<uint64_t> finishing_;
  std::string id_;
  uint64_t created_ = 0;
  /// Bytes of text sent to the client.
  size_t sent_ = 0;
  bool blocked_ = false;
  bool overflow_ = false;
  size_t blocked_stage_ = 0;
  size_t cut_after_ = 0;
  std::string message_;
};

} // namespace

std::unique_ptr<stream_decoder>
hold_stream(std::unique_ptr<stream_decoder> inner, stream_format format,
            stream_options options, held_stages_ptr stages) {
  if (!stages || stages->empty())
    return inner;
  return std::make_unique<guarded_decoder>(
    std::move(inner), format, std::move(options), std::move(stages));
}

} // namespace pw
