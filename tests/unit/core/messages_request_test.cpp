#include "core/errc.hpp"
#include "core/json_error.hpp"
#include "core/request/messages_request.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

using namespace pw;

namespace {

/// The `param` of a refused body (checks it is an invalid_request).
std::string refused_param(const std::string& body, bool count = false) {
  auto r = check_messages_request(body, count);
  INFO(body);
  REQUIRE_FALSE(r);
  CHECK(code_of(r.error()) == errc::invalid_request);
  return param_of(r.error());
}

const std::string user = R"("messages":[{"role":"user","content":"hi"}])";

} // namespace

TEST_CASE("messages: the bodies Anthropic's API takes are accepted") {
  for (
    const auto& body : std::vector<std::string>{
      R"({"model":"m","max_tokens":16,)" + user + "}",
      R"({"max_tokens":1,"system":"be brief",)" + user + "}",
      R"({"model":"m","max_tokens":8,"system":[{"type":"text","text":"s"}],)"
      R"("messages":[{"role":"user","content":[{"type":"text","text":"a"},)"
      R"({"type":"image","source":{}}]},{"role":"assistant","content":[)"
      R"({"type":"tool_use","id":"t","name":"f","input":{}}]},{"role":"user",)"
      R"("content":[{"type":"tool_result","tool_use_id":"t","content":"r"}]}],)"
      R"("tools":[{"name":"f","input_schema":{}}],"stop_sequences":["x"],)"
      R"("temperature":1,"top_p":0.5,"top_k":5,"metadata":{"user_id":"u"}})",
    }) {
    INFO(body);
    CHECK(check_messages_request(body));
  }
  auto r = check_messages_request(
    R"({"model":"claude","max_tokens":5,"stream":true,)" + user + "}");
  REQUIRE(r);
  CHECK(r->model == "claude");
  CHECK(r->stream);
  // count_tokens takes no max_tokens.
  CHECK(check_messages_request("{" + user + "}", true));
}

TEST_CASE("messages: a body of the wrong shape is refused with its field") {
  CHECK(refused_param("[]").empty());
  CHECK(refused_param(R"({"max_tokens":5})") == "messages");
  CHECK(refused_param("{" + user + "}") == "max_tokens");
  CHECK(refused_param(R"({"max_tokens":0,)" + user + "}") == "max_tokens");
  CHECK(refused_param(R"({"max_tokens":1.5,)" + user + "}") == "max_tokens");
  CHECK(refused_param(R"({"max_tokens":null,)" + user + "}") == "max_tokens");
  CHECK(refused_param(R"({"model":3,"max_tokens":5,)" + user + "}") == "model");
  CHECK(refused_param(R"({"max_tokens":5,"messages":[]})") == "messages");
  CHECK(refused_param(R"({"max_tokens":5,"messages":[1]})") == "messages.0");
  CHECK(refused_param(
          R"({"max_tokens":5,"messages":[{"role":"system","content":"x"}]})")
        == "messages.0.role");
  CHECK(refused_param(R"({"max_tokens":5,"messages":[{"role":"user"}]})")
        == "messages.0.content");
  CHECK(refused_param(
          R"({"max_tokens":5,"messages":[{"role":"user","content":7}]})")
        == "messages.0.content");
  CHECK(refused_param(R"({"max_tokens":5,"messages":[{"role":"user",)"
                      R"("content":[{"text":"no type"}]}]})")
        == "messages.0.content.0");
  CHECK(refused_param(R"({"max_tokens":5,"system":5,)" + user + "}")
        == "system");
  CHECK(refused_param(R"({"max_tokens":5,"stream":1,)" + user + "}")
        == "stream");
  CHECK(refused_param(R"({"max_tokens":5,"temperature":1.5,)" + user + "}")
        == "temperature");
  CHECK(refused_param(R"({"max_tokens":5,"top_p":-0.1,)" + user + "}")
        == "top_p");
  CHECK(refused_param(R"({"max_tokens":5,"top_k":-1,)" + user + "}")
        == "top_k");
  CHECK(refused_param(R"({"max_tokens":5,"stop_sequences":[1],)" + user + "}")
        == "stop_sequences");
  CHECK(refused_param(R"({"max_tokens":5,"tools":["f"],)" + user + "}")
        == "tools");
}

TEST_CASE("errors on the Messages API are written in Anthropic's envelope") {
  auto err = error_of(errc::invalid_request, "max_tokens: Field required.");
  err.param = "max_tokens";
  auto r = render_error(err, error_dialect::anthropic);
  CHECK(r.status == 400);
  auto body = nlohmann::json::parse(r.body);
  CHECK(body
        == nlohmann::json{{"type", "error"},
                          {"error",
                           {{"type", "invalid_request_error"},
                            {"message", "max_tokens: Field required."}}}});
  CHECK(render_error(error_of(errc::missing_api_key, "no key"),
                     error_dialect::anthropic)
          .body.find("authentication_error")
        != std::string::npos);
  for (auto [status, type] : {std::pair{401u, "authentication_error"},
                              {403u, "permission_error"},
                              {404u, "not_found_error"},
                              {413u, "request_too_large"},
                              {429u, "rate_limit_error"},
                              {500u, "api_error"},
                              {502u, "api_error"},
                              {503u, "overloaded_error"},
                              {504u, "timeout_error"},
                              {422u, "invalid_request_error"}})
    CHECK(anthropic_error_type(status) == type);
}
