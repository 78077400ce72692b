// The command line: --version, --check-config, start-up failures, signals.

#include "tests/integration/common.hpp"

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sys/wait.h>

using namespace pw::test;

TEST_CASE("the version flag prints the version") {
  auto r = run_pw_router({"--version"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.starts_with("pw-router " PW_VERSION " ("));
  // The revision, then one line per library it was built with.
  for (const char* line :
       {"\nCAF 0.17.", "\nBoost 1.", "\nOpenSSL 3.", "\nyaml-cpp 0.",
        "\nnlohmann_json 3.", "\nRE2 ", "\nsimdjson 3."})
    CHECK(r.out.find(line) != std::string::npos);
  // On Debian the release comes from the package, e.g. 20220601+dfsg-1+b1.
  CHECK(r.out.find("\nRE2 20") != std::string::npos);
}

TEST_CASE("a pw-router config with extreme values loads, warned about") {
  auto cfg = make_config(echo_model, "echo", "",
                         "health:\n  check_interval_seconds: 0\n"
                         "  unhealthy_threshold: 1000000\n");
  auto path = write_temp_file(cfg);
  auto r = run_pw_router({"--check-config", path});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("warning: health.unhealthy_threshold: unusually large "
                   "(1000000, more than 1000)")
        != std::string::npos);
  CHECK(r.out.find("is valid") != std::string::npos);
  gateway_process gw{cfg};
  CHECK(gw.wait_for_output("\"event\":\"config_warning\""));
  CHECK(http_request(gw.port(), "POST", "/v1/chat/completions",
                     chat_body("echo"), auth_json(full_key))
          .status
        == 200);
}

TEST_CASE("check-config exits 0 for a valid file and 2 with every "
          "problem for an invalid one") {
  auto good = write_temp_file(make_config(echo_model, "echo"));
  auto ok = run_pw_router({"--check-config", good});
  CHECK(ok.exit_code == 0);
  CHECK(ok.out.find("is valid") != std::string::npos);
  auto bad = write_temp_file(make_config(
    echo_model
      + "  gpt:\n    provider: openai\n    model: m\n"
        "    timeout_seconds: 0\n    colour: blue\n",
    "missing", "", "  fallback_chains:\n    main: [\"echo\", \"ghost\"]\n"));
  auto r = run_pw_router({"--check-config", bad});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("models.gpt.timeout_seconds: must be > 0 (got 0)")
        != std::string::npos);
  CHECK(r.err.find("models.gpt.colour: unknown key") != std::string::npos);
  CHECK(r.err.find("routing.default_model: unknown model \"missing\"")
        != std::string::npos);
  CHECK(r.err.find("routing.fallback_chains.main[1]: unknown model \"ghost\"")
        != std::string::npos);
  std::remove(good.c_str());
  std::remove(bad.c_str());
}

TEST_CASE("an unset variable names its YAML path, a default fills it") {
  auto cfg = write_temp_file(
    "server:\n  port: ${PW_TEST_PORT:-8123}\n  api_keys:\n"
    "    - key: \"${PW_TEST_UNSET_KEY_VAR}\"\n      name: a\n"
    "      allowed_models: [\"*\"]\n"
    "models:\n  echo:\n    provider: echo\nrouting:\n  default_model: "
    "echo\n");
  auto r = run_pw_router({"--check-config", cfg});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("server.api_keys[0].key: environment variable "
                   "PW_TEST_UNSET_KEY_VAR is not set")
        != std::string::npos);
  auto ok = run_pw_router({"--check-config", cfg},
                          {{"PW_TEST_UNSET_KEY_VAR", "sk-from-env"}});
  CHECK(ok.exit_code == 0);
  std::remove(cfg.c_str());
}

TEST_CASE("an invalid config stops start-up before listening") {
  auto cfg = write_temp_file("server:\n  api_keys: []\nmodels: {}\n");
  auto r = run_pw_router({"--config", cfg, "--port", "0"});
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("listening") == std::string::npos);
  CHECK(r.err.find("server.api_keys: must contain at least one key")
        != std::string::npos);
  CHECK(r.err.find("routing: required") != std::string::npos);
  std::remove(cfg.c_str());
}

TEST_CASE("a missing config file and bad flags are clear errors") {
  auto r = run_pw_router({"--config", "/nonexistent/pw-router.yaml"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("cannot open") != std::string::npos);
  r = run_pw_router({"--port", "99999"});
  CHECK(r.exit_code == 2);
  r = run_pw_router({"--frobnicate"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("unknown argument") != std::string::npos);
}

TEST_CASE("the README example config of pw-router loads once its variables "
          "are set") {
  auto path = std::string{PW_TEST_DATA_DIR} + "/config/pw_router_readme.yaml";
  auto r = run_pw_router({"--check-config", path},
                         {{"PW_ROUTER_API_KEY_1", "k1"},
                          {"ANTHROPIC_API_KEY", "sk-ant-x"},
                          {"RUNPOD_API_KEY", "rp"},
                          {"RUNPOD_ENDPOINT_ID", "ep"}});
  INFO(r.err);
  CHECK(r.exit_code == 0);
}

TEST_CASE("SIGTERM stops the gateway cleanly with exit code 0") {
  gateway_process gw{make_config(echo_model, "echo")};
  REQUIRE(http_request(gw.port(), "GET", "/health").status == 200);
  CHECK(gw.stop() == 0);
  CHECK(gw.output().find("\"event\":\"stopped\"") != std::string::npos);
}

TEST_CASE("SIGTERM lets an in-flight request finish before exiting") {
  fake_upstream upstream{[](const fake_request& req) {
    auto r = answer_ok("late but complete")(req);
    r.delay = std::chrono::milliseconds{500};
    return r;
  }};
  gateway_process gw{
    make_config(openai_model("gpt", upstream.base_url()), "gpt")};
  http_client client{gw.port()};
  // Catch2 assertions stay on this thread; the caller only records.
  http_response res;
  std::thread caller{[&] {
    res = client.request("POST", "/v1/chat/completions", chat_body("gpt"),
                         auth_json(full_key));
  }};
  REQUIRE(upstream.wait_for_requests(1));
  kill(gw.pid(), SIGTERM);
  caller.join();
  CHECK(res.status == 200);
  CHECK(res.json()["choices"][0]["message"]["content"] == "late but complete");
  CHECK_FALSE(res.keep_alive);
  CHECK(gw.stop() == 0);
}

TEST_CASE("a port another process listens on is an error, not a shared "
          "port") {
  gateway_process first{make_config(echo_model, "echo")};
  auto cfg = write_temp_file(make_config(echo_model, "echo"));
  auto r = run_pw_router({"--config", cfg, "--host", "127.0.0.1", "--port",
                          std::to_string(first.port())});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("cannot listen on 127.0.0.1:" + std::to_string(first.port()))
        != std::string::npos);
  CHECK(r.out.find("listening") == std::string::npos);
  std::remove(cfg.c_str());
}

TEST_CASE("hash-key prints the line to paste, and that key authenticates") {
  auto key_file = write_temp_file("sk-hashed-client-5e21\n", ".txt");
  auto out_file = write_temp_file("", ".out");
  auto command = std::string{PW_ROUTER_BIN} + " hash-key < " + key_file + " > "
                 + out_file + " 2>&1";
  REQUIRE(std::system(command.c_str()) == 0);
  std::ifstream in{out_file};
  std::string line;
  std::getline(in, line);
  REQUIRE(line.starts_with("key_sha256: \""));
  CHECK(line.find("sk-hashed") == std::string::npos);
  gateway_process gw{"server:\n  api_keys:\n    - " + line
                     + "\n      name: hashed\n      allowed_models: [\"*\"]\n"
                       "models:\n"
                     + echo_model
                     + "routing:\n  default_model: echo\n"
                       "health:\n  check_interval_seconds: 0\n"};
  auto ok = http_request(gw.port(), "POST", "/v1/chat/completions",
                         chat_body("echo"), auth_json("sk-hashed-client-5e21"));
  CHECK(ok.status == 200);
  auto wrong = http_request(gw.port(), "POST", "/v1/chat/completions",
                            chat_body("echo"), auth_json("sk-hashed-client"));
  CHECK(wrong.status == 401);
  CHECK(gw.output().find("sk-hashed-client") == std::string::npos);
  // No key on stdin: a clear error, exit 2.
  auto empty = std::string{PW_ROUTER_BIN} + " hash-key < /dev/null > "
               + out_file + " 2>&1";
  CHECK(WEXITSTATUS(std::system(empty.c_str())) == 2);
}
