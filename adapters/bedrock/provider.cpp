#include "adapters/bedrock/provider.hpp"

#include "adapters/anthropic/anthropic_adapter.hpp"
#include "adapters/anthropic/messages_adapter.hpp"
#include "adapters/bedrock/converse.hpp"
#include "adapters/bedrock/embeddings.hpp"
#include "adapters/oauth.hpp"
#include "core/errc.hpp"
#include "core/json/reader.hpp"
#include "core/request/request_id.hpp"

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>

namespace pw::adapters::bedrock {

namespace {

using doc = nlohmann::ordered_json;

const bedrock_options& options_of(const model_config& model) {
  return options_as<bedrock_options>(model);
}

int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string{v} : std::string{};
}

/// The text between `<tag>` and `</tag>` in `xml`, or "".
std::string xml_value(std::string_view xml, std::string_view tag) {
  auto open = "<" + std::string{tag} + ">";
  auto begin = xml.find(open);
  if (begin == std::string_view::npos)
    return {};
  begin += open.size();
  auto end = xml.find("</" + std::string{tag} + ">", begin);
  if (end == std::string_view::npos)
    return {};
  return std::string{xml.substr(begin, end - begin)};
}

/// An ISO 8601 UTC time (2026-12-07T10:00:00Z) in seconds, or -1.
int64_t iso_seconds(const std::string& text) {
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr)
    return -1;
  return static_cast<int64_t>(timegm(&tm));
}

// -- the adapter ----------------------------------------------------------

/// Serves one endpoint: the Anthropic adapter of that endpoint does the
/// client's side, converse.hpp the Bedrock side.
class bedrock_adapter final : public adapter {
public:
  bedrock_adapter(const adapter& anthropic_side, bool chat)
      : side_(anthropic_side), chat_(chat) {}

  caf::expected<upstream_request>
  to_provider_request(const chat_payload& request,
                      const model_config& model) const override {
    std::string body;
    bool streams = false;
    // The usual chat request is written straight from its bytes; anything
    // else goes through the documents (docs/performance.md).
    if (chat_ && !request.raw().empty())
      if (auto read = json::read(request.raw(), json::client_limits))
        if (auto simple = anthropic::read_simple_chat(read->root(), model)) {
          body = simple_converse_request(*simple);
          streams = simple->stream;
        }
    if (body.empty()) {
      doc messages;
      if (chat_) {
        auto translated = anthropic::to_messages_request(request.json(), model);
        if (!translated)
          return translated.error();
        messages = std::move(*translated);
      } else {
        messages = request.json();
      }
      auto converse = to_converse(messages);
      if (!converse)
        return converse.error();
      auto stream = messages.find("stream");
      streams = stream != messages.end() && stream->is_boolean()
                && stream->get<bool>();
      body = json::dump(*converse);
    }
    auto out = json_post(model,
                         "/model/" + uri_encoded(model.model, false)
                           + (streams ? "/converse-stream" : "/converse"),
                         std::move(body));
    if (streams)
      for (auto& h : out.headers)
        if (h.name == "Accept")
          h.value = "application/vnd.amazon.eventstream";
    sign(out, credentials_of(model), options_of(model).region, "bedrock",
         now_seconds());
    return out;
  }

  caf::expected<chat_response>
  from_provider_response(const upstream_result& result,
                         const model_config& model) const override {
    if (chat_)
      return to_chat_completion(result.body, model, new_request_id(),
                                now_seconds());
    auto message = to_anthropic_message(result.body, model, new_request_id());
    if (!message)
      return message.error();
    upstream_result translated;
    translated.status = result.status;
    translated.body = std::move(*message);
    return side_.from_provider_response(translated, model);
  }

  std::unique_ptr<stream_decoder>
  make_stream_decoder(model_config_ptr model,
                      stream_options options) const override {
    auto id = model->model;
    auto inner = side_.make_stream_decoder(std::move(model), options);
    return converse_stream(std::move(inner), std::move(options), std::move(id));
  }

  /// Bedrock's runtime has no cheap listing: no health check.
  [[nodiscard]] std::optional<upstream_request>
  health_request(const model_config&) const override {
    return std::nullopt;
  }

  [[nodiscard]] std::optional<caf::expected<upstream_request>>
  credential_request(const model_config& model) const override;

  [[nodiscard]] caf::expected<fetched_credential>
  credential_from(const upstream_result& result,
                  const model_config& model) const override;

  [[nodiscard]] std::string
  whole_to_sse(std::string_view body,
               const stream_options& options) const override {
    return side_.whole_to_sse(body, options);
  }

private:
  const adapter& side_;
  bool chat_;
};

std::optional<caf::expected<upstream_request>>
bedrock_adapter::credential_request(const model_config& model) const {
  const auto& o = options_of(model);
  if (!o.web_identity)
    return std::nullopt;
  auto token = oauth::read_token_file(o.web_identity_token_file);
  if (!token)
    return caf::expected<upstream_request>{token.error()};
  oauth::form form;
  form.add("Action", "AssumeRoleWithWebIdentity");
  form.add("Version", "2011-06-15");
  form.add("RoleArn", o.role_arn);
  form.add("RoleSessionName", o.role_session_name);
  form.add("WebIdentityToken", *token);
  form.add("DurationSeconds", "3600");
  auto out
    = oauth::token_post(model, o.sts, o.sts.base_path + "/", form.text());
  // STS answers in XML.
  for (auto& h : out.headers)
    if (h.name == "Accept")
      h.value = "text/xml";
  return caf::expected<upstream_request>{std::move(out)};
}

caf::expected<fetched_credential>
bedrock_adapter::credential_from(const upstream_result& result,
                                 const model_config& model) const {
  const auto& o = options_of(model);
  std::string token;
  if (auto t = oauth::read_token_file(o.web_identity_token_file))
    token = std::move(*t);
  auto scrub
    = [&](std::string text) { return oauth::bounded(std::move(text), token); };
  auto failed = [](std::string text) {
    return make_error(errc::upstream_failed, std::move(text));
  };
  if (result.failure != upstream_failure::none)
    return failed("AWS STS could not be reached ("
                  + std::string{to_string(result.failure)} + ": "
                  + scrub(result.detail) + ")");
  if (result.status < 200 || result.status >= 300) {
    std::string text = "AWS STS answered HTTP " + std::to_string(result.status);
    auto code = xml_value(result.body, "Code");
    auto message = xml_value(result.body, "Message");
    if (!code.empty())
      text += ": " + scrub(code);
    if (!message.empty())
      text += " (" + scrub(message) + ")";
    return failed(std::move(text));
  }
  aws_credentials c;
  c.access_key_id = xml_value(result.body, "AccessKeyId");
  c.secret_access_key
    = redacted_string{xml_value(result.body, "SecretAccessKey")};
  c.session_token = redacted_string{xml_value(result.body, "SessionToken")};
  if (c.access_key_id.empty() || c.secret_access_key.empty())
    return failed("AWS STS answered with no credentials");
  auto expires = iso_seconds(xml_value(result.body, "Expiration"));
  fetched_credential out;
  out.token = redacted_string{pack(c)};
  out.lifetime = std::chrono::seconds{
    expires < 0 ? 300 : std::max<int64_t>(expires - now_seconds(), 0)};
  return out;
}

const adapter& serve(api_endpoint endpoint) {
  static const anthropic::anthropic_adapter anthropic_chat;
  static const anthropic::messages_adapter anthropic_messages;
  static const bedrock_adapter chat{anthropic_chat, true};
  static const bedrock_adapter messages{anthropic_messages, false};
  static const embeddings_adapter embeddings;
  switch (endpoint) {
  case api_endpoint::messages:
    return messages;
  case api_endpoint::embeddings:
    return embeddings;
  default:
    return chat;
  }
}

// -- the config -----------------------------------------------------------

/// `[profile]` of an AWS shared credentials file.
void load_profile(config_reader& cfg, const std::string& where,
                  const std::string& file, const std::string& profile,
                  bedrock_options& o) {
  std::ifstream in{file};
  if (!in) {
    cfg.fail(where, "cannot read the AWS credentials file '" + file + "'");
    return;
  }
  std::string line;
  std::string section;
  bool found = false;
  while (std::getline(in, line)) {
    auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#' || line[first] == ';')
      continue;
    auto last = line.find_last_not_of(" \t\r");
    auto text = line.substr(first, last - first + 1);
    if (text.front() == '[' && text.back() == ']') {
      section = text.substr(1, text.size() - 2);
      found = found || section == profile;
      continue;
    }
    if (section != profile)
      continue;
    auto eq = text.find('=');
    if (eq == std::string::npos)
      continue;
    auto key = text.substr(0, eq);
    auto value = text.substr(eq + 1);
    key.erase(key.find_last_not_of(" \t") + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    if (key == "aws_access_key_id")
      o.credentials.access_key_id = value;
    else if (key == "aws_secret_access_key")
      o.credentials.secret_access_key = redacted_string{value};
    else if (key == "aws_session_token")
      o.credentials.session_token = redacted_string{value};
  }
  if (!found)
    cfg.fail(where, "no profile '" + profile + "' in '" + file + "'");
  else if (o.credentials.access_key_id.empty()
           || o.credentials.secret_access_key.empty())
    cfg.fail(where, "profile '" + profile + "' in '" + file
                      + "' has no aws_access_key_id and "
                        "aws_secret_access_key");
  o.credentials_source = "profile " + profile;
}

void load_web_identity(config_reader& cfg, bedrock_options& o,
                       const std::string& sts_url) {
  const auto& path = cfg.path();
  o.web_identity = true;
  if (o.role_arn.empty())
    cfg.fail(config_reader::join(path, "role_arn"),
             "required with web_identity_token_file (or set AWS_ROLE_ARN)");
  if (o.web_identity_token_file.empty())
    cfg.fail(config_reader::join(path, "web_identity_token_file"),
             "required with role_arn (or set AWS_WEB_IDENTITY_TOKEN_FILE)");
  else if (!std::ifstream{o.web_identity_token_file})
    cfg.fail(config_reader::join(path, "web_identity_token_file"),
             "cannot read '" + o.web_identity_token_file + "'");
  auto url
    = !sts_url.empty() ? sts_url : "https://sts." + o.region + ".amazonaws.com";
  if (auto parsed = oauth::parse_token_url(
        url, config_reader::join(path, "sts_endpoint"), cfg))
    o.sts = std::move(*parsed);
}

provider_options_ptr load(config_reader& cfg, model_config& m) {
  auto o = std::make_shared<bedrock_options>();
  const auto& node = cfg.root();
  const auto& path = cfg.path();
  auto key = [&](std::string_view k) {
    return cfg.string(node, k, path).value_or("");
  };
  o->region = key("region");
  if (o->region.empty())
    o->region = env("AWS_REGION");
  if (o->region.empty())
    o->region = env("AWS_DEFAULT_REGION");
  if (o->region.empty())
    cfg.fail(config_reader::join(path, "region"),
             "required (or set AWS_REGION)");
  else if (!url_safe(o->region, "-"))
    cfg.fail(config_reader::join(path, "region"),
             "expected a region such as us-east-1");
  if (!m.api_key.empty())
    cfg.fail(config_reader::join(path, "api_key"),
             "not used by bedrock (it signs with AWS credentials)");
  bool embeds = embedding_family_of(m.model) != embedding_family::none;
  if (m.endpoints.has(api_endpoint::embeddings) && !embeds)
    cfg.fail(config_reader::join(path, "endpoints"),
             "bedrock embeddings are translated for Amazon Titan Text "
             "Embeddings and Cohere Embed models (a model id with "
             "'titan-embed' or 'cohere.embed'); '"
               + m.model + "' is neither");
  if (embeds
      && (m.endpoints.has(api_endpoint::chat)
          || m.endpoints.has(api_endpoint::messages)))
    cfg.fail(config_reader::join(path, "endpoints"),
             "'" + m.model
               + "' is an embedding model: set endpoints: [embeddings]");
  o->role_arn = key("role_arn");
  o->web_identity_token_file = key("web_identity_token_file");
  if (auto name = key("role_session_name"); !name.empty())
    o->role_session_name = name;
  auto sts = key("sts_endpoint");
  auto profile = key("aws_profile");
  auto file = key("aws_credentials_file");
  if (!o->role_arn.empty() || !o->web_identity_token_file.empty()) {
    load_web_identity(cfg, *o, sts);
  } else if (profile.empty() && file.empty()
             && !env("AWS_ACCESS_KEY_ID").empty()) {
    o->credentials.access_key_id = env("AWS_ACCESS_KEY_ID");
    o->credentials.secret_access_key
      = redacted_string{env("AWS_SECRET_ACCESS_KEY")};
    o->credentials.session_token = redacted_string{env("AWS_SESSION_TOKEN")};
    o->credentials_source = "environment";
    if (o->credentials.secret_access_key.empty())
      cfg.fail(path, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY "
                     "is not");
  } else if (profile.empty() && file.empty() && !env("AWS_ROLE_ARN").empty()
             && !env("AWS_WEB_IDENTITY_TOKEN_FILE").empty()) {
    o->role_arn = env("AWS_ROLE_ARN");
    o->web_identity_token_file = env("AWS_WEB_IDENTITY_TOKEN_FILE");
    load_web_identity(cfg, *o, sts);
  } else {
    if (file.empty())
      file = env("AWS_SHARED_CREDENTIALS_FILE");
    if (file.empty() && !env("HOME").empty())
      file = env("HOME") + "/.aws/credentials";
    if (profile.empty())
      profile = env("AWS_PROFILE");
    if (profile.empty())
      profile = "default";
    load_profile(cfg, config_reader::join(path, "aws_credentials_file"), file,
                 profile, *o);
  }
  if (m.base_url.empty() && !o->region.empty())
    m.base_url = "https://bedrock-runtime." + o->region + ".amazonaws.com";
  return o;
}

} // namespace

std::string pack(const aws_credentials& c) {
  return c.access_key_id + "\n" + c.secret_access_key.reveal() + "\n"
         + c.session_token.reveal();
}

aws_credentials unpack(const std::string& packed) {
  aws_credentials c;
  auto a = packed.find('\n');
  auto b = a == std::string::npos ? a : packed.find('\n', a + 1);
  if (b == std::string::npos)
    return c;
  c.access_key_id = packed.substr(0, a);
  c.secret_access_key = redacted_string{packed.substr(a + 1, b - a - 1)};
  c.session_token = redacted_string{packed.substr(b + 1)};
  return c;
}

aws_credentials credentials_of(const model_config& model) {
  const auto& o = options_of(model);
  if (o.web_identity)
    return unpack(model.access_token.reveal());
  return o.credentials;
}

const provider& bedrock_provider() {
  static const provider p = [] {
    provider out;
    out.name = "bedrock";
    out.endpoints
      = {api_endpoint::chat, api_endpoint::messages, api_endpoint::embeddings};
    out.keys = {"region",
                "aws_profile",
                "aws_credentials_file",
                "role_arn",
                "web_identity_token_file",
                "role_session_name",
                "sts_endpoint"};
    out.load = &load;
    out.serve = &serve;
    return out;
  }();
  return p;
}

} // namespace pw::adapters::bedrock
