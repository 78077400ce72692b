#include "core/json_error.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace pw;

TEST_CASE("the error table has one row per code, in enum order") {
  auto table = error_table();
  REQUIRE(table.size() == errc_count);
  for (uint8_t i = 0; i < errc_count; ++i) {
    INFO("code " << static_cast<int>(i) << " "
                 << to_string(static_cast<errc>(i)));
    CHECK(table[i].code == static_cast<errc>(i));
    CHECK_FALSE(table[i].type.empty());
    CHECK_FALSE(table[i].code_text.empty());
    CHECK((table[i].status == 0
           || (table[i].status >= 400 && table[i].status < 600)));
  }
}

TEST_CASE("each situation of the design's error table maps as specified") {
  struct row {
    errc code;
    unsigned status;
    const char* type;
    const char* code_text;
  };
  // Written out here, not read from the table under test.
  for (auto [code, status, type, code_text] : {
         row{errc::invalid_request, 400, "invalid_request_error",
             "invalid_request"},
         row{errc::missing_api_key, 401, "authentication_error",
             "missing_api_key"},
         row{errc::invalid_api_key, 401, "authentication_error",
             "invalid_api_key"},
         row{errc::model_not_allowed, 403, "permission_error",
             "model_not_allowed"},
         row{errc::no_allowed_model, 403, "permission_error",
             "no_allowed_model"},
         row{errc::model_not_found, 404, "not_found_error", "model_not_found"},
         row{errc::not_found, 404, "not_found_error", "not_found"},
         row{errc::method_not_allowed, 405, "invalid_request_error",
             "method_not_allowed"},
         row{errc::payload_too_large, 413, "invalid_request_error",
             "payload_too_large"},
         row{errc::headers_too_large, 431, "invalid_request_error",
             "headers_too_large"},
         row{errc::rate_limited, 429, "rate_limit_error",
             "rate_limit_exceeded"},
         row{errc::quota_exceeded, 429, "insufficient_quota",
             "insufficient_quota"},
         row{errc::usage_unavailable, 503, "service_unavailable",
             "usage_unavailable"},
         row{errc::upstream_failed, 502, "upstream_error", "upstream_failed"},
         row{errc::upstream_invalid, 502, "upstream_error", "upstream_invalid"},
         row{errc::no_model_available, 503, "service_unavailable",
             "no_model_available"},
         row{errc::deadline_exceeded, 504, "timeout_error",
             "deadline_exceeded"},
         row{errc::policy_forbidden, 403, "policy_error", "policy_forbidden"},
         row{errc::plugin_failed, 503, "policy_error", "plugin_unavailable"},
         row{errc::internal, 500, "internal_error", "internal_error"},
       }) {
    INFO(to_string(code));
    auto r = render_error(error_of(code, "msg"));
    CHECK(r.status == status);
    auto j = nlohmann::json::parse(r.body);
    CHECK(j["error"]["type"] == type);
    CHECK(j["error"]["message"] == "msg");
    CHECK(j["error"]["param"].is_null());
    CHECK(j["error"]["code"] == code_text);
  }
}

TEST_CASE("relayed upstream errors keep the upstream status and fields") {
  api_error e = error_of(errc::upstream_rejected, "context too long");
  e.status = 422;
  e.type = "invalid_request_error";
  e.code_text = "context_length_exceeded";
  e.param = "messages";
  auto r = render_error(e);
  CHECK(r.status == 422);
  auto j = nlohmann::json::parse(r.body);
  CHECK(j["error"]["code"] == "context_length_exceeded");
  CHECK(j["error"]["param"] == "messages");
  // A relayed status outside 4xx never escapes as such.
  e.status = 302;
  CHECK(render_error(e).status == 400);
}

TEST_CASE("a plugin's block keeps the plugin's status, 4xx or 5xx") {
  api_error e = error_of(errc::policy_blocked, "blocked by policy");
  e.status = 451;
  auto r = render_error(e);
  CHECK(r.status == 451);
  auto j = nlohmann::json::parse(r.body);
  CHECK(j["error"]["type"] == "policy_error");
  CHECK(j["error"]["message"] == "blocked by policy");
  e.status = 503;
  CHECK(render_error(e).status == 503);
  e.status = 0; // none configured
  CHECK(render_error(e).status == 403);
  e.status = 200; // never a success
  CHECK(render_error(e).status == 403);
}
