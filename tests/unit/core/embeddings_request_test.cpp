#include "core/errc.hpp"
#include "core/request/embeddings_request.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace pw;

namespace {

/// The `param` of a refused body (checks it is an invalid_request).
std::string refused_param(const std::string& body) {
  auto r = check_embeddings_request(body);
  INFO(body);
  REQUIRE_FALSE(r);
  CHECK(code_of(r.error()) == errc::invalid_request);
  return param_of(r.error());
}

/// `n` copies of `item`, as a JSON list.
std::string list_of(size_t n, const std::string& item) {
  std::string out = "[";
  for (size_t i = 0; i < n; ++i)
    out += (i > 0 ? "," : "") + item;
  return out + "]";
}

} // namespace

TEST_CASE("embeddings: every input shape OpenAI takes is accepted") {
  for (
    const auto* body : {
      R"({"model":"m","input":"hello"})",
      R"({"model":"m","input":["a","b"]})",
      R"({"input":"no model uses the default route"})",
      R"({"model":null,"input":"x","encoding_format":null,"dimensions":null})",
    }) {
    INFO(body);
    auto r = check_embeddings_request(body);
    REQUIRE(r);
    CHECK_FALSE(r->token_input);
  }
  for (const auto* body : {
         R"({"model":"m","input":[1,2,3]})",
         R"({"model":"m","input":[[1,2],[3],[4294967295]]})",
       }) {
    INFO(body);
    auto r = check_embeddings_request(body);
    REQUIRE(r);
    CHECK(r->token_input);
  }
  auto r = check_embeddings_request(
    R"({"model":"m","input":"x","encoding_format":"base64","dimensions":256})");
  REQUIRE(r);
  CHECK(r->model == "m");
  CHECK(r->base64);
  CHECK(r->dimensions == 256u);
  CHECK(check_embeddings_request(
    R"({"input":)" + list_of(max_embedding_inputs, R"("t")") + "}"));
}

TEST_CASE("embeddings: a body of the wrong shape is refused with its field") {
  CHECK(refused_param("[]").empty());
  CHECK(refused_param(R"({"input":"x","model":7})") == "model");
  CHECK(refused_param(R"({"model":"m"})") == "input");
  for (const auto* input : {
         R"("")",
         "[]",
         R"([""])",
         R"(["a",""])",
         R"(["a",1])",
         "[1,-1]",
         "[1,2.5]",
         "[[1],[]]",
         "[[1],2]",
         "[4294967296]",
         "{}",
         "null",
         "true",
         "[null]",
         R"([["a"]])",
       })
    CHECK(refused_param(std::string{R"({"input":)"} + input + "}") == "input");
  CHECK(refused_param(R"({"input":)"
                      + list_of(max_embedding_inputs + 1, R"("t")") + "}")
        == "input");
  for (const auto* format : {R"("hex")", "1", R"("")", R"("FLOAT")"})
    CHECK(refused_param(std::string{R"({"input":"x","encoding_format":)"}
                        + format + "}")
          == "encoding_format");
  for (const auto* dims :
       {"0", "-3", "65537", "1.5", R"("8")", "18446744073709551615"})
    CHECK(
      refused_param(std::string{R"({"input":"x","dimensions":)"} + dims + "}")
      == "dimensions");
}

TEST_CASE("embeddings: bodies the JSON layer refuses are refused here too") {
  for (const auto* body : {"{", R"({"input":"x","input":"y"})", "\xff"}) {
    auto r = check_embeddings_request(body);
    CHECK_FALSE(r);
  }
}
