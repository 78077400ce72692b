#pragma once

// The plain types that cross between io threads and actors: what a SESSION
// sends back to a connection (http_reply through reply_fn) and how it asks
// an io thread for a provider call (upstream_request through upstream_fn).
// No Asio here: both sides include this header. CAF comes in only as
// `caf::error` (through core/errc.hpp), the type every error travels in.

#include "core/config/config.hpp"
#include "core/errc.hpp"
#include "core/request/stream.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pw {

/// ASCII case-insensitive equality, for header names and tokens.
bool iequals(std::string_view x, std::string_view y);

struct header_field {
  std::string name;
  std::string value;
};

/// An error answer. core/json_error.cpp renders it as the OpenAI envelope.
struct api_error {
  errc code = errc::internal;
  std::string message;
  /// The request field at fault (`param`), empty for null.
  std::string param;
  /// Relayed upstream status (upstream_rejected only); 0 = from the table.
  unsigned status = 0;
  /// Relayed upstream `type` / `code`; empty = from the table.
  std::string type;
  std::string code_text;
  /// Seconds for `Retry-After`; 0 = no header.
  unsigned retry_after = 0;
};

/// Makes an api_error with a code and a message.
inline api_error error_of(errc code, std::string message) {
  api_error out;
  out.code = code;
  out.message = std::move(message);
  return out;
}

/// Makes an api_error from a "pw" CAF error (code and message).
api_error to_api_error(const caf::error& err);

/// One try of a model, for the metrics.
struct attempt_fact {
  std::string model;
  /// success, failure, rejected, cancelled or skipped.
  std::string_view outcome;
};

/// What the gateway answers to one request, plus what the access log needs.
struct http_reply {
  unsigned status = 200;
  /// The body; ignored when `error` is set.
  std::string body;
  /// Its media type ("" = application/json).
  std::string content_type;
  /// The io thread already streamed the answer to the client: write
  /// nothing, only log (and close unless `stream_complete`).
  bool streamed = false;
  bool stream_complete = false;
  /// For the log line of a streamed answer that did not end well
  /// ("stream_failed", "client_closed"); empty otherwise.
  std::string log_error;
  std::optional<api_error> error;
  /// Extra response headers (Allow, WWW-Authenticate, ...).
  std::vector<header_field> headers;
  /// Facts for the request's log line.
  std::string model;
  unsigned upstream_status = 0;
  std::chrono::microseconds upstream_time{0};
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  /// Of the prompt tokens, those read from the provider's prompt cache.
  uint64_t cached_tokens = 0;
  /// Facts for the metrics: every attempt in order, the time all of them
  /// spent upstream, and the plugin that blocked the request (if any).
  std::vector<attempt_fact> attempts;
  std::chrono::microseconds upstream_total{0};
  std::string blocked_by;
  /// Made by the bridge (the deadline's 504, the 500 of a SESSION that
  /// died): nobody knows how the time was spent, so no overhead is told.
  bool facts_unknown = false;
};

/// Why the io thread stopped waiting for a chat request's SESSION.
enum class cancel_reason : uint8_t {
  /// The request's deadline passed: the client got its 504.
  deadline,
  /// The client closed its connection (the io thread also cut the upstream
  /// exchange in flight, if any).
  client_left,
};

/// Delivers the answer to the connection; called exactly once.
using reply_fn = std::function<void(http_reply)>;

/// One HTTP request to a provider, built by an adapter.
struct upstream_request {
  endpoint target;
  /// CA bundle that verifies the upstream (empty: system store).
  std::string ca_file;
  std::string method = "POST";
  /// Path and query, e.g. "/v1/chat/completions".
  std::string path;
  std::vector<header_field> headers;
  std::string body;
  std::chrono::milliseconds connect_timeout{10'000};
  /// Total time for the whole exchange (connect to last body byte),
  /// streams included.
  std::chrono::milliseconds timeout{120'000};
  /// Time until the response headers.
  std::chrono::milliseconds first_byte_timeout{120'000};
  /// Streaming only: the longest gap between two reads of the body.
  std::chrono::milliseconds idle_timeout{120'000};
  /// The client request's deadline (server.request_deadline_seconds): a
  /// stream still flowing then ends with an error event, and a timeout at
  /// or after it is reported as `past_deadline`.
  std::chrono::steady_clock::time_point request_deadline
    = std::chrono::steady_clock::time_point::max();
  /// Set for `"stream": true`: a 2xx answer is relayed to the client
  /// through this translator as it arrives (on the io thread); anything
  /// else is read whole and returned as usual.
  std::shared_ptr<stream_decoder> stream;
  /// Headers the gateway adds to a relayed stream's response (e.g.
  /// `X-Route-Reason`).
  std::vector<header_field> response_headers;
  /// For a relayed stream's `X-Gateway-Overhead-Us`: when the client's
  /// request arrived, and the time earlier attempts spent upstream.
  std::chrono::steady_clock::time_point received{};
  std::chrono::microseconds upstream_before{0};
  /// The client request this call serves, for log lines ("" for health
  /// checks).
  std::string request_id;
  /// What the adapter needs to read the answer (e.g. the encoding the
  /// client asked for), handed back as upstream_result::answer_note.
  std::string answer_note;
  /// Response headers the adapter reads (e.g. Bedrock's token counts),
  /// lower-case: those present come back in upstream_result::answer_headers
  /// (answers to requests that do not stream).
  std::vector<std::string> answer_headers;
};

/// The response header that tells the client how long the gateway itself
/// took, in microseconds (upstream time excluded).
inline constexpr std::string_view overhead_header = "X-Gateway-Overhead-Us";

/// Why an upstream exchange failed before a complete response arrived.
enum class upstream_failure : uint8_t {
  none,
  /// Name resolution or TCP connect failed.
  connect,
  /// TLS handshake or certificate verification failed.
  tls,
  /// The exchange did not finish within its timeout.
  timeout,
  /// The upstream broke HTTP (bad response, closed early, too large).
  protocol,
  /// The gateway cancelled the exchange (shutdown).
  cancelled,
  /// The gateway itself failed while calling or reading (a failure caught
  /// at a boundary, core/boundary.hpp): not the provider's fault.
  internal,
  /// No call was made: the gateway holds no valid credential for the
  /// provider (a token it could not fetch; `detail` says why).
  credentials,
};

std::string_view to_string(upstream_failure x);

/// The result of one upstream exchange.
struct upstream_result {
  upstream_failure failure = upstream_failure::none;
  /// What failed, for logs and error messages; never contains secrets.
  std::string detail;
  unsigned status = 0;
  std::string body;
  std::string content_type;
  std::string retry_after;
  std::chrono::microseconds elapsed{0};
  /// The answer was relayed to the client as a stream (status 200 sent).
  bool streamed = false;
  /// The client went away (during a stream, or while a whole answer was on
  /// its way); the upstream was cut.
  bool client_gone = false;
  /// The exchange was cut because the client request's deadline passed:
  /// not the provider's fault.
  bool past_deadline = false;
  /// What the relayed stream added up to.
  stream_summary summary;
  /// upstream_request::answer_note.
  std::string answer_note;
  /// The headers of upstream_request::answer_headers that the answer has.
  std::vector<header_field> answer_headers;
};

/// Delivers the result of an upstream call; called exactly once.
using upstream_done = std::function<void(upstream_result)>;

/// Starts an upstream call on the connection's io thread.
using upstream_fn = std::function<void(upstream_request, upstream_done)>;

} // namespace pw
