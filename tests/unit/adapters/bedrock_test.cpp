// The bedrock provider (AWS Bedrock's Converse and ConverseStream APIs):
// Anthropic Messages requests rewritten into Converse requests against
// golden files in tests/data/bedrock/ (request/<case>.in.json ->
// .out.json or .error.json), Converse answers as the chat completions and
// Anthropic messages clients get (response/<case>.in.json -> .out.json),
// ConverseStream's event-stream bytes (built here with encode_event) as
// OpenAI chunks and Anthropic events, fed whole, one byte at a time and
// split at every point; the signed requests, the config keys and the
// credential resolution order, and the STS AssumeRoleWithWebIdentity
// exchange of a web identity token. Embeddings through InvokeModel: OpenAI
// requests as Amazon Titan and Cohere Embed bodies (and what neither
// takes), their answers as OpenAI embeddings lists (floats and base64, the
// tokens from Titan's body or Bedrock's header), and the config's refusal
// of embeddings for any other model.

#include "adapters/anthropic/anthropic_adapter.hpp"
#include "adapters/bedrock/converse.hpp"
#include "adapters/bedrock/embeddings.hpp"
#include "adapters/bedrock/event_stream.hpp"
#include "adapters/bedrock/provider.hpp"
#include "adapters/bedrock/sigv4.hpp"
#include "adapters/oauth.hpp"
#include "adapters/provider.hpp"
#include "core/config/config.hpp"
#include "core/errc.hpp"
#include "core/json/reader.hpp"
#include "tests/support/chat_bodies.hpp"
#include "tests/support/golden.hpp"
#include "tests/support/provider_kit.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

using namespace pw;
using namespace pw::test;
namespace fs = std::filesystem;

namespace {

namespace bedrock = adapters::bedrock;

const fs::path dir = fs::path{PW_TEST_DATA_DIR} / "bedrock";

const std::string haiku_id = "anthropic.claude-3-haiku-20240307-v1:0";
const std::string haiku_path
  = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse";

/// A bedrock model built by hand (no credentials): for the translations.
model_config_ptr haiku() {
  auto m = std::make_shared<model_config>();
  m->alias = "haiku";
  m->provider = "bedrock";
  m->model = haiku_id;
  m->base_url = "https://bedrock-runtime.us-east-1.amazonaws.com";
  std::string why;
  m->target = *parse_base_url(m->base_url, why);
  return m;
}

// -- environment and files ----------------------------------------------------

/// The variables the bedrock loader reads (as the AWS SDKs), and HOME.
constexpr const char* aws_vars[] = {"AWS_REGION",
                                    "AWS_DEFAULT_REGION",
                                    "AWS_ACCESS_KEY_ID",
                                    "AWS_SECRET_ACCESS_KEY",
                                    "AWS_SESSION_TOKEN",
                                    "AWS_PROFILE",
                                    "AWS_SHARED_CREDENTIALS_FILE",
                                    "AWS_ROLE_ARN",
                                    "AWS_WEB_IDENTITY_TOKEN_FILE"};

/// A directory of its own, removed with its files when it goes.
struct temp_dir {
  fs::path path;

  temp_dir() {
    auto pattern = (fs::temp_directory_path() / "pw-bedrock-XXXXXX").string();
    const char* made = ::mkdtemp(pattern.data());
    REQUIRE(made != nullptr);
    path = made;
  }

  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }

  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  /// Writes `text` to the file `name` in it (its folders made); its path.
  [[nodiscard]] std::string write(const std::string& name,
                                  const std::string& text) const {
    auto file = path / name;
    fs::create_directories(file.parent_path());
    std::ofstream{file, std::ios::binary | std::ios::trunc} << text;
    return file.string();
  }
};

/// While it lives: no AWS_* variable, and HOME an empty directory of its
/// own (no real ~/.aws is read). Everything is put back afterwards.
struct aws_env {
  temp_dir home;
  std::vector<std::pair<std::string, std::optional<std::string>>> saved;

  aws_env() {
    for (const auto* name : aws_vars)
      save(name);
    save("HOME");
    for (const auto* name : aws_vars)
      ::unsetenv(name);
    ::setenv("HOME", home.path.c_str(), 1);
  }

  ~aws_env() {
    for (const auto& [name, value] : saved)
      if (value)
        ::setenv(name.c_str(), value->c_str(), 1);
      else
        ::unsetenv(name.c_str());
  }

  aws_env(const aws_env&) = delete;
  aws_env& operator=(const aws_env&) = delete;

  static void set(const char* name, const std::string& value) {
    ::setenv(name, value.c_str(), 1);
  }

private:
  void save(const char* name) {
    const char* v = std::getenv(name);
    saved.emplace_back(name, v != nullptr ? std::optional<std::string>{v}
                                          : std::nullopt);
  }
};

const std::string example_key_id = "AKIDEXAMPLE";
const std::string example_secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// A shared credentials file with profiles "default" and "test".
const std::string credentials_text
  = "# AWS shared credentials\n"
    "[default]\n"
    "aws_access_key_id = AKIDDEFAULT\n"
    "aws_secret_access_key = defaultsecretkey\n"
    "\n"
    "[test]\n"
    "aws_access_key_id = "
    + example_key_id
    + "\n"
      "aws_secret_access_key = "
    + example_secret + "\n";

// -- config -------------------------------------------------------------------

const bedrock::bedrock_options& bedrock_of(const model_config& m) {
  const auto* o
    = dynamic_cast<const bedrock::bedrock_options*>(m.options.get());
  REQUIRE(o != nullptr);
  return *o;
}

/// A bedrock model entry for haiku (or `model_id`) in `region` (none when
/// empty), and `more` keys.
std::string bedrock_keys(const std::string& more,
                         const std::string& region = "us-east-1",
                         const std::string& model_id = haiku_id) {
  return "    provider: bedrock\n    model: \"" + model_id + "\"\n"
         + (region.empty() ? std::string{} : "    region: \"" + region + "\"\n")
         + more;
}

/// The keys naming a credentials file and the profile "test".
std::string profile_keys(const std::string& file,
                         const std::string& profile = "test") {
  return "    aws_credentials_file: \"" + file
         + "\"\n    aws_profile: " + profile + "\n";
}

const std::string role_arn = "arn:aws:iam::123456789012:role/pw-test";
const std::string web_token = "eyJweb.identity.token";

/// The keys of a web identity: the role, the token file and a fake STS.
std::string web_identity_keys(const std::string& token_file,
                              const std::string& sts
                              = "http://127.0.0.1:1234") {
  return "    role_arn: \"" + role_arn + "\"\n"
         + "    web_identity_token_file: \"" + token_file + "\"\n"
         + (sts.empty() ? std::string{}
                        : "    sts_endpoint: \"" + sts + "\"\n");
}

// -- requests -----------------------------------------------------------------

const std::string chat_body
  = R"({"model":"b","messages":[{"role":"system","content":"Be brief."},)"
    R"({"role":"user","content":"hi"}],"max_tokens":64})";

/// The request the model's provider builds for `body` on `endpoint`.
upstream_request request_for(const model_config& m,
                             const std::string& body = chat_body,
                             api_endpoint endpoint = api_endpoint::chat) {
  auto req = adapters::adapter_for(m, endpoint)
               .to_provider_request(chat_payload{body}, m);
  if (!req)
    FAIL(message_of(req.error()));
  return *req;
}

/// The Authorization header recomputed from the request as sent: its
/// method, path and query, the headers sign() signs (Host, Content-Type
/// and X-Amz-*), its body and its X-Amz-Date.
std::string recomputed_authorization(const upstream_request& req,
                                     const bedrock::aws_credentials& creds,
                                     const std::string& region) {
  bedrock::signable_request r;
  r.method = req.method;
  auto q = req.path.find('?');
  r.path = req.path.substr(0, q);
  if (q != std::string::npos)
    r.query = req.path.substr(q + 1);
  for (const auto& h : req.headers) {
    std::string name;
    for (char c : h.name)
      name.push_back(
        static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    if (name == "host" || name == "content-type" || name.starts_with("x-amz-"))
      r.headers.push_back(h);
  }
  r.payload = req.body;
  return bedrock::authorization(r, creds, region, "bedrock",
                                header(req, "X-Amz-Date"));
}

bedrock::aws_credentials creds_of(const std::string& id,
                                  const std::string& secret,
                                  const std::string& token = "") {
  bedrock::aws_credentials c;
  c.access_key_id = id;
  c.secret_access_key = redacted_string{secret};
  c.session_token = redacted_string{token};
  return c;
}

/// `seconds` from now as STS writes it: 2026-01-02T03:04:05Z.
std::string iso_from_now(int64_t seconds) {
  auto t = static_cast<std::time_t>(now_seconds() + seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

/// STS's answer to AssumeRoleWithWebIdentity, its credentials expiring at
/// `expiration` (none when empty).
std::string sts_answer(const std::string& expiration) {
  return "<AssumeRoleWithWebIdentityResponse "
         "xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
         "  <AssumeRoleWithWebIdentityResult>\n"
         "    <SubjectFromWebIdentityToken>system:serviceaccount:gw:pw"
         "</SubjectFromWebIdentityToken>\n"
         "    <Audience>sts.amazonaws.com</Audience>\n"
         "    <AssumedRoleUser>\n"
         "      <Arn>arn:aws:sts::123456789012:assumed-role/pw-test/pw-router"
         "</Arn>\n"
         "      <AssumedRoleId>AROAEXAMPLE:pw-router</AssumedRoleId>\n"
         "    </AssumedRoleUser>\n"
         "    <Credentials>\n"
         "      <AccessKeyId>ASIAX</AccessKeyId>\n"
         "      <SecretAccessKey>sec</SecretAccessKey>\n"
         "      <SessionToken>tok</SessionToken>\n"
         + (expiration.empty()
              ? std::string{}
              : "      <Expiration>" + expiration + "</Expiration>\n")
         + "    </Credentials>\n"
           "    <Provider>arn:aws:iam::123456789012:oidc-provider/example"
           "</Provider>\n"
           "  </AssumeRoleWithWebIdentityResult>\n"
           "  <ResponseMetadata>\n"
           "    <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>\n"
           "  </ResponseMetadata>\n"
           "</AssumeRoleWithWebIdentityResponse>\n";
}

// -- streams ------------------------------------------------------------------

/// One ConverseStream event of `type` with JSON `payload`.
std::string frame(const std::string& type, std::string_view payload) {
  return bedrock::encode_event({{":event-type", type},
                                {":message-type", "event"},
                                {":content-type", "application/json"}},
                               payload);
}

/// An exception message of `kind` (as ConverseStream sends one mid-stream).
std::string exception_frame(const std::string& kind, std::string_view payload) {
  return bedrock::encode_event({{":message-type", "exception"},
                                {":exception-type", kind},
                                {":content-type", "application/json"}},
                               payload);
}

std::string text_delta(std::string_view text, int index = 0) {
  auto quoted = nlohmann::json(std::string{text}).dump();
  return frame("contentBlockDelta", R"({"contentBlockIndex":)"
                                      + std::to_string(index)
                                      + R"(,"delta":{"text":)" + quoted + "}}");
}

std::string block_stop(int index = 0) {
  return frame("contentBlockStop",
               R"({"contentBlockIndex":)" + std::to_string(index) + "}");
}

std::string message_start() {
  return frame("messageStart", R"({"role":"assistant"})");
}

std::string message_stop(const std::string& reason) {
  return frame("messageStop", R"({"stopReason":")" + reason + R"("})");
}

std::string metadata(uint64_t in, uint64_t out, std::string_view more = "") {
  return frame("metadata", R"({"usage":{"inputTokens":)" + std::to_string(in)
                             + R"(,"outputTokens":)" + std::to_string(out)
                             + R"(,"totalTokens":)" + std::to_string(in + out)
                             + std::string{more}
                             + R"(},"metrics":{"latencyMs":120}})");
}

/// "Hel" + "lo", end_turn, 10 tokens in and 5 out.
std::string text_stream() {
  return message_start() + text_delta("Hel") + text_delta("lo") + block_stop()
         + message_stop("end_turn") + metadata(10, 5);
}

/// A text block, then a tool use whose input comes in two pieces.
std::string tool_stream() {
  return message_start() + text_delta("Checking.") + block_stop(0)
         + frame("contentBlockStart",
                 R"({"contentBlockIndex":1,"start":{"toolUse":)"
                 R"({"toolUseId":"tooluse_1","name":"get_weather"}}})")
         + frame("contentBlockDelta",
                 R"({"contentBlockIndex":1,"delta":{"toolUse":)"
                 R"({"input":"{\"city\":"}}})")
         + frame("contentBlockDelta",
                 R"({"contentBlockIndex":1,"delta":{"toolUse":)"
                 R"({"input":"\"Paris\"}"}}})")
         + block_stop(1) + message_stop("tool_use") + metadata(20, 8);
}

stream_options options_of(bool include_usage = false) {
  return stream_options{"haiku", include_usage, "req-1", max_kept_stream_text};
}

struct stream_run {
  std::string out;
  /// The state the last feed returned, and finish's.
  stream_state fed = stream_state::open;
  stream_state finished = stream_state::open;
  stream_summary summary;
  bool content = false;
};

/// `input` through the `endpoint` decoder of a bedrock model, fed in the
/// pieces `cuts` makes, then finished.
stream_run run_stream(api_endpoint endpoint, const std::string& input,
                      const std::vector<size_t>& cuts,
                      bool include_usage = false) {
  auto model = haiku();
  auto decoder = adapters::adapter_for(*model, endpoint)
                   .make_stream_decoder(model, options_of(include_usage));
  REQUIRE(decoder);
  stream_run r;
  size_t pos = 0;
  std::string_view bytes{input};
  for (auto cut : cuts) {
    if (cut <= pos || cut >= input.size())
      continue;
    decoder->feed(bytes.substr(pos, cut - pos), r.out);
    pos = cut;
  }
  r.fed = decoder->feed(bytes.substr(pos), r.out);
  r.finished = decoder->finish(r.out);
  r.summary = decoder->summary();
  r.content = decoder->has_content();
  return r;
}

std::vector<size_t> every_byte(const std::string& input) {
  std::vector<size_t> out;
  for (size_t i = 1; i < input.size(); ++i)
    out.push_back(i);
  return out;
}

struct sse_event {
  std::string name;
  std::string data;
};

/// The events of an SSE text (each "[event: NAME\n]data: X\n\n").
std::vector<sse_event> events_of(const std::string& text) {
  std::vector<sse_event> out;
  size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find("\n\n", pos);
    REQUIRE(end != std::string::npos); // every event is complete
    auto block = text.substr(pos, end - pos);
    sse_event ev;
    size_t at = 0;
    while (at <= block.size()) {
      auto nl = block.find('\n', at);
      auto line = block.substr(at, nl == std::string::npos ? nl : nl - at);
      if (line.starts_with("event: "))
        ev.name = line.substr(7);
      else if (line.starts_with("data: "))
        ev.data = line.substr(6);
      if (nl == std::string::npos)
        break;
      at = nl + 1;
    }
    out.push_back(std::move(ev));
    pos = end + 2;
  }
  return out;
}

nlohmann::json data_of(const sse_event& ev) {
  return nlohmann::json::parse(ev.data);
}

/// The events with the chunks' `created` (the clock's) left out: what
/// must not depend on how the bytes were split.
std::vector<std::string> normalized(const std::string& text) {
  std::vector<std::string> out;
  for (const auto& ev : events_of(text)) {
    std::string data = ev.data;
    if (data != "[DONE]") {
      auto doc = nlohmann::json::parse(data);
      if (doc.is_object())
        doc.erase("created");
      data = doc.dump();
    }
    out.push_back(ev.name + "|" + data);
  }
  return out;
}

size_t count_of(std::string_view text, std::string_view part) {
  size_t n = 0;
  for (auto pos = text.find(part); pos != std::string_view::npos;
       pos = text.find(part, pos + part.size()))
    ++n;
  return n;
}

/// The same output, the same usage and end, however `input` is split:
/// one byte at a time, and in two pieces at every point.
void check_any_split(api_endpoint endpoint, const std::string& input,
                     bool include_usage = false) {
  auto whole = run_stream(endpoint, input, {}, include_usage);
  auto expected = normalized(whole.out);
  auto same = [&](const stream_run& r) {
    return normalized(r.out) == expected && r.fed == whole.fed
           && r.finished == whole.finished
           && r.summary.complete == whole.summary.complete
           && r.summary.prompt_tokens == whole.summary.prompt_tokens
           && r.summary.completion_tokens == whole.summary.completion_tokens
           && r.summary.finish_reason == whole.summary.finish_reason
           && r.summary.text == whole.summary.text
           && r.summary.error == whole.summary.error;
  };
  auto bytewise = run_stream(endpoint, input, every_byte(input), include_usage);
  CHECK(normalized(bytewise.out) == expected);
  CHECK(same(bytewise));
  std::vector<size_t> differing;
  for (size_t cut = 1; cut < input.size(); ++cut)
    if (!same(run_stream(endpoint, input, {cut}, include_usage)))
      differing.push_back(cut);
  CHECK(differing.empty());
}

} // namespace

// -- the provider -------------------------------------------------------------

TEST_CASE("bedrock is a provider of chat, messages and embeddings",
          "[adapters][providers][bedrock]") {
  const auto* p = adapters::find_provider("bedrock");
  REQUIRE(p != nullptr);
  CHECK(p->endpoints.has(api_endpoint::chat));
  CHECK(p->endpoints.has(api_endpoint::messages));
  CHECK(p->endpoints.has(api_endpoint::embeddings));
  CHECK_FALSE(p->endpoints.has(api_endpoint::completions));
  CHECK_FALSE(p->endpoints.has(api_endpoint::count_tokens));
  CHECK_FALSE(p->local);
  const auto* chat = &adapters::adapter_for("bedrock", api_endpoint::chat);
  const auto* messages
    = &adapters::adapter_for("bedrock", api_endpoint::messages);
  const auto* embeddings
    = &adapters::adapter_for("bedrock", api_endpoint::embeddings);
  CHECK(chat != messages);
  CHECK(embeddings != chat);
  CHECK(embeddings != messages);
  // The embeddings adapter is the Titan and Cohere translation.
  CHECK(dynamic_cast<const bedrock::embeddings_adapter*>(embeddings)
        != nullptr);
  std::set<std::string_view> keys{p->keys.begin(), p->keys.end()};
  CHECK(keys
        == std::set<std::string_view>{
          "region", "aws_profile", "aws_credentials_file", "role_arn",
          "web_identity_token_file", "role_session_name", "sts_endpoint"});
}

// -- Converse requests --------------------------------------------------------

TEST_CASE("Anthropic Messages requests translate to Converse requests",
          "[adapters][providers][bedrock]") {
  auto names = golden_cases(dir, "request");
  REQUIRE(names.size() >= 21);
  for (const auto& name : names) {
    INFO("case " << name);
    auto in = nlohmann::ordered_json::parse(
      slurp(dir / "request" / (name + ".in.json")));
    auto out = bedrock::to_converse(in);
    auto error_file = dir / "request" / (name + ".error.json");
    auto out_file = dir / "request" / (name + ".out.json");
    // Exactly one expectation per case: a case without one fails.
    REQUIRE(fs::exists(error_file) != fs::exists(out_file));
    if (fs::exists(error_file)) {
      REQUIRE_FALSE(out);
      CHECK(code_of(out.error()) == errc::invalid_request);
      CHECK(param_of(out.error())
            == load_json(error_file)["param"].get<std::string>());
      continue;
    }
    if (!out)
      FAIL(message_of(out.error()));
    CHECK(nlohmann::json::parse(out->dump()) == load_json(out_file));
  }
}

TEST_CASE("to_converse refuses what is not a list of messages or a tool "
          "result it can carry",
          "[adapters][providers][bedrock]") {
  auto param = [](const char* text) {
    auto out = bedrock::to_converse(nlohmann::ordered_json::parse(text));
    REQUIRE_FALSE(out);
    CHECK(code_of(out.error()) == errc::invalid_request);
    return param_of(out.error());
  };
  CHECK(param(R"({"max_tokens":5})") == "messages");
  CHECK(param(R"({"messages":"hi"})") == "messages");
  CHECK(param(R"({"messages":[{"role":"user","content":[)"
              R"({"type":"tool_result","tool_use_id":"t","content":7}]}]})")
        == "messages.0.content.0.content");
  CHECK(
    param(R"({"messages":[{"role":"user","content":[)"
          R"({"type":"tool_result","tool_use_id":"t","content":[)"
          R"({"type":"image","source":{"type":"url","url":"https://x"}}]}]}]})")
    == "messages.0.content.0.content.0.source");
  CHECK(param(R"({"messages":[{"role":"user","content":[)"
              R"({"type":"search_result","source":"x"}]}]})")
        == "messages.0.content.0.type");
  CHECK(param(R"({"messages":[{"role":"user","content":"x"}],"tools":[)"
              R"({"name":"ok","input_schema":{"type":"object"}},)"
              R"({"type":"bash_20250124","name":"bash"}]})")
        == "tools.1.type");
}

TEST_CASE("Bedrock's stop reasons map to Anthropic's",
          "[adapters][providers][bedrock]") {
  CHECK(bedrock::stop_reason_of("end_turn") == "end_turn");
  CHECK(bedrock::stop_reason_of("tool_use") == "tool_use");
  CHECK(bedrock::stop_reason_of("max_tokens") == "max_tokens");
  CHECK(bedrock::stop_reason_of("stop_sequence") == "stop_sequence");
  CHECK(bedrock::stop_reason_of("guardrail_intervened") == "refusal");
  CHECK(bedrock::stop_reason_of("content_filtered") == "refusal");
  CHECK(bedrock::stop_reason_of("something_new") == "end_turn");
  CHECK(bedrock::stop_reason_of("") == "end_turn");
}

// -- Converse answers ---------------------------------------------------------

TEST_CASE("Converse answers translate to OpenAI chat completions",
          "[adapters][providers][bedrock]") {
  auto model = haiku();
  const auto& adapter = adapters::adapter_for(*model, api_endpoint::chat);
  auto names = golden_cases(dir, "response");
  REQUIRE(names.size() >= 7);
  for (const auto& name : names) {
    INFO("case " << name);
    auto out_file = dir / "response" / (name + ".out.json");
    REQUIRE(fs::exists(out_file));
    auto out = adapter.from_provider_response(
      answer(200, slurp(dir / "response" / (name + ".in.json"))), *model);
    if (!out)
      FAIL(message_of(out.error()));
    auto got = nlohmann::json::parse(out->body);
    REQUIRE(got.is_object());
    REQUIRE(got.contains("id"));
    CHECK(got["id"].get<std::string>().starts_with("chatcmpl-msg_bedrock_"));
    REQUIRE(got.contains("created"));
    CHECK(got["created"].is_number_integer());
    got.erase("id");
    got.erase("created");
    auto expected = load_json(out_file);
    expected.erase("id");
    expected.erase("created");
    CHECK(got == expected);
    CHECK(out->prompt_tokens
          == expected["usage"]["prompt_tokens"].get<uint64_t>());
    CHECK(out->completion_tokens
          == expected["usage"]["completion_tokens"].get<uint64_t>());
  }
}

TEST_CASE("a Converse answer's cache reads are the cached prompt tokens",
          "[adapters][providers][bedrock]") {
  auto model = haiku();
  auto out = adapters::adapter_for(*model, api_endpoint::chat)
               .from_provider_response(
                 answer(200, slurp(dir / "response" / "01_text_usage.in.json")),
                 *model);
  REQUIRE(out);
  CHECK(out->prompt_tokens == 12);
  CHECK(out->completion_tokens == 5);
  CHECK(out->cached_tokens == 2);
}

TEST_CASE("a Converse answer becomes an Anthropic message with the model's "
          "id and the given id",
          "[adapters][providers][bedrock]") {
  auto model = haiku();
  auto text = bedrock::to_anthropic_message(
    slurp(dir / "response" / "02_tool_use.in.json"), *model, "abc");
  if (!text)
    FAIL(message_of(text.error()));
  auto msg = nlohmann::json::parse(*text);
  CHECK(msg == nlohmann::json::parse(R"({
    "id": "msg_bedrock_abc",
    "type": "message",
    "role": "assistant",
    "model": "anthropic.claude-3-haiku-20240307-v1:0",
    "content": [
      {"type": "text", "text": "Let me check."},
      {"type": "tool_use", "id": "tooluse_abc", "name": "get_weather",
       "input": {"city": "Paris"}}
    ],
    "stop_reason": "tool_use",
    "stop_sequence": null,
    "usage": {"input_tokens": 20, "output_tokens": 8}
  })"));
}

TEST_CASE("the messages endpoint answers an Anthropic message under the "
          "alias",
          "[adapters][providers][bedrock]") {
  auto model = haiku();
  const auto& adapter = adapters::adapter_for(*model, api_endpoint::messages);
  SECTION("text with usage") {
    auto out = adapter.from_provider_response(
      answer(200, slurp(dir / "response" / "01_text_usage.in.json")), *model);
    if (!out)
      FAIL(message_of(out.error()));
    auto msg = nlohmann::json::parse(out->body);
    REQUIRE(msg.is_object());
    CHECK(msg["id"].get<std::string>().starts_with("msg_bedrock_"));
    msg.erase("id");
    CHECK(msg == nlohmann::json::parse(R"({
      "type": "message",
      "role": "assistant",
      "model": "haiku",
      "content": [{"type": "text", "text": "Hello there."}],
      "stop_reason": "end_turn",
      "stop_sequence": null,
      "usage": {"input_tokens": 10, "output_tokens": 5,
                "cache_read_input_tokens": 2}
    })"));
    CHECK(out->prompt_tokens == 12);
    CHECK(out->completion_tokens == 5);
    CHECK(out->cached_tokens == 2);
  }
  SECTION("tool use") {
    auto out = adapter.from_provider_response(
      answer(200, slurp(dir / "response" / "02_tool_use.in.json")), *model);
    REQUIRE(out);
    auto msg = nlohmann::json::parse(out->body);
    CHECK(msg["model"] == "haiku");
    CHECK(msg["stop_reason"] == "tool_use");
    REQUIRE(msg["content"].size() == 2);
    CHECK(msg["content"][1]
          == nlohmann::json::parse(
            R"({"type":"tool_use","id":"tooluse_abc","name":"get_weather",)"
            R"("input":{"city":"Paris"}})"));
  }
  SECTION("a guardrail's refusal") {
    auto out = adapter.from_provider_response(
      answer(200, slurp(dir / "response" / "05_guardrail_intervened.in.json")),
      *model);
    REQUIRE(out);
    CHECK(nlohmann::json::parse(out->body)["stop_reason"] == "refusal");
  }
}

TEST_CASE("a malformed Converse answer is upstream_invalid on both endpoints",
          "[adapters][providers][bedrock]") {
  auto model = haiku();
  for (const auto* body : {
         "not json at all",
         "[1,2]",
         "\"a string\"",
         "{}",
         R"({"output":[]})",
         R"({"output":{}})",
         R"({"output":{"message":"hi"}})",
         R"({"output":{"message":{"role":"assistant"}}})",
         R"({"output":{"message":{"role":"assistant","content":"hi"}}})",
         R"({"output":{"message":{"role":"assistant","content":["x"]}}})",
       }) {
    INFO(body);
    for (auto endpoint : {api_endpoint::chat, api_endpoint::messages}) {
      auto out = adapters::adapter_for(*model, endpoint)
                   .from_provider_response(answer(200, body), *model);
      REQUIRE_FALSE(out);
      CHECK(code_of(out.error()) == errc::upstream_invalid);
      CHECK(contains(message_of(out.error()), "'haiku'"));
    }
  }
}

// -- ConverseStream -----------------------------------------------------------

TEST_CASE("a ConverseStream translates to OpenAI chunks",
          "[adapters][providers][bedrock]") {
  auto r = run_stream(api_endpoint::chat, text_stream(), {}, true);
  INFO(r.out);
  auto events = events_of(r.out);
  REQUIRE(events.size() == 6);
  auto role = data_of(events[0]);
  CHECK(role["id"] == "chatcmpl-msg_bedrock_req-1");
  CHECK(role["object"] == "chat.completion.chunk");
  CHECK(role["model"] == "haiku");
  CHECK(role["choices"][0]["delta"]
        == nlohmann::json{{"role", "assistant"}, {"content", ""}});
  CHECK(role["choices"][0]["finish_reason"].is_null());
  CHECK(data_of(events[1])["choices"][0]["delta"]
        == nlohmann::json{{"content", "Hel"}});
  CHECK(data_of(events[2])["choices"][0]["delta"]
        == nlohmann::json{{"content", "lo"}});
  auto last = data_of(events[3]);
  CHECK(last["choices"][0]["finish_reason"] == "stop");
  CHECK(last["choices"][0]["delta"] == nlohmann::json::object());
  auto usage = data_of(events[4]);
  CHECK(usage["choices"] == nlohmann::json::array());
  CHECK(usage["usage"]
        == nlohmann::json{{"prompt_tokens", 10},
                          {"completion_tokens", 5},
                          {"total_tokens", 15}});
  for (const auto& ev : events)
    CHECK(ev.name.empty());
  CHECK(events[5].data == "[DONE]");
  CHECK(r.out.ends_with("data: [DONE]\n\n"));
  CHECK(count_of(r.out, "[DONE]") == 1);
  CHECK(r.fed == stream_state::done);
  CHECK(r.finished == stream_state::done);
  CHECK(r.content);
  CHECK(r.summary.complete);
  CHECK(r.summary.error.empty());
  CHECK(r.summary.finish_reason == "stop");
  CHECK(r.summary.prompt_tokens == 10);
  CHECK(r.summary.completion_tokens == 5);
  CHECK(r.summary.text == "Hello");

  // Without include_usage: the same, without the usage chunk.
  auto plain = run_stream(api_endpoint::chat, text_stream(), {}, false);
  auto plain_events = events_of(plain.out);
  REQUIRE(plain_events.size() == 5);
  CHECK(plain.out.find("\"usage\"") == std::string::npos);
  CHECK(plain.summary.prompt_tokens == 10);
  CHECK(plain.summary.completion_tokens == 5);
}

TEST_CASE("a ConverseStream translates the same at any byte boundary",
          "[adapters][providers][bedrock]") {
  SECTION("text, with usage") {
    check_any_split(api_endpoint::chat, text_stream(), true);
  }
  SECTION("tool use") {
    check_any_split(api_endpoint::chat, tool_stream());
  }
  SECTION("text on the messages endpoint") {
    check_any_split(api_endpoint::messages, text_stream());
  }
}

TEST_CASE("a ConverseStream's cache reads count as prompt tokens",
          "[adapters][providers][bedrock]") {
  auto input = message_start() + text_delta("ok") + block_stop()
               + message_stop("end_turn")
               + metadata(10, 1, R"(,"cacheReadInputTokens":2)");
  auto r = run_stream(api_endpoint::chat, input, {});
  CHECK(r.summary.complete);
  CHECK(r.summary.prompt_tokens == 12);
  CHECK(r.summary.cached_tokens == 2);
  CHECK(r.summary.completion_tokens == 1);
}

TEST_CASE("a ConverseStream tool use becomes tool_calls chunks",
          "[adapters][providers][bedrock]") {
  auto r = run_stream(api_endpoint::chat, tool_stream(), {});
  INFO(r.out);
  auto events = events_of(r.out);
  REQUIRE(events.size() == 7);
  CHECK(data_of(events[1])["choices"][0]["delta"]
        == nlohmann::json{{"content", "Checking."}});
  auto start = data_of(events[2])["choices"][0]["delta"];
  CHECK(start
        == nlohmann::json::parse(
          R"({"tool_calls":[{"index":0,"id":"tooluse_1","type":"function",)"
          R"("function":{"name":"get_weather","arguments":""}}]})"));
  std::vector<std::string> pieces;
  std::string arguments;
  for (size_t i = 2; i < 5; ++i) {
    auto delta = data_of(events[i])["choices"][0]["delta"];
    REQUIRE(delta.contains("tool_calls"));
    CHECK(delta["tool_calls"][0]["index"] == 0);
    auto piece
      = delta["tool_calls"][0]["function"]["arguments"].get<std::string>();
    pieces.push_back(piece);
    arguments += piece;
  }
  CHECK(pieces == std::vector<std::string>{"", "{\"city\":", "\"Paris\"}"});
  CHECK(arguments == R"({"city":"Paris"})");
  CHECK(data_of(events[5])["choices"][0]["finish_reason"] == "tool_calls");
  CHECK(events[6].data == "[DONE]");
  CHECK(r.summary.complete);
  CHECK(r.summary.finish_reason == "tool_calls");
  CHECK(r.summary.prompt_tokens == 20);
  CHECK(r.summary.completion_tokens == 8);
  CHECK(r.content);
}

TEST_CASE("an exception in a ConverseStream ends it with an error event",
          "[adapters][providers][bedrock]") {
  auto input = message_start() + text_delta("Hel")
               + exception_frame("throttlingException",
                                 R"({"message":"Too many requests"})")
               + text_delta("lo") + message_stop("end_turn") + metadata(1, 1);
  SECTION("on the chat endpoint") {
    auto r = run_stream(api_endpoint::chat, input, {});
    INFO(r.out);
    auto events = events_of(r.out);
    REQUIRE(events.size() == 3);
    CHECK(data_of(events[1])["choices"][0]["delta"]["content"] == "Hel");
    auto error = data_of(events[2]);
    REQUIRE(error.contains("error"));
    CHECK(contains(events[2].data, "Too many requests"));
    CHECK(error["error"]["message"] == "Too many requests");
    CHECK(error["error"]["type"] == "rate_limit_error");
    CHECK(r.out.find("[DONE]") == std::string::npos);
    CHECK(r.out.find("\"lo\"") == std::string::npos);
    CHECK(r.fed == stream_state::failed);
    CHECK(r.finished == stream_state::failed);
    CHECK_FALSE(r.summary.complete);
    CHECK(r.summary.provider_error);
    CHECK(r.summary.error == "Too many requests");
    check_any_split(api_endpoint::chat, input);
  }
  SECTION("on the messages endpoint") {
    auto r = run_stream(api_endpoint::messages, input, {});
    INFO(r.out);
    auto events = events_of(r.out);
    REQUIRE_FALSE(events.empty());
    const auto& last = events.back();
    CHECK(last.name == "error");
    CHECK(data_of(last)
          == nlohmann::json::parse(
            R"({"type":"error","error":{"type":"rate_limit_error",)"
            R"("message":"Too many requests"}})"));
    CHECK(count_of(r.out, "event: error") == 1);
    CHECK(r.out.find("message_stop") == std::string::npos);
    CHECK_FALSE(r.summary.complete);
    CHECK(r.summary.provider_error);
    check_any_split(api_endpoint::messages, input);
  }
  SECTION("an exception without a message names its kind") {
    auto other
      = message_start() + exception_frame("serviceUnavailableException", "{}");
    auto r = run_stream(api_endpoint::chat, other, {});
    INFO(r.out);
    auto events = events_of(r.out);
    REQUIRE(events.size() == 2);
    auto error = data_of(events[1]);
    CHECK(error["error"]["type"] == "overloaded_error");
    CHECK(contains(error["error"]["message"].get<std::string>(),
                   "serviceUnavailableException"));
  }
}

TEST_CASE("a ConverseStream frame with a bad CRC fails the stream once",
          "[adapters][providers][bedrock]") {
  auto bad = text_delta("lo");
  bad[bad.size() - 6] ^= 0x01; // a payload byte: the message CRC fails
  auto input = message_start() + text_delta("Hel") + bad
               + message_stop("end_turn") + metadata(10, 5);
  auto r = run_stream(api_endpoint::chat, input, {});
  INFO(r.out);
  auto events = events_of(r.out);
  REQUIRE(events.size() == 3);
  CHECK(data_of(events[1])["choices"][0]["delta"]["content"] == "Hel");
  CHECK(contains(events[2].data, "malformed event stream"));
  CHECK(count_of(r.out, "malformed event stream") == 1);
  CHECK(count_of(r.out, "\"error\"") == 1);
  CHECK(r.out.find("[DONE]") == std::string::npos);
  CHECK(r.fed == stream_state::failed);
  CHECK(r.finished == stream_state::failed);
  CHECK_FALSE(r.summary.complete);
  CHECK(contains(r.summary.error, "malformed event stream"));
  check_any_split(api_endpoint::chat, input);

  SECTION("a bad prelude before anything else") {
    auto broken = message_start();
    broken[2] ^= 0x01;
    auto b = run_stream(api_endpoint::chat, broken + text_delta("x"), {});
    auto only = events_of(b.out);
    REQUIRE(only.size() == 1);
    CHECK(contains(only[0].data, "malformed event stream"));
    CHECK(b.fed == stream_state::failed);
  }
}

TEST_CASE("a ConverseStream that ends after messageStop without metadata "
          "completes on finish",
          "[adapters][providers][bedrock]") {
  auto input = message_start() + text_delta("Hel") + text_delta("lo")
               + block_stop() + message_stop("end_turn");
  SECTION("on the chat endpoint") {
    auto model = haiku();
    auto decoder = adapters::adapter_for(*model, api_endpoint::chat)
                     .make_stream_decoder(model, options_of());
    std::string out;
    CHECK(decoder->feed(input, out) == stream_state::open);
    CHECK(events_of(out).size() == 3);
    CHECK(out.find("[DONE]") == std::string::npos);
    CHECK(decoder->finish(out) == stream_state::done);
    INFO(out);
    auto events = events_of(out);
    REQUIRE(events.size() == 5);
    CHECK(data_of(events[3])["choices"][0]["finish_reason"] == "stop");
    CHECK(events[4].data == "[DONE]");
    CHECK(decoder->summary().complete);
    CHECK(decoder->summary().finish_reason == "stop");
    CHECK(decoder->summary().prompt_tokens == 0);
    CHECK(decoder->summary().completion_tokens == 0);
    check_any_split(api_endpoint::chat, input);
  }
  SECTION("on the messages endpoint, an open block closed") {
    auto open
      = message_start() + text_delta("Hel") + message_stop("max_tokens");
    auto r = run_stream(api_endpoint::messages, open, {});
    INFO(r.out);
    std::vector<std::string> names;
    for (const auto& ev : events_of(r.out))
      names.push_back(ev.name);
    CHECK(names
          == std::vector<std::string>{
            "message_start", "content_block_start", "content_block_delta",
            "content_block_stop", "message_delta", "message_stop"});
    auto delta = data_of(events_of(r.out)[4]);
    CHECK(delta["delta"]["stop_reason"] == "max_tokens");
    CHECK(r.finished == stream_state::done);
    CHECK(r.summary.complete);
    CHECK(r.summary.finish_reason == "max_tokens");
  }
}

TEST_CASE("a ConverseStream cut before messageStop fails on finish",
          "[adapters][providers][bedrock]") {
  auto input = message_start() + text_delta("Hel");
  auto r = run_stream(api_endpoint::chat, input, {});
  INFO(r.out);
  CHECK(r.fed == stream_state::open);
  CHECK(r.finished == stream_state::failed);
  CHECK(r.out.find("[DONE]") == std::string::npos);
  auto events = events_of(r.out);
  REQUIRE(events.size() == 3);
  CHECK(data_of(events[2]).contains("error"));
  CHECK_FALSE(r.summary.complete);
  CHECK_FALSE(r.summary.error.empty());
}

TEST_CASE("a ConverseStream decoder's state follows finish() and abort()",
          "[adapters][providers][bedrock]") {
  // The HTTP client reads state() after finish() (whether the connection
  // ended cleanly) and after abort().
  auto model = haiku();
  auto decoder = adapters::adapter_for(*model, api_endpoint::chat)
                   .make_stream_decoder(model, options_of());
  std::string out;
  SECTION("finish after a messageStop without metadata") {
    decoder->feed(
      message_start() + text_delta("Hel") + message_stop("end_turn"), out);
    CHECK(decoder->finish(out) == stream_state::done);
    CHECK(decoder->state() == stream_state::done);
  }
  SECTION("abort") {
    decoder->feed(message_start() + text_delta("Hel"), out);
    CHECK(decoder->abort(out, "idle timeout") == stream_state::failed);
    CHECK(decoder->state() == stream_state::failed);
    CHECK(count_of(out, "idle timeout") == 1);
    auto before = out;
    decoder->feed(text_delta("lo") + message_stop("end_turn") + metadata(1, 1),
                  out);
    CHECK(out == before);
  }
}

TEST_CASE("the messages endpoint relays a ConverseStream as Anthropic events",
          "[adapters][providers][bedrock]") {
  auto r = run_stream(api_endpoint::messages, text_stream(), {});
  INFO(r.out);
  auto events = events_of(r.out);
  std::vector<std::string> names;
  for (const auto& ev : events)
    names.push_back(ev.name);
  REQUIRE(names
          == std::vector<std::string>{
            "message_start", "content_block_start", "content_block_delta",
            "content_block_delta", "content_block_stop", "message_delta",
            "message_stop"});
  auto start = data_of(events[0]);
  CHECK(start["type"] == "message_start");
  CHECK(start["message"]["model"] == "haiku");
  CHECK(start["message"]["id"] == "msg_bedrock_req-1");
  CHECK(start["message"]["role"] == "assistant");
  CHECK(data_of(events[1])["content_block"]
        == nlohmann::json{{"type", "text"}, {"text", ""}});
  CHECK(data_of(events[2])["delta"]
        == nlohmann::json{{"type", "text_delta"}, {"text", "Hel"}});
  CHECK(data_of(events[3])["delta"]
        == nlohmann::json{{"type", "text_delta"}, {"text", "lo"}});
  CHECK(data_of(events[4])["index"] == 0);
  auto delta = data_of(events[5]);
  CHECK(delta["delta"]["stop_reason"] == "end_turn");
  CHECK(delta["usage"]
        == nlohmann::json{{"input_tokens", 10}, {"output_tokens", 5}});
  CHECK(r.out.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}"
                        "\n\n"));
  CHECK(r.out.find("[DONE]") == std::string::npos);
  CHECK(r.fed == stream_state::done);
  CHECK(r.finished == stream_state::done);
  CHECK(r.summary.complete);
  CHECK(r.summary.finish_reason == "end_turn");
  CHECK(r.summary.prompt_tokens == 10);
  CHECK(r.summary.completion_tokens == 5);
  CHECK(r.summary.text == "Hello");
  // No clock in these events: the bytes are the same however split.
  CHECK(
    run_stream(api_endpoint::messages, text_stream(), every_byte(text_stream()))
      .out
    == r.out);
}

// -- signed requests ----------------------------------------------------------

TEST_CASE("a bedrock model with a profile of a credentials file loads",
          "[adapters][providers][bedrock]") {
  aws_env env;
  temp_dir files;
  auto file = files.write("credentials", credentials_text);
  auto m = loaded("b", bedrock_keys(profile_keys(file)));
  CHECK(m->provider == "bedrock");
  CHECK(m->model == haiku_id);
  CHECK(m->base_url == "https://bedrock-runtime.us-east-1.amazonaws.com");
  CHECK(m->target.host == "bedrock-runtime.us-east-1.amazonaws.com");
  CHECK(m->target.tls);
  CHECK(m->target.port == 443);
  const auto& o = bedrock_of(*m);
  CHECK(o.region == "us-east-1");
  CHECK_FALSE(o.web_identity);
  CHECK(o.credentials.access_key_id == example_key_id);
  CHECK(o.credentials.secret_access_key.reveal() == example_secret);
  CHECK(o.credentials.session_token.empty());
  CHECK(o.credentials_source == "profile test");
  CHECK(bedrock::credentials_of(*m).access_key_id == example_key_id);
  // Static credentials: nothing to fetch, and no health check.
  CHECK_FALSE(adapters::adapter_for(*m).credential_request(*m).has_value());
  CHECK_FALSE(adapters::adapter_for(*m).health_request(*m).has_value());
}

TEST_CASE("a chat request to bedrock is a SigV4-signed Converse request",
          "[adapters][providers][bedrock]") {
  aws_env env;
  temp_dir files;
  auto file = files.write("credentials", credentials_text);
  auto m = loaded("b", bedrock_keys(profile_keys(file)));
  auto creds = creds_of(example_key_id, example_secret);

  SECTION("whole") {
    auto req = request_for(*m);
    CHECK(req.method == "POST");
    CHECK(req.path == haiku_path);
    CHECK(req.target.host == "bedrock-runtime.us-east-1.amazonaws.com");
    CHECK(req.target.tls);
    CHECK(req.target.port == 443);
    CHECK(header(req, "Content-Type") == "application/json");
    CHECK(header(req, "Accept") == "application/json");
    CHECK(header(req, "Host") == "bedrock-runtime.us-east-1.amazonaws.com");
    auto date = header(req, "X-Amz-Date");
    REQUIRE(date.size() == 16);
    CHECK(date[8] == 'T');
    CHECK(date.back() == 'Z');
    CHECK(header(req, "X-Amz-Content-Sha256") == bedrock::sha256_hex(req.body));
    CHECK_FALSE(has_header(req, "X-Amz-Security-Token"));
    CHECK_FALSE(has_header(req, "x-api-key"));
    CHECK_FALSE(has_header(req, "anthropic-version"));
    auto authz = header(req, "Authorization");
    CHECK(authz.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"));
    CHECK(authz.starts_with(
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/" + date.substr(0, 8)
      + "/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;"
        "x-amz-content-sha256;x-amz-date, Signature="));
    CHECK(recomputed_authorization(req, creds, "us-east-1") == authz);
    // The check can fail: another secret signs differently.
    CHECK(recomputed_authorization(
            req, creds_of(example_key_id, "another-secret"), "us-east-1")
          != authz);
    CHECK_FALSE(contains(authz, example_secret));
    auto body = nlohmann::json::parse(req.body);
    CHECK_FALSE(body.contains("model"));
    CHECK(body.contains("messages"));
    CHECK(body
          == nlohmann::json::parse(
            R"({"system":[{"text":"Be brief."}],)"
            R"("messages":[{"role":"user","content":[{"text":"hi"}]}],)"
            R"("inferenceConfig":{"maxTokens":64}})"));
  }
  SECTION("streamed") {
    auto req = request_for(
      *m, R"({"model":"b","messages":[{"role":"user","content":"hi"}],)"
          R"("stream":true})");
    CHECK(req.path
          == "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream");
    CHECK(header(req, "Accept") == "application/vnd.amazon.eventstream");
    auto body = nlohmann::json::parse(req.body);
    CHECK_FALSE(body.contains("stream"));
    CHECK_FALSE(body.contains("model"));
    CHECK(body["messages"]
          == nlohmann::json::parse(
            R"([{"role":"user","content":[{"text":"hi"}]}])"));
    // The model's default max_tokens fills in, as for anthropic.
    CHECK(body["inferenceConfig"]["maxTokens"] == m->default_max_tokens);
    CHECK(header(req, "X-Amz-Content-Sha256") == bedrock::sha256_hex(req.body));
    CHECK(recomputed_authorization(req, creds, "us-east-1")
          == header(req, "Authorization"));
  }
  SECTION("a chat request Converse cannot take") {
    auto req = adapters::adapter_for(*m, api_endpoint::chat)
                 .to_provider_request(
                   chat_payload{
                     R"({"model":"b","messages":[{"role":"user","content":[)"
                     R"({"type":"image_url","image_url":)"
                     R"({"url":"https://example.com/a.png"}}]}]})"},
                   *m);
    REQUIRE_FALSE(req);
    CHECK(code_of(req.error()) == errc::invalid_request);
    CHECK(param_of(req.error()) == "messages.0.content.0.source");
  }
}

TEST_CASE("the usual chat request written from its bytes is the document "
          "form's Converse request, byte for byte",
          "[adapters][providers][bedrock]") {
  // The Anthropic golden requests, the fuzz corpus and variants of the
  // shapes the fast path takes: the body sent for the bytes (fast where it
  // can be) is the one sent for the same request as a document (always
  // translated through Anthropic's format).
  auto bodies = chat_request_bodies();
  auto model = haiku();
  const auto& adapter = adapters::adapter_for(*model, api_endpoint::chat);
  size_t fast = 0;
  size_t compared = 0;
  for (const auto& body : bodies) {
    INFO(body);
    // (Bodies without messages never reach an adapter: the request check
    // refuses them.)
    auto read = json::read(body, json::client_limits);
    if (!read || !read->root().is_object()
        || !json::member(read->root(), "messages"))
      continue;
    auto doc = json::parse(body, json::client_limits);
    REQUIRE(doc);
    auto from_doc = adapter.to_provider_request(
      chat_payload{std::make_shared<const nlohmann::ordered_json>(*doc)},
      *model);
    auto from_bytes = adapter.to_provider_request(chat_payload{body}, *model);
    REQUIRE(static_cast<bool>(from_doc) == static_cast<bool>(from_bytes));
    if (!from_doc)
      continue;
    ++compared;
    CHECK(from_bytes->body == from_doc->body);
    CHECK(from_bytes->path == from_doc->path);
    if (adapters::anthropic::read_simple_chat(read->root(), *model))
      ++fast;
  }
  CHECK(compared >= 30);
  CHECK(fast >= 8);
}

TEST_CASE("a Messages API request to bedrock is the client's body as a "
          "Converse request",
          "[adapters][providers][bedrock]") {
  aws_env env;
  temp_dir files;
  auto file = files.write("credentials", credentials_text);
  auto m = loaded("b", bedrock_keys(profile_keys(file)
                                    + "    endpoints: [chat, messages]\n"));
  CHECK(m->endpoints.has(api_endpoint::messages));
  auto req = request_for(
    *m,
    R"({"model":"b","max_tokens":32,"system":"Be brief.","metadata":)"
    R"({"user_id":"u"},"messages":[{"role":"user","content":"hi"}],)"
    R"("stream":true})",
    api_endpoint::messages);
  CHECK(req.path
        == "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream");
  CHECK(header(req, "Accept") == "application/vnd.amazon.eventstream");
  CHECK(nlohmann::json::parse(req.body)
        == nlohmann::json::parse(
          R"({"system":[{"text":"Be brief."}],)"
          R"("messages":[{"role":"user","content":[{"text":"hi"}]}],)"
          R"("inferenceConfig":{"maxTokens":32}})"));
  CHECK(recomputed_authorization(req, creds_of(example_key_id, example_secret),
                                 "us-east-1")
        == header(req, "Authorization"));
  auto refused
    = adapters::adapter_for(*m, api_endpoint::messages)
        .to_provider_request(
          chat_payload{R"({"model":"b","max_tokens":8,"messages":[)"
                       R"({"role":"user","content":[{"type":)"
                       R"("document","source":{"type":"text",)"
                       R"("media_type":"text/plain","data":"x"}}]}]})"},
          *m);
  REQUIRE_FALSE(refused);
  CHECK(param_of(refused.error()) == "messages.0.content.0.type");
}

// -- config -------------------------------------------------------------------

TEST_CASE("bedrock's config errors name their YAML path",
          "[adapters][providers][bedrock]") {
  aws_env env;
  temp_dir files;
  auto file = files.write("credentials", credentials_text);
  auto token = files.write("token", web_token + "\n");

  SECTION("region missing") {
    auto errors = model_errors("b", bedrock_keys(profile_keys(file), ""));
    INFO(errors);
    CHECK(line_of(errors, "models.b.region: ")
          == "models.b.region: required (or set AWS_REGION)");
  }
  SECTION("a region that is not one") {
    auto errors
      = model_errors("b", bedrock_keys(profile_keys(file), "us_east_1"));
    INFO(errors);
    CHECK(line_of(errors, "models.b.region: ")
          == "models.b.region: expected a region such as us-east-1");
  }
  SECTION("api_key set") {
    auto errors = model_errors(
      "b", bedrock_keys(profile_keys(file)
                        + "    api_key: \"sk-should-not-be-here\"\n"));
    INFO(errors);
    auto line = line_of(errors, "models.b.api_key: ");
    CHECK(contains(line, "not used by bedrock"));
    CHECK_FALSE(contains(errors, "sk-should-not-be-here"));
  }
  SECTION("an unreadable credentials file") {
    auto missing = (files.path / "no-such-file").string();
    auto errors = model_errors("b", bedrock_keys(profile_keys(missing)));
    INFO(errors);
    CHECK(line_of(errors, "models.b.aws_credentials_file: ")
          == "models.b.aws_credentials_file: cannot read the AWS "
             "credentials file '"
               + missing + "'");
  }
  SECTION("a profile the file does not have") {
    auto only_default = files.write(
      "default-only", "[default]\naws_access_key_id = AKIDDEFAULT\n"
                      "aws_secret_access_key = defaultsecretkey\n");
    auto errors = model_errors("b", bedrock_keys(profile_keys(only_default)));
    INFO(errors);
    CHECK(line_of(errors, "models.b.aws_credentials_file: ")
          == "models.b.aws_credentials_file: no profile 'test' in '"
               + only_default + "'");
  }
  SECTION("a profile without keys") {
    auto keyless = files.write(
      "keyless", "[test]\nregion = us-east-1\naws_access_key_id = AKIDONLY\n");
    auto errors = model_errors("b", bedrock_keys(profile_keys(keyless)));
    INFO(errors);
    auto line = line_of(errors, "models.b.aws_credentials_file: ");
    CHECK(contains(line, "profile 'test'"));
    CHECK(contains(line, "has no aws_access_key_id and aws_secret_access_key"));
  }
  SECTION("no credentials anywhere: the default file under HOME") {
    auto errors = model_errors("b", bedrock_keys(""));
    INFO(errors);
    CHECK(line_of(errors, "models.b.aws_credentials_file: ")
          == "models.b.aws_credentials_file: cannot read the AWS "
             "credentials file '"
               + (env.home.path / ".aws" / "credentials").string() + "'");
  }
  SECTION("role_arn without web_identity_token_file") {
    auto errors
      = model_errors("b", bedrock_keys("    role_arn: \"" + role_arn + "\"\n"));
    INFO(errors);
    CHECK(line_of(errors, "models.b.web_identity_token_file: ")
          == "models.b.web_identity_token_file: required with role_arn (or "
             "set AWS_WEB_IDENTITY_TOKEN_FILE)");
  }
  SECTION("web_identity_token_file without role_arn") {
    auto errors = model_errors(
      "b", bedrock_keys("    web_identity_token_file: \"" + token + "\"\n"));
    INFO(errors);
    CHECK(line_of(errors, "models.b.role_arn: ")
          == "models.b.role_arn: required with web_identity_token_file (or "
             "set AWS_ROLE_ARN)");
  }
  SECTION("an unreadable web identity token file") {
    auto missing = (files.path / "no-token").string();
    auto errors = model_errors("b", bedrock_keys(web_identity_keys(missing)));
    INFO(errors);
    CHECK(line_of(errors, "models.b.web_identity_token_file: ")
          == "models.b.web_identity_token_file: cannot read '" + missing + "'");
  }
  SECTION("an sts_endpoint that is not https") {
    auto errors = model_errors(
      "b", bedrock_keys(web_identity_keys(token, "http://example.com")));
    INFO(errors);
    CHECK(
      contains(line_of(errors, "models.b.sts_endpoint: "), "must be https"));
  }
  SECTION("an endpoint bedrock cannot serve") {
    auto errors = model_errors(
      "b", bedrock_keys(profile_keys(file) + "    endpoints: [completions]\n"));
    INFO(errors);
    auto line = line_of(errors, "models.b.endpoints: ");
    CHECK(contains(line, "cannot serve"));
    CHECK(contains(line, "completions"));
  }
  SECTION("a key bedrock does not have") {
    auto errors = model_errors(
      "b", bedrock_keys(profile_keys(file) + "    aws_region: us-east-1\n"));
    INFO(errors);
    CHECK(contains(line_of(errors, "models.b.aws_region: "), "unknown key"));
  }
  SECTION("AWS_ACCESS_KEY_ID without AWS_SECRET_ACCESS_KEY") {
    aws_env::set("AWS_ACCESS_KEY_ID", "AKIDENV");
    auto errors = model_errors("b", bedrock_keys(""));
    INFO(errors);
    CHECK(line_of(errors, "models.b: ")
          == "models.b: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY "
             "is not");
  }
}

TEST_CASE("bedrock's credentials come from the environment, a profile or "
          "the default file, in that order",
          "[adapters][providers][bedrock]") {
  aws_env env;
  temp_dir files;
  auto file = files.write("credentials", credentials_text);

  SECTION("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY") {
    aws_env::set("AWS_ACCESS_KEY_ID", "AKIDENV");
    aws_env::set("AWS_SECRET_ACCESS_KEY", "envsecretkey");
    // A default file under HOME does not win over the environment.
    auto home_file = env.home.write(".aws/credentials", credentials_text);
    CHECK(fs::exists(home_file));
    auto m = loaded("b", bedrock_keys(""));
    const auto& o = bedrock_of(*m);
    CHECK(o.credentials_source == "environment");
    CHECK(o.credentials.access_key_id == "AKIDENV");
    auto req = request_for(*m);
    auto authz = header(req, "Authorization");
    CHECK(authz.starts_with("AWS4-HMAC-SHA256 Credential=AKIDENV/"));
    CHECK_FALSE(has_header(req, "X-Amz-Security-Token"));
    CHECK(recomputed_authorization(req, creds_of("AKIDENV", "envsecretkey"),
                                   "us-east-1")
          == authz);
  }
  SECTION("with AWS_SESSION_TOKEN") {
    aws_env::set("AWS_ACCESS_KEY_ID", "ASIAENV");
    aws_env::set("AWS_SECRET_ACCESS_KEY", "envsecretkey");
    aws_env::set("AWS_SESSION_TOKEN", "envsessiontoken");
    auto m = loaded("b", bedrock_keys(""));
    auto req = request_for(*m);
    CHECK(header(req, "X-Amz-Security-Token") == "envsessiontoken");
    auto authz = header(req, "Authorization");
    CHECK(authz.starts_with("AWS4-HMAC-SHA256 Credential=ASIAENV/"));
    CHECK(contains(authz, "x-amz-date;x-amz-security-token, Signature="));
    CHECK(recomputed_authorization(
            req, creds_of("ASIAENV", "envsecretkey", "envsessiontoken"),
            "us-east-1")
          == authz);
  }
  SECTION("a profile in the config wins over the environment") {
    aws_env::set("AWS_ACCESS_KEY_ID", "AKIDENV");
    aws_env::set("AWS_SECRET_ACCESS_KEY", "envsecretkey");
    auto m = loaded("b", bedrock_keys(profile_keys(file)));
    CHECK(bedrock_of(*m).credentials.access_key_id == example_key_id);
    CHECK(header(request_for(*m), "Authorization")
            .starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"));
  }
  SECTION("AWS_SHARED_CREDENTIALS_FILE and AWS_PROFILE") {
    aws_env::set("AWS_SHARED_CREDENTIALS_FILE", file);
    aws_env::set("AWS_PROFILE", "test");
    auto m = loaded("b", bedrock_keys(""));
    CHECK(bedrock_of(*m).credentials.access_key_id == example_key_id);
    CHECK(bedrock_of(*m).credentials_source == "profile test");
  }
  SECTION("the default profile of ~/.aws/credentials") {
    (void)env.home.write(".aws/credentials", credentials_text);
    auto m = loaded("b", bedrock_keys(""));
    CHECK(bedrock_of(*m).credentials.access_key_id == "AKIDDEFAULT");
    CHECK(bedrock_of(*m).credentials_source == "profile default");
  }
}

TEST_CASE("bedrock's region sets its default base_url and signing scope",
          "[adapters][providers][bedrock]") {
  aws_env env;
  temp_dir files;
  auto file = files.write("credentials", credentials_text);
  SECTION("region eu-west-1") {
    auto m = loaded("b", bedrock_keys(profile_keys(file), "eu-west-1"));
    CHECK(m->base_url == "https://bedrock-runtime.eu-west-1.amazonaws.com");
    CHECK(m->target.host == "bedrock-runtime.eu-west-1.amazonaws.com");
    auto req = request_for(*m);
    CHECK(req.target.host == "bedrock-runtime.eu-west-1.amazonaws.com");
    CHECK(header(req, "Host") == "bedrock-runtime.eu-west-1.amazonaws.com");
    CHECK(contains(header(req, "Authorization"),
                   "/eu-west-1/bedrock/aws4_request"));
    CHECK(recomputed_authorization(
            req, creds_of(example_key_id, example_secret), "eu-west-1")
          == header(req, "Authorization"));
  }
  SECTION("AWS_REGION") {
    aws_env::set("AWS_REGION", "eu-west-1");
    aws_env::set("AWS_DEFAULT_REGION", "ap-south-1");
    auto m = loaded("b", bedrock_keys(profile_keys(file), ""));
    CHECK(bedrock_of(*m).region == "eu-west-1");
    CHECK(m->base_url == "https://bedrock-runtime.eu-west-1.amazonaws.com");
  }
  SECTION("AWS_DEFAULT_REGION") {
    aws_env::set("AWS_DEFAULT_REGION", "ap-south-1");
    auto m = loaded("b", bedrock_keys(profile_keys(file), ""));
    CHECK(bedrock_of(*m).region == "ap-south-1");
    CHECK(m->base_url == "https://bedrock-runtime.ap-south-1.amazonaws.com");
  }
  SECTION("the region key wins over the environment") {
    aws_env::set("AWS_REGION", "ap-south-1");
    auto m = loaded("b", bedrock_keys(profile_keys(file), "eu-west-1"));
    CHECK(bedrock_of(*m).region == "eu-west-1");
  }
  SECTION("a base_url of its own (a VPC endpoint)") {
    auto m = loaded("b", bedrock_keys(profile_keys(file)
                                      + "    base_url: "
                                        "\"https://vpce.example.com\"\n"));
    CHECK(m->base_url == "https://vpce.example.com");
    auto req = request_for(*m);
    CHECK(req.target.host == "vpce.example.com");
    CHECK(header(req, "Host") == "vpce.example.com");
    CHECK(contains(header(req, "Authorization"),
                   "/us-east-1/bedrock/aws4_request"));
  }
}

// -- STS ----------------------------------------------------------------------

TEST_CASE("a web identity's credential request is STS "
          "AssumeRoleWithWebIdentity with its token file",
          "[adapters][providers][bedrock]") {
  aws_env env;
  temp_dir files;
  auto token = files.write("token", "  " + web_token + "\n");
  auto m = loaded("b", bedrock_keys(web_identity_keys(token)));
  const auto& o = bedrock_of(*m);
  CHECK(o.web_identity);
  CHECK(o.role_arn == role_arn);
  CHECK(o.role_session_name == "pw-router");
  CHECK(o.sts.host == "127.0.0.1");
  CHECK(o.sts.port == 1234);
  CHECK_FALSE(o.sts.tls);

  const auto& adapter = adapters::adapter_for(*m);
  auto req = adapter.credential_request(*m);
  REQUIRE(req.has_value());
  if (!*req)
    FAIL(message_of(req->error()));
  const auto& post = **req;
  CHECK(post.method == "POST");
  CHECK(post.target.host == "127.0.0.1");
  CHECK(post.target.port == 1234);
  CHECK_FALSE(post.target.tls);
  CHECK(post.path == "/");
  CHECK(header(post, "Content-Type") == "application/x-www-form-urlencoded");
  CHECK(header(post, "Accept") == "text/xml");
  // STS's AssumeRoleWithWebIdentity is not signed.
  CHECK_FALSE(has_header(post, "Authorization"));
  INFO(post.body);
  auto fields = form_fields(post.body);
  CHECK(fields.count("Action=AssumeRoleWithWebIdentity") == 1);
  CHECK(fields.count("Version=2011-06-15") == 1);
  CHECK(fields.count("RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2F"
                     "pw-test")
        == 1);
  CHECK(fields.count("RoleArn=" + adapters::oauth::percent_encoded(role_arn))
        == 1);
  CHECK(fields.count("RoleSessionName=pw-router") == 1);
  CHECK(fields.count("WebIdentityToken=" + web_token) == 1);
  CHECK(fields.count("DurationSeconds=3600") == 1);

  // The platform rotates the token: it is read again at each fetch.
  (void)files.write("token", "eyJrotated.token");
  auto again = adapter.credential_request(*m);
  REQUIRE(again.has_value());
  REQUIRE(*again);
  CHECK(form_fields((*again)->body).count("WebIdentityToken=eyJrotated.token")
        == 1);

  // Gone: an error naming the file.
  fs::remove(token);
  auto gone = adapter.credential_request(*m);
  REQUIRE(gone.has_value());
  REQUIRE_FALSE(*gone);
  CHECK(contains(message_of(gone->error()), token));
}

TEST_CASE("a web identity's STS endpoint, session name and variables",
          "[adapters][providers][bedrock]") {
  aws_env env;
  temp_dir files;
  auto token = files.write("token", web_token);
  SECTION("the regional STS endpoint by default") {
    auto m
      = loaded("b", bedrock_keys(web_identity_keys(token, ""), "eu-west-1"));
    const auto& o = bedrock_of(*m);
    CHECK(o.sts.host == "sts.eu-west-1.amazonaws.com");
    CHECK(o.sts.tls);
    auto req = adapters::adapter_for(*m).credential_request(*m);
    REQUIRE(req.has_value());
    REQUIRE(*req);
    CHECK((*req)->target.host == "sts.eu-west-1.amazonaws.com");
    CHECK((*req)->path == "/");
  }
  SECTION("role_session_name") {
    auto m = loaded("b", bedrock_keys(web_identity_keys(token)
                                      + "    role_session_name: gw-1\n"));
    auto req = adapters::adapter_for(*m).credential_request(*m);
    REQUIRE(req.has_value());
    REQUIRE(*req);
    CHECK(form_fields((*req)->body).count("RoleSessionName=gw-1") == 1);
  }
  SECTION("AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE") {
    aws_env::set("AWS_ROLE_ARN", role_arn);
    aws_env::set("AWS_WEB_IDENTITY_TOKEN_FILE", token);
    auto m = loaded("b", bedrock_keys("    sts_endpoint: "
                                      "\"http://127.0.0.1:1234\"\n"));
    const auto& o = bedrock_of(*m);
    CHECK(o.web_identity);
    CHECK(o.role_arn == role_arn);
    CHECK(o.web_identity_token_file == token);
    auto req = adapters::adapter_for(*m).credential_request(*m);
    REQUIRE(req.has_value());
    REQUIRE(*req);
    CHECK(form_fields((*req)->body).count("WebIdentityToken=" + web_token)
          == 1);
  }
}

TEST_CASE("STS's answer becomes packed temporary credentials",
          "[adapters][providers][bedrock]") {
  aws_env env;
  temp_dir files;
  auto token = files.write("token", web_token + "\n");
  auto m = loaded("b", bedrock_keys(web_identity_keys(token)));
  const auto& adapter = adapters::adapter_for(*m);

  SECTION("credentials expiring in an hour") {
    auto expiration = iso_from_now(3600);
    INFO(expiration);
    auto cred = adapter.credential_from(
      answer(200, sts_answer(expiration), "text/xml"), *m);
    if (!cred)
      FAIL(message_of(cred.error()));
    CHECK(cred->lifetime.count() >= 3500);
    CHECK(cred->lifetime.count() <= 3700);
    auto c = bedrock::unpack(cred->token.reveal());
    CHECK(c.access_key_id == "ASIAX");
    CHECK(c.secret_access_key.reveal() == "sec");
    CHECK(c.session_token.reveal() == "tok");
  }
  SECTION("no Expiration: a short lifetime") {
    auto cred
      = adapter.credential_from(answer(200, sts_answer(""), "text/xml"), *m);
    REQUIRE(cred);
    CHECK(cred->lifetime.count() == 300);
  }
  SECTION("a refusal names STS's code, never the token") {
    auto refused = adapter.credential_from(
      answer(400,
             "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/"
             "2011-06-15/\">\n"
             "  <Error>\n"
             "    <Type>Sender</Type>\n"
             "    <Code>InvalidIdentityToken</Code>\n"
             "    <Message>Couldn't retrieve verification key from your "
             "identity provider for token "
               + web_token
               + "</Message>\n"
                 "  </Error>\n"
                 "  <RequestId>4b1b1a6a-0000-0000-0000-000000000000"
                 "</RequestId>\n"
                 "</ErrorResponse>\n",
             "text/xml"),
      *m);
    REQUIRE_FALSE(refused);
    auto text = message_of(refused.error());
    INFO(text);
    CHECK(code_of(refused.error()) == errc::upstream_failed);
    CHECK(contains(text, "InvalidIdentityToken"));
    CHECK(contains(text, "HTTP 400"));
    CHECK_FALSE(contains(text, web_token));
  }
  SECTION("an answer without credentials") {
    auto empty = adapter.credential_from(
      answer(200, "<AssumeRoleWithWebIdentityResponse/>", "text/xml"), *m);
    REQUIRE_FALSE(empty);
    CHECK(contains(message_of(empty.error()), "no credentials"));
  }
  SECTION("STS out of reach") {
    upstream_result r;
    r.failure = upstream_failure::connect;
    r.detail = "connection refused";
    auto failed = adapter.credential_from(r, *m);
    REQUIRE_FALSE(failed);
    CHECK(contains(message_of(failed.error()), "could not be reached"));
  }
}

TEST_CASE("temporary credentials sign with their session token",
          "[adapters][providers][bedrock]") {
  aws_env env;
  temp_dir files;
  auto token = files.write("token", web_token + "\n");
  auto m = loaded("b", bedrock_keys(web_identity_keys(token)));
  auto creds = creds_of("ASIAX", "sec", "tok");
  auto copy = std::make_shared<model_config>(*m);
  copy->access_token = redacted_string{bedrock::pack(creds)};
  auto back = bedrock::credentials_of(*copy);
  CHECK(back.access_key_id == "ASIAX");
  CHECK(back.secret_access_key.reveal() == "sec");
  CHECK(back.session_token.reveal() == "tok");
  auto req = request_for(*copy);
  CHECK(req.path == haiku_path);
  CHECK(header(req, "X-Amz-Security-Token") == "tok");
  auto authz = header(req, "Authorization");
  CHECK(authz.starts_with("AWS4-HMAC-SHA256 Credential=ASIAX/"));
  CHECK(contains(authz, "SignedHeaders=content-type;host;"
                        "x-amz-content-sha256;x-amz-date;"
                        "x-amz-security-token, Signature="));
  CHECK(recomputed_authorization(req, creds, "us-east-1") == authz);
}

TEST_CASE("pack and unpack round-trip temporary credentials",
          "[adapters][providers][bedrock]") {
  auto c = bedrock::unpack(bedrock::pack(creds_of("ASIAX", "sec", "tok")));
  CHECK(c.access_key_id == "ASIAX");
  CHECK(c.secret_access_key.reveal() == "sec");
  CHECK(c.session_token.reveal() == "tok");
  auto none = bedrock::unpack("not packed");
  CHECK(none.access_key_id.empty());
  CHECK(none.secret_access_key.empty());
  auto empty = bedrock::unpack("");
  CHECK(empty.access_key_id.empty());
}

// -- embeddings (InvokeModel) -------------------------------------------------

namespace {

const std::string titan_id = "amazon.titan-embed-text-v2:0";
const std::string titan_path = "/model/amazon.titan-embed-text-v2%3A0/invoke";
const std::string cohere_id = "cohere.embed-english-v3";

/// The keys of a bedrock embedding model of `model_id` serving embeddings
/// only, its credentials the [test] profile of `file`.
std::string embedding_keys(const std::string& file,
                           const std::string& model_id) {
  return bedrock_keys(profile_keys(file) + "    endpoints: [embeddings]\n",
                      "us-east-1", model_id);
}

/// A bedrock model of `model_id` under `alias` built by hand (no
/// credentials): for the answers' translation.
model_config_ptr embedder(const std::string& alias,
                          const std::string& model_id) {
  auto m = std::make_shared<model_config>(*haiku());
  m->alias = alias;
  m->model = model_id;
  return m;
}

/// to_invoke_request of the embeddings request `body` for `model_id`.
caf::expected<std::string> invoke_of(std::string_view body,
                                     std::string_view model_id) {
  return bedrock::to_invoke_request(
    nlohmann::ordered_json::parse(std::string{body}), model_id);
}

/// The InvokeModel body for `body` and `model_id`, which must translate.
nlohmann::json invoke_json(std::string_view body, std::string_view model_id) {
  auto out = invoke_of(body, model_id);
  if (!out)
    FAIL(message_of(out.error()));
  return nlohmann::json::parse(*out);
}

/// Checks that `body` is refused for `model_id` as an invalid request
/// whose param is `param`.
void check_refused(std::string_view body, std::string_view model_id,
                   const std::string& param) {
  INFO(body);
  auto out = invoke_of(body, model_id);
  REQUIRE_FALSE(out);
  CHECK(code_of(out.error()) == errc::invalid_request);
  CHECK(param_of(out.error()) == param);
}

/// An embeddings request with `n` text inputs.
std::string request_with_inputs(size_t n) {
  std::vector<std::string> texts;
  for (size_t i = 0; i < n; ++i)
    texts.push_back("text " + std::to_string(i));
  return nlohmann::json{{"model", "e"}, {"input", texts}}.dump();
}

/// to_embeddings_list of `body`, which must translate: the answer and its
/// body parsed.
std::pair<adapters::chat_response, nlohmann::json>
embeddings_list(std::string_view body, const model_config& model,
                bool base64 = false, uint64_t header_tokens = 0) {
  auto out = bedrock::to_embeddings_list(body, model, base64, 0, header_tokens);
  if (!out)
    FAIL(message_of(out.error()));
  auto parsed = nlohmann::json::parse(out->body);
  return {std::move(*out), std::move(parsed)};
}

/// Titan's answer: one vector, and its count of input tokens.
const std::string titan_answer
  = R"({"embedding":[0.5,-0.25,0],"inputTextTokenCount":7})";

/// Cohere's answer to two texts (floats): no token count in the body.
const std::string cohere_answer = R"({"embeddings":[[1,2],[3,4]],"id":"x",)"
                                  R"("response_type":"embeddings_floats"})";

bool has_answer_header(const upstream_request& r, std::string_view name) {
  return std::find(r.answer_headers.begin(), r.answer_headers.end(), name)
         != r.answer_headers.end();
}

} // namespace

TEST_CASE("bedrock tells Titan and Cohere embedding models by their id",
          "[adapters][providers][bedrock]") {
  using bedrock::embedding_family;
  CHECK(bedrock::embedding_family_of("amazon.titan-embed-text-v2:0")
        == embedding_family::titan);
  CHECK(bedrock::embedding_family_of("amazon.titan-embed-text-v1")
        == embedding_family::titan);
  CHECK(bedrock::embedding_family_of("cohere.embed-english-v3")
        == embedding_family::cohere);
  CHECK(bedrock::embedding_family_of("cohere.embed-multilingual-v3")
        == embedding_family::cohere);
  // An inference profile, and an ARN.
  CHECK(bedrock::embedding_family_of("us.cohere.embed-v4:0")
        == embedding_family::cohere);
  CHECK(bedrock::embedding_family_of(
          "arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
          "us.cohere.embed-v4:0")
        == embedding_family::cohere);
  CHECK(
    bedrock::embedding_family_of("arn:aws:bedrock:us-east-1::foundation-model/"
                                 "amazon.titan-embed-text-v2:0")
    == embedding_family::titan);
  CHECK(bedrock::embedding_family_of(haiku_id) == embedding_family::none);
  // Titan's text models and Cohere's chat models do not embed.
  CHECK(bedrock::embedding_family_of("amazon.titan-text-express-v1")
        == embedding_family::none);
  CHECK(bedrock::embedding_family_of("cohere.command-r-v1:0")
        == embedding_family::none);
  CHECK(bedrock::embedding_family_of("") == embedding_family::none);
}

TEST_CASE("OpenAI embeddings requests translate to Titan's InvokeModel body",
          "[adapters][providers][bedrock]") {
  const std::string_view titan = "amazon.titan-embed-text-v2:0";
  SECTION("a string") {
    CHECK(invoke_json(R"({"model":"e","input":"hello"})", titan)
          == nlohmann::json::parse(R"({"inputText":"hello"})"));
  }
  SECTION("a list of one string") {
    CHECK(invoke_json(R"({"model":"e","input":["one"]})", titan)
          == nlohmann::json::parse(R"({"inputText":"one"})"));
  }
  SECTION("dimensions") {
    CHECK(invoke_json(R"({"model":"e","input":"x","dimensions":256})", titan)
          == nlohmann::json::parse(R"({"inputText":"x","dimensions":256})"));
    CHECK(invoke_json(R"({"model":"e","input":"x","dimensions":1024})", titan)
          == nlohmann::json::parse(R"({"inputText":"x","dimensions":1024})"));
  }
  SECTION("dimensions V2 cannot give, or a Titan model without them") {
    check_refused(R"({"model":"e","input":"x","dimensions":300})", titan,
                  "dimensions");
    check_refused(R"({"model":"e","input":"x","dimensions":256})",
                  "amazon.titan-embed-text-v1", "dimensions");
  }
  SECTION("what has no Titan field is left out") {
    CHECK(invoke_json(R"({"model":"e","input":"x","encoding_format":)"
                      R"("base64","user":"u-1"})",
                      titan)
          == nlohmann::json::parse(R"({"inputText":"x"})"));
  }
  SECTION("more than one input") {
    check_refused(R"({"model":"e","input":["one","two"]})", titan, "input");
    check_refused(request_with_inputs(3), titan, "input");
  }
  SECTION("token ids") {
    check_refused(R"({"model":"e","input":[1,2,3]})", titan, "input");
    check_refused(R"({"model":"e","input":[[1,2]]})", titan, "input");
  }
}

TEST_CASE("OpenAI embeddings requests translate to Cohere's InvokeModel body",
          "[adapters][providers][bedrock]") {
  const std::string_view cohere = "cohere.embed-english-v3";
  SECTION("a list of strings, as documents") {
    CHECK(invoke_json(R"({"model":"e","input":["a","b"]})", cohere)
          == nlohmann::json::parse(
            R"({"texts":["a","b"],"input_type":"search_document"})"));
  }
  SECTION("a string") {
    CHECK(invoke_json(R"({"model":"e","input":"a"})", cohere)
          == nlohmann::json::parse(
            R"({"texts":["a"],"input_type":"search_document"})"));
  }
  SECTION("the request's input_type") {
    CHECK(invoke_json(R"({"model":"e","input":["q"],)"
                      R"("input_type":"search_query"})",
                      cohere)
          == nlohmann::json::parse(
            R"({"texts":["q"],"input_type":"search_query"})"));
  }
  SECTION("a null input_type is the default, an unknown one is refused") {
    CHECK(
      invoke_json(R"({"model":"e","input":["q"],"input_type":null})", cohere)
      == nlohmann::json::parse(
        R"({"texts":["q"],"input_type":"search_document"})"));
    check_refused(R"({"model":"e","input":["q"],"input_type":"query"})", cohere,
                  "input_type");
    check_refused(R"({"model":"e","input":["q"],"input_type":7})", cohere,
                  "input_type");
  }
  SECTION("dimensions, for Embed v4 only") {
    CHECK(invoke_json(R"({"model":"e","input":["a"],"dimensions":512})",
                      "us.cohere.embed-v4:0")
          == nlohmann::json::parse(R"({"texts":["a"],)"
                                   R"("input_type":"search_document",)"
                                   R"("output_dimension":512})"));
    check_refused(R"({"model":"e","input":["a"],"dimensions":512})", cohere,
                  "dimensions");
  }
  SECTION("at most 96 inputs") {
    REQUIRE(bedrock::max_cohere_inputs == 96);
    auto most = invoke_json(request_with_inputs(96), cohere);
    REQUIRE(most["texts"].is_array());
    CHECK(most["texts"].size() == 96);
    CHECK(most["texts"][95] == "text 95");
    check_refused(request_with_inputs(97), cohere, "input");
  }
  SECTION("token ids") {
    check_refused(R"({"model":"e","input":[1,2,3]})", cohere, "input");
    check_refused(R"({"model":"e","input":[[1,2]]})", cohere, "input");
    check_refused(R"({"model":"e","input":["a",1]})", cohere, "input");
  }
}

TEST_CASE("an embeddings request for a model that is neither Titan nor "
          "Cohere is refused with its model",
          "[adapters][providers][bedrock]") {
  check_refused(R"({"model":"e","input":"hello"})", haiku_id, "model");
  check_refused(R"({"model":"e","input":["a","b"]})", haiku_id, "model");
}

TEST_CASE("Titan and Cohere answers translate to OpenAI embeddings lists",
          "[adapters][providers][bedrock]") {
  auto model = embedder("vec", titan_id);
  SECTION("Titan, floats") {
    auto [out, list] = embeddings_list(titan_answer, *model);
    CHECK(list
          == nlohmann::json::parse(
            R"({"object":"list","data":[{"object":"embedding","index":0,)"
            R"("embedding":[0.5,-0.25,0]}],"model":"vec",)"
            R"("usage":{"prompt_tokens":7,"total_tokens":7}})"));
    CHECK(out.prompt_tokens == 7);
    CHECK(out.completion_tokens == 0);
    CHECK(out.cached_tokens == 0);
  }
  SECTION("Titan, base64") {
    auto [out, list] = embeddings_list(titan_answer, *model, true);
    REQUIRE(list["data"].size() == 1);
    CHECK(list["data"][0]["object"] == "embedding");
    CHECK(list["data"][0]["index"] == 0);
    CHECK(list["data"][0]["embedding"]
          == adapters::base64_floats({0.5f, -0.25f, 0.0f}));
    // 0.5f, -0.25f and 0.0f as little-endian float32s.
    CHECK(list["data"][0]["embedding"] == "AAAAPwAAgL4AAAAA");
    CHECK(list["model"] == "vec");
    CHECK(list["usage"]["prompt_tokens"] == 7);
    CHECK(out.prompt_tokens == 7);
  }
  SECTION("Titan's count wins over the header's") {
    auto [out, list] = embeddings_list(titan_answer, *model, false, 99);
    CHECK(out.prompt_tokens == 7);
    CHECK(list["usage"]["prompt_tokens"] == 7);
  }
  SECTION("numbers read back as they were sent") {
    const std::string body
      = R"({"embedding":[0.1,-0.3,1e-7,0.123456789012345678,)"
        R"(-2.5e-12,1234.5678,3.4028234663852886e38]})";
    auto [out, list] = embeddings_list(body, *model);
    auto sent = nlohmann::json::parse(body)["embedding"];
    auto got = list["data"][0]["embedding"];
    REQUIRE(got.is_array());
    REQUIRE(got.size() == sent.size());
    for (size_t i = 0; i < sent.size(); ++i) {
      INFO(i);
      CHECK(got[i].get<double>() == sent[i].get<double>());
    }
    CHECK(got[0].get<double>() == 0.1);
    // No token count anywhere: none.
    CHECK(out.prompt_tokens == 0);
    CHECK(list["usage"]["prompt_tokens"] == 0);
  }
  SECTION("Cohere, floats, its tokens from the header") {
    auto cohere = embedder("co", cohere_id);
    auto [out, list] = embeddings_list(cohere_answer, *cohere, false, 11);
    CHECK(list
          == nlohmann::json::parse(
            R"({"object":"list","data":[)"
            R"({"object":"embedding","index":0,"embedding":[1,2]},)"
            R"({"object":"embedding","index":1,"embedding":[3,4]}],)"
            R"("model":"co","usage":{"prompt_tokens":11,"total_tokens":11}})"));
    CHECK(out.prompt_tokens == 11);
  }
  SECTION("Cohere, base64") {
    auto cohere = embedder("co", cohere_id);
    auto [out, list] = embeddings_list(cohere_answer, *cohere, true, 11);
    REQUIRE(list["data"].size() == 2);
    CHECK(list["data"][0]["embedding"] == adapters::base64_floats({1, 2}));
    CHECK(list["data"][1]["embedding"] == adapters::base64_floats({3, 4}));
    CHECK(list["data"][1]["index"] == 1);
  }
  SECTION("Cohere's embeddings by type") {
    auto cohere = embedder("co", cohere_id);
    auto [out, list] = embeddings_list(
      R"({"embeddings":{"float":[[0.1]]},"id":"y",)"
      R"("response_type":"embeddings_by_type","texts":["a"]})",
      *cohere, false, 2);
    REQUIRE(list["data"].size() == 1);
    CHECK(list["data"][0]["embedding"] == nlohmann::json::parse("[0.1]"));
    CHECK(list["data"][0]["embedding"][0].get<double>() == 0.1);
    CHECK(list["usage"]["prompt_tokens"] == 2);
    CHECK(out.prompt_tokens == 2);
  }
}

TEST_CASE("a malformed embeddings answer from bedrock is upstream_invalid",
          "[adapters][providers][bedrock]") {
  auto model = embedder("vec", titan_id);
  for (const auto* body : {
         R"({"nothing":1})",
         R"({"embedding":"x"})",
         R"({"embedding":["a"]})",
         R"({"embedding":null})",
         R"({"embedding":[[0.5]]})",
         R"({"embeddings":{"int8":[[1]]}})",
         R"({"embeddings":5})",
         R"({"embeddings":[[1],"x"]})",
         R"({"embeddings":[["a"]]})",
         R"({"embeddings":[]})",
         R"({"embeddings":{"float":[]}})",
         "not json at all",
         "[1,2]",
         "\"a string\"",
         "",
       }) {
    INFO(body);
    for (bool base64 : {false, true}) {
      auto out = bedrock::to_embeddings_list(body, *model, base64, 0, 3);
      REQUIRE_FALSE(out);
      CHECK(code_of(out.error()) == errc::upstream_invalid);
      CHECK(contains(message_of(out.error()), "'vec'"));
    }
  }
  SECTION("not one vector per input") {
    auto out = bedrock::to_embeddings_list(cohere_answer, *model, false, 3, 0);
    REQUIRE_FALSE(out);
    CHECK(code_of(out.error()) == errc::upstream_invalid);
    CHECK(contains(message_of(out.error()), "2 embeddings for 3 inputs"));
    CHECK(bedrock::to_embeddings_list(cohere_answer, *model, false, 2, 0));
  }
}

TEST_CASE("an embeddings request to bedrock is a SigV4-signed InvokeModel "
          "call",
          "[adapters][providers][bedrock]") {
  aws_env env;
  temp_dir files;
  auto file = files.write("credentials", credentials_text);
  auto creds = creds_of(example_key_id, example_secret);
  auto m = loaded("e", embedding_keys(file, titan_id));
  CHECK(m->endpoints.has(api_endpoint::embeddings));

  SECTION("Titan, base64 asked") {
    auto req = request_for(
      *m, R"({"model":"e","input":"hi","encoding_format":"base64"})",
      api_endpoint::embeddings);
    CHECK(req.method == "POST");
    CHECK(req.path == titan_path);
    CHECK(req.target.host == "bedrock-runtime.us-east-1.amazonaws.com");
    CHECK(req.target.tls);
    CHECK(nlohmann::json::parse(req.body)
          == nlohmann::json::parse(R"({"inputText":"hi"})"));
    CHECK(req.answer_note == "base64 1");
    CHECK(has_answer_header(req, "x-amzn-bedrock-input-token-count"));
    CHECK(bedrock::input_tokens_header == "x-amzn-bedrock-input-token-count");
    CHECK(header(req, "Content-Type") == "application/json");
    CHECK(header(req, "Host") == "bedrock-runtime.us-east-1.amazonaws.com");
    CHECK(header(req, "X-Amz-Content-Sha256") == bedrock::sha256_hex(req.body));
    CHECK_FALSE(has_header(req, "X-Amz-Security-Token"));
    auto date = header(req, "X-Amz-Date");
    REQUIRE(date.size() == 16);
    auto authz = header(req, "Authorization");
    CHECK(authz.starts_with(
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/" + date.substr(0, 8)
      + "/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;"
        "x-amz-content-sha256;x-amz-date, Signature="));
    CHECK(recomputed_authorization(req, creds, "us-east-1") == authz);
    // The check can fail: another secret signs differently.
    CHECK(recomputed_authorization(
            req, creds_of(example_key_id, "another-secret"), "us-east-1")
          != authz);
    CHECK_FALSE(contains(authz, example_secret));
  }
  SECTION("Titan, floats") {
    for (const auto* body :
         {R"({"model":"e","input":"hi"})",
          R"({"model":"e","input":"hi","encoding_format":"float"})"}) {
      INFO(body);
      auto req = request_for(*m, body, api_endpoint::embeddings);
      CHECK(req.path == titan_path);
      CHECK(req.answer_note == "float 1");
      CHECK(has_answer_header(req, "x-amzn-bedrock-input-token-count"));
      CHECK(recomputed_authorization(req, creds, "us-east-1")
            == header(req, "Authorization"));
    }
    auto req
      = request_for(*m, R"({"model":"e","input":["hi"],"dimensions":256})",
                    api_endpoint::embeddings);
    CHECK(nlohmann::json::parse(req.body)
          == nlohmann::json::parse(R"({"inputText":"hi","dimensions":256})"));
  }
  SECTION("Titan with two inputs") {
    auto req = adapters::adapter_for(*m, api_endpoint::embeddings)
                 .to_provider_request(
                   chat_payload{R"({"model":"e","input":["one","two"]})"}, *m);
    REQUIRE_FALSE(req);
    CHECK(code_of(req.error()) == errc::invalid_request);
    CHECK(param_of(req.error()) == "input");
  }
  SECTION("Cohere, and an inference profile's id") {
    auto cohere = loaded("c", embedding_keys(file, cohere_id));
    auto req = request_for(*cohere, R"({"model":"c","input":["a","b"]})",
                           api_endpoint::embeddings);
    CHECK(req.path == "/model/cohere.embed-english-v3/invoke");
    CHECK(nlohmann::json::parse(req.body)
          == nlohmann::json::parse(
            R"({"texts":["a","b"],"input_type":"search_document"})"));
    CHECK(has_answer_header(req, "x-amzn-bedrock-input-token-count"));
    CHECK(recomputed_authorization(req, creds, "us-east-1")
          == header(req, "Authorization"));
    auto profile = loaded("p", embedding_keys(file, "us.cohere.embed-v4:0"));
    auto to_profile = request_for(*profile, R"({"model":"p","input":"a"})",
                                  api_endpoint::embeddings);
    CHECK(to_profile.path == "/model/us.cohere.embed-v4%3A0/invoke");
  }
  SECTION("a model that does not embed") {
    // The config refuses it (below); the adapter does too.
    auto chat_model = loaded("b", bedrock_keys(profile_keys(file)));
    auto req = adapters::adapter_for(*chat_model, api_endpoint::embeddings)
                 .to_provider_request(
                   chat_payload{R"({"model":"b","input":"hi"})"}, *chat_model);
    REQUIRE_FALSE(req);
    CHECK(code_of(req.error()) == errc::invalid_request);
    CHECK(param_of(req.error()) == "model");
  }
}

TEST_CASE("bedrock's embeddings answers take their tokens from Bedrock's "
          "header and their encoding from the request",
          "[adapters][providers][bedrock]") {
  auto model = embedder("co", cohere_id);
  const auto& adapter = adapters::adapter_for(*model, api_endpoint::embeddings);
  auto result = answer(200, R"({"embeddings":[[0.5,-0.25],[1,2]],"id":"e",)"
                            R"("response_type":"embeddings_floats",)"
                            R"("texts":["a","b"]})");
  result.answer_headers.push_back({"x-amzn-bedrock-input-token-count", "5"});

  SECTION("floats") {
    auto out = adapter.from_provider_response(result, *model);
    if (!out)
      FAIL(message_of(out.error()));
    CHECK(out->prompt_tokens == 5);
    CHECK(out->completion_tokens == 0);
    auto list = nlohmann::json::parse(out->body);
    CHECK(list
          == nlohmann::json::parse(
            R"({"object":"list","data":[)"
            R"({"object":"embedding","index":0,"embedding":[0.5,-0.25]},)"
            R"({"object":"embedding","index":1,"embedding":[1,2]}],)"
            R"("model":"co","usage":{"prompt_tokens":5,"total_tokens":5}})"));
  }
  SECTION("the request's note: base64, two inputs") {
    result.answer_note = request_for(*model,
                                     R"({"model":"co","input":["a","b"],)"
                                     R"("encoding_format":"base64"})",
                                     api_endpoint::embeddings)
                           .answer_note;
    auto out = adapter.from_provider_response(result, *model);
    if (!out)
      FAIL(message_of(out.error()));
    CHECK(out->prompt_tokens == 5);
    auto list = nlohmann::json::parse(out->body);
    REQUIRE(list["data"].size() == 2);
    CHECK(list["data"][0]["embedding"]
          == adapters::base64_floats({0.5f, -0.25f}));
    CHECK(list["data"][0]["embedding"] == "AAAAPwAAgL4=");
    CHECK(list["data"][1]["embedding"] == adapters::base64_floats({1, 2}));
    CHECK(list["usage"]["prompt_tokens"] == 5);
  }
  SECTION("the request's note: three inputs, for which two vectors are "
          "too few") {
    result.answer_note
      = request_for(*model, R"({"model":"co","input":["a","b","c"]})",
                    api_endpoint::embeddings)
          .answer_note;
    auto out = adapter.from_provider_response(result, *model);
    REQUIRE_FALSE(out);
    CHECK(code_of(out.error()) == errc::upstream_invalid);
  }
  SECTION("without the header") {
    result.answer_headers.clear();
    auto out = adapter.from_provider_response(result, *model);
    REQUIRE(out);
    CHECK(out->prompt_tokens == 0);
  }
  SECTION("Titan's count in its body") {
    auto titan = embedder("ti", titan_id);
    auto titan_result = answer(200, titan_answer);
    titan_result.answer_headers.push_back(
      {"x-amzn-bedrock-input-token-count", "7"});
    auto out = adapter.from_provider_response(titan_result, *titan);
    REQUIRE(out);
    CHECK(out->prompt_tokens == 7);
    CHECK(nlohmann::json::parse(out->body)["model"] == "ti");
  }
  SECTION("a malformed answer") {
    auto out
      = adapter.from_provider_response(answer(200, R"({"id":"e"})"), *model);
    REQUIRE_FALSE(out);
    CHECK(code_of(out.error()) == errc::upstream_invalid);
  }
}

TEST_CASE("bedrock serves embeddings only for Titan and Cohere model ids",
          "[adapters][providers][bedrock]") {
  aws_env env;
  temp_dir files;
  auto file = files.write("credentials", credentials_text);

  SECTION("a Claude model with endpoints [embeddings]") {
    auto errors = model_errors("b", embedding_keys(file, haiku_id));
    INFO(errors);
    auto line = line_of(errors, "models.b.endpoints: ");
    CHECK(contains(line, "titan-embed"));
    CHECK(contains(line, "cohere.embed"));
    CHECK(contains(line, "'" + haiku_id + "'"));
    CHECK_FALSE(contains(line, "cannot serve"));
  }
  SECTION("a Claude model with endpoints [chat, embeddings]") {
    auto errors = model_errors(
      "b",
      bedrock_keys(profile_keys(file) + "    endpoints: [chat, embeddings]\n"));
    INFO(errors);
    CHECK(contains(line_of(errors, "models.b.endpoints: "), "titan-embed"));
  }
  SECTION("Titan") {
    auto m = loaded("b", embedding_keys(file, titan_id));
    CHECK(m->provider == "bedrock");
    CHECK(m->model == titan_id);
    CHECK(m->endpoints.has(api_endpoint::embeddings));
    CHECK_FALSE(m->endpoints.has(api_endpoint::chat));
    CHECK(m->base_url == "https://bedrock-runtime.us-east-1.amazonaws.com");
    CHECK(bedrock_of(*m).credentials.access_key_id == example_key_id);
  }
  SECTION("Cohere, and an inference profile of Cohere Embed") {
    CHECK(loaded("b", embedding_keys(file, cohere_id))->model == cohere_id);
    CHECK(loaded("b", embedding_keys(file, "us.cohere.embed-v4:0"))
            ->endpoints.has(api_endpoint::embeddings));
  }
}

TEST_CASE("embeddings requests translate to InvokeModel bodies as their "
          "golden files say",
          "[adapters][providers][bedrock]") {
  auto names = golden_cases(dir / "embeddings", "request");
  REQUIRE(names.size() >= 14);
  for (const auto& name : names) {
    INFO("case " << name);
    auto base = dir / "embeddings" / "request";
    auto in = load_json(base / (name + ".in.json"));
    auto out = bedrock::to_invoke_request(
      nlohmann::ordered_json::parse(in["request"].dump()),
      in["model_id"].get<std::string>());
    auto error_file = base / (name + ".error.json");
    auto out_file = base / (name + ".out.json");
    REQUIRE(fs::exists(error_file) != fs::exists(out_file));
    if (fs::exists(error_file)) {
      REQUIRE_FALSE(out);
      CHECK(code_of(out.error()) == errc::invalid_request);
      CHECK(param_of(out.error())
            == load_json(error_file)["param"].get<std::string>());
      continue;
    }
    if (!out)
      FAIL(message_of(out.error()));
    CHECK(nlohmann::json::parse(*out) == load_json(out_file));
  }
}

TEST_CASE("InvokeModel embeddings answers translate to OpenAI lists as their "
          "golden files say",
          "[adapters][providers][bedrock]") {
  auto names = golden_cases(dir / "embeddings", "response");
  REQUIRE(names.size() >= 7);
  for (const auto& name : names) {
    INFO("case " << name);
    auto base = dir / "embeddings" / "response";
    auto in = load_json(base / (name + ".in.json"));
    auto model = embedder("vec", in["model_id"].get<std::string>());
    auto out = bedrock::to_embeddings_list(
      in["answer"].dump(), *model, in["base64"].get<bool>(),
      in["inputs"].get<size_t>(), in["header_tokens"].get<uint64_t>());
    auto error_file = base / (name + ".error.json");
    auto out_file = base / (name + ".out.json");
    REQUIRE(fs::exists(error_file) != fs::exists(out_file));
    if (fs::exists(error_file)) {
      REQUIRE_FALSE(out);
      CHECK(code_of(out.error()) == errc::upstream_invalid);
      continue;
    }
    if (!out)
      FAIL(message_of(out.error()));
    auto expected = load_json(out_file);
    CHECK(nlohmann::json::parse(out->body) == expected);
    CHECK(out->prompt_tokens
          == expected["usage"]["prompt_tokens"].get<uint64_t>());
  }
}
