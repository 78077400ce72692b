#include "core/observe/log.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <regex>
#include <string>

using namespace pw;
using namespace std::chrono_literals;

namespace {

/// The value of "k" in a finished line, as it is written.
std::string raw_value(const std::string& line, const std::string& k) {
  auto key = "\"" + k + "\":";
  auto at = line.find(key);
  REQUIRE(at != std::string::npos);
  auto from = at + key.size();
  auto to = line.find_first_of(",}", from);
  return line.substr(from, to - from);
}

} // namespace

TEST_CASE("a log line's timestamp is RFC 3339 UTC with milliseconds") {
  auto ts = log::timestamp();
  CHECK(std::regex_match(
    ts, std::regex{R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)"}));
  auto text = log::line{log_level::info, "e"}.finish();
  auto doc = nlohmann::json::parse(text);
  CHECK(std::regex_match(
    doc["ts"].get<std::string>(),
    std::regex{R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)"}));
  CHECK(doc["level"] == "info");
  CHECK(doc["event"] == "e");
  CHECK(text.back() == '\n');
}

TEST_CASE("milliseconds keep three decimals, numbers are plain integers") {
  auto text = log::line{log_level::warning, "e"}
                .millis("a", 5us)
                .millis("b", 12'340us)
                .millis("c", 7'000'001us)
                .millis("d", -3us)
                .num("n", 0)
                .num("m", 18'446'744'073'709'551'615ULL)
                .null("z")
                .finish();
  CHECK(raw_value(text, "a") == "0.005");
  CHECK(raw_value(text, "b") == "12.340");
  CHECK(raw_value(text, "c") == "7000.001");
  CHECK(raw_value(text, "d") == "0.000");
  CHECK(raw_value(text, "n") == "0");
  CHECK(raw_value(text, "m") == "18446744073709551615");
  CHECK(raw_value(text, "z") == "null");
  auto doc = nlohmann::json::parse(text);
  CHECK(doc["b"].get<double>() == Approx(12.34));
  CHECK(doc["level"] == "warning");
}
