// Signed audit checkpoints end to end: the real binary writes them, sends
// them to a witness (a fake HTTP endpoint on loopback), survives the
// witness's outage, and `verify-audit` holds the log to the witness's copy.

#include "plugins/audit_log/audit_chain.hpp"
#include "plugins/audit_log/checkpoint.hpp"
#include "tests/integration/common.hpp"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

using namespace pw::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace audit = pw::plugins::audit;

namespace {

/// `server:` lines that let the test read every family of `/metrics`.
const std::string metrics_public = "  metrics_public: true\n";

/// A witness that answers `status` to every checkpoint.
fake_handler witness_answering(unsigned status) {
  return [status](const fake_request&) {
    fake_response r;
    r.status = status;
    return r;
  };
}

/// Generates a signing key with `pw-router audit-key --generate`.
std::string generate_key(const temp_dir& dir) {
  auto key = (dir.path / "audit.key").string();
  auto made = run_pw_router({"audit-key", "--generate", key});
  REQUIRE(made.exit_code == 0);
  REQUIRE(made.out.starts_with("-----BEGIN PUBLIC KEY-----"));
  return key;
}

/// The audit_log middleware with checkpoints every `every_lines` records,
/// signed by `key`, sent to `witness` (with `witness_more` options).
std::string signed_audit(const fs::path& log, const std::string& key,
                         int every_lines, const fake_upstream& witness,
                         const std::string& witness_more = "") {
  return audit_log_middleware(
    log, "fsync: every, checkpoint: {key_file: \"" + key
           + "\", every_lines: " + std::to_string(every_lines)
           + ", witness: {url: \"" + witness.base_url()
           + "/checkpoints\", headers: {Authorization: \"Bearer w-token\"}"
           + witness_more + "}}");
}

void chat(const gateway_process& gw, int n) {
  for (int i = 0; i < n; ++i)
    REQUIRE(http_request(gw.port(), "POST", "/v1/chat/completions",
                         chat_body("m"), auth_json(full_key))
              .status
            == 200);
}

/// The bodies the witness accepted (answered 2xx), in order.
std::vector<std::string> accepted(const fake_upstream& witness,
                                  const std::vector<bool>& ok) {
  std::vector<std::string> out;
  auto requests = witness.requests();
  for (size_t i = 0; i < requests.size() && i < ok.size(); ++i)
    if (ok[i])
      out.push_back(requests[i].body);
  return out;
}

/// Polls `/metrics` until `name` reaches `value` (bounded: 10 s).
bool metric_reaches(const gateway_process& gw, const std::string& name,
                    double value) {
  for (int i = 0; i < 500; ++i) {
    if (metrics_of(gw).value(name) >= value)
      return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

/// Rewrites the record at `index` (0-based line) and every line after it
/// as someone holding the signing key would: chain recomputed, checkpoints
/// signed again.
void rewrite_history(const fs::path& log, size_t index,
                     const std::string& key_file) {
  auto key = audit::ed25519_key::load_private(key_file);
  REQUIRE(key);
  auto lines = lines_of(log);
  REQUIRE(index < lines.size());
  auto doc = nlohmann::ordered_json::parse(lines[index]);
  doc["status"] = 404;
  lines[index] = doc.dump();
  for (size_t i = index + 1; i < lines.size(); ++i) {
    auto line = nlohmann::ordered_json::parse(lines[i]);
    line["prev"] = audit::line_hash(lines[i - 1]);
    if (audit::is_checkpoint(line)) {
      audit::checkpoint_view v;
      REQUIRE(audit::read_checkpoint(line, v).empty());
      v.fields.head = line["prev"];
      line["head"] = v.fields.head;
      line["sig"] = key->sign_hex(audit::checkpoint_message(v.fields));
    }
    lines[i] = line.dump();
  }
  std::ofstream out{log, std::ios::binary | std::ios::trunc};
  for (const auto& l : lines)
    out << l << '\n';
}

} // namespace

TEST_CASE("signed checkpoints reach the witness, and verify-audit catches a "
          "rewritten history with its copy") {
  temp_dir dir;
  auto key = generate_key(dir);
  auto log = dir.path / "audit.jsonl";
  fake_upstream up{answer_ok()};
  fake_upstream witness{witness_answering(200)};
  auto config = make_config(openai_model("m", up.base_url()), "m",
                            metrics_public, signed_audit(log, key, 4, witness));
  {
    gateway_process gw{config};
    // Records 5 and 9 each bring the checkpoint of the four before them.
    chat(gw, 10);
    REQUIRE(witness.wait_for_requests(2, 10s));
    auto m = metrics_of(gw);
    CHECK(m.value("pw_router_audit_checkpoints_total") == 2);
    CHECK(metric_reaches(gw, "pw_router_audit_witness_sent_total", 2));
    CHECK(metrics_of(gw).value("pw_router_audit_witness_queued") == 0);
    // Shutdown covers records 9 and 10 with a last checkpoint.
    REQUIRE(gw.stop() == 0);
  }
  auto lines = lines_of(log);
  REQUIRE(lines.size() == 14);
  CHECK(audit::looks_like_checkpoint(lines.back()));
  {
    // The next start offers the shutdown's checkpoint again, in case the
    // witness never got it (a stopping witness sender may not have sent it).
    auto before = witness.requests().size();
    gateway_process gw{config};
    REQUIRE(witness.wait_for_requests(before + 1, 10s));
    CHECK(witness.requests().back().body == lines.back());
    REQUIRE(gw.stop() == 0);
  }
  auto requests = witness.requests();
  for (const auto& r : requests) {
    CHECK(r.method == "POST");
    CHECK(r.target == "/checkpoints");
    CHECK(r.headers.at("authorization") == "Bearer w-token");
    CHECK(r.headers.at("content-type") == "application/json");
    auto doc = nlohmann::ordered_json::parse(r.body);
    CHECK(audit::is_checkpoint(doc));
  }
  // The witness keeps what it receives, one checkpoint per line.
  auto witness_copy = dir.path / "witness.jsonl";
  {
    std::ofstream out{witness_copy};
    for (const auto& r : requests)
      out << r.body << '\n';
  }
  auto pub = key + ".pub";
  auto verified = run_pw_router({"verify-audit", "--pubkey", pub, "--witness",
                                 witness_copy.string(), log.string()});
  INFO(verified.err);
  CHECK(verified.exit_code == 0);
  CHECK(verified.out.starts_with("ok 14 lines\ncheckpoints: 3 verified"));
  CHECK(verified.out.find("witness: " + std::to_string(requests.size())
                          + " checkpoints matched")
        != std::string::npos);

  // The host's administrator, who can read the key, rewrites record 3 and
  // everything after it: the signatures and the chain check out, the
  // witness's copy does not.
  rewrite_history(log, 3, key);
  auto alone = run_pw_router({"verify-audit", "--pubkey", pub, log.string()});
  CHECK(alone.exit_code == 0);
  auto caught = run_pw_router({"verify-audit", "--pubkey", pub, "--witness",
                               witness_copy.string(), log.string()});
  CHECK(caught.exit_code == 1);
  CHECK(caught.err.starts_with(log.string()
                               + ":6: the checkpoint differs "
                                 "from the witness's copy ("
                               + witness_copy.string() + ":1)"));
}

TEST_CASE("an idle log gets a checkpoint within every_seconds of its first "
          "uncovered record") {
  temp_dir dir;
  auto key = generate_key(dir);
  auto log = dir.path / "audit.jsonl";
  fake_upstream up{answer_ok()};
  fake_upstream witness{witness_answering(200)};
  auto config = make_config(
    openai_model("m", up.base_url()), "m", metrics_public,
    audit_log_middleware(
      log, "fsync: interval, interval_ms: 50, checkpoint: {key_file: \"" + key
             + "\", every_seconds: 1, witness: {url: \"" + witness.base_url()
             + "/checkpoints\"}}"));
  gateway_process gw{config};
  chat(gw, 2);
  // No more traffic: the timer alone brings the checkpoint to the witness.
  REQUIRE(witness.wait_for_requests(1, 10s));
  auto cp = nlohmann::ordered_json::parse(witness.requests()[0].body);
  CHECK(audit::is_checkpoint(cp));
  CHECK(cp["line"] == 4); // header, two records, the checkpoint
  CHECK(cp["every_seconds"] == 1);
  auto lines = lines_of(log);
  REQUIRE(lines.size() == 4);
  CHECK(lines[3] == witness.requests()[0].body);
  CHECK(metrics_of(gw).value("pw_router_audit_checkpoints_total") == 1);
}

TEST_CASE("after a witness outage every checkpoint arrives in order, with "
          "the failed attempts counted") {
  temp_dir dir;
  auto key = generate_key(dir);
  auto log = dir.path / "audit.jsonl";
  fake_upstream up{answer_ok()};
  std::atomic<int> calls{0};
  // Down for the first three attempts.
  fake_upstream witness{[&calls](const fake_request&) {
    fake_response r;
    auto n = calls++;
    if (n < 3)
      r.status = n == 1 ? 502 : 503;
    return r;
  }};
  auto config
    = make_config(openai_model("m", up.base_url()), "m", metrics_public,
                  signed_audit(log, key, 1, witness, ", max_backoff_ms: 1000"));
  gateway_process gw{config};
  chat(gw, 4); // checkpoints before records 2, 3 and 4
  REQUIRE(witness.wait_for_requests(6, 20s));
  CHECK(metric_reaches(gw, "pw_router_audit_witness_sent_total", 3));
  auto m = metrics_of(gw);
  CHECK(m.value("pw_router_audit_checkpoints_total") == 3);
  CHECK(m.value("pw_router_audit_witness_failures_total") == 3);
  CHECK(m.value("pw_router_audit_witness_dropped_total") == 0);
  CHECK(m.value("pw_router_audit_witness_queued") == 0);
  CHECK(gw.wait_for_output("\"event\":\"audit_witness_failed\""));
  CHECK(gw.wait_for_output("\"event\":\"audit_witness_recovered\""));
  // The log line names the witness's origin, never its token.
  CHECK(gw.output().find("w-token") == std::string::npos);
  // The first checkpoint was tried three times, then each came once, in
  // the order of the log.
  auto got = accepted(witness, {false, false, false, true, true, true});
  auto requests = witness.requests();
  CHECK(requests[0].body == requests[3].body);
  std::vector<std::string> in_log;
  for (const auto& l : lines_of(log))
    if (audit::looks_like_checkpoint(l))
      in_log.push_back(l);
  CHECK(got == in_log);
}

TEST_CASE("a witness queue that is full drops the oldest checkpoint and "
          "counts it") {
  temp_dir dir;
  auto key = generate_key(dir);
  auto log = dir.path / "audit.jsonl";
  fake_upstream up{answer_ok()};
  fake_upstream witness{witness_answering(503)};
  auto config = make_config(
    openai_model("m", up.base_url()), "m", metrics_public,
    signed_audit(log, key, 1, witness, ", queue: 1, max_backoff_ms: 60000"));
  gateway_process gw{config};
  chat(gw, 4); // three checkpoints; the queue holds one
  CHECK(metric_reaches(gw, "pw_router_audit_witness_dropped_total", 2));
  auto m = metrics_of(gw);
  CHECK(m.value("pw_router_audit_witness_dropped_total") == 2);
  CHECK(m.value("pw_router_audit_witness_queued") == 1);
  CHECK(m.value("pw_router_audit_witness_sent_total") == 0);
  CHECK(gw.wait_for_output("\"event\":\"audit_witness_dropped\""));
}

TEST_CASE("checkpoint settings are checked at load: the key, its mode and "
          "the witness's scheme") {
  temp_dir dir;
  auto key = generate_key(dir);
  auto log = dir.path / "audit.jsonl";
  auto check = [&](const std::string& checkpoint) {
    auto config
      = make_config(openai_model("m", "http://127.0.0.1:9"), "m", "",
                    audit_log_middleware(log, "checkpoint: " + checkpoint));
    return run_pw_router({"--check-config", write_temp_file(config)});
  };
  auto ok = check("{key_file: \"" + key + "\"}");
  CHECK(ok.exit_code == 0);

  auto missing
    = check("{key_file: \"" + (dir.path / "none.key").string() + "\"}");
  CHECK(missing.exit_code == 2);
  CHECK(missing.err.find("checkpoint.key_file: ") != std::string::npos);
  CHECK(missing.err.find("cannot open") != std::string::npos);

  fs::permissions(key, fs::perms::group_read | fs::perms::others_read,
                  fs::perm_options::add);
  auto readable = check("{key_file: \"" + key + "\"}");
  CHECK(readable.exit_code == 2);
  CHECK(readable.err.find("chmod 600 it") != std::string::npos);
  fs::permissions(key, fs::perms::owner_read | fs::perms::owner_write,
                  fs::perm_options::replace);

  auto plain = check("{key_file: \"" + key
                     + "\", witness: {url: \"http://witness.example/cp\"}}");
  CHECK(plain.exit_code == 2);
  CHECK(plain.err.find("checkpoint.witness.url: must be https")
        != std::string::npos);

  auto typo = check("{key_file: \"" + key + "\", every_line: 5}");
  CHECK(typo.exit_code == 2);
  CHECK(typo.err.find("every_line") != std::string::npos);

  auto zero = check("{key_file: \"" + key + "\", every_seconds: 0}");
  CHECK(zero.exit_code == 2);
  CHECK(zero.err.find("checkpoint.every_seconds") != std::string::npos);
}
