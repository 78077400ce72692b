// No key ever leaves the gateway: client keys (the gateway's own, and wrong
// ones clients present), provider keys (also from ${ENV}) and admin keys
// are recognisable canaries here; a full request mix runs, including
// upstreams that echo the credentials they got, and every output is
// searched for them: response bodies and headers, stdout, stderr, the audit
// log, /health, /metrics, /v1/models and --check-config.

#include "tests/integration/common.hpp"

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace pw::test;
using namespace std::chrono_literals;

namespace {

const std::string client_canary = "sk-CANARY-client-1111qz";
const std::string admin_canary = "sk-CANARY-admin-2222qx";
const std::string provider_canary = "sk-CANARY-provider-3333qw";
const std::string env_canary = "sk-CANARY-from-env-4444qv";
const std::string wrong_canary = "sk-CANARY-wrong-5555qu";

/// The distinctive parts of every canary: a leak of part of a key counts.
/// The tails are not hexadecimal, so request ids and hashes cannot match.
const std::vector<std::string> canary_cores = {"CANARY-client-1111",
                                               "CANARY-admin-2222",
                                               "CANARY-provider-3333",
                                               "CANARY-from-env-4444",
                                               "CANARY-wrong-5555",
                                               "1111qz",
                                               "2222qx",
                                               "3333qw",
                                               "4444qv",
                                               "5555qu"};

/// An upstream that answers, or echoes the request's headers back in an
/// error (a malicious or careless provider), depending on the prompt.
fake_handler echoing_upstream() {
  return [](const fake_request& req) {
    fake_response r;
    std::string headers;
    for (const auto& [k, v] : req.headers)
      headers += k + ": " + v + "; ";
    if (req.body.find("echo-400") != std::string::npos) {
      r.status = 400;
      r.body = nlohmann::json{{"error",
                               {{"message", "bad request, you sent " + headers},
                                {"type", headers},
                                {"code", headers},
                                {"param", headers}}}}
                 .dump();
    } else if (req.body.find("echo-401") != std::string::npos) {
      r.status = 401;
      r.body = R"({"error":{"message":"Incorrect API key provided: )"
               + req.headers.at("authorization") + "\"}}";
    } else if (req.body.find("echo-500") != std::string::npos) {
      r.status = 500;
      r.body = "internal: " + headers;
    } else if (req.method == "GET") {
      r.body = R"({"object":"list","data":[]})";
    } else {
      r.body = openai_completion("m", "fine");
    }
    return r;
  };
}

std::string read_all(const std::filesystem::path& p) {
  std::ifstream in{p};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void collect(std::string& sink, const http_response& r) {
  sink += std::to_string(r.status) + "\n";
  for (const auto& [k, v] : r.headers)
    sink += k + ": " + v + "\n";
  sink += r.body + "\n";
}

} // namespace

TEST_CASE("no client, admin or provider key appears in any output") {
  fake_upstream plain{echoing_upstream()};
  auto dir = std::filesystem::temp_directory_path()
             / ("pw-redaction-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto audit = dir / "audit.jsonl";
  auto base = plain.base_url() + "/v1";
  auto config
    = "server:\n  api_keys:\n"
      "    - {key: \""
      + client_canary
      + "\", name: app, allowed_models: [\"*\"]}\n"
        "    - {key: \""
      + admin_canary
      + "\", name: ops, admin: true, allowed_models: [\"*\"]}\n"
        "models:\n"
        "  direct:\n    provider: openai\n    model: m\n    api_key: \""
      + provider_canary + "\"\n    base_url: \"" + base
      + "\"\n"
        "  from-env:\n    provider: vllm\n    model: m\n"
        "    api_key: \"${PW_CANARY_KEY}\"\n    base_url: \""
      + base
      + "\"\n"
        "  claude:\n    provider: anthropic\n    model: c\n    api_key: \""
      + provider_canary + "\"\n    base_url: \"" + plain.base_url()
      + "\"\n"
        "  down:\n    provider: openai\n    model: m\n    api_key: \""
      + provider_canary
      + "\"\n    base_url: \"http://127.0.0.1:" + std::to_string(closed_port())
      + "/v1\"\n"
        "routing:\n  default_model: direct\n"
        "  fallback_chains:\n    main: [\"down\", \"direct\"]\n"
      + audit_log_middleware(audit, "include_bodies: true")
      + "logging:\n  level: debug\n"
        "health:\n  check_interval_seconds: 0\n";
  gateway_process gw{config, {{"PW_CANARY_KEY", env_canary}}};
  std::string outputs;
  auto chat = [&](const std::string& model, const std::string& text,
                  const std::string& key = client_canary) {
    auto r = http_request(gw.port(), "POST", "/v1/chat/completions",
                          chat_body(model, text), auth_json(key));
    collect(outputs, r);
    return r;
  };
  // Successes, a fallback past a dead model, streams.
  for (const auto* model : {"direct", "from-env", "down"})
    CHECK(chat(model, "hello").status == 200);
  {
    raw_connection conn{gw.port()};
    std::string body = R"({"model":"direct","stream":true,"messages":)"
                       R"([{"role":"user","content":"hi"}]})";
    REQUIRE(conn.send("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                      "Authorization: Bearer "
                      + client_canary
                      + "\r\nConnection: close\r\nContent-Length: "
                      + std::to_string(body.size()) + "\r\n\r\n" + body));
    bool closed = false;
    outputs += conn.read_until_close(10s, closed);
  }
  // Upstreams that echo the credentials they received, on every model.
  for (const auto* model : {"direct", "from-env", "claude"})
    for (const auto* text : {"echo-400", "echo-401", "echo-500"})
      CHECK(chat(model, text).status >= 400);
  // Wrong and malformed credentials.
  CHECK(chat("direct", "x", wrong_canary).status == 401);
  for (const auto& value :
       {"Basic " + wrong_canary, wrong_canary, "Bearer  " + wrong_canary,
        "Bearer " + wrong_canary + "\x01"}) {
    auto r = http_request(
      gw.port(), "POST", "/v1/chat/completions", chat_body("direct"),
      {{"Authorization", value}, {"Content-Type", "application/json"}});
    collect(outputs, r);
  }
  // Every read-only endpoint, as admin and as client.
  for (const auto& key : {client_canary, admin_canary}) {
    for (const auto* path :
         {"/metrics", "/v1/models", "/health", "/health/ready"}) {
      collect(outputs, http_request(gw.port(), "GET", path, "",
                                    {{"Authorization", "Bearer " + key}}));
      collect(outputs, http_request(gw.port(), "GET", path, "",
                                    {{"Authorization", "Bearer " + key},
                                     {"Accept", "application/json"}}));
    }
  }
  // A reload logs the config it read.
  gw.signal(SIGHUP);
  REQUIRE(gw.wait_for_output("\"event\":\"config_reloaded\""));
  CHECK(gw.stop() == 0);
  outputs += gw.output() + gw.errors();
  outputs += read_all(audit);
  // --check-config, valid and with errors next to the keys.
  auto good = write_temp_file(config);
  auto checked
    = run_pw_router({"--check-config", good}, {{"PW_CANARY_KEY", env_canary}});
  CHECK(checked.exit_code == 0);
  outputs += checked.out + checked.err;
  auto duplicate = config;
  duplicate.replace(duplicate.find(admin_canary), admin_canary.size(),
                    client_canary);
  duplicate.replace(duplicate.find("default_model: direct"), 21,
                    "default_model: nowhere");
  auto bad = run_pw_router({"--check-config", write_temp_file(duplicate)},
                           {{"PW_CANARY_KEY", env_canary}});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("server.api_keys[1].key: same key as "
                     "server.api_keys[0]")
        != std::string::npos);
  outputs += bad.out + bad.err;
  // The mix really ran: what was searched holds the traffic.
  CHECK(outputs.find("\"event\":\"request\"") != std::string::npos);
  CHECK(outputs.find("pw_router_requests_total") != std::string::npos);
  CHECK(outputs.find("\"prev\"") != std::string::npos); // the audit log
  CHECK(outputs.find("rejected the gateway's credentials")
        != std::string::npos);
  // The echoed headers were relayed, with the key taken out.
  CHECK(outputs.find("bad request, you sent") != std::string::npos);
  CHECK(outputs.find("authorization: Bearer") != std::string::npos);
  // The upstreams did get the keys: the canaries were live.
  bool env_key_sent = false;
  for (const auto& r : plain.requests())
    env_key_sent
      = env_key_sent
        || (r.has_header("authorization")
            && r.headers.at("authorization") == "Bearer " + env_canary);
  CHECK(env_key_sent);
  for (const auto& canary : canary_cores) {
    INFO(canary);
    auto at = outputs.find(canary);
    if (at != std::string::npos)
      FAIL("leaked near: " << outputs.substr(at > 200 ? at - 200 : 0, 400));
  }
  std::filesystem::remove_all(dir);
}
