#include "core/errc.hpp"
#include "core/request/completions_request.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace pw;

namespace {

/// The `param` of a refused body (checks it is an invalid_request).
std::string refused_param(const std::string& body) {
  auto r = check_completions_request(body);
  INFO(body);
  REQUIRE_FALSE(r);
  CHECK(code_of(r.error()) == errc::invalid_request);
  return param_of(r.error());
}

} // namespace

TEST_CASE("completions: every prompt shape OpenAI takes is accepted") {
  for (const auto* body : {
         R"({"model":"m","prompt":"Say this is a test"})",
         R"({"model":"m","prompt":""})",
         R"({"model":"m","prompt":["a",""],"suffix":"end"})",
         R"({"prompt":"x","suffix":null,"stream":null,"max_tokens":16})",
       }) {
    INFO(body);
    auto r = check_completions_request(body);
    REQUIRE(r);
    CHECK_FALSE(r->token_input);
  }
  for (const auto* body :
       {R"({"prompt":[1,2]})", R"({"prompt":[[1],[2,3]]})"}) {
    INFO(body);
    auto r = check_completions_request(body);
    REQUIRE(r);
    CHECK(r->token_input);
  }
  auto r = check_completions_request(
    R"({"model":"m","prompt":"x","stream":true,"stream_options":{"include_usage":true}})");
  REQUIRE(r);
  CHECK(r->model == "m");
  CHECK(r->stream);
  CHECK(r->include_usage);
}

TEST_CASE("completions: a body of the wrong shape is refused with its field") {
  CHECK(refused_param(R"("prompt")").empty());
  CHECK(refused_param(R"({"model":1,"prompt":"x"})") == "model");
  CHECK(refused_param(R"({"model":"m"})") == "prompt");
  for (const auto* prompt :
       {"[]", R"(["a",1])", "[1,-2]", "[[1],[]]", "null", "{}", "3"})
    CHECK(refused_param(std::string{R"({"prompt":)"} + prompt + "}")
          == "prompt");
  CHECK(refused_param(R"({"prompt":"x","suffix":3})") == "suffix");
  CHECK(refused_param(R"({"prompt":"x","stream":"yes"})") == "stream");
  CHECK(refused_param(R"({"prompt":"x","temperature":3})") == "temperature");
  CHECK(refused_param(R"({"prompt":"x","top_p":-1})") == "top_p");
  CHECK(refused_param(R"({"prompt":"x","max_tokens":0})") == "max_tokens");
  CHECK(refused_param(R"({"prompt":"x","max_tokens":1.5})") == "max_tokens");
  CHECK(refused_param(R"({"prompt":"x","n":129})") == "n");
  CHECK_FALSE(check_completions_request(R"({"prompt":"x","prompt":"y"})"));
}
