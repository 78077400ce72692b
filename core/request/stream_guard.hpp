#pragma once

// Output policy on streamed answers (`stream: hold` on a post plugin
// entry). The gateway holds back a window of each streamed text (a
// choice's content, refusal or tool-call arguments; a Messages text or
// tool-input block) and sends text only once every held plugin has passed
// it: a redaction rewrites the held text, a block ends the stream after
// the text before the blocked span. One place for every streaming
// endpoint: the guard wraps the adapter's decoder and reads and writes
// the client's events (OpenAI chat chunks, text_completion chunks,
// Anthropic Messages events), so no adapter knows about it.

#include "core/request/stream.hpp"

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pw {

/// The client's event format, which the guard reads and writes.
enum class stream_format : uint8_t {
  /// `chat.completion.chunk` events (POST /v1/chat/completions).
  chat,
  /// `text_completion` chunks (POST /v1/completions).
  completions,
  /// Anthropic's events (POST /v1/messages).
  messages,
};

/// What a rule found in held text.
struct held_finding {
  size_t offset = 0;
  size_t length = 0;
  /// End the stream before this span; otherwise it is replaced.
  bool block = false;
  /// What the client gets instead (a redaction).
  std::string replacement;
  /// What was found, for the audit line ("card", "email").
  std::string kind;
  /// Why the stream ends (a block).
  std::string message;
};

/// One post plugin's policy on streamed text. Immutable and shared by every
/// io thread: `find` may run on several at once.
class stream_rule {
public:
  virtual ~stream_rule();

  /// The window by default, in bytes: at least the longest text one finding
  /// can span together with the context its checks read around it.
  [[nodiscard]] virtual size_t default_window() const = 0;

  /// Appends the findings in `text` that end after byte `from` to `out`,
  /// sorted by offset and not overlapping. (The text before `from` was
  /// sent already: it is there as context, and may begin mid-word.)
  virtual void find(std::string_view text, size_t from,
                    std::vector<held_finding>& out) const = 0;
};

using stream_rule_ptr = std::shared_ptr<const stream_rule>;

/// A held post plugin: its rule, its window (bytes), its index among the
/// post plugins (for the audit line).
struct held_stage {
  stream_rule_ptr rule;
  size_t window = 0;
  size_t post_index = 0;
};

using held_stages = std::vector<held_stage>;
using held_stages_ptr = std::shared_ptr<const held_stages>;

/// The smallest and largest `stream_window` a config may set.
constexpr size_t min_stream_window = 16;
constexpr size_t max_stream_window = 64 * 1024;

/// One text of a stream passed through every held stage in order: what
/// stage k releases is what stage k+1 holds. Text is released only once it
/// lies more than the stage's window behind the newest text (so every
/// finding that could include it has been seen whole), or at the end of
/// the text. A stage checks once it holds an eighth of a window more than
/// the window and text came since its last check. Each stage also keeps
/// up to two windows of the text it released, unchanged, as context for
/// its checks (two, so that a match the cut context makes up at its start
/// cannot reach the text the check is for). A block match that runs on
/// past the cut is held until the stage holds four windows, then acts.
class held_text {
public:
  explicit held_text(held_stages_ptr stages);

  /// Adds newly streamed text (not yet checked).
  void add(std::string_view text) { stages_[0].pending.append(text); }

  /// Checks what is held and appends to `out` what may be sent; `end`: the
  /// text is complete, so everything held is checked and sent. False when
  /// a stage blocked: `out` then ends before the blocked span and nothing
  /// more may be sent.
  bool release(std::string& out, bool end);

  /// Bytes held now, over all stages.
  [[nodiscard]] size_t held() const;

  /// Redactions per stage and kind so far, and the block, if any.
  [[nodiscard]] const std::vector<held_report>& reports() const {
    return reports_;
  }

  /// The stage and message of the block (after release() returned false).
  [[nodiscard]] size_t blocked_stage() const { return blocked_stage_; }
  [[nodiscard]] const std::string& block_message() const {
    return block_message_;
  }

private:
  struct stage_state {
    std::string pending;
    std::string context;
    /// The size of `pending` after the last check: no new text, no check.
    size_t checked = 0;
  };

  /// Runs stage `i` over its pending text; appends what it releases to
  /// `out`.
  bool step(size_t i, bool end, std::string& out);

  held_stages_ptr spec_;
  std::vector<stage_state> stages_;
  std::vector<held_report> reports_;
  /// Scratch buffers, reused between steps.
  std::string scan_;
  std::vector<held_finding> found_;
  size_t blocked_stage_ = 0;
  std::string block_message_;
};

/// Wraps `inner` (an adapter's decoder, made with `keep_text` 0) so that
/// every text of the stream passes `stages` before the client gets it.
/// `options` are the stream's (the guard keeps the text the client got,
/// for the post stage). Events without text pass as they come; text
/// events are rebuilt from the released text, with only the fields a
/// client needs (`logprobs`, which would repeat the held tokens, are
/// dropped). A block sends the text before the blocked span, then a last
/// chunk with `finish_reason: "content_filter"` (for Messages, a
/// `message_delta` with `stop_reason: "refusal"`) and the stream's error
/// event, and nothing after it.
std::unique_ptr<stream_decoder>
hold_stream(std::unique_ptr<stream_decoder> inner, stream_format format,
            stream_options options, held_stages_ptr stages);

} // namespace pw
