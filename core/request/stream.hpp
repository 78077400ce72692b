#pragma once

// Incremental stream translation: a provider's streamed body in, the
// client's server-sent events out (OpenAI's `chat.completion.chunk`,
// `text_completion` chunks for POST /v1/completions, Anthropic's events
// for the Messages API). One decoder per stream,
// used by the io thread that relays it (no actor per chunk).

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pw {

/// What one held post plugin (`stream: hold`, core/request/stream_guard.hpp)
/// did to a stream, for the audit line.
struct held_report {
  /// The held stage, in config order of the post plugins that hold.
  size_t stage = 0;
  /// How many redactions of each kind ("card", "email", ...), in the order
  /// first seen.
  std::vector<std::pair<std::string, uint64_t>> redacted;
  /// The plugin cut the stream here: the client had `cut_after` bytes of
  /// text, and `message` says why.
  bool cut = false;
  size_t cut_after = 0;
  std::string message;
};

/// What a translated stream added up to, for the log line, the MODEL's
/// outcome and the post stage.
struct stream_summary {
  /// The assistant text, assembled from the deltas: only when the options
  /// asked for it (a post PLUGIN reads it), and at most keep_text bytes.
  std::string text;
  /// True when text was left out because of that bound.
  bool text_truncated = false;
  /// The last finish reason the stream gave ("" if none).
  std::string finish_reason;
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  /// Of the prompt tokens, those read from the provider's prompt cache.
  uint64_t cached_tokens = 0;
  /// True once the provider ended the stream properly.
  bool complete = false;
  /// Why the stream failed, when it did (no secrets).
  std::string error;
  /// True when the failure was the provider's own error event (a provider
  /// failure) rather than a broken stream.
  bool provider_error = false;
  /// True when a held post plugin cut the stream (its policy, not a
  /// failure of the model): `error` says why.
  bool policy_cut = false;
  /// What held post plugins did, one entry per plugin that redacted or
  /// cut (empty without `stream: hold`).
  std::vector<held_report> held;
};

enum class stream_state {
  /// More bytes are expected.
  open,
  /// The provider ended the stream (OpenAI formats: `data: [DONE]` was
  /// emitted).
  done,
  /// Malformed input or a provider error: one error event was emitted and
  /// the stream must end without `[DONE]`.
  failed,
};

/// What every decoder needs from the request.
struct stream_options {
  /// The alias the client asked for: every chunk's `model`.
  std::string alias;
  /// `stream_options.include_usage`: end with a usage chunk.
  bool include_usage = false;
  /// Used to build chunk ids when the provider gives none.
  std::string request_id;
  /// How much of the assistant text the summary keeps (bytes); 0 = none.
  size_t keep_text = 0;
};

/// The most streamed text kept for the post stage: more than any model
/// writes in one answer today (about 250k tokens), and a bound per stream.
constexpr size_t max_kept_stream_text = 1024 * 1024;

/// The most tool calls a translated stream follows (each costs a map
/// entry): far more than any model makes in one answer, and a bound per
/// stream whatever an upstream sends. A stream with more fails.
constexpr size_t max_stream_tool_calls = 4096;

class stream_decoder {
public:
  explicit stream_decoder(stream_options options);

  virtual ~stream_decoder();

  /// Feeds the next bytes of the provider's body (any boundaries) and
  /// appends complete events in the client's format to `out`. Once `done` or
  /// `failed`, the rest is ignored.
  stream_state feed(std::string_view bytes, std::string& out);

  /// The provider's body ended. A stream that did not end properly gets an
  /// error event and `failed`; it is never reported as complete.
  virtual stream_state finish(std::string& out);

  /// The transport failed (reset, idle timeout) or a time limit passed:
  /// ends an open stream with one error event saying why.
  virtual stream_state abort(std::string& out, std::string why,
                             std::string_view type = "upstream_error",
                             std::string_view code = "stream_failed");

  /// The error event that ends a failed stream in the client's format.
  /// Default: OpenAI's (stream_error_event).
  [[nodiscard]] virtual std::string error_event(std::string_view message,
                                                std::string_view type,
                                                std::string_view code) const;

  [[nodiscard]] const stream_summary& summary() const { return summary_; }

  [[nodiscard]] stream_state state() const { return state_; }

  /// True once the stream carried content: a text, refusal or tool-call
  /// delta. Before it, a failed stream can still fall back to another
  /// model (nothing the client could use was made).
  [[nodiscard]] bool has_content() const { return content_; }

protected:
  /// A decoder calls this for each text, refusal or tool-call delta.
  void saw_content() { content_ = true; }

  /// Translates bytes; implemented per provider.
  virtual stream_state on_bytes(std::string_view bytes, std::string& out) = 0;

  /// Ends the stream with one error event (error_event).
  stream_state fail(std::string& out, std::string message,
                    std::string_view type = "upstream_error",
                    std::string_view code = "stream_failed");

  /// Marks the stream complete without writing anything (a format whose
  /// last event is the provider's own, e.g. Anthropic's message_stop).
  stream_state complete();

  /// Appends "data: <json>\n\n" (raw line breaks in `json` become spaces,
  /// so the event stays one line).
  static void emit(std::string& out, std::string_view json);

  /// Appends "data: [DONE]\n\n" and marks the stream complete.
  stream_state end(std::string& out);

  /// Adds assistant text to the summary, as far as `options.keep_text`
  /// allows.
  void keep_text(std::string_view text);

  /// What the decoder was made with.
  stream_options options_;
  stream_summary summary_;
  stream_state state_ = stream_state::open;
  bool content_ = false;
};

/// A whole chat.completion turned into the events of a stream (role,
/// content, tool calls, finish reason, usage when asked, `[DONE]`), for
/// answers made inside the gateway.
std::string completion_to_sse(std::string_view completion,
                              const stream_options& options);

/// A whole text_completion (POST /v1/completions) turned into the events
/// of a stream: one chunk per choice with its text and finish reason,
/// usage when asked, `[DONE]`.
std::string text_completion_to_sse(std::string_view completion,
                                   const stream_options& options);

/// The OpenAI error event that ends a failed stream.
std::string stream_error_event(std::string_view message,
                               std::string_view type = "upstream_error",
                               std::string_view code = "stream_failed");

} // namespace pw
